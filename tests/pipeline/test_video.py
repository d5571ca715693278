"""Video files end to end: real PyAV encode/decode, the real CenterFace detector, the CLI.

Synthetic clips are built once per module (short, 320x240); real clips come from
../shared/data/videos and are skipped when that folder is absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import require_data
from faceveil.cli import ExitCode, main
from faceveil.errors import CorruptMediaError, UnsafeOutputError
from faceveil.media.video import EncodeOptions, is_video, probe_video
from faceveil.pipeline import Pipeline
from faceveil.pipeline.video import process_video
from faceveil.sidecar import read_sidecar
from faceveil.tracking import iou_matrix
from faceveil.types import Detections

W, H = 320, 240
MAGENTA = (255, 0, 255)
FAST = EncodeOptions(preset="ultrafast")
N_FACE = 40  # frames of the moving-face clip
FACE_SIDE = 100  # pixels of the pasted astronaut crop
# The astronaut's face box in the full picture (rows 20-200, cols 150-330 are cropped out).
_CROP = (150, 20, 330, 200)
_FACE_IN_PICTURE = (180, 60, 270, 175)


# ---------------------------------------------------------------- building clips


def texture(h: int, w: int, seed: int = 1) -> np.ndarray:
    """A smooth random RGB texture: detail everywhere but cheap to encode."""
    small = np.random.default_rng(seed).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def face_crop(astronaut: np.ndarray, side: int = FACE_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """(side x side crop, the face box inside it)."""
    x0, y0, x1, y1 = _CROP
    crop = cv2.resize(astronaut[y0:y1, x0:x1], (side, side), interpolation=cv2.INTER_AREA)
    box = (np.array(_FACE_IN_PICTURE, np.float64) - [x0, y0, x0, y0]) * side / (x1 - x0)
    return crop, box


def write_clip(
    path: Path, frames: list[np.ndarray], *, pts: list[int] | None = None,
    time_base: Fraction = Fraction(1, 1000), rate: int = 30, audio_seconds: float = 0.0,
    video_start: float = 0.0, rotation: int = 0, colour: bool = False, subtitles: Path | None = None,
    faststart: bool = False, pix_fmt: str = "yuv420p",
) -> Path:
    """Encode RGB frames (H.264) with optional AAC audio, SRT subtitles, tags and timestamps."""
    options = {"movflags": "faststart"} if faststart else {}
    with contextlib.ExitStack() as stack:
        c = stack.enter_context(av.open(str(path), "w", options=options))
        h, w = frames[0].shape[:2]
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.time_base = vs.codec_context.time_base = time_base
        vs.codec_context.options = {"preset": "ultrafast", "crf": "16"}
        if colour:  # BT.709, limited range
            cc = vs.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 1, 1, 1, 1
        if rotation:
            vs.set_display_rotation(rotation)
        # every stream is added before the first packet is written
        a = c.add_stream("aac", rate=44100, layout="stereo") if audio_seconds else None
        sub_packets = []
        if subtitles is not None:
            s = stack.enter_context(av.open(str(subtitles)))
            ss = c.add_stream_from_template(s.streams[0])
            sub_packets = [p for p in s.demux(s.streams[0]) if p.size]
        if a is not None:
            t = np.arange(int(44100 * audio_seconds)) / 44100
            sig = (0.2 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * t))).astype(np.float32)
            for i in range(0, len(sig), 1024):
                chunk = np.ascontiguousarray(np.stack([sig[i:i + 1024]] * 2))
                fr = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                fr.sample_rate, fr.pts, fr.time_base = 44100, i, Fraction(1, 44100)
                c.mux(a.encode(fr))
            c.mux(a.encode(None))
        for p in sub_packets:
            p.stream = ss
            c.mux(p)
        start = round(video_start / time_base)
        stamps = pts if pts is not None else [start + round(i / rate / time_base) for i in range(len(frames))]
        for img, p in zip(frames, stamps, strict=True):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts, f.time_base = p, time_base
            c.mux(vs.encode(f))
        c.mux(vs.encode(None))
    return path


@dataclass
class Probe:
    """What a file holds, read back with PyAV."""

    format: str
    streams: list[tuple[str, str]]  # (type, codec) in order
    starts: dict[int, float | None]  # stream index -> start time (s)
    packets: dict[int, list[bytes]]  # non-video stream index -> packet payloads in order
    packet_times: dict[int, list[float]]
    times: list[float] = field(default_factory=list)  # decoded video frame times (s)
    rotation: list[int] = field(default_factory=list)
    colour: tuple = ()

    def of(self, kind: str) -> list[int]:
        return [i for i, (t, _) in enumerate(self.streams) if t == kind]


def probe(path: Path) -> Probe:
    with av.open(str(path)) as c:
        streams = [(s.type, s.codec_context.name) for s in c.streams]
        starts = {s.index: (float(s.start_time * s.time_base) if s.start_time is not None else None)
                  for s in c.streams}
        packets: dict[int, list[bytes]] = {s.index: [] for s in c.streams if s.type != "video"}
        ptimes: dict[int, list[float]] = {i: [] for i in packets}
        others = [s for s in c.streams if s.type != "video"]
        for p in c.demux(*others) if others else ():
            if p.size:
                packets[p.stream.index].append(bytes(p))
                ptimes[p.stream.index].append(float(p.pts * p.time_base))
        fmt = c.format.name
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        cc = vs.codec_context
        colour = (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range)
        times, rotation = [], []
        for f in c.decode(vs):
            times.append(float(f.pts * f.time_base))
            rotation.append(f.rotation)
    return Probe(fmt, streams, starts, packets, ptimes, times, rotation, colour)


def decode_rgb(path: Path, upright: bool = False) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            img = f.to_ndarray(format="rgb24")
            out.append(np.ascontiguousarray(np.rot90(img, round(f.rotation / 90) % 4)) if upright else img)
        return out


def centre(box, share: float = 0.6) -> tuple[slice, slice]:
    """Rows and columns of the central share x share of a box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * (1 - share) / 2, (y2 - y1) * (1 - share) / 2
    return slice(int(np.floor(y1 + my)), int(np.ceil(y2 - my))), \
        slice(int(np.floor(x1 + mx)), int(np.ceil(x2 - mx)))


