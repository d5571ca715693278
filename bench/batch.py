"""Batch throughput: 1 -> 2 local worker processes, the Ray engine's overhead, memory per worker.

`faceveil.batch.run_batch` runs the same files in each configuration, into a fresh temporary
folder each time (outputs as the inputs: JPEG pictures, H.264 videos; manifest included):

- local 1x1: one worker process with one inference thread (the baseline);
- local 2x1: two worker processes with one thread each (what `--workers 2` gives on 2 cores);
- local 1x2: one worker with two threads (one process using both cores, for comparison);
- ray 2x1: the Ray engine, two actors with one thread each, on a local Ray started once before
  (its start-up is timed on its own and reported apart).

Two workloads: WIDER FACE photos (spread over the events) and short cuts of a real clip (640x360,
made untimed with PyAV). Two more for one long video over many workers (issue 22), each with its
leak rate (the shared pan clip's exact boxes, hidden with a solid black fill, scored as
../shared/tools/video_leaks.py does) beside the speed:

- long: one video of `--long` seconds (default 600): the shared pan clip (make_pan_clip.py)
  looped, 640x360 at 25 fps, H.264 with x264's default key frames (every 250 frames and at
  scene changes), with a sine-tone audio track;
- mixed: `--mixed-pictures` WIDER photos (default 40) and one 1920x1080 video of `--mixed`
  seconds (default 30): the pan clip scaled up and looped, key frames every 2 s.

Each runs on local 1x1 (one worker, one thread) and the default `faceveil batch` (no --workers
or --threads: one worker per core, which splits the long video into segments), plus Ray 2x1 for
the long video. For each run: the wall clock of the whole `run_batch` call (worker
start-up and model loading included), the steady rate (items per second between the moment
every worker has delivered its first item and the last item, so start-up is left out), the peak
resident memory of each worker (from its records: the worker process's own VmHWM), the CPU
seconds all of the run's processes used per item (start-up included; Ray's own processes count
as the run's), and the share of the machine's CPU that other processes used meanwhile: on a
shared machine the wall times say little, the CPU seconds per item still say what a worker
costs. With `--repeat K` each configuration runs K times, in a rotated order, and the fastest
run is kept.

    .venv/bin/python bench/batch.py                          # both workloads, all configurations
    .venv/bin/python bench/batch.py --pictures 30 --videos 0 --no-ray
    .venv/bin/python bench/batch.py --repeat 2 --markdown --json bench/out/batch.json --check
    .venv/bin/python bench/batch.py --pictures 0 --videos 0 --long 600 --mixed 30 --markdown

Progress goes to stderr; machine facts and the results table go to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
CLIP = Path("videos") / "hamilton_short_clip.mp4"
SUBSET = Path("images") / "wider_face_val_subset"
CONFIGS = (("local", 1, 1), ("local", 2, 1), ("local", 1, 2), ("ray", 2, 1))  # engine, workers, threads
BASELINE = ("local", 1, 1)
TARGET_SPEEDUP = 1.7  # local 2x1 against 1x1, steady rate, pictures
SEGMENT_CONFIGS = (("local", 1, 1), ("local", 0, 0), ("ray", 2, 1))  # 0: the default (None)
TOOLS = "tools"  # beside the shared data folder: make_pan_clip.py, video_leaks.py


def images_module() -> Any:
    """bench/images.py, for the helpers the benchmarks share (machine facts, tables, CPU meter)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import images

    return images


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Run:
    workload: str
    engine: str
    workers: int
    threads: int
    seconds: float = float("inf")
    steady: float | None = None  # items/s once every worker is going
    peak_rss: dict[str, float] = field(default_factory=dict)  # worker -> MiB
    others: float | None = None
    median_item: float | None = None  # seconds a worker spent on an item (median)
    cpu_per_item: float | None = None  # CPU seconds of the whole run (all processes) per item
    ok: int = 0
    failed: int = 0
    leak: dict | None = None  # leak rate of the video output (long, mixed)
    segments: int | None = None  # segments the video was split into
    load: tuple[float, float] | None = None  # load averages (1, 5 min) at the end of the run
    used_workers: int | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        return self.engine, self.workers, self.threads

    @property
    def label(self) -> str:
        if not self.workers:
            return f"{self.engine} default ({self.used_workers or '?'}x1)"
        return f"{self.engine} {self.workers}x{self.threads}"


