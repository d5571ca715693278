"""Side-by-side benchmark on video: faceveil against deface and a plain PyAV transcode.

Every tool turns the same clip into an H.264 file with the same encoder settings (libx264, one
--crf and --preset for all), keeping the audio, each as its own subprocess (process start-up,
model loading and writing the file included), timed with the wall clock:

- deface: its CLI, `deface -k`, with the encoder settings passed through `--ffmpeg-config`, run
  from its own virtualenv (deface is not a dependency of faceveil; `make bench-deps` builds
  `.venv-deface/` in the repo root; `--deface-venv DIR` or FACEVEIL_DEFACE_VENV=DIR point
  elsewhere). Without it its rows are skipped, with a line saying so;
- plain-transcode: decode every frame with PyAV and encode it again, audio packets copied: no
  detection, no blurring, the most any tool that re-encodes the video can do;
- faceveil, faceveil-every3: `faceveil run` with its defaults, and with `--detect-every 3`.

Clips are built once, untimed, under bench/out/clips/, from the shared data's videos, audio kept
(the source's audio under each shot, re-encoded to AAC):

- 720p (about 20 s) and 1080p (about 10 s): `videos/blurfaces_friends_clip.mp4` (TV excerpt,
  3-4 faces per shot) looped, and scaled to 1920x1080;
- crowd360 (issue 22; 640x360, about 20 s): `videos/hamilton_short_clip.mp4`'s two audience
  shots, frames 20-81 (dark rows behind the pianist) and 211-274 (the front rows), whole
  picture (the audience fills it; the source is 640x360), in turn, looped; faceveil's defaults
  see 17.0 faces per frame on average (10-22; boxes in its faces file, held ones included);
- crowd1080 (issue 22; 1920x1080, about 10 s): the TV clip's two most crowded shots, frames
  29-93 and 119-156, scaled, in turn, looped: 5.0 faces per frame (4-7); the TV clip has no
  bigger crowd.

Afterwards every output is checked: frame count against the input's, and audio packets byte for
byte.

A second section, `people`, times `faceveil run --keep NAME` against the same command without
--keep, on the shared data's clips as they are (hamilton_short_clip.mp4 keeping
lin_manuel_miranda, blurfaces_friends_clip.mp4 keeping ross_geller). Each person is enrolled
once, untimed, into a temporary gallery (`faceveil people add NAME FOLDER --gallery FILE`);
both timed runs write the faces file (`--json`), from which the kept face boxes are counted.

A third section, `stages` (not run by default), splits faceveil's CPU seconds on each clip by
difference between runs that each do a part of the work: `decode` (PyAV decodes every frame),
`plain-transcode` (+ encode), `faceveil-detect` (`faceveil run -o - --json`: decode, schedule,
detect, track, no video written), `faceveil` (the whole run, writing its faces file) and
`faceveil-render` (`faceveil render --faces`: decode, mask and effect, encode, nothing detected).

    .venv/bin/python bench/video.py                        # all tools, 720p and 1080p, and people
    .venv/bin/python bench/video.py --seconds 4 --tools deface,plain-transcode --sections tools
    .venv/bin/python bench/video.py --sections people --repeat 3
    .venv/bin/python bench/video.py --repeat 2 --markdown --json bench/out/video.json --check
    .venv/bin/python bench/video.py --sections tools --clips crowd360,crowd1080 --preset veryfast
    .venv/bin/python bench/video.py --sections stages --clips crowd360,crowd1080 --preset veryfast

Progress goes to stderr; machine facts, the results table and the targets go to stdout.
See bench/README.md for what is measured and how to read the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from faceveil._files import sha256_file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
VIDEOS_JSON = Path("videos") / "videos.json"
SOURCE = Path("videos") / "blurfaces_friends_clip.mp4"
STAGE = Path("videos") / "hamilton_short_clip.mp4"
SOURCES = {"friends": SOURCE, "hamilton": STAGE}  # the label starts the built clip's file name
CLIP_DIR = REPO / "bench" / "out" / "clips"  # git-ignored; clips are built once and reused


@dataclass(frozen=True)
class Clip:
    """A benchmark clip: `shots` of a shared video (frame ranges [start, end), all of it when
    empty) played in turn, looped to `seconds`, scaled to width x height."""

    source: str  # a key of SOURCES
    width: int
    height: int
    seconds: float  # default length
    shots: tuple[tuple[int, int], ...] = ()


CLIPS = {
    "720p": Clip("friends", 1280, 720, 20.0),
    "1080p": Clip("friends", 1920, 1080, 10.0),
    # Issue 22's crowd clips (see the docstring): the stage clip's two audience shots, and the
    # TV clip's two most crowded shots.
    "crowd360": Clip("hamilton", 640, 360, 20.0, ((20, 82), (211, 275))),
    "crowd1080": Clip("friends", 1920, 1080, 10.0, ((29, 94), (119, 157))),
}
CLIP_CRF, CLIP_PRESET = 18, "veryfast"  # how the clips themselves are encoded (untimed)

TOOLS = ("deface", "plain-transcode", "faceveil", "faceveil-every3")
DEFAULT_DEFACE_VENV = REPO / ".venv-deface"  # `make bench-deps`
DEFACE = {"venv": DEFAULT_DEFACE_VENV}  # set from --deface-venv in main


def deface_executable(venv: Path) -> Path:
    return venv / ("Scripts/deface.exe" if os.name == "nt" else "bin/deface")


def deface_facts(venv: Path) -> dict[str, str]:
    """deface's version and its ffmpeg's, asked of deface's own interpreter (best effort)."""
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    code = ("import importlib.metadata as m, imageio_ffmpeg as f; "
            "print(m.version('deface')); print(m.version('imageio-ffmpeg')); print(f.get_ffmpeg_exe())")
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60,
                             check=True).stdout.split("\n")
        return {"deface": out[0], "imageio_ffmpeg": out[1], "deface_ffmpeg": ffmpeg_version(out[2])}
    except (OSError, subprocess.SubprocessError, IndexError):
        return {"deface": "absent", "imageio_ffmpeg": "?", "deface_ffmpeg": "?"}
FACEVEIL_FLAGS = {"faceveil": [], "faceveil-every3": ["--detect-every", "3"]}
REFERENCE = "deface"
LIMIT = "plain-transcode"

# Targets (see README), for the `faceveil` tool (its defaults) on every clip.
TARGET_TOOL = "faceveil"
SPEEDUP_VS_DEFACE = 4.0
SHARE_OF_PLAIN = 0.5

# The people section: `faceveil run --keep NAME` against the same command without --keep, on the
# shared clips as they are, each with a person it shows and their reference photos.
SECTIONS = ("tools", "people", "stages")
DEFAULT_SECTIONS = ("tools", "people")

# The stages section: where faceveil's time goes, by difference between runs that each do a part
# of the work, every one a subprocess on the same clip (CPU seconds of the whole process):
STAGE_RUNS = ("decode", "plain-transcode", "faceveil-detect", "faceveil", "faceveil-render")
IDENTITIES = Path("identities")
PEOPLE_CLIPS = {  # name: (clip in the data folder, person = folder under identities/)
    "hamilton": (Path("videos") / "hamilton_short_clip.mp4", "lin_manuel_miranda"),
    "friends": (SOURCE, "ross_geller"),
}
KEEP_SHARE = 0.80  # target (issue 18): fps with --keep >= 0.80x fps without

# x264 options that depend on the machine or the caller's thread choice, not on --crf/--preset.
THREAD_OPTIONS = ("threads", "lookahead_threads", "sliced_threads")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------- plain transcode