def magenta_share(img: np.ndarray, box) -> float:
    """Share of the box's central 60% x 60% that is magenta, within encoding tolerance."""
    rows, cols = centre(box)
    region = img[rows, cols].astype(np.int16)
    dist = np.abs(region - np.array(MAGENTA, np.int16)).max(axis=2)
    return float((dist <= 40).mean())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("faceveil: error")]


class DroppingDetector:
    """The real detector, except that it finds nothing on chosen frame indices.

    Both entry points the video runner uses are wrapped: `detect` (a full scan) and
    `detect_at` (the quick pass that follows known faces between full scans).
    """

    name = "dropping"

    def __init__(self, detector, drop=()) -> None:
        self.detector, self.drop = detector, set(drop)
        self.calls: list[tuple[int, str]] = []  # (frame index, "scan" | "follow")

    def detect(self, frame):
        self.calls.append((frame.index, "scan"))
        return Detections.empty() if frame.index in self.drop else self.detector.detect(frame)

    def detect_at(self, frame, scales):
        self.calls.append((frame.index, "follow"))
        return Detections.empty() if frame.index in self.drop else self.detector.detect_at(frame, scales)


class NoDetector:
    name = "none"

    def detect(self, frame):
        raise AssertionError("the detector must not run when faces are given")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


def _moving(n: int, seed: int = 1) -> list[np.ndarray]:
    bg = texture(H, W, seed)
    return [np.roll(bg, 3 * i, axis=1) for i in range(n)]


VFR_STEPS = (33, 50, 66)  # milliseconds between frames


@pytest.fixture(scope="module")
def clips(media) -> dict[str, Path]:
    """Small synthetic clips, each showing one thing a re-encode could lose."""
    srt = media / "subs.srt"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,500\nHello\n\n2\n00:00:00,600 --> 00:00:00,900\n"
                   "World\n\n", encoding="utf-8")
    vfr = [0]
    for i in range(29):
        vfr.append(vfr[-1] + VFR_STEPS[i % 3])
    return {
        "av": write_clip(media / "av.mp4", _moving(30), audio_seconds=1.5),
        "subs": write_clip(media / "subs.mkv", _moving(30), audio_seconds=1.2, subtitles=srt),
        "vfr": write_clip(media / "vfr.mp4", _moving(30), pts=vfr, audio_seconds=1.5),
        "offset": write_clip(media / "offset.mp4", _moving(30), audio_seconds=1.6, video_start=0.5),
        "colour": write_clip(media / "colour.mp4", _moving(20), colour=True, audio_seconds=0.8),
        "silent": write_clip(media / "silent.mp4", _moving(20)),
    }


@dataclass
class FaceClip:
    path: Path
    boxes: np.ndarray  # (N, 4) the pasted face's box in each frame
    frames: list[np.ndarray]  # the decoded input frames


@pytest.fixture(scope="module")
def face_clip(media, astronaut) -> FaceClip:
    """A real face (the astronaut) moving across a textured background, 5 px a frame."""
    crop, inner = face_crop(astronaut)
    bg = texture(H, W, seed=2)
    frames, boxes = [], []
    for i in range(N_FACE):
        x, y = 10 + round(200 * i / (N_FACE - 1)), 30 + round(80 * i / (N_FACE - 1))
        img = bg.copy()
        img[y:y + FACE_SIDE, x:x + FACE_SIDE] = crop
        frames.append(img)
        boxes.append(inner + np.array([x, y, x, y]))
    path = write_clip(media / "faces.mp4", frames, rate=25)
    return FaceClip(path, np.array(boxes), decode_rgb(path))


@pytest.fixture(scope="module")
def face_run(face_clip, centerface, media):
    """The face clip through the real detector once, solid magenta, with its sidecar."""
    out, side = media / "faces.solid.mp4", media / "faces.solid.faces.json"
    events, frames = [], []
    report = process_video(
        face_clip.path, out, Pipeline(detector=centerface, method="solid", color=MAGENTA),
        encode=FAST, sidecar=side, on_progress=events.append,
        on_frame=lambda i, pts, dets: frames.append((i, pts, dets)))
    return report, out, side, events, frames