class TreeMeter:
    """Share of the machine's CPU used by processes that are not this run's while it ran.

    "This run" is this process, its descendants (worker processes) and the local Ray's processes
    (raylet, GCS, ray:: workers and actors, which are not our children). Linux only: /proc is
    sampled every `every` seconds, so a process's last fraction of a second can be missed.
    """

    def __init__(self, every: float = 0.25) -> None:
        import threading

        self.tick = os.sysconf("SC_CLK_TCK")
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.busy0 = images_module().CpuMeter._busy()
        self.t0 = time.perf_counter()
        self._stop = threading.Event()
        self._running = False
        self._sample()
        self._running = True
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True)
        self._thread.start()

    @staticmethod
    def _read(pid: int) -> tuple[int, int, str] | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        rest = stat[stat.rindex(")") + 2:].split()
        return int(rest[1]), int(rest[11]) + int(rest[12]), cmd  # ppid, utime + stime

    def _sample(self) -> None:
        me = os.getpid()
        procs = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (info := self._read(int(entry))) is not None:
                procs[int(entry)] = info
        for pid, (_, ticks, cmd) in procs.items():
            ours, p, hops = pid == me or "ray" in cmd, pid, 0
            while not ours and p in procs and hops < 50:
                p, hops = procs[p][0], hops + 1
                ours = p == me
            if ours:
                # there at the start: count from now; born since: all of its CPU time counts
                self.first.setdefault(pid, ticks if not self._running else 0)
                self.last[pid] = ticks

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(Exception):
                self._sample()

    def stop(self) -> tuple[float, float | None]:
        """(CPU seconds this run used, share of the machine's CPU others used meanwhile)."""
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(Exception):
            self._sample()
        busy1 = images_module().CpuMeter._busy()
        seconds = time.perf_counter() - self.t0
        ours = sum(self.last[p] - self.first[p] for p in self.last) / self.tick
        if self.busy0 is None or busy1 is None or seconds <= 0:
            return ours, None
        others = (busy1 - self.busy0) / self.tick - ours
        return ours, max(0.0, others) / (seconds * (os.cpu_count() or 1))


def cut_clips(source: Path, folder: Path, count: int, seconds: float) -> list[Path]:
    """`count` different stretches of the clip, `seconds` each, re-encoded (video only)."""
    import av

    with av.open(str(source)) as inp:
        vin = inp.streams.video[0]
        rate = Fraction(vin.average_rate)
        frames = [f.reformat(format="yuv420p") for f in inp.decode(vin)]
    length = max(1, round(seconds * rate))
    out = []
    for i in range(count):
        start = (i * length // 2) % max(1, len(frames) - length)
        path = folder / f"clip{i}.mp4"
        with av.open(str(path), "w") as c:
            s = c.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
            s.width, s.height, s.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
            for k, frame in enumerate(frames[start:start + length]):
                frame.pts, frame.time_base = k, 1 / rate
                c.mux(s.encode(frame))
            c.mux(s.encode(None))
        out.append(path)
    return out


def pan_frames(data: Path, folder: Path) -> tuple[list, list[dict], Any]:
    """The shared pan clip (made here by make_pan_clip.py): its frames (yuv420p), boxes, rate."""
    import subprocess

    import av

    clip, boxes = folder / "pan.mp4", folder / "pan.json"
    subprocess.run([sys.executable, str(data.parent / TOOLS / "make_pan_clip.py"), str(clip),
                    str(boxes)], check=True, capture_output=True)
    with av.open(str(clip)) as inp:
        rate = Fraction(inp.streams.video[0].average_rate)
        frames = [f.reformat(format="yuv420p") for f in inp.decode(video=0)]
    return frames, json.loads(boxes.read_text())["frames"], rate


def looped_clip(pan: tuple, path: Path, seconds: float, scale: int = 1,
                keyint: int | None = None) -> Path:
    """The pan clip looped to `seconds` (and `scale` times its size), with a sine-tone audio
    track; its boxes beside it (PATH.json, as make_pan_clip.py writes them)."""
    import av
    import numpy as np

    frames, boxes, rate = pan
    n = max(1, round(seconds * rate))
    w, h = frames[0].width * scale, frames[0].height * scale
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast", **({"g": str(keyint)} if keyint else {})}
        a_s = c.add_stream("aac", rate=44100)
        a_s.layout = "mono"
        samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(44100 * n / rate)) / 44100)
                   ).astype(np.float32)
        per_frame = int(44100 / rate)
        done = 0
        for k in range(n):
            frame = frames[k % len(frames)]
            if scale != 1:
                frame = frame.reformat(w, h, interpolation="BICUBIC")
            frame.pts, frame.time_base = k, 1 / rate
            c.mux(vs.encode(frame))
            while done < min(len(samples), (k + 1) * per_frame):
                af = av.AudioFrame.from_ndarray(samples[None, done:done + 1024], format="fltp",
                                                layout="mono")
                af.sample_rate, af.pts, af.time_base = 44100, done, Fraction(1, 44100)
                c.mux(a_s.encode(af))
                done += 1024
        c.mux(vs.encode(None))
        c.mux(a_s.encode(None))
    looped = [{"index": k, "boxes": [{"box": [v * scale for v in b["box"]], "ignore": b["ignore"]}
                                     for b in boxes[k % len(boxes)]["boxes"]]} for k in range(n)]
    path.with_suffix(".json").write_text(json.dumps({"width": w, "height": h, "frames": looped}))
    return path