def plain_transcode(src: Path, dst: Path, crf: int, preset: str) -> None:
    """Decode every video frame and encode it again with libx264; copy the audio packets.

    Nothing else happens to the pictures, so this is the upper bound of any tool that decodes and
    re-encodes the whole video. Run by the benchmark as its own process (`--plain-transcode`).
    """
    import av
    from av.video.frame import PictureType

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"  # frame-threaded decoding, as a real tool would use
        ain = inp.streams.audio[0] if inp.streams.audio else None
        vout = out.add_stream("libx264", rate=vin.average_rate,
                              options={"crf": str(crf), "preset": preset})
        # Frame threads, as the ffmpeg command line uses (PyAV's default, slice threads, makes x264
        # cut every picture into slices: other options, other speed, other file).
        vout.thread_type = "FRAME"
        vout.width = vin.codec_context.width
        vout.height = vin.codec_context.height
        vout.pix_fmt = "yuv420p"
        vout.time_base = vin.time_base
        vout.codec_context.time_base = vin.time_base  # frame pts kept exactly as decoded
        aout = out.add_stream_from_template(ain) if ain is not None else None
        for packet in inp.demux(*(s for s in (vin, ain) if s is not None)):
            if packet.stream.type == "audio":
                if packet.dts is None:  # the demuxer's empty flush packet
                    continue
                packet.stream = aout
                out.mux(packet)
                continue
            for frame in packet.decode():
                if frame.format.name != "yuv420p":
                    frame = frame.reformat(format="yuv420p")
                # A decoded frame carries its I/P/B type, which libx264 would obey: let it choose.
                frame.pict_type = PictureType.NONE
                out.mux(vout.encode(frame))
        out.mux(vout.encode(None))


def decode_only(src: Path) -> None:
    """Decode every video frame as `faceveil run`'s reader does (threads AUTO), and nothing else:
    the stages section's `decode` run (`--decode-only`)."""
    import av

    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        for _ in inp.decode(vin):
            pass


# ------------------------------------------------------------------------------------- clips


def clip_path(clip: Clip, source_sha: str, seconds: float) -> Path:
    shots = "".join(f"-f{a}-{b}" for a, b in clip.shots)  # e.g. -f20-82-f211-275
    return CLIP_DIR / f"{clip.source}-{source_sha[:12]}{shots}-{clip.width}x{clip.height}-{seconds:g}s.mp4"