_processed: dict = {}


def processed(clips, media, name: str, suffix: str, centerface) -> Path:
    """`name` re-encoded into `suffix` through the library (once per module)."""
    key = (str(media), name, suffix)
    if key not in _processed:
        out = media / f"{name}.out{suffix}"
        process_video(clips[name], out, Pipeline(detector=centerface), encode=FAST)
        _processed[key] = out
    return _processed[key]


# ---------------------------------------------------------------- streams and timestamps


@pytest.mark.parametrize(("name", "suffix"), [
    ("av", ".mp4"), ("av", ".mkv"), ("av", ".mov"),
    ("subs", ".mkv"),
    ("vfr", ".mp4"), ("vfr", ".mkv"),
    ("offset", ".mp4"), ("offset", ".mov"),
    ("colour", ".mp4"), ("colour", ".mkv"),
    ("silent", ".mp4"),
])
def test_streams_and_timestamps_are_kept(clips, media, centerface, name, suffix):
    src = clips[name]
    before = sha256(src)
    out = processed(clips, media, name, suffix, centerface)
    a, b = probe(src), probe(out)
    assert sha256(src) == before, "the input is never modified"
    assert [t for t, _ in b.streams] == [t for t, _ in a.streams]
    assert b.streams[0] == ("video", "h264")
    # every frame, at the same time
    assert len(b.times) == len(a.times)
    shift = 0.0
    if src.suffix == suffix:
        assert b.times == a.times
    else:
        # Matroska cannot store the negative time of the AAC priming packet (-23 ms), so its
        # muxer moves every stream later by the same amount: sync is kept, not the origin.
        shift = b.times[0] - a.times[0]
        assert abs(shift) < 0.025
        np.testing.assert_allclose(b.times, np.array(a.times) + shift, atol=0.0011)  # ms in mkv
    # audio and subtitles: the same packets, byte for byte, at the same times
    for kind in ("audio", "subtitle"):
        for i, j in zip(a.of(kind), b.of(kind), strict=True):
            assert b.packets[j] == a.packets[i], f"{kind} packets differ"
            assert len(b.packets[j]) > 0
            np.testing.assert_allclose(b.packet_times[j], np.array(a.packet_times[i]) + shift,
                                       atol=0.0011)
    assert b.colour == a.colour
    assert b.rotation == a.rotation


def test_variable_frame_rate_stays_variable(clips, media, centerface):
    out = processed(clips, media, "vfr", ".mp4", centerface)
    steps = np.round(np.diff(probe(out).times) * 1000).astype(int)
    assert sorted(set(steps.tolist())) == sorted(VFR_STEPS)
    assert steps.tolist() == [VFR_STEPS[i % 3] for i in range(len(steps))]


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_video_that_starts_after_the_audio_keeps_its_offset(clips, media, centerface, suffix):
    out = processed(clips, media, "offset", suffix, centerface)
    p = probe(out)
    assert p.times[0] == pytest.approx(0.5, abs=1e-3)
    (audio,) = p.of("audio")
    assert p.packet_times[audio][0] < 0.05, "the audio still starts at the beginning"
    assert p.times[0] - p.packet_times[audio][0] == pytest.approx(
        probe(clips["offset"]).times[0] - probe(clips["offset"]).packet_times[1][0], abs=1e-3)


def test_colour_tags_are_kept(clips, media, centerface):
    src = probe(clips["colour"])
    assert src.colour == (1, 1, 1, 1), "the test clip carries BT.709 tags"
    for suffix in (".mp4", ".mkv"):
        assert probe(processed(clips, media, "colour", suffix, centerface)).colour == src.colour


def test_probe_video(clips, face_clip):
    info = probe_video(clips["av"])
    assert (info.width, info.height, info.codec) == (W, H, "h264")
    assert info.streams == ("video", "audio")
    assert info.fps == pytest.approx(30, abs=0.1)
    assert info.frames == 30
    assert probe_video(clips["subs"]).streams == ("video", "audio", "subtitle")
    assert probe_video(face_clip.path).fps == pytest.approx(25, abs=0.1)
    assert is_video("x.MKV") and is_video("a/b.webm") and not is_video("x.jpg")


# ---------------------------------------------------------------- containers and CLI flags


def _copy(src: Path, folder: Path, name: str | None = None) -> Path:
    dst = folder / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


@pytest.mark.parametrize(("suffix", "fmt", "codec", "audio"), [
    (".mkv", "matroska", "h264", True),
    (".mov", "mov", "h264", True),
    (".m4v", "mp4", "h264", True),
    (".avi", "avi", "mpeg4", True),
    (".webm", "webm", "vp9", False),  # AAC cannot go into WebM: left out, with a warning
])
def test_output_container_follows_the_extension(clips, tmp_path, capsys, suffix, fmt, codec, audio):
    src = _copy(clips["av"], tmp_path)
    out = tmp_path / f"out{suffix}"
    assert cli(src, "-o", out, "--preset", "ultrafast") == ExitCode.OK
    err = capsys.readouterr().err
    p, a = probe(out), probe(src)
    assert fmt in p.format.split(",")
    assert p.streams[0] == ("video", codec)
    assert len(p.times) == len(a.times)
    if audio:
        assert p.packets[p.of("audio")[0]] == a.packets[1]
        assert "warning" not in err.lower() and "left out" not in err
    else:
        assert p.of("audio") == []
        assert "audio stream 1 (aac) cannot go into a .webm file and is left out" in err
    assert leftovers(tmp_path) == []