def leak_rate(src: Path, out: Path, minh: float = 20) -> dict:
    """video_leaks.py's figure for a clip made by looped_clip (solid black fill)."""
    import av

    truth = json.loads(src.with_suffix(".json").read_text())["frames"]
    minh *= json.loads(src.with_suffix(".json").read_text())["height"] / 360
    faces = leaks = 0
    leaked_frames = 0
    with av.open(str(src)) as a, av.open(str(out)) as b:
        for fr, fa, fb in zip(truth, a.decode(video=0), b.decode(video=0), strict=False):
            x, y = fa.to_ndarray(format="rgb24"), fb.to_ndarray(format="rgb24")
            hidden = (y.max(axis=2) <= 24) | (x.max(axis=2) <= 24)
            hh, ww = hidden.shape
            leaked = False
            for bx in fr["boxes"]:
                x1, y1, x2, y2 = bx["box"]
                bw, bh = x2 - x1, y2 - y1
                if bx["ignore"] or bh < minh:
                    continue
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                cx1, cx2 = int(cx - .3 * bw), int(cx + .3 * bw) + 1
                cy1, cy2 = int(cy - .3 * bh), int(cy + .3 * bh) + 1
                if cx1 < 0 or cy1 < 0 or cx2 > ww or cy2 > hh:
                    continue
                faces += 1
                if hidden[cy1:cy2, cx1:cx2].mean() < 0.8:
                    leaks += 1
                    leaked = True
            leaked_frames += leaked
    return {"face_frames": faces, "leaks": leaks, "leak_rate": leaks / max(faces, 1),
            "frames_with_leak": leaked_frames}


