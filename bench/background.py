"""Background effects: per-frame cost of the stage at 720p, and video throughput with and without.

    .venv/bin/python bench/background.py                 # both parts, markdown tables
    .venv/bin/python bench/background.py --repeat 3 --frames 90

Part 1 decodes 720p frames of a real clip and times, per frame, what `--background` adds in the
video writer: the segmenter on a frame reduced to the model's size (with the reduction itself),
the person mask (smoothing, feather, scaling up) and the compositing on the YUV planes. Part 2
runs whole videos through `process_video` with the same settings but the background, one after
the other in each round (interleaved, best round kept), so machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
CLIPS = {"sihan": "videos/sihan_office_vfr.mp4", "sadtalker": "videos/sadtalker_WDA_KatieHill_000.mp4"}
MODES = ("blur", "color:#00b140", "image")


def decoded(path: Path, count: int) -> list:
    import av

    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f)
            if len(frames) == count:
                break
    return frames


def stage_costs(path: Path, count: int, scene: Path) -> list[list[str]]:
    """ms per frame of each part of the background stage, on the clip's decoded frames."""
    from faceveil.anonymization.background import Backdrop
    from faceveil.config import BackgroundConfig
    from faceveil.segmentation import PersonMasker, segmenters

    frames = decoded(path, count)
    w, h = frames[0].width, frames[0].height
    rows = []
    for seg_name in ("selfie", "landscape"):
        segmenter = segmenters.create(seg_name)
        for mode in MODES:
            config = BackgroundConfig(mode=mode, image=str(scene), segmenter=seg_name)
            masker, backdrop = PersonMasker(segmenter, config, video=True), Backdrop(config)
            reduce, segment, composite = [], [], []
            for f in frames:
                t0 = time.perf_counter()
                mw, mh = masker.model_input(w, h)
                small = f.reformat(mw, mh, format="rgb24", interpolation="AREA").to_ndarray()
                t1 = time.perf_counter()
                alpha = masker.alpha(small, (h, w))
                t2 = time.perf_counter()
                planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width]
                          for p in f.planes]
                backdrop.apply_planes(planes, alpha, "i420")
                t3 = time.perf_counter()
                reduce.append(t1 - t0)
                segment.append(t2 - t1)
                composite.append(t3 - t2)
            parts = [statistics.median(x) * 1000 for x in (reduce, segment, composite)]
            rows.append([seg_name, mode.split(":")[0], f"{w}x{h}", *(f"{v:.1f}" for v in parts),
                         f"{sum(parts):.1f}"])
    return rows


def throughput(path: Path, repeat: int, scene: Path) -> list[list[str]]:
    """Whole-video fps without and with each background mode; best of `repeat` rounds."""
    from faceveil.pipeline import Pipeline
    from faceveil.pipeline.video import process_video

    settings = {"faces only": {}, **{f"+ {m.split(':')[0]}": {"background": m} for m in MODES}}
    pipelines = {}
    for name, extra in settings.items():
        if extra.get("background") == "image":
            extra = {**extra, "background_image": str(scene)}
        pipelines[name] = p = Pipeline(**extra)
        _ = p.detector  # models loaded before timing
    best: dict[str, float] = {}
    frames = 0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            for name, pipeline in pipelines.items():
                t0 = time.perf_counter()
                report = process_video(path, Path(tmp) / "out.mp4", pipeline)
                fps = report.frames / (time.perf_counter() - t0)
                frames = report.frames
                best[name] = max(best.get(name, 0.0), fps)
                print(f"  round {r + 1}: {path.name} {name}: {fps:.1f} fps", file=sys.stderr)
    base = best["faces only"]
    return [[path.name, name, str(frames), f"{fps:.1f}", f"{fps / base:.2f}x"]
            for name, fps in best.items()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="the shared data folder (default: ../shared/data or $FACEVEIL_DATA)")
    p.add_argument("--frames", type=int, default=60, help="frames timed in part 1 (default 60)")
    p.add_argument("--repeat", type=int, default=2, help="rounds in part 2, best kept (default 2)")
    p.add_argument("--clips", default="sihan,sadtalker", help="part 2 clips: " + ", ".join(CLIPS))
    p.add_argument("--text", action="store_true", help="plain text tables instead of markdown")
    args = p.parse_args(argv)
    sys.path.insert(0, str(BENCH))
    import images  # the helpers the benchmarks share

    clips = [c for c in args.clips.split(",") if c]
    unknown = sorted(set(clips) - set(CLIPS))
    if unknown:
        p.error(f"unknown clips: {', '.join(unknown)}")
    data = images.find_data(args.data, "the shared clips", [Path(CLIPS[c]) for c in clips])
    from faceveil.media.images import write_image

    facts = images.machine_facts()
    md = not args.text
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "scene.png"  # a picture to put behind people: a smooth gradient
        ramp = np.linspace(0, 255, 1920, dtype=np.float32)
        write_image(scene, np.dstack([np.tile(ramp, (1080, 1)), np.full((1080, 1920), 120),
                                      np.tile(ramp[::-1], (1080, 1))]).astype(np.uint8))
        print("## Background stage, ms per 720p frame (median)\n")
        rows = stage_costs(data / CLIPS["sihan"], args.frames, scene)
        print(images.render_table(["segmenter", "mode", "frame", "reduce", "mask", "composite",
                                   "total"], rows, md, 3))
        print("\n## Video throughput without and with a background\n")
        rows = [row for c in clips for row in throughput(data / CLIPS[c], args.repeat, scene)]
        print(images.render_table(["clip", "setting", "frames", "fps", "vs faces only"], rows, md, 2))
    print()
    images.print_facts(facts, "- ", "faceveil (this checkout), selfie segmentation on ONNX Runtime")
    return 0


if __name__ == "__main__":
    sys.exit(main())