def test_subtitles_that_cannot_go_into_mp4_are_left_out_with_a_warning(clips, tmp_path, capsys):
    src = _copy(clips["subs"], tmp_path)
    out = tmp_path / "out.mp4"
    assert cli(src, "-o", out, "--preset", "ultrafast") == ExitCode.OK
    err = capsys.readouterr().err
    p = probe(out)
    assert [t for t, _ in p.streams] == ["video", "audio"]
    assert p.packets[1] == probe(src).packets[1]
    assert "subtitle stream 2 (srt) cannot go into a .mp4 file and is left out" in err


@pytest.mark.parametrize("name", ["subs", "av"])
def test_no_audio_drops_audio_and_subtitles(clips, tmp_path, name):
    src = _copy(clips[name], tmp_path)
    out = tmp_path / f"out{src.suffix}"
    assert cli(src, "-o", out, "--no-audio", "--preset", "ultrafast", "-q") == ExitCode.OK
    p = probe(out)
    assert [t for t, _ in p.streams] == ["video"]
    assert p.times == pytest.approx(probe(src).times, abs=0.0011)


def test_codec_and_crf_flags(clips, tmp_path):
    src = _copy(clips["av"], tmp_path)
    assert cli(src, "-o", tmp_path / "m.mkv", "--codec", "mpeg4", "-q") == ExitCode.OK
    assert probe(tmp_path / "m.mkv").streams[0] == ("video", "mpeg4")
    sizes = {}
    for crf in (12, 40):
        out = tmp_path / f"crf{crf}.mp4"
        assert cli(src, "-o", out, "--crf", crf, "--preset", "ultrafast", "-q") == ExitCode.OK
        sizes[crf] = out.stat().st_size
    assert sizes[40] < sizes[12] / 2


@pytest.mark.parametrize("flags", [["--crf", "99"], ["--crf", "-1"]])
def test_bad_encode_options_are_usage_errors(clips, tmp_path, capsys, flags):
    src = _copy(clips["silent"], tmp_path)
    out = tmp_path / "out.mp4"
    assert cli(src, "-o", out, *flags) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"argument --crf: must be between 0 and 63, got {flags[1]}" in err
    assert "Traceback" not in err
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("flags", [
    pytest.param(["--codec", "no-such-codec"], id="codec"),
    pytest.param(["--preset", "no-such-preset"], id="preset"),
])
def test_unknown_codec_or_preset_fails_cleanly(clips, tmp_path, capsys, flags):
    src = _copy(clips["silent"], tmp_path)
    out = tmp_path / "out.mp4"
    assert cli(src, "-o", out, *flags) != ExitCode.OK
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and "Traceback" not in err
    assert flags[1] in error_lines(err)[0]
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("flags", [["--codec", "no-such-codec"], ["--preset", "no-such-preset"]])
def test_unknown_codec_or_preset_is_a_usage_error(clips, tmp_path, capsys, flags):
    src = _copy(clips["silent"], tmp_path)
    code = cli(src, "-o", tmp_path / "out.mp4", *flags)
    err = error_lines(capsys.readouterr().err)
    assert code == ExitCode.USAGE
    assert "avcodec_open2" not in err[0] and "ArgumentError" not in err[0]


# ---------------------------------------------------------------- rotation


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_is_kept_and_faces_are_in_upright_pixels(media, astronaut, centerface, rotation):
    """The picture as displayed shows an upright face; it is stored turned the other way."""
    turns = round(rotation / 90) % 4
    dw, dh = (H, W) if turns % 2 else (W, H)
    crop, inner = face_crop(astronaut)
    shown = texture(dh, dw, seed=3)
    x, y = (dw - FACE_SIDE) // 2, (dh - FACE_SIDE) // 2 + 10
    shown[y:y + FACE_SIDE, x:x + FACE_SIDE] = crop
    box = inner + np.array([x, y, x, y])  # in displayed pixels
    # FFmpeg's display rotation is counter-clockwise: displayed = rot90(stored, turns)
    stored = np.ascontiguousarray(np.rot90(shown, -turns))
    src = write_clip(media / f"rot{rotation}.mp4", [stored] * 8, rotation=rotation)
    assert probe(src).rotation[0] % 360 == rotation % 360

    out, side = media / f"rot{rotation}.out.mp4", media / f"rot{rotation}.faces.json"
    pipeline = Pipeline(detector=centerface, method="solid", color=MAGENTA)
    report = process_video(src, out, pipeline, encode=FAST, sidecar=side)
    assert (report.width, report.height) == (dw, dh)
    p = probe(out)
    assert p.rotation == probe(src).rotation, "the display rotation tag is kept"
    doc, frames = read_sidecar(side)
    assert (doc["width"], doc["height"]) == (dw, dh)
    for dets in frames:
        assert len(dets) >= 1
        assert iou_matrix(np.array([box], np.float32), dets.xyxy).max() > 0.6
    for img in decode_rgb(out, upright=True):
        assert img.shape[:2] == (dh, dw)
        assert magenta_share(img, box) > 0.99

    # the same boxes, given back, hide the same place without detection
    again = media / f"rot{rotation}.render.mp4"
    process_video(src, again, Pipeline(detector=NoDetector(), method="solid", color=MAGENTA),
                  encode=FAST, faces=frames)
    for img in decode_rgb(again, upright=True):
        assert magenta_share(img, box) > 0.99