def build_clip(source: Path, dst: Path, width: int, height: int, seconds: float,
               shots: Sequence[tuple[int, int]] = ()) -> None:
    """The source's shots (all of it when none) in turn, looped to `seconds`, scaled to width x
    height, H.264 (crf 18 veryfast).

    Video frames are decoded, scaled if needed, and re-encoded with pts 0, 1, 2, ... at the
    source's frame rate. The audio is decoded once and re-encoded to AAC: under each shot the
    source's audio of the same time span (by time stamps, so a source whose video starts later
    than its audio stays in step), looped with the same period as the video (padded with silence
    where the source's audio is shorter), so the result is an ordinary, gapless AAC track.
    """
    import av
    import numpy as np
    from av.audio.frame import AudioFrame
    from av.video.frame import PictureType

    with av.open(str(source)) as inp:
        vin = inp.streams.video[0]
        rate = Fraction(vin.average_rate)
        times = [f.time or 0.0 for f in inp.decode(vin)]  # every frame's time, in order
        shots = list(shots) or [(0, len(times))]
        bounds = [x for shot in shots for x in shot]
        if bounds != sorted(bounds) or bounds[0] < 0 or bounds[-1] > len(times) or any(
                a >= b for a, b in shots):
            raise ValueError(f"shots {shots}: not ascending, separate ranges of {len(times)} frames")
        wanted = {i for a, b in shots for i in range(a, b)}
        audio = None
        if inp.streams.audio:
            inp.seek(0)
            ain = inp.streams.audio[0]
            sample_rate, layout = ain.rate, ain.layout.name
            decoded = [f for f in inp.decode(ain) if f.pts is None or f.pts >= 0]
            audio_start = decoded[0].time or 0.0
            samples = np.concatenate([f.to_ndarray() for f in decoded], axis=1).astype(np.float32)
            period = round(len(wanted) / rate * sample_rate)  # one video loop, in samples
            unit = np.zeros((samples.shape[0], period), np.float32)
            done = 0  # frames of the loop before this shot
            for a, b in shots:
                at = round(done / rate * sample_rate)
                size = round((done + b - a) / rate * sample_rate) - at
                start = max(0, round((times[a] - audio_start) * sample_rate))
                piece = samples[:, start: start + size]
                unit[:, at: at + piece.shape[1]] = piece
                done += b - a
            total_frames = max(1, round(seconds * rate))
            total_samples = round(total_frames / rate * sample_rate)
            audio = np.tile(unit, (1, -(-total_samples // period)))[:, :total_samples]
    total_frames = max(1, round(seconds * rate))
    tmp = dst.with_name(dst.name + ".part")
    frame_tb = 1 / rate
    with av.open(str(tmp), "w", format="mp4") as out:
        vout = out.add_stream("libx264", rate=rate, options={"crf": str(CLIP_CRF), "preset": CLIP_PRESET})
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.thread_type = "FRAME"
        vout.codec_context.time_base = frame_tb
        aout = None
        if audio is not None:
            aout = out.add_stream("aac", rate=sample_rate, layout=layout)
        audio_done = 0

        def audio_until(end: int) -> None:
            nonlocal audio_done
            while audio_done < end:
                chunk = np.ascontiguousarray(audio[:, audio_done: min(end, audio_done + 1024)])
                frame = AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                frame.sample_rate, frame.pts = sample_rate, audio_done
                frame.time_base = Fraction(1, sample_rate)
                out.mux(aout.encode(frame))
                audio_done += chunk.shape[1]

        index = 0
        while index < total_frames:
            with av.open(str(source)) as inp:
                vin = inp.streams.video[0]
                vin.thread_type = "AUTO"
                for source_index, frame in enumerate(inp.decode(vin)):
                    if index >= total_frames:
                        break
                    if source_index not in wanted:
                        continue
                    if (frame.width, frame.height) != (width, height) or frame.format.name != "yuv420p":
                        frame = frame.reformat(width=width, height=height, format="yuv420p",
                                               interpolation="BICUBIC")
                    frame.pts, frame.time_base, frame.pict_type = index, frame_tb, PictureType.NONE
                    out.mux(vout.encode(frame))
                    index += 1
                    if aout is not None:  # interleave: audio up to the end of this frame
                        end = round(index / rate * sample_rate)
                        audio_until(end - end % 1024 if index < total_frames else audio.shape[1])
        out.mux(vout.encode(None))
        if aout is not None:
            audio_until(audio.shape[1])
            out.mux(aout.encode(None))
    os.replace(tmp, dst)


def prepare_clips(names: Sequence[str], data: Path, seconds: float | None) -> dict[str, Path]:
    shas = {label: check_sha(data, SOURCES[label]) for label in dict.fromkeys(CLIPS[n].source for n in names)}
    CLIP_DIR.mkdir(parents=True, exist_ok=True)
    clips = {}
    for name in names:
        clip = CLIPS[name]
        path = clip_path(clip, shas[clip.source], seconds or clip.seconds)
        if path.is_file():
            log(f"clip {name}: reusing {path.relative_to(REPO)}")
        else:
            log(f"clip {name}: building {path.relative_to(REPO)} (once, untimed) ...")
            started = time.perf_counter()
            build_clip(data / SOURCES[clip.source], path, clip.width, clip.height,
                       seconds or clip.seconds, clip.shots)
            log(f"  built in {time.perf_counter() - started:.1f} s")
        clips[name] = path
    return clips


# ------------------------------------------------------------------------------ verification


@dataclass
class MediaCheck:
    frames: int = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    duration: float = 0.0
    audio: list[bytes] = field(default_factory=list)
    audio_codec: str | None = None
    x264: str | None = None  # the encoder's settings string from the H.264 SEI, when x264 wrote it
    error: str | None = None

    @property
    def x264_options(self) -> dict[str, str]:
        if not self.x264 or "options: " not in self.x264:
            return {}
        opts = self.x264.split("options: ", 1)[1].split()
        return dict(o.split("=", 1) for o in opts if "=" in o)

    @property
    def x264_core(self) -> str:
        if not self.x264:
            return "-"
        return self.x264.split(" - ")[1] if " - " in self.x264 else self.x264[:20]


def inspect_media(path: Path) -> MediaCheck:
    """Decode every video frame (counted), and list the audio packets and the x264 settings."""
    import av

    check = MediaCheck()
    try:
        with av.open(str(path)) as inp:
            vin = inp.streams.video[0]
            vin.thread_type = "AUTO"
            ain = inp.streams.audio[0] if inp.streams.audio else None
            check.width, check.height = vin.codec_context.width, vin.codec_context.height
            check.fps = float(vin.average_rate or 0)
            check.audio_codec = ain.codec_context.name if ain is not None else None
            if inp.duration:
                check.duration = inp.duration / 1e6
            for packet in inp.demux(*(s for s in (vin, ain) if s is not None)):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        check.audio.append(bytes(packet))
                    continue
                if check.x264 is None and packet.dts is not None:
                    data = bytes(packet)
                    start = data.find(b"x264 - core")
                    if start >= 0:
                        end = data.find(b"\x00", start)
                        check.x264 = data[start: end if end >= 0 else None].decode("ascii", "replace")
                check.frames += sum(1 for _ in packet.decode())
    except Exception as exc:  # an unreadable output is a result to report, not a crash
        check.error = f"{type(exc).__name__}: {exc}"
    return check


# ----------------------------------------------------------------------------------- running


@dataclass
class Round:
    seconds: float
    cpu_seconds: float  # user + system time of the tool's process and its children
    others: float | None  # share of the machine's CPU used by other processes meanwhile


@dataclass
class ToolRun:
    clip: str
    tool: str
    output: Path | None  # None: the tool writes no file (stages section: decode, detect)
    rounds: list[Round] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    note: str = ""
    check: MediaCheck | None = None
    faces: dict[str, Any] | None = None  # people section: counts from the run's faces file

    @property
    def best(self) -> Round | None:
        return min(self.rounds, key=lambda r: r.seconds) if self.rounds else None

    @property
    def leanest(self) -> Round | None:
        """The round that took the least CPU (stages section): not always the fastest, as a run
        that has the cores to itself may keep more threads busy."""
        return min(self.rounds, key=lambda r: r.cpu_seconds) if self.rounds else None


# The privacy figure printed beside the speed: the leak rate of `faceveil run` (defaults, solid
# black) on the shared pan clip with exact boxes (bench/live.py's pan scene, same code), against
# the rate before issue 22's video work (2026-12-03, commit 3308e46: 70 of 3,351 face-frames).
PAN_LEAK_BEFORE = 70 / 3351


def live_module() -> Any:
    """bench/live.py, for the pan clip and its leak scoring."""
    images_module()  # puts bench/ on sys.path
    import live

    return live


def pan_leak(data: Path, outdir: Path, timeout: float) -> dict[str, Any]:
    live = live_module()
    try:
        clip, boxes = live.prepare_pan(data)
    except SystemExit as exc:
        return {"error": str(exc)}
    log("pan clip: faceveil run (defaults, solid black), scored by video_leaks.py ...")
    return live.file_leaks(clip, boxes, outdir, data, timeout)


def images_module() -> Any:
    """bench/images.py, for the helpers both benchmarks share (machine facts, CPU meter)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import images

    return images


def _snapshot() -> tuple[float, int | None, float]:
    """Wall clock, busy CPU ticks of the machine, CPU seconds of this process and its children."""
    t = os.times()
    busy = images_module().CpuMeter._busy()
    return time.perf_counter(), busy, t.user + t.system + t.children_user + t.children_system


def executable(name: str) -> str:
    beside = Path(sys.executable).parent / name  # the same virtualenv as this interpreter
    return str(beside) if beside.is_file() else (shutil.which(name) or name)


def deface_config(crf: int, preset: str) -> dict[str, Any]:
    # imageio's ffmpeg writer: quality None adds no rate control flag of its own (its default, 5,
    # would add "-crf 25"); ffmpeg_params go on the ffmpeg command line as they are; macro block 1
    # keeps 1080 rows (its default, 16, would scale the video to 1088 rows).
    return {"codec": "libx264", "quality": None, "macro_block_size": 1,
            "ffmpeg_params": ["-crf", str(crf), "-preset", preset]}


def command(tool: str, src: Path, dst: Path, crf: int, preset: str) -> list[str]:
    if tool == "deface":
        return [str(deface_executable(DEFACE["venv"])), "-k", "--ffmpeg-config",
                json.dumps(deface_config(crf, preset)), "-o", str(dst), str(src)]
    if tool == "plain-transcode":
        return [sys.executable, str(Path(__file__).resolve()), "--plain-transcode", str(src), str(dst),
                "--crf", str(crf), "--preset", preset]
    return [executable("faceveil"), "run", str(src), "-o", str(dst), "--crf", str(crf),
            "--preset", preset, "-q", "--no-progress", *FACEVEIL_FLAGS[tool]]


def tail(text: str, lines: int = 12) -> str:
    text = text.replace("\r", "\n")
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run_once(run: ToolRun, cmd: list[str], timeout: float, frames: int) -> None:
    if run.output is not None:
        with contextlib.suppress(FileNotFoundError):
            run.output.unlink()  # never verify a stale file from an earlier round
    t0, busy0, cpu0 = _snapshot()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        run.errors.append(f"timed out after {timeout:.0f} s\n"
                          + tail(exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes)
                                 else exc.stderr or ""))
        log(f"  {run.tool}: TIMED OUT after {timeout:.0f} s")
        return
    except OSError as exc:
        run.errors.append(f"could not start {cmd[0]}: {exc}")
        log(f"  {run.tool}: FAILED to start: {exc}")
        return
    t1, busy1, cpu1 = _snapshot()
    seconds, cpu = t1 - t0, cpu1 - cpu0
    if proc.returncode != 0 or (run.output is not None and not run.output.is_file()):
        why = f"exit status {proc.returncode}" if proc.returncode else "no output file written"
        run.errors.append(f"{why}\n{tail(proc.stderr or proc.stdout)}")
        log(f"  {run.tool}: FAILED ({why}) after {seconds:.1f} s:\n"
            + "\n".join("    " + line for line in tail(proc.stderr or proc.stdout, 6).splitlines()))
        return
    others = None
    if busy0 is not None and busy1 is not None and seconds > 0:
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        others = max(0.0, (busy1 - busy0) / ticks - cpu) / (seconds * (os.cpu_count() or 1))
    run.rounds.append(Round(seconds, cpu, others))
    if run.tool == "deface":
        run.note = next((ln.strip() for ln in proc.stdout.splitlines() if "Running on" in ln), run.note)
    log(f"  {run.tool}: {seconds:.2f} s, {frames / seconds:.2f} fps, {cpu:.1f} CPU s"
        + (f", other processes used {others:.0%} of the CPU" if others is not None else ""))


def time_tools(clips: dict[str, Path], infos: dict[str, MediaCheck], tools: list[str], outdir: Path,
               args: argparse.Namespace) -> list[ToolRun]:
    runs: list[ToolRun] = []
    for clip, src in clips.items():
        clip_runs = [ToolRun(clip, tool, outdir / f"{clip}-{tool}.mp4") for tool in tools]
        runs += clip_runs
        frames = infos[clip].frames
        for round_no in range(args.repeat):
            shift = round_no % len(clip_runs)  # rotate the order each round: no tool always goes first
            for run in clip_runs[shift:] + clip_runs[:shift]:
                log(f"[{clip}, round {round_no + 1}/{args.repeat}] {run.tool}: {frames} frames")
                run_once(run, command(run.tool, src, run.output, args.crf, args.preset),
                         args.timeout, frames)
    return runs


# ----------------------------------------------------------------------------------- results


def timing(r: ToolRun, frames: int) -> dict[str, Any]:
    """What every results row says about a tool's timed runs."""
    best = r.best
    return {
        "ok": best is not None,
        "seconds": best.seconds if best else None,
        "seconds_all": [x.seconds for x in r.rounds],
        "fps": frames / best.seconds if best else None,
        "cpu_seconds": best.cpu_seconds if best else None,
        "cpu_used_by_others": best.others if best else None,
        "errors": r.errors,
    }


def build_results(runs: list[ToolRun], infos: dict[str, MediaCheck]) -> list[dict]:
    rows = []
    by_key = {(r.clip, r.tool): r for r in runs}
    for r in runs:
        info, best, check = infos[r.clip], r.best, r.check
        fps = info.frames / best.seconds if best else None

        def ratio(other: str, fps: float | None = fps, clip: str = r.clip) -> float | None:
            ref = by_key.get((clip, other))
            if fps is None or ref is None or ref.best is None:
                return None
            return fps / (infos[clip].frames / ref.best.seconds)

        plain = by_key.get((r.clip, LIMIT))
        plain_opts = plain.check.x264_options if plain and plain.check else {}
        opts = check.x264_options if check else {}
        differ = sorted(k for k in set(opts) | set(plain_opts)
                        if k not in THREAD_OPTIONS and opts.get(k) != plain_opts.get(k))
        rows.append({
            "clip": r.clip,
            "tool": r.tool,
            **timing(r, info.frames),
            "frames_in": info.frames,
            "vs_deface": ratio(REFERENCE),
            "vs_plain": ratio(LIMIT),
            "note": r.note,
            "output": None if check is None else {
                "error": check.error,
                "frames": check.frames,
                "frames_equal": check.error is None and check.frames == info.frames,
                "size": [check.width, check.height],
                "size_equal": (check.width, check.height) == (info.width, info.height),
                "fps": check.fps,
                "duration": check.duration,
                "audio_packets": len(check.audio),
                "audio_identical": check.error is None and check.audio == info.audio,
                "x264": check.x264,
                "x264_crf": opts.get("crf"),
                "x264_differs_from_plain": differ if opts and plain_opts else None,
            },
        })
    return rows


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def table(rows: list[dict], markdown: bool) -> str:
    header = ["clip", "tool", "frames", "seconds", "fps", "vs deface", "vs plain", "CPU s",
              "frames out", "audio identical", "x264 crf", "others' CPU"]
    body = []
    for row in rows:
        out = row["output"] or {}
        if not row["ok"]:
            body.append([row["clip"], row["tool"], str(row["frames_in"]), "FAILED"] + ["-"] * 8)
            continue
        frames_out = "-" if not out else (f"{out['frames']}" + ("" if out["frames_equal"] else " (!)"))
        others = row["cpu_used_by_others"]
        body.append([row["clip"], row["tool"], str(row["frames_in"]), f"{row['seconds']:.1f}",
                     f"{row['fps']:.2f}",
                     "-" if row["vs_deface"] is None else f"{row['vs_deface']:.2f}x",
                     "-" if row["vs_plain"] is None else f"{row['vs_plain']:.2f}x",
                     f"{row['cpu_seconds']:.1f}", frames_out,
                     _yes(out.get("audio_identical") if out else None),
                     (out.get("x264_crf") or "-") if out else "-",
                     "-" if others is None else f"{others:.0%}"])
    return images_module().render_table(header, body, markdown, text_columns=2)


def check_targets(rows: list[dict], clips: Sequence[str]) -> list[dict]:
    by_key = {(row["clip"], row["tool"]): row for row in rows}
    out: list[dict] = []

    def target(name: str, ok: bool | None, detail: str) -> None:
        out.append({"target": name, "status": "SKIP" if ok is None else ("PASS" if ok else "FAIL"),
                    "detail": detail})

    for clip in clips:
        mine = by_key.get((clip, TARGET_TOOL))
        for other, factor, label in ((REFERENCE, SPEEDUP_VS_DEFACE, "deface's"),
                                     (LIMIT, SHARE_OF_PLAIN, "plain transcode's")):
            name = f"{TARGET_TOOL} fps >= {factor:g}x {label} on {clip}"
            ref = by_key.get((clip, other))
            if mine is None or ref is None:
                target(name, None, f"needs {TARGET_TOOL} and {other} in --tools")
            elif not mine["ok"]:
                target(name, False, f"{TARGET_TOOL} failed")
            elif not ref["ok"]:
                target(name, None, f"{other} failed: nothing to compare with")
            else:
                ratio = mine["fps"] / ref["fps"]
                target(name, ratio >= factor,
                       f"{mine['fps']:.2f} vs {ref['fps']:.2f} fps = {ratio:.2f}x")
        name = f"{TARGET_TOOL} output on {clip}: every input frame, same size, byte-identical audio"
        if mine is None:
            target(name, None, f"needs {TARGET_TOOL} in --tools")
        elif not mine["ok"] or not mine["output"]:
            target(name, False, f"{TARGET_TOOL} failed")
        else:
            o = mine["output"]
            target(name, o["frames_equal"] and o["size_equal"] and o["audio_identical"],
                   f"{o['frames']}/{mine['frames_in']} frames, {o['size'][0]}x{o['size'][1]}, "
                   f"audio {'identical' if o['audio_identical'] else 'DIFFERENT'}"
                   + (f", {o['error']}" if o["error"] else ""))
    return out


# ------------------------------------------------------------------------------------ people


def people_command(src: Path, dst: Path, gallery: Path, person: str | None, crf: int,
                   preset: str) -> list[str]:
    """`faceveil run` as the tools section runs it, plus the gallery and the faces file (--json);
    with `person`, `--keep person`. Both sides write the faces file, so they compare like with like
    and the kept faces are counted from the very runs that were timed."""
    return (command("faceveil", src, dst, crf, preset)
            + ["--json", "--gallery", str(gallery)] + (["--keep", person] if person else []))


def enrol_people(persons: Sequence[str], data: Path, gallery: Path, timeout: float) -> dict[str, dict]:
    """`faceveil people add NAME FOLDER --gallery FILE` for each person, once, untimed: the timed
    runs then measure anonymizing with a ready gallery, not enrolment."""
    done: dict[str, dict] = {}
    for person in dict.fromkeys(persons):
        cmd = [executable("faceveil"), "people", "add", person, str(data / IDENTITIES / person),
               "--gallery", str(gallery)]
        log(f"enrolling {person} into {gallery} (once, untimed) ...")
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                  timeout=timeout, stdin=subprocess.DEVNULL)
            ok, message = proc.returncode == 0, tail(proc.stderr or proc.stdout, 6)
        except (OSError, subprocess.SubprocessError) as exc:
            ok, message = False, f"{type(exc).__name__}: {exc}"
        done[person] = {"ok": ok, "seconds": time.perf_counter() - started, "message": message,
                        "command": cmd}
        log(f"  {message.splitlines()[-1] if message else '?'}")
    return done


def count_faces(path: Path) -> dict[str, Any]:
    """Face boxes in a faces file (`--json`): all, kept ("hidden": false), and the frames with any."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        frames = [[bool(face["hidden"]) for face in frame["faces"]] for frame in doc["frames"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"error": f"{path.name}: {type(exc).__name__}: {exc}"}
    return {"error": None, "frames": len(frames), "boxes": sum(map(len, frames)),
            "kept": sum(not h for hidden in frames for h in hidden),
            "hidden": sum(h for hidden in frames for h in hidden),
            "frames_with_kept": sum(not all(hidden) for hidden in frames)}


def time_people(clips: dict[str, Path], persons: dict[str, str], infos: dict[str, MediaCheck],
                gallery: Path, outdir: Path, args: argparse.Namespace) -> list[tuple[ToolRun, ToolRun]]:
    """Per clip, `faceveil run` without and with --keep, alternating, the order rotated each round."""
    pairs = []
    for clip, src in clips.items():
        person = persons[clip]
        pair = (ToolRun(clip, "faceveil", outdir / f"people-{clip}.mp4"),
                ToolRun(clip, f"faceveil --keep {person}", outdir / f"people-{clip}-keep.mp4"))
        pairs.append(pair)
        frames = infos[clip].frames
        for round_no in range(args.repeat):
            shift = round_no % 2
            for run in pair[shift:] + pair[:shift]:
                with contextlib.suppress(FileNotFoundError):
                    people_sidecar(run).unlink()  # never count a stale faces file
                log(f"[people {clip}, round {round_no + 1}/{args.repeat}] {run.tool}: {frames} frames")
                cmd = people_command(src, run.output, gallery, person if run is pair[1] else None,
                                     args.crf, args.preset)
                run_once(run, cmd, args.timeout, frames)
    return pairs


def people_sidecar(run: ToolRun) -> Path:
    # faceveil.sidecar.sidecar_path's rule (OUT.mp4 -> OUT.faces.json), without importing faceveil
    return run.output.with_name(run.output.stem + ".faces.json")


def build_people_results(pairs: list[tuple[ToolRun, ToolRun]], persons: dict[str, str],
                         infos: dict[str, MediaCheck]) -> list[dict]:
    rows = []
    for without, keep in pairs:
        info = infos[without.clip]

        def side(r: ToolRun, info: MediaCheck = info) -> dict[str, Any]:
            check = r.check
            return {
                **timing(r, info.frames),
                "faces": r.faces,
                "output": None if check is None else {
                    "error": check.error,
                    "frames": check.frames,
                    "complete": check.error is None and check.frames == info.frames
                    and (check.width, check.height) == (info.width, info.height),
                    "size": [check.width, check.height],
                    "audio_identical": check.error is None and check.audio == info.audio,
                },
            }

        a, b = side(without), side(keep)
        rows.append({"clip": without.clip, "person": persons[without.clip], "frames_in": info.frames,
                     "without": a, "keep": b,
                     "ratio": b["fps"] / a["fps"] if a["ok"] and b["ok"] else None})
    return rows


def people_table(rows: list[dict], markdown: bool) -> str:
    header = ["clip", "--keep", "frames", "s without", "s with --keep", "fps without",
              "fps with --keep", "ratio", "CPU s without / with", "kept boxes",
              "frames with a kept face", "hidden boxes without / with", "outputs complete",
              "others' CPU without / with"]
    body = []
    for row in rows:
        a, b = row["without"], row["keep"]
        fa, fb = a["faces"] or {}, b["faces"] or {}

        def num(side: dict, key: str, fmt: str) -> str:
            return "FAILED" if not side["ok"] else format(side[key], fmt)

        def count(faces: dict, key: str) -> str:
            return "-" if not faces or faces.get("error") else str(faces[key])

        outs = [s["output"] for s in (a, b)]
        complete = "-" if None in outs else _yes(all(o["complete"] for o in outs))
        cpu = " / ".join("-" if s["cpu_seconds"] is None else f"{s['cpu_seconds']:.1f}" for s in (a, b))
        others = " / ".join("-" if s["cpu_used_by_others"] is None else f"{s['cpu_used_by_others']:.0%}"
                            for s in (a, b))
        body.append([row["clip"], row["person"], str(row["frames_in"]),
                     num(a, "seconds", ".1f"), num(b, "seconds", ".1f"),
                     num(a, "fps", ".2f"), num(b, "fps", ".2f"),
                     "-" if row["ratio"] is None else f"{row['ratio']:.2f}x", cpu,
                     count(fb, "kept"), count(fb, "frames_with_kept"),
                     f"{count(fa, 'hidden')} / {count(fb, 'hidden')}", complete, others])
    return images_module().render_table(header, body, markdown, text_columns=2)


def check_people_targets(rows: list[dict], enrolled: dict[str, dict]) -> list[dict]:
    out: list[dict] = []

    def target(name: str, ok: bool | None, detail: str) -> None:
        out.append({"target": name, "status": "SKIP" if ok is None else ("PASS" if ok else "FAIL"),
                    "detail": detail})

    for row in rows:
        clip, person, a, b = row["clip"], row["person"], row["without"], row["keep"]
        name = f"faceveil --keep {person} fps >= {KEEP_SHARE:.2f}x without --keep on {clip}"
        if not enrolled.get(person, {}).get("ok"):
            target(name, False, f"enrolling {person} failed")
        elif not b["ok"]:
            target(name, False, "the --keep run failed")
        elif not a["ok"]:
            target(name, None, "the run without --keep failed: nothing to compare with")
        else:
            target(name, row["ratio"] >= KEEP_SHARE,
                   f"{b['fps']:.2f} vs {a['fps']:.2f} fps = {row['ratio']:.2f}x")
        # A --keep that keeps nobody could be fast for the wrong reason: the ratio counts only when
        # the feature did its work (and without --keep, every face stays hidden).
        name = (f"faceveil --keep {person} on {clip}: some face boxes left visible, "
                "none without --keep")
        fa, fb = a["faces"] or {}, b["faces"] or {}
        if not (a["ok"] and b["ok"]):
            target(name, False if not b["ok"] else None, "a run failed")
        elif not fa or not fb or fa.get("error") or fb.get("error"):
            target(name, False, f"no usable faces file: {fa.get('error') or fb.get('error') or 'missing'}")
        else:
            target(name, fb["kept"] > 0 and fa["kept"] == 0,
                   f"with --keep {fb['kept']} of {fb['boxes']} boxes kept, in {fb['frames_with_kept']} "
                   f"of {fb['frames']} frames; without: {fa['kept']} of {fa['boxes']} kept")
    return out


def failure_notes(who: str, runs: dict) -> list[str]:
    """Notes for runs that failed: all of them (with the last error) or some (the first error)."""
    if not runs["ok"]:
        last = runs["errors"][-1] if runs["errors"] else "?"
        return [f"{who} FAILED every run; last error:\n" + "\n".join("    " + ln for ln in last.splitlines())]
    if runs["errors"]:
        return [f"{who}: {len(runs['errors'])} of {len(runs['errors']) + len(runs['seconds_all'])} "
                f"runs failed; first error: {runs['errors'][0].splitlines()[0]}"]
    return []


def print_people_notes(rows: list[dict], enrolled: dict[str, dict]) -> None:
    notes = []
    for person, e in enrolled.items():
        if not e["ok"]:
            notes.append(f"enrolling {person} FAILED:\n" + "\n".join("    " + ln for ln in
                                                                   e["message"].splitlines()))
    for row in rows:
        for key, label in (("without", "without --keep"), ("keep", f"--keep {row['person']}")):
            s, who = row[key], f"faceveil {label} on {row['clip']}"
            notes += failure_notes(who, s)
            if not s["ok"]:
                continue
            o = s["output"]
            if o and not o["complete"]:
                notes.append(f"{who}: output has {o['frames']} frames of {o['size'][0]}x{o['size'][1]} "
                             f"(input {row['frames_in']})" + (f", {o['error']}" if o["error"] else ""))
            if o and not o["audio_identical"]:
                notes.append(f"{who}: audio packets differ from the input's")
            if s["faces"] and s["faces"].get("error"):
                notes.append(f"{who}: faces file unusable: {s['faces']['error']}")
    if notes:
        print()
        print("\n".join(notes))


# ----------------------------------------------------------------------------- machine facts


def ffmpeg_version(exe: str) -> str:
    try:
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return first.splitlines()[0] if first else "?"


def video_facts() -> dict[str, Any]:
    images = images_module()
    _version = images._version
    facts = images.machine_facts()
    for key in ("pillow", "opencv", "imageio"):
        facts.pop(key, None)
    facts["av"] = _version("av")
    try:
        import av

        facts["pyav_libavcodec"] = ".".join(map(str, av.library_versions["libavcodec"]))
    except Exception:  # facts are best effort
        facts["pyav_libavcodec"] = "?"
    facts.update(deface_facts(DEFACE["venv"]))
    return facts


# ------------------------------------------------------------------------------------ stages


def stage_command(stage: str, src: Path, out: Path, crf: int, preset: str) -> tuple[list[str], Path | None]:
    """The command of one stages-section run and the file it writes (None: none)."""
    if stage == "decode":
        return [sys.executable, str(Path(__file__).resolve()), "--decode-only", str(src)], None
    if stage == "plain-transcode":
        dst = out / "plain.mp4"
        return command(stage, src, dst, crf, preset), dst
    if stage == "faceveil-detect":  # frames decoded, scanned, tracked; faces to stdout, no video
        return [executable("faceveil"), "run", str(src), "-o", "-", "--json", "-q", "--no-progress"], None
    if stage == "faceveil":  # the whole run, writing the faces file that faceveil-render reads
        dst = out / "faceveil.mp4"
        return [*command("faceveil", src, dst, crf, preset), "--json"], dst
    dst = out / "render.mp4"  # faceveil-render: the faces file hidden again, nothing detected
    return [executable("faceveil"), "render", str(src), "--faces", str(out / "faceveil.faces.json"),
            "-o", str(dst), "--crf", str(crf), "--preset", preset, "-q", "--no-progress"], dst


def time_stages(clips: dict[str, Path], infos: dict[str, MediaCheck], outdir: Path,
                args: argparse.Namespace) -> list[ToolRun]:
    runs: list[ToolRun] = []
    for clip, src in clips.items():
        folder = outdir / f"stages-{clip}"
        folder.mkdir(exist_ok=True)
        for round_no in range(args.repeat):
            for stage in STAGE_RUNS:  # in this order: faceveil-render needs faceveil's faces file
                cmd, dst = stage_command(stage, src, folder, args.crf, args.preset)
                run = next((r for r in runs if (r.clip, r.tool) == (clip, stage)), None)
                if run is None:
                    run = ToolRun(clip, stage, dst)
                    runs.append(run)
                log(f"[stages {clip}, round {round_no + 1}/{args.repeat}] {stage}: "
                    f"{infos[clip].frames} frames")
                run_once(run, cmd, args.timeout, infos[clip].frames)
    return runs


def stage_split(runs: list[ToolRun], infos: dict[str, MediaCheck]) -> list[dict]:
    """Per clip, faceveil's CPU seconds split by difference (each run's leanest round):
    decode; encode = plain - decode; detect + track (with the frames' downscaling, the scene-cut
    thumbnails, the model's loading) = detect-only - decode; mask + effect = render - plain."""
    cpu = {(r.clip, r.tool): r.leanest.cpu_seconds for r in runs if r.leanest is not None}
    rows = []
    for clip, info in infos.items():
        got = {stage: cpu.get((clip, stage)) for stage in STAGE_RUNS}
        if None in got.values():
            rows.append({"clip": clip, "ok": False, "cpu": got})
            continue
        parts = {"decode": got["decode"],
                 "detect + track": got["faceveil-detect"] - got["decode"],
                 "mask + effect": got["faceveil-render"] - got["plain-transcode"],
                 "encode": got["plain-transcode"] - got["decode"]}
        others = max((r.leanest.others or 0.0) for r in runs if r.clip == clip and r.leanest is not None)
        rows.append({"clip": clip, "ok": True, "frames": info.frames, "cpu": got, "parts": parts,
                     "faceveil": got["faceveil"], "rest": got["faceveil"] - sum(parts.values()),
                     "others_max": others})
    return rows


def stages_table(rows: list[dict], markdown: bool) -> str:
    names = ("decode", "detect + track", "mask + effect", "encode")
    header = ["clip", *(f"{n} CPU s (ms/frame, share)" for n in names), "faceveil CPU s",
              "not in the parts", "others' CPU (max)"]
    body = []
    for row in rows:
        if not row["ok"]:
            failed = ", ".join(k for k, v in row["cpu"].items() if v is None)
            body.append([row["clip"], f"FAILED: {failed}"] + ["-"] * (len(header) - 2))
            continue
        total = row["faceveil"]
        body.append([row["clip"], *(f"{row['parts'][n]:.1f} ({row['parts'][n] / row['frames'] * 1e3:.1f}, "
                                    f"{row['parts'][n] / total:.0%})" for n in names),
                     f"{total:.1f}", f"{row['rest']:+.1f}", f"{row['others_max']:.0%}"])
    return images_module().render_table(header, body, markdown, text_columns=1)


# -------------------------------------------------------------------------------------- main


def find_data(arg: str | None, clips: Sequence[str] = (), people_clips: Sequence[str] = ()) -> Path:
    needs = [SOURCES[CLIPS[clip].source] for clip in clips]
    for clip in people_clips:
        needs += [PEOPLE_CLIPS[clip][0], IDENTITIES / "identities.json"]
    needs = [*dict.fromkeys(needs), VIDEOS_JSON]
    data = images_module().find_data(arg, "video data", needs)
    for clip in people_clips:  # a folder, which find_data (files only) cannot check
        folder = data / IDENTITIES / PEOPLE_CLIPS[clip][1]
        if not folder.is_dir():
            sys.exit(f"error: the reference photos {folder} are missing (people section, clip {clip})")
    return data


def check_sha(data: Path, video: Path) -> str:
    """The file's sha256; warns when it differs from the one videos.json lists."""
    actual = sha256_file(data / video)
    listed = next((v.get("sha256") for v in json.loads((data / VIDEOS_JSON).read_text())["videos"]
                   if v["file"] == video.as_posix()), None)
    if listed and listed != actual:
        log(f"warning: {data / video} does not match the sha256 in {VIDEOS_JSON}; using it anyway")
    return actual


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default=",".join(DEFAULT_SECTIONS),
                   help="comma-separated, from: tools (faceveil against deface and a plain transcode), "
                        "people (faceveil run with and without --keep), stages (where faceveil's CPU "
                        f"goes) (default: {','.join(DEFAULT_SECTIONS)})")
    p.add_argument("--people-clips", default=",".join(PEOPLE_CLIPS),
                   help="people section, comma-separated, from: "
                        + ", ".join(f"{k} (keeps {v[1]})" for k, v in PEOPLE_CLIPS.items())
                        + " (default: all)")
    p.add_argument("--tools", default=",".join(TOOLS),
                   help=f"comma-separated, from: {', '.join(TOOLS)} (default: all)")
    p.add_argument("--clips", default=",".join(CLIPS),
                   help=f"comma-separated, from: {', '.join(CLIPS)} (default: all)")
    p.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="length of every clip (default: "
                        + ", ".join(f"{k} {c.seconds:g} s" for k, c in CLIPS.items()) + ")")
    p.add_argument("--crf", type=int, default=20, help="libx264 CRF for every tool (default 20)")
    p.add_argument("--preset", default="medium", help="libx264 preset for every tool (default medium)")
    p.add_argument("--repeat", type=int, default=1, metavar="K",
                   help="run each tool K times per clip (order rotated each round), keep the best")
    p.add_argument("--deface-venv", default=None, metavar="DIR",
                   help="deface's own virtualenv (default: $FACEVEIL_DEFACE_VENV, else "
                        f"{DEFAULT_DEFACE_VENV}, which `make bench-deps` builds)")
    p.add_argument("--timeout", type=float, default=1800, metavar="S",
                   help="give up on one run after S seconds (default 1800)")
    p.add_argument("--data", default=None,
                   help=f"shared data folder (default: $FACEVEIL_DATA, else {DEFAULT_DATA})")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="make the run's output folder inside DIR (e.g. bench/out) instead of the "
                        "system temp folder")
    p.add_argument("--keep", action="store_true", help="keep the output videos (path is printed)")
    p.add_argument("--json", default=None, metavar="PATH", help="write all figures as JSON")
    p.add_argument("--markdown", action="store_true", help="print the results table as Markdown")
    p.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    p.add_argument("--plain-transcode", nargs=2, metavar=("SRC", "DST"), default=None,
                   help=argparse.SUPPRESS)  # the plain-transcode tool: the benchmark runs itself
    p.add_argument("--decode-only", default=None, metavar="SRC", help=argparse.SUPPRESS)  # stages
    args = p.parse_args(argv)
    if args.plain_transcode or args.decode_only:
        return args
    for key, known in (("sections", SECTIONS), ("tools", TOOLS), ("clips", tuple(CLIPS)),
                       ("people_clips", tuple(PEOPLE_CLIPS))):
        chosen = [t.strip() for t in getattr(args, key).split(",") if t.strip()]
        unknown = [t for t in chosen if t not in known]
        if unknown or not chosen:
            p.error(f"unknown --{key.replace('_', '-')} {', '.join(unknown) or '(none given)'}; "
                    f"choose from {', '.join(known)}")
        setattr(args, key, [t for t in known if t in chosen])  # fixed order, deface first
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.seconds is not None and args.seconds <= 0:
        p.error("--seconds must be positive")
    if not 0 <= args.crf <= 51:
        p.error("--crf must be 0..51")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plain_transcode:
        plain_transcode(Path(args.plain_transcode[0]), Path(args.plain_transcode[1]), args.crf, args.preset)
        return 0
    if args.decode_only:
        decode_only(Path(args.decode_only))
        return 0

    DEFACE["venv"] = Path(args.deface_venv or os.environ.get("FACEVEIL_DEFACE_VENV")
                          or DEFAULT_DEFACE_VENV)
    skipped = ""
    if "deface" in args.tools and not deface_executable(DEFACE["venv"]).is_file():
        skipped = (f"deface: SKIPPED, no {deface_executable(DEFACE['venv'])} (`make bench-deps` "
                   "builds it; --deface-venv DIR or FACEVEIL_DEFACE_VENV=DIR point elsewhere); "
                   "its rows and the targets against it are left out")
        log(skipped)
        args.tools = [t for t in args.tools if t != "deface"]
    tools_on, people_on = "tools" in args.sections and bool(args.tools), "people" in args.sections
    stages_on = "stages" in args.sections
    data = find_data(args.data, args.clips if tools_on or stages_on else (),
                     args.people_clips if people_on else ())
    facts = video_facts()
    clips = prepare_clips(args.clips, data, args.seconds) if tools_on or stages_on else {}
    people_clips: dict[str, Path] = {}
    if people_on:  # the shared clips as they are, read where they are
        for name in args.people_clips:
            check_sha(data, PEOPLE_CLIPS[name][0])
            people_clips[name] = data / PEOPLE_CLIPS[name][0]
    persons = {name: PEOPLE_CLIPS[name][1] for name in people_clips}
    log("reading the clips (frame counts, audio packets) ...")
    infos = {name: inspect_media(path) for name, path in clips.items()}
    people_infos = {name: inspect_media(path) for name, path in people_clips.items()}
    for name, info in infos.items():
        if info.error or not info.frames:
            sys.exit(f"error: clip {clips[name]} is unreadable ({info.error}); delete it to rebuild it")
    for name, info in people_infos.items():
        if info.error or not info.frames:
            sys.exit(f"error: clip {people_clips[name]} is unreadable ({info.error})")

    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="faceveil-bench-video-", dir=args.out))
    gallery = base / "people.sqlite3"
    rows: list[dict] = []
    targets: list[dict] = []
    people_rows: list[dict] = []
    people_targets: list[dict] = []
    stage_rows: list[dict] = []
    enrolled: dict[str, dict] = {}
    try:
        runs: list[ToolRun] = []
        if tools_on:
            log(f"timing {len(args.tools)} tools on {len(clips)} clip(s), {args.repeat} round(s), "
                f"libx264 crf {args.crf} preset {args.preset}, outputs in {base}")
            runs = time_tools(clips, infos, args.tools, base, args)
        pairs: list[tuple[ToolRun, ToolRun]] = []
        if people_on:
            enrolled = enrol_people(list(persons.values()), data, gallery, args.timeout)
            log(f"timing faceveil with and without --keep on {len(people_clips)} clip(s), "
                f"{args.repeat} round(s), outputs in {base}")
            pairs = time_people(people_clips, persons, people_infos, gallery, base, args)
        stage_runs: list[ToolRun] = []
        if stages_on:
            log(f"timing faceveil's stages on {len(clips)} clip(s), {args.repeat} round(s), "
                f"outputs in {base}")
            stage_runs = time_stages(clips, infos, base, args)
        leak: dict[str, Any] = {}
        if stages_on or (tools_on and any(t.startswith("faceveil") for t in args.tools)):
            leak = pan_leak(data, base, args.timeout)
        with contextlib.suppress(OSError):
            facts["loadavg_after_timing"] = [round(v, 2) for v in os.getloadavg()]
        log("checking outputs ...")
        for r in runs + [r for pair in pairs for r in pair]:
            if r.best is not None:
                r.check = inspect_media(r.output)
        for pair in pairs:
            for r in pair:
                if r.best is not None:
                    r.faces = count_faces(people_sidecar(r))
        if tools_on:
            rows = build_results(runs, infos)
            targets = check_targets(rows, args.clips)
        if people_on:
            people_rows = build_people_results(pairs, persons, people_infos)
            people_targets = check_people_targets(people_rows, enrolled)
        if stages_on:
            stage_rows = stage_split(stage_runs, infos)

        bullet = "- " if args.markdown else ""
        software = (f"Python {facts['python']}, PyAV {facts['av']} (libavcodec {facts['pyav_libavcodec']}), "
                    f"onnxruntime {facts['onnxruntime']}, deface {facts['deface']} (imageio-ffmpeg "
                    f"{facts['imageio_ffmpeg']}: {facts['deface_ffmpeg']}), faceveil {facts['faceveil']}, "
                    f"numpy {facts['numpy']}")
        images_module().print_facts(facts, bullet, software)
        if skipped:
            print(f"{bullet}{skipped}")
        print(f"{bullet}best of {args.repeat} run(s); fps = input frames / wall time of the whole process")

        def shown(cmd: list[str]) -> str:
            return shlex.join(cmd).replace(str(Path(sys.executable).parent) + os.sep, "")

        if tools_on:
            print()
            for name, info in infos.items():
                print(f"{bullet}clip {name}: {clips[name].name}, {info.width}x{info.height}, {info.frames} "
                      f"frames at {info.fps:.3f} fps ({info.duration:.1f} s), {len(info.audio)} "
                      f"{info.audio_codec or 'no'} audio packets")
            print(f"{bullet}encoder for every tool: libx264 crf {args.crf} preset {args.preset}, yuv420p; "
                  f"deface --ffmpeg-config '{json.dumps(deface_config(args.crf, args.preset))}'")
            for tool in args.tools:
                cmd = command(tool, Path("SRC"), Path("DST"), args.crf, args.preset)
                print(f"{bullet}{tool}: `{shown(cmd)}`")
            print()
            print(table(rows, args.markdown))
            print()
            if leak:
                targets.append(leak_target(leak, bullet))
            for t in targets:
                print(f"{t['status']}: {t['target']} -- {t['detail']}")
            print_notes(rows)
        if people_on:
            print()
            for name, info in people_infos.items():
                print(f"{bullet}people clip {name}: {people_clips[name].name} as it is, keeping "
                      f"{persons[name]}, {info.width}x{info.height}, {info.frames} frames at "
                      f"{info.fps:.3f} fps ({info.duration:.1f} s)")
            for person, e in enrolled.items():
                last = e["message"].splitlines()[-1] if e["message"] else "?"
                print(f"{bullet}enrolled {person} once, untimed ({e['seconds']:.1f} s): "
                      f"{'ok' if e['ok'] else 'FAILED'}: {last.replace(str(base) + os.sep, '')}")
            cmd = people_command(Path("SRC"), Path("DST"), Path("GALLERY"), None, args.crf, args.preset)
            print(f"{bullet}people: `{shown(cmd)}`"
                  " against the same with `--keep NAME`, alternating, the order rotated each round; "
                  "kept / hidden boxes counted from the faces file (--json) of the last round")
            print()
            print(people_table(people_rows, args.markdown))
            print()
            for t in people_targets:
                print(f"{t['status']}: {t['target']} -- {t['detail']}")
            print_people_notes(people_rows, enrolled)
        if stages_on:
            print()
            print(f"{bullet}stages: each run a subprocess on the same clip, libx264 crf {args.crf} preset "
                  f"{args.preset}; CPU s of the whole process, split by difference (each run's round with "
                  "the least CPU):")
            for stage in STAGE_RUNS:
                cmd = stage_command(stage, Path("SRC"), Path("OUT"), args.crf, args.preset)[0]
                print(f"{bullet}{stage}: `{shown(cmd)}`")
            print()
            print(images_module().render_table(
                ["clip", "run", "seconds", "CPU s", "others' CPU"],
                [[r.clip, r.tool, *((f"{x.seconds:.1f}", f"{x.cpu_seconds:.1f}",
                                     "-" if x.others is None else f"{x.others:.0%}")
                                    if (x := r.leanest) else ("FAILED", "-", "-"))] for r in stage_runs],
                args.markdown, text_columns=2))
            print()
            print(stages_table(stage_rows, args.markdown))
            if leak and not tools_on:
                print()
                targets.append(leak_target(leak, bullet))
                print(f"{targets[-1]['status']}: {targets[-1]['target']} -- {targets[-1]['detail']}")
            for r in stage_runs:
                for note in failure_notes(f"{r.tool} on {r.clip}", timing(r, infos[r.clip].frames)):
                    print(note)

        if args.json:
            doc = {"machine": facts, "args": vars(args), "deface_ffmpeg_config":
                   deface_config(args.crf, args.preset),
                   "clips": {name: {"path": str(clips[name]), "frames": info.frames,
                                    "size": [info.width, info.height], "fps": info.fps,
                                    "duration": info.duration, "audio_packets": len(info.audio),
                                    "audio_codec": info.audio_codec}
                             for name, info in infos.items()},
                   "results": rows, "pan_leak": leak,
                   "people": {"clips": {name: {"path": str(people_clips[name]), "person": persons[name],
                                               "frames": info.frames, "size": [info.width, info.height],
                                               "fps": info.fps, "duration": info.duration}
                                        for name, info in people_infos.items()},
                              "enrolment": enrolled, "results": people_rows},
                   "stages": {"runs": [{"clip": r.clip, "run": r.tool, **timing(r, infos[r.clip].frames)}
                                       for r in stage_runs], "split": stage_rows},
                   "targets": targets + people_targets}
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
            log(f"wrote {args.json}")
    finally:
        if args.keep:
            log(f"outputs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    failed = [t for t in targets + people_targets if t["status"] == "FAIL"]
    return 1 if args.check and failed else 0


def leak_target(leak: dict[str, Any], bullet: str) -> dict[str, str]:
    """The pan-clip leak rate as a target; prints the privacy line when there is a rate."""
    name = f"pan-clip leak rate (faceveil run, defaults) <= {PAN_LEAK_BEFORE:.4f} (before)"
    if "error" in leak:
        return {"target": name, "status": "FAIL", "detail": leak["error"]}
    print(f"{bullet}privacy, same run: pan clip leak rate {leak['leak_rate']:.4f} "
          f"({leak['leaks']}/{leak['face_frames']} face-frames), file mode, defaults, "
          f"solid black, scored by ../shared/tools/video_leaks.py")
    return {"target": name, "status": "PASS" if leak["leak_rate"] <= PAN_LEAK_BEFORE else "FAIL",
            "detail": f"{leak['leak_rate']:.4f} ({leak['leaks']}/{leak['face_frames']})"}


def print_notes(rows: list[dict]) -> None:
    """Failures (stderr tails), output problems and the encoder settings each output really has."""
    notes = []
    for row in rows:
        who = f"{row['tool']} on {row['clip']}"
        notes += failure_notes(who, row)
        if not row["ok"]:
            continue
        o = row["output"]
        if o["error"]:
            notes.append(f"{who}: output unreadable: {o['error']}")
        if not o["frames_equal"] or not o["size_equal"]:
            notes.append(f"{who}: output has {o['frames']} frames of {o['size'][0]}x{o['size'][1]} "
                         f"(input {row['frames_in']})")
        if o["x264"] is None:
            notes.append(f"{who}: no x264 settings found in the output (not encoded by libx264?)")
        elif o["x264_differs_from_plain"]:
            notes.append(f"{who}: x264 options differing from plain-transcode's: "
                         + ", ".join(o["x264_differs_from_plain"]))
        if row["note"]:
            notes.append(f"{who}: {row['note']}")
    seen = {}
    for row in rows:
        if row["ok"] and row["output"] and row["output"]["x264"]:
            seen.setdefault(row["output"]["x264"], []).append(f"{row['tool']} ({row['clip']})")
    if seen:
        notes.append("x264 settings strings found in the outputs:")
        notes += [f"    {', '.join(who)}:\n        {s}" for s, who in seen.items()]
    if notes:
        print()
        print("\n".join(notes))


if __name__ == "__main__":
    sys.exit(main())