def pick_pictures(data: Path, n: int) -> list[Path]:
    files = sorted((data / SUBSET).glob("*/*.jpg"))
    if not files:
        sys.exit(f"error: no pictures under {data / SUBSET}")
    step = max(1, len(files) // n)
    return files[::step][:n]


def run_once(run: Run, files: list[Path], base: Path) -> None:
    from faceveil.batch import BatchOptions, run_batch
    from faceveil.config import PipelineConfig

    arrivals: list[float] = []
    rss: dict[str, float] = {}
    item_seconds: list[float] = []

    def on_record(record: dict) -> None:
        arrivals.append(time.perf_counter())
        item_seconds.append(record.get("seconds") or 0.0)
        if record.get("worker"):
            rss[record["worker"]] = max(rss.get(record["worker"], 0.0), record.get("peak_rss_mb") or 0)

    out = Path(tempfile.mkdtemp(prefix=f"{run.workload}-{run.engine}-", dir=base))
    segmented = run.workload in ("long", "mixed")
    config = PipelineConfig.from_options(threads=run.threads or None,
                                         **({"method": "solid", "color": "black"} if segmented else {}))
    segments: list[int] = []
    outputs: dict[str, str] = {}

    def record_it(record: dict) -> None:
        on_record(record)
        if record.get("kind") == "video":
            segments.append(int(record.get("segments") or 1))
            outputs[record["input"]] = record["output"]

    meter = TreeMeter()
    started = time.perf_counter()
    report = run_batch([str(f) for f in files], out, config,
                       BatchOptions(engine=run.engine, workers=run.workers or None),
                       on_record=record_it)
    seconds = time.perf_counter() - started
    cpu, others = meter.stop()
    load = os.getloadavg()[:2]
    w = report.workers or run.workers
    run.used_workers = report.workers
    # Ray hands records back in bursts, so arrival times say little about its rate: none there.
    steady = (len(arrivals) - w) / (arrivals[-1] - arrivals[w - 1]) \
        if run.engine == "local" and len(arrivals) > w + 1 and arrivals[-1] > arrivals[w - 1] else None
    median = sorted(item_seconds)[len(item_seconds) // 2] if item_seconds else None
    log(f"  {run.workload:8s} {run.label:10s} {seconds:6.1f} s, "
        f"{'-' if steady is None else f'{steady:.2f}'} items/s steady, "
        f"peak RSS {max(rss.values(), default=0):.0f} MiB, {report.ok} ok, {report.failed} failed, "
        f"{cpu:.1f} CPU s, others used {'-' if others is None else f'{others:.0%}'} of the CPU")
    if seconds < run.seconds:
        run.seconds, run.steady, run.peak_rss, run.others = seconds, steady, rss, others
        run.median_item, run.cpu_per_item = median, cpu / max(1, len(files))
        run.ok, run.failed = report.ok, report.failed
        run.load, run.used_workers = load, report.workers
        if segmented:
            video = next(f for f in files if f.suffix == ".mp4")
            run.segments = segments[0] if segments else None
            run.leak = leak_rate(video, Path(outputs[str(video)])) if outputs else None
            log(f"    leak rate {run.leak['leak_rate']:.4f} ({run.leak['leaks']} of "
                f"{run.leak['face_frames']} face-frames), {run.segments} segment(s), "
                f"load {load[0]:.1f}/{load[1]:.1f}")


def build_rows(runs: list[Run], ray_init: float | None) -> list[dict]:
    rows = []
    for r in runs:
        base = next(b for b in runs if b.workload == r.workload and b.key == BASELINE)
        same = ("local", r.workers, r.threads)
        local = next((b for b in runs if b.workload == r.workload and b.key == same), None)
        row = {
            "workload": r.workload, "config": r.label, "engine": r.engine, "workers": r.workers,
            "threads": r.threads, "seconds": round(r.seconds, 2), "ok": r.ok, "failed": r.failed,
            "steady_items_per_s": None if r.steady is None else round(r.steady, 3),
            "speedup_wall": round(base.seconds / r.seconds, 2),
            "speedup_steady": (round(r.steady / base.steady, 2) if r.steady and base.steady else None),
            "median_item_s": None if r.median_item is None else round(r.median_item, 3),
            "cpu_s_per_item": None if r.cpu_per_item is None else round(r.cpu_per_item, 3),
            "peak_rss_mb_per_worker": round(max(r.peak_rss.values(), default=0), 1),
            "others_cpu": None if r.others is None else round(r.others, 3),
            "load_1_5": None if r.load is None else [round(v, 2) for v in r.load],
            "segments": r.segments,
            "leak_rate": None if r.leak is None else round(r.leak["leak_rate"], 4),
            "leaks": None if r.leak is None else r.leak["leaks"],
            "face_frames": None if r.leak is None else r.leak["face_frames"],
        }
        if r.engine == "ray" and local is not None:
            row["ray_overhead_s"] = round(r.seconds - local.seconds, 2)
            row["ray_init_s"] = None if ray_init is None else round(ray_init, 2)
        rows.append(row)
    return rows


def table(rows: list[dict], markdown: bool) -> str:
    images = images_module()
    header = ["workload", "engine workers x threads", "wall s", "items/s steady", "speed-up wall",
              "speed-up steady", "s / item (median)", "CPU s / item", "peak RSS / worker MiB",
              "others' CPU", "load 1/5 min", "segments", "leak rate (leaks / face-frames)"]
    body = []
    for r in rows:
        body.append([
            r["workload"], r["config"], f"{r['seconds']:.1f}",
            "-" if r["steady_items_per_s"] is None else f"{r['steady_items_per_s']:.2f}",
            f"{r['speedup_wall']:.2f}x",
            "-" if r["speedup_steady"] is None else f"{r['speedup_steady']:.2f}x",
            "-" if r["median_item_s"] is None else f"{r['median_item_s']:.2f}",
            "-" if r["cpu_s_per_item"] is None else f"{r['cpu_s_per_item']:.2f}",
            f"{r['peak_rss_mb_per_worker']:.0f}",
            "-" if r["others_cpu"] is None else f"{r['others_cpu']:.0%}",
            "-" if r["load_1_5"] is None else f"{r['load_1_5'][0]:.1f}/{r['load_1_5'][1]:.1f}",
            "-" if r["segments"] is None else str(r["segments"]),
            "-" if r["leak_rate"] is None else f"{r['leak_rate']:.4f} ({r['leaks']}/{r['face_frames']})"])
    return images.render_table(header, body, markdown, text_columns=2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pictures", type=int, default=60, metavar="N", help="WIDER photos (default 60; 0: none)")
    p.add_argument("--videos", type=int, default=4, metavar="N", help="clips (default 4; 0: none)")
    p.add_argument("--seconds", type=float, default=3.0, metavar="S", help="length of each clip (default 3)")
    p.add_argument("--long", type=float, default=0, metavar="S",
                   help="one looped pan clip of S seconds (issue 22 target: 600; default 0: none)")
    p.add_argument("--mixed", type=float, default=0, metavar="S",
                   help="--mixed-pictures photos and one 1080p pan clip of S seconds (default 0: none)")
    p.add_argument("--mixed-pictures", type=int, default=40, metavar="N", help="photos in mixed (40)")
    p.add_argument("--repeat", type=int, default=1, metavar="K", help="runs per configuration, best kept")
    p.add_argument("--no-ray", action="store_true", help="leave out the Ray engine")
    p.add_argument("--data", default=None,
                   help="shared data folder (default: $FACEVEIL_DATA or ../shared/data)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", default=None, metavar="PATH", help="write all figures as JSON")
    p.add_argument("--check", action="store_true", help=f"exit 1 when the {TARGET_SPEEDUP}x target fails")
    args = p.parse_args(argv)
    if args.pictures < 0 or args.videos < 0 or args.pictures + args.videos + args.long + args.mixed <= 0:
        p.error("give some --pictures, --videos, --long or --mixed")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    images = images_module()
    needs = [SUBSET.parent / "wider_face_val_subset.json"] if args.pictures or args.mixed or \
        args.long else [CLIP]
    data = images.find_data(args.data, needs=needs)
    facts = images.machine_facts()
    configs = [c for c in CONFIGS if not (args.no_ray and c[0] == "ray")]
    ray_init = None
    if any(c[0] == "ray" for c in configs):
        try:
            import ray

            facts["ray"] = ray.__version__
        except ImportError:
            log("ray is not installed (pip install 'faceveil[cluster]'): leaving the Ray engine out")
            configs = [c for c in configs if c[0] != "ray"]
    with tempfile.TemporaryDirectory(prefix="faceveil-bench-batch-") as tmp:
        base = Path(tmp)
        workloads: dict[str, list[Path]] = {}
        if args.pictures:
            workloads["pictures"] = pick_pictures(data, args.pictures)
        if args.videos:
            (base / "clips").mkdir()
            log(f"cutting {args.videos} clip(s) of {args.seconds:g} s from {CLIP} ...")
            workloads["videos"] = cut_clips(data / CLIP, base / "clips", args.videos, args.seconds)
        pan = None
        if args.long or args.mixed:
            if not (data.parent / TOOLS / "make_pan_clip.py").is_file():
                sys.exit(f"error: --long/--mixed need {data.parent / TOOLS / 'make_pan_clip.py'}")
            log("making the pan clip ...")
            pan = pan_frames(data, base)
        if args.long:
            log(f"looping it to {args.long:g} s (640x360) ...")
            (base / "long").mkdir()
            workloads["long"] = [looped_clip(pan, base / "long" / "long.mp4", args.long)]
        if args.mixed:
            log(f"{args.mixed_pictures} photos and a {args.mixed:g} s 1080p clip ...")
            (base / "mixed").mkdir()
            workloads["mixed"] = [*pick_pictures(data, args.mixed_pictures),
                                  looped_clip(pan, base / "mixed" / "pan1080.mp4", args.mixed,
                                              scale=3, keyint=50)]
        pan = None
        if any(c[0] == "ray" for c in configs) or (args.long and not args.no_ray):
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
            ray_init = time.perf_counter() - t0
            log(f"local Ray started in {ray_init:.1f} s (not part of the ray rows' wall time)")
        runs = [Run(w, *c) for w in workloads for c in
                (configs if w not in ("long", "mixed") else
                 [c for c in SEGMENT_CONFIGS if not (c[0] == "ray" and (w == "mixed" or args.no_ray))])]
        try:
            for round_ in range(args.repeat):
                log(f"round {round_ + 1}/{args.repeat}")
                shift = round_ % len(configs)
                for workload, files in workloads.items():
                    order = [r for r in runs if r.workload == workload]
                    shift = round_ % len(order)
                    for run in order[shift:] + order[:shift]:
                        run_once(run, files, base)
        finally:
            if ray_init is not None:
                import ray

                ray.shutdown()
        with contextlib.suppress(OSError):
            facts["loadavg_after_timing"] = [round(v, 2) for v in os.getloadavg()]
    rows = build_rows(runs, ray_init)

    bullet = "- " if args.markdown else ""
    images.print_facts(facts, bullet, f"Python {facts['python']}, onnxruntime {facts['onnxruntime']}, "
                       f"numpy {facts['numpy']}, OpenCV {facts['opencv']}, Ray {facts.get('ray', '-')}")
    described = []
    if "pictures" in workloads:
        described.append(f"{len(workloads['pictures'])} WIDER FACE photos (1024 px wide, JPEG out)")
    if "videos" in workloads:
        described.append(f"{len(workloads['videos'])} clips of {args.seconds:g} s cut from {CLIP.name} "
                         "(640x360, H.264 out, crf 20 medium)")
    if "long" in workloads:
        described.append(f"long: the pan clip looped to {args.long:g} s (640x360, 25 fps)")
    if "mixed" in workloads:
        described.append(f"mixed: {args.mixed_pictures} WIDER photos + the pan clip at 1920x1080 "
                         f"looped to {args.mixed:g} s (solid black for long and mixed)")
    print(f"{bullet}data: {'; '.join(described)}; balanced quality, blur; fastest of {args.repeat} run(s)")
    if ray_init is not None:
        print(f"{bullet}local Ray start (ray.init, num_cpus=2): {ray_init:.1f} s, not in the wall times")
    print()
    print(table(rows, args.markdown))
    print()
    ok = True
    for r in rows:
        if r["engine"] == "ray" and "ray_overhead_s" in r:
            print(f"{bullet}{r['workload']}: Ray 2x1 against local 2x1: {r['ray_overhead_s']:+.1f} s "
                  f"wall ({r['seconds'] / (r['seconds'] - r['ray_overhead_s']):.2f}x the time)")
    target = next((r for r in rows if r["workload"] == "pictures" and r["config"] == "local 2x1"), None)
    if target is not None and target["speedup_steady"] is not None:
        ok = target["speedup_steady"] >= TARGET_SPEEDUP
        print(f"{bullet}target: local 1 -> 2 workers >= {TARGET_SPEEDUP}x (pictures, steady rate): "
              f"{target['speedup_steady']:.2f}x, {'met' if ok else 'NOT met'}")
    for workload in ("long", "mixed"):
        base_row = next((r for r in rows if r["workload"] == workload and r["config"] == "local 1x1"),
                        None)
        default = next((r for r in rows if r["workload"] == workload
                        and r["config"].startswith("local default")), None)
        if base_row is None or default is None:
            continue
        met = default["speedup_wall"] >= TARGET_SPEEDUP
        ok = ok and met
        print(f"{bullet}target: {workload}, default batch against one worker on one thread >= "
              f"{TARGET_SPEEDUP}x (wall): {default['speedup_wall']:.2f}x, "
              f"{'met' if met else 'NOT met'} (CPU s per item {base_row['cpu_s_per_item']} -> "
              f"{default['cpu_s_per_item']}, others' CPU {base_row['others_cpu']} / "
              f"{default['others_cpu']}, load {base_row['load_1_5']} / {default['load_1_5']}; "
              f"leak rate {base_row['leak_rate']} -> {default['leak_rate']})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"facts": facts, "rows": rows}, indent=1) + "\n")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