# ---------------------------------------------------------------- faces in every frame


@pytest.mark.parametrize(("every", "drop"), [
    pytest.param(1, set(), id="every-frame"),
    pytest.param(1, {i for i in range(N_FACE) if i % 3 == 2} | set(range(20, 25)), id="drops"),
    pytest.param(3, set(), id="every-3"),
    pytest.param(3, {9}, id="every-3-one-miss"),
    pytest.param(3, {21, 24, 27}, id="every-3-three-misses"),
])
def test_a_moving_face_is_hidden_in_every_frame(face_clip, centerface, tmp_path, every, drop):
    detector = DroppingDetector(centerface, drop)
    pipeline = Pipeline(detector=detector, method="solid", color=MAGENTA, detect_every=every)
    out, side = tmp_path / "out.mp4", tmp_path / "out.faces.json"
    report = process_video(face_clip.path, out, pipeline, encode=FAST, sidecar=side)
    assert [i for i, _ in detector.calls] == [i for i in range(N_FACE) if i % every == 0], \
        "the detector sees every k-th frame, with its index"
    assert detector.calls[0] == (0, "scan")
    assert report.frames == N_FACE
    decoded = decode_rgb(out)
    assert len(decoded) == N_FACE
    bad = {i: round(magenta_share(img, box), 3)
           for i, (img, box) in enumerate(zip(decoded, face_clip.boxes, strict=True))
           if magenta_share(img, box) < 0.99}
    assert bad == {}, f"frames where the face shows: {bad}"
    # far from the face nothing changes (a corner away from the face's path)
    for before, after in zip(face_clip.frames, decoded, strict=True):
        diff = np.abs(before[180:, :60].astype(int) - after[180:, :60]).mean()
        assert diff < 4
    doc, frames = read_sidecar(side)
    assert [f["index"] for f in doc["frames"]] == list(range(N_FACE))
    assert doc["settings"]["video"]["detect_every"] == every
    for i, dets in enumerate(frames):
        if i % every or i in drop:  # no detection here: the tracker filled the face in
            assert len(dets) and dets.filled.all(), f"frame {i}"
        assert not dets.keep.any()
        best = iou_matrix(np.array([face_clip.boxes[i]], np.float32), dets.xyxy).max()
        assert best > 0.3, f"frame {i}: no box near the face"


def test_sidecar_report_and_callbacks_agree(face_run, face_clip):
    report, out, side, events, frames = face_run
    doc, dets = read_sidecar(side)
    assert doc["schema"] == "faceveil.faces/1"
    assert (doc["width"], doc["height"]) == (W, H)
    assert doc["fps"] == pytest.approx(25, abs=0.01)
    assert [f["index"] for f in doc["frames"]] == list(range(N_FACE))
    times = probe(out).times
    assert [f["pts"] for f in doc["frames"]] == pytest.approx(times, abs=1e-6)
    assert [i for i, _, _ in frames] == list(range(N_FACE))
    assert [p for _, p, _ in frames] == pytest.approx(times, abs=1e-9)
    for (_, _, d), from_file in zip(frames, dets, strict=True):
        np.testing.assert_allclose(from_file.xyxy, d.xyxy, atol=0.01)
        assert from_file.filled.tolist() == d.filled.tolist()
        assert from_file.track_ids.tolist() == d.track_ids.tolist()
    assert report.frames == N_FACE
    c = report.counts  # VideoReport counts once: types.Counts
    assert c.boxes == sum(int((~d.filled).sum()) for d in dets)
    assert c.filled == sum(int(d.filled.sum()) for d in dets)
    assert not hasattr(report, "faces") and not hasattr(report, "filled")  # no second count
    # balanced detects on every 2nd frame; the tracker fills in the others
    assert c.boxes >= N_FACE // 2 - 2, "found on nearly every detection frame"
    assert c.face_frames == c.boxes + c.filled >= N_FACE, "and every frame has a box on it"
    assert report.tracks == len({t for d in dets for t in d.track_ids.tolist()})
    assert events[0].stage == "start" and events[-1].stage == "done"
    assert [e.done for e in events if e.stage == "frame"] == list(range(1, N_FACE + 1))
    assert events[0].total == N_FACE


# ---------------------------------------------------------------- CLI: --json and render


def test_cli_json_writes_a_per_frame_faces_file(face_clip, tmp_path, capsys):
    src = _copy(face_clip.path, tmp_path, "clip.mp4")
    before = sha256(src)
    code = cli("run", src, "--json", "--detect-every", "3", "--preset", "ultrafast",
               "--method", "solid", "--color", "255,0,255")
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    assert sha256(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clip.anonymized.faces.json", "clip.anonymized.mp4", "clip.mp4"]
    assert "1 video(s) (40 frames) anonymized" in err
    doc, frames = read_sidecar(tmp_path / "clip.anonymized.faces.json")
    assert doc["output"].endswith("clip.anonymized.mp4")
    assert [f["index"] for f in doc["frames"]] == list(range(N_FACE))
    assert [f["pts"] for f in doc["frames"]] == pytest.approx(probe(src).times, abs=1e-6)
    for i, f in enumerate(doc["frames"]):
        assert f["faces"], f"frame {i} lists no face"
        for face in f["faces"]:
            assert isinstance(face["track"], int) and face["track"] >= 0
            assert face["hidden"] is True
            assert len(face["box"]) == 4
        assert any(face.get("filled", False) for face in f["faces"]) == (i % 3 != 0)
    assert len(frames) == N_FACE
    decoded = decode_rgb(tmp_path / "clip.anonymized.mp4")
    assert all(magenta_share(img, box) > 0.99 for img, box in zip(decoded, face_clip.boxes, strict=True))


def test_render_from_an_edited_faces_file(face_clip, face_run, tmp_path, capsys):
    """Hand edits win: faces marked visible or deleted show, an added box is hidden."""
    _, _, side, _, _ = face_run
    doc = json.loads(side.read_text())
    extra = [10, 170, 60, 230]  # background, away from the face's path
    for i, f in enumerate(doc["frames"]):
        if i < 10:
            for face in f["faces"]:
                face["hidden"] = False
        elif i < 20:
            f["faces"] = []
        elif i >= 30:
            f["faces"].append({"box": extra, "score": 1.0})
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    src = _copy(face_clip.path, tmp_path, "clip.mp4")
    before = sha256(src)
    out = tmp_path / "rendered.mp4"
    code = cli("render", src, "--faces", edited, "-o", out, "--method", "solid",
               "--color", "#ff00ff", "--preset", "ultrafast")
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    assert sha256(src) == before
    assert "lists faces of" in err  # the faces file names faces.mp4, not clip.mp4
    decoded = decode_rgb(out)
    assert len(decoded) == N_FACE
    for i, (img, orig, box) in enumerate(zip(decoded, face_clip.frames, face_clip.boxes, strict=True)):
        rows, cols = centre(box)
        if i < 20:  # left visible: the face is there, as it was
            assert magenta_share(img, box) < 0.01, f"frame {i}"
            assert np.abs(img[rows, cols].astype(int) - orig[rows, cols]).mean() < 6
        else:
            assert magenta_share(img, box) > 0.99, f"frame {i}"
        assert (magenta_share(img, extra) > 0.99) == (i >= 30), f"frame {i}: the added box"


def test_render_never_detects_and_checks_the_frame_count(face_clip, face_run, tmp_path):
    _, _, side, _, _ = face_run
    _, frames = read_sidecar(side)
    pipeline = Pipeline(detector=NoDetector(), method="solid", color=MAGENTA)
    out = tmp_path / "out.mp4"
    report = process_video(face_clip.path, out, pipeline, encode=FAST, faces=frames)
    assert report.frames == N_FACE
    assert report.counts.face_frames == sum(len(d) for d in frames)
    short = tmp_path / "short.mp4"
    with pytest.raises(CorruptMediaError, match="the faces file has 10 frames"):
        process_video(face_clip.path, short, pipeline, encode=FAST, faces=frames[:10])
    assert not short.exists() and leftovers(tmp_path) == []


def test_render_with_a_short_faces_file_fails_cleanly(face_clip, face_run, tmp_path, capsys):
    _, _, side, _, _ = face_run
    doc = json.loads(side.read_text())
    doc["frames"] = doc["frames"][:10]
    edited = tmp_path / "short.json"
    edited.write_text(json.dumps(doc))
    src = _copy(face_clip.path, tmp_path, "clip.mp4")
    code = cli("render", src, "--faces", edited, "--method", "solid")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED
    assert len(error_lines(err)) == 1 and "10 frames" in error_lines(err)[0]
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "short.json"]


def test_render_of_a_picture_with_a_video_faces_file_fails_cleanly(face_clip, face_run, tmp_path, capsys):
    """A faces file whose frame count does not fit a picture must not fall back to detecting."""
    from PIL import Image

    _, _, side, _, _ = face_run
    photo = tmp_path / "photo.png"
    Image.fromarray(face_clip.frames[0]).save(photo)
    code = cli("render", photo, "--faces", side, "--method", "solid")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED
    assert len(error_lines(err)) == 1 and f"{N_FACE} frames" in error_lines(err)[0]
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_cli_dash_output_prints_the_faces_and_writes_no_file(face_clip, tmp_path, capsys):
    src = _copy(face_clip.path, tmp_path, "clip.mp4")
    assert cli("run", src, "-o", "-", "--detect-every", "2") == ExitCode.OK
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    doc = json.loads(line)
    assert doc["output"] is None and (doc["width"], doc["height"]) == (W, H)
    assert [f["index"] for f in doc["frames"]] == list(range(N_FACE))
    assert [f["pts"] for f in doc["frames"]] == pytest.approx(probe(src).times, abs=1e-6)
    assert all(f["faces"] and all("track" in face for face in f["faces"]) for f in doc["frames"])
    assert "scanned" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_anonymize_video_api(face_clip, tmp_path):
    import faceveil

    src = _copy(face_clip.path, tmp_path, "clip.mp4")
    out, faces_json = tmp_path / "clip.out.mkv", tmp_path / "clip.faces.json"
    report = faceveil.anonymize_video(src, out, faces_json=faces_json, preset="ultrafast",
                                      method="solid", color=MAGENTA, detect_every=2)
    assert report.frames == N_FACE and report.output == out
    doc, frames = read_sidecar(faces_json)
    assert len(frames) == N_FACE and doc["settings"]["video"]["detect_every"] == 2
    decoded = decode_rgb(out)
    assert [i for i, (img, box) in enumerate(zip(decoded, face_clip.boxes, strict=True))
            if magenta_share(img, box) < 0.99] == []
    before = sha256(src)
    with pytest.raises(UnsafeOutputError):
        faceveil.anonymize_video(src, tmp_path / "." / "clip.mp4")
    assert sha256(src) == before


@pytest.mark.parametrize("pix_fmt", [
    "yuv420p",
    "yuvj420p",
])
def test_hiding_leaves_the_pixels_around_the_mask_alone(media, pix_fmt):
    """Half black, half white; a face box across the border, hidden with a solid colour."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, W // 2:] = 255
    src = write_clip(media / f"range_{pix_fmt}.mp4", [img] * 4, pix_fmt=pix_fmt)
    box = Detections(np.array([[120, 70, 200, 160]], np.float32), np.array([1.0], np.float32))
    pipeline = Pipeline(detector=NoDetector(), method="solid", color=MAGENTA)
    out = media / f"range_{pix_fmt}.out.mp4"
    process_video(src, out, pipeline, encode=FAST, faces=[box] * 4)
    (patch,) = pipeline.mask.render(box, (H, W)).patches
    ph, pw = patch.alpha.shape
    assert patch.alpha[:4, :4].max() == 0 and patch.alpha[-4:, -4:].max() == 0
    for before, after in zip(decode_rgb(src), decode_rgb(out), strict=True):
        corners = [(slice(patch.y0, patch.y0 + 4), slice(patch.x0, patch.x0 + 4)),
                   (slice(patch.y0 + ph - 4, patch.y0 + ph), slice(patch.x0 + pw - 4, patch.x0 + pw))]
        for rows, cols in corners:
            diff = np.abs(after[rows, cols].astype(int) - before[rows, cols]).max()
            assert diff <= 4, f"a corner of the patch, outside the mask, changed by {diff}"
        rows, cols = centre(box.xyxy[0])
        assert np.abs(after[rows, cols].astype(int) - MAGENTA).max() <= 8


# ---------------------------------------------------------------- damaged and odd inputs


def _bad_input(kind: str, folder: Path, clips) -> Path:
    if kind == "garbage":
        path = folder / "garbage.mp4"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path = folder / "empty.mp4"
        path.write_bytes(b"")
    elif kind == "text":
        path = folder / "notes.mkv"
        path.write_text("not a video at all\n" * 50)
    elif kind == "truncated-moov-at-end":  # the real clip's index is at the end of the file
        data = require_data("videos", "hamilton_short_clip.mp4").read_bytes()
        path = folder / "hamilton_cut.mp4"
        path.write_bytes(data[: int(len(data) * 0.6)])
    elif kind == "audio-only":
        path = folder / "sound.mp4"
        with av.open(str(path), "w") as c:
            a = c.add_stream("aac", rate=44100, layout="stereo")
            for i in range(0, 44100, 1024):
                fr = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp",
                                                layout="stereo")
                fr.sample_rate, fr.pts = 44100, i
                c.mux(a.encode(fr))
            c.mux(a.encode(None))
    elif kind == "truncated-synthetic-moov-at-end":
        data = clips["av"].read_bytes()
        path = folder / "av_cut.mp4"
        path.write_bytes(data[: int(len(data) * 0.6)])
    else:
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("garbage", "not a video faceveil can read"),
    ("empty", "empty file"),
    ("text", "not a video faceveil can read"),
    ("truncated-moov-at-end", "not a video faceveil can read"),
    ("truncated-synthetic-moov-at-end", "not a video faceveil can read"),
    ("audio-only", "has no video stream"),
])
def test_unreadable_video_is_a_clear_error(clips, tmp_path, capsys, kind, message):
    src = _bad_input(kind, tmp_path, clips)
    before = sha256(src)
    out = tmp_path / "out.mp4"
    code = cli(src, "-o", out, "--json")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED
    (line,) = error_lines(err)
    assert src.name in line and message in line
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "out.faces.json").exists()
    assert leftovers(tmp_path) == []
    assert sha256(src) == before


def _faststart_cut(src: Path, folder: Path, share: float = 0.6) -> tuple[Path, Path]:
    """A copy of `src` with its index first (faststart), and that copy cut at `share`."""
    fast = folder / f"{src.stem}.fast.mp4"
    with av.open(str(src)) as i, av.open(str(fast), "w", options={"movflags": "faststart"}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if p.dts is not None:
                p.stream = streams[p.stream.index]
                o.mux(p)
    data = fast.read_bytes()
    assert data[4:8] == b"ftyp" and b"moov" in data[:64], "the index is at the start"
    cut = folder / f"{src.stem}.cut.mp4"
    cut.write_bytes(data[: int(len(data) * share)])
    return fast, cut


def _decodable_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        times = []
        try:
            for f in c.decode(video=0):
                times.append(float(f.pts * f.time_base))
        except av.error.FFmpegError:
            pass
        return times


def _truncated_source(request, tmp_path) -> Path:
    if request.param == "synthetic":
        long = write_clip(tmp_path / "long.mp4", _moving(60), audio_seconds=2.0)
        return _faststart_cut(long, tmp_path)[1]
    return _faststart_cut(require_data("videos", "hamilton_short_clip.mp4"), tmp_path)[1]


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.slow)])
def truncated(request, tmp_path) -> Path:
    return _truncated_source(request, tmp_path)


def test_truncated_video_is_processed_as_far_as_it_decodes(truncated, tmp_path, capsys):
    before = sha256(truncated)
    readable = _decodable_times(truncated)
    declared = probe_video(truncated).frames
    assert 0 < len(readable) < declared
    out = tmp_path / "out.mp4"
    code = cli(truncated, "-o", out, "--preset", "ultrafast", "--detect-every", "5")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == ExitCode.OK
    assert probe(out).times == readable
    assert leftovers(tmp_path) == []
    assert sha256(truncated) == before


def test_truncated_video_is_reported(truncated, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    cli(truncated, "-o", out, "--preset", "ultrafast", "--detect-every", "5")
    err = capsys.readouterr().err
    assert "damaged" in err or "warning" in err.lower()


def test_failed_run_leaves_no_output(clips, tmp_path, capsys):
    """A run that fails half way (here: the encoder cannot open) leaves no file behind."""
    src = _copy(clips["av"], tmp_path)
    out = tmp_path / "out.mp4"
    out_json = tmp_path / "out.faces.json"
    assert cli(src, "-o", out, "--json", "--preset", "no-such-preset") != ExitCode.OK
    capsys.readouterr()
    assert not out.exists() and not out_json.exists()
    assert leftovers(tmp_path) == []


def test_existing_output_is_replaced_only_on_success(clips, tmp_path, capsys):
    src = _copy(clips["silent"], tmp_path)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    assert cli(src, "-o", out, "--preset", "no-such-preset") != ExitCode.OK
    assert out.read_bytes() == b"previous result"
    assert cli(src, "-o", out, "--preset", "ultrafast", "-q") == ExitCode.OK
    assert len(probe(out).times) == 20
    capsys.readouterr()


# ---------------------------------------------------------------- real clips


REAL_CLIPS = [
    "hamilton_short_clip.mp4",  # A/V start offset, BT.709 tags
    "blurfaces_friends_clip.mp4",  # hard cuts, 720p
    "sadtalker_WDA_KatieHill_000.mp4",  # MPEG-4 Part 2, 16 kHz audio
    "liveportrait_d13_vertical_noaudio.mp4",  # vertical, no audio
    "sihan_office_vfr.mp4",  # variable frame rate
]


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_CLIPS)
def test_real_clip_through_the_cli(tmp_path, capsys, name):
    src = _copy(require_data("videos", name), tmp_path)
    before = sha256(src)
    args = ["run", src, "--json", "--preset", "ultrafast"]
    if name != "hamilton_short_clip.mp4":  # one clip with every default; the rest faster
        args += ["--detect-every", "2"]
    code = cli(*args)
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    assert sha256(src) == before
    out = src.with_name(src.stem + ".anonymized.mp4")
    a, b = probe(src), probe(out)
    assert b.times == a.times, "every frame at its own time"
    assert [t for t, _ in b.streams] == [t for t, _ in a.streams]
    for i, j in zip(a.of("audio"), b.of("audio"), strict=True):
        assert b.packets[j] == a.packets[i]
        assert b.packet_times[j] == pytest.approx(a.packet_times[i], abs=1e-6)
    for i in range(len(a.streams)):
        if a.starts[i] is not None:
            assert b.starts[i] == pytest.approx(a.starts[i], abs=1e-3), "start offsets kept"
    assert b.colour == a.colour
    assert b.rotation == a.rotation
    doc, frames = read_sidecar(src.with_name(src.stem + ".anonymized.faces.json"))
    assert len(frames) == len(a.times)
    assert [f["pts"] for f in doc["frames"]] == pytest.approx(a.times, abs=1e-6)
    assert sum(len(d) for d in frames) > 0, "real clips show faces"
    if name == "hamilton_short_clip.mp4":
        assert a.times[0] - min(a.packet_times[1]) == pytest.approx(0.85, abs=0.02)
