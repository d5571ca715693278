"""Hostile media (issue 20, items 3, 4 and 5): odd frame sizes and chroma, AVI with MP3 audio,
Matroska files cut short. Every input is written here with PyAV; real detector, real encoder.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from faceveil.batch import plan_batch
from faceveil.batch.work import ItemWorker
from faceveil.cli import ExitCode, main
from faceveil.config import PipelineConfig
from faceveil.errors import ConfigError

MAGENTA = (255, 0, 255)
_CROP = (150, 20, 330, 200)  # of skimage's astronaut: a crop with her face
_FACE = (180, 60, 270, 175)  # her face in the picture


def write_video(path: Path, frames: list[np.ndarray], *, codec: str = "libx264",
                pix_fmt: str = "yuv420p", rate: int = 25, audio: str | None = None,
                sample_rate: int = 44100, audio_seconds: float = 0.0, faststart: bool = False
                ) -> Path:
    """Encode RGB frames (any codec PyAV has), with optional audio of `audio` codec."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        vs = c.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            vs.codec_context.options = {"preset": "ultrafast", "crf": "16"}
        a = c.add_stream(audio, rate=sample_rate, layout="stereo") if audio else None
        for img in frames:
            c.mux(vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        c.mux(vs.encode(None))
        if a is not None:
            t = np.arange(int(sample_rate * audio_seconds)) / sample_rate
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            fr = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            fr.sample_rate, fr.pts, fr.time_base = sample_rate, 0, Fraction(1, sample_rate)
            c.mux(a.encode(fr))
            c.mux(a.encode(None))
    return path


def smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    small = np.random.default_rng(seed).integers(0, 256, (max(1, h // 8), max(1, w // 8), 3),
                                                 dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[float, float, bytes]]:
    """(start s, end s, payload) of the first audio stream's packets."""
    with av.open(str(path)) as c:
        (a,) = c.streams.audio
        return [(float(p.pts * p.time_base), float((p.pts + p.duration) * p.time_base), bytes(p))
                for p in c.demux(a) if p.size]


def luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int)


def run(*argv) -> int:
    return main([str(a) for a in argv])


def clean_stderr(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err and "avcodec_open2" not in err, err


# ---------------------------------------------------------------- 3: sizes and chroma


@pytest.mark.parametrize(("name", "size", "codec", "pix_fmt", "out", "encoded"), [
    ("odd.mkv", (641, 479), "ffv1", "yuv420p", "odd.mp4", (642, 480)),
    ("odd-444.mp4", (641, 479), "libx264", "yuv444p", "odd-444.out.mp4", (642, 480)),
    ("chroma-444.mp4", (64, 48), "libx264", "yuv444p", "chroma-444.out.mp4", (64, 48)),
    ("one.mp4", (1, 1), "libx264", "yuv444p", "one.out.mp4", (2, 2)),
    ("ffv1.mkv", (64, 48), "ffv1", "yuv444p", "ffv1.out.mkv", (64, 48)),
    ("ffv1-rgb.mkv", (63, 47), "ffv1", "bgr0", "ffv1-rgb.out.webm", (64, 48)),
    ("odd.avi", (65, 47), "ffv1", "yuv420p", "odd.out.avi", (66, 48)),
])
def test_odd_sizes_and_chroma_are_encoded(tmp_path, capsys, name, size, codec, pix_fmt, out,
                                          encoded):
    w, h = size
    frames = [smooth(h, w, i) for i in range(6)]
    src = write_video(tmp_path / name, frames, codec=codec, pix_fmt=pix_fmt)
    assert run("run", src, "-o", tmp_path / out, "--preset", "ultrafast", "--no-progress") == \
        ExitCode.OK
    err = capsys.readouterr().err
    clean_stderr(err)
    got = decoded(tmp_path / out)
    assert len(got) == len(frames)
    assert got[0].shape[:2] == (encoded[1], encoded[0])
    if encoded != size:
        assert f"{w}x{h} frames" in err and f"the output is {encoded[0]}x{encoded[1]}" in err
    if min(size) >= 16:  # the same picture (lossy, 4:2:0: luma within a tolerance), padded
        for a, b in zip(frames, got, strict=True):
            a, b = luma(a), luma(b)
            assert np.abs(b[:h, :w] - a).mean() < 6
            if h % 2:
                assert np.abs(b[h:, :w] - a[h - 1:h]).mean() < 10
            if w % 2:
                assert np.abs(b[:h, w:] - a[:, w - 1:w]).mean() < 10


def test_a_face_in_an_odd_sized_video_is_hidden(tmp_path, astronaut, capsys):
    x0, y0, x1, y1 = _CROP
    face = cv2.resize(astronaut[y0:y1, x0:x1], (120, 120), interpolation=cv2.INTER_AREA)
    scale = 120 / (x1 - x0)
    box = (np.array(_FACE, float) - [x0, y0, x0, y0]) * scale + [201, 151, 201, 151]
    frames = []
    for i in range(8):
        img = smooth(479, 641, i)
        img[151:271, 201:321] = face
        frames.append(img)
    src = write_video(tmp_path / "face.mkv", frames, codec="ffv1")
    out = tmp_path / "face.out.mp4"
    assert run("run", src, "-o", out, "--method", "solid", "--color", "#ff00ff",
               "--preset", "ultrafast", "--no-progress") == ExitCode.OK
    clean_stderr(capsys.readouterr().err)
    bx1, by1, bx2, by2 = box.astype(int)
    cx, cy = (bx2 - bx1) // 5, (by2 - by1) // 5
    for img in decoded(out):
        region = img[by1 + cy:by2 - cy, bx1 + cx:bx2 - cx].astype(int)
        assert (np.abs(region - MAGENTA).max(axis=2) <= 40).mean() > 0.95


def test_an_encoder_that_refuses_says_so_in_plain_words(tmp_path, capsys):
    # MPEG-1 takes only its standard frame rates; an MP4's 1/12800 time base is none of them
    src = write_video(tmp_path / "in.mp4", [smooth(48, 64, i) for i in range(3)])
    code = run("run", src, "-o", tmp_path / "out.mkv", "--codec", "mpeg1video", "--no-progress")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED
    clean_stderr(err)
    assert "the mpeg1video encoder refuses this video (64x48 yuv420p, time base 1/12800)" in err
    assert not list(tmp_path.glob(".*part*"))


def test_an_encoder_gets_a_pixel_format_it_takes(tmp_path, capsys):
    src = write_video(tmp_path / "in.mp4", [smooth(48, 64, i) for i in range(3)],
                      pix_fmt="yuv444p")
    # ProRes takes no 8-bit 4:2:0: it gets the first format it takes (10-bit 4:2:2)
    assert run("run", src, "-o", tmp_path / "out.mov", "--codec", "prores", "--no-progress") \
        == ExitCode.OK
    clean_stderr(capsys.readouterr().err)
    assert len(decoded(tmp_path / "out.mov")) == 3


# ---------------------------------------------------------------- 4: AVI with MP3


@pytest.mark.parametrize("sample_rate", [22050, 44100])
@pytest.mark.parametrize("out", ["out.avi", "out.mp4", "out.mkv"])
def test_avi_with_mp3_keeps_its_audio_timing(tmp_path, capsys, sample_rate, out):
    frames = [smooth(48, 64, i % 5) for i in range(78)]  # 3.1 s at 25 fps
    src = write_video(tmp_path / "in.avi", frames, codec="mpeg4", audio="mp3",
                      sample_rate=sample_rate, audio_seconds=3.1)
    assert run("run", src, "-o", tmp_path / out, "--preset", "ultrafast", "--no-progress") == \
        ExitCode.OK
    err = capsys.readouterr().err
    clean_stderr(err)
    assert "ends early" not in err and "damaged" not in err  # a whole AVI is not called damaged
    before, after = audio_packets(src), audio_packets(tmp_path / out)
    assert [p for _, _, p in after] == [p for _, _, p in before]  # byte for byte
    starts = [s for s, _, _ in after]
    assert all(b > a for a, b in itertools.pairwise(starts)), starts[:8]
    assert after[-1][1] == pytest.approx(before[-1][1], abs=0.05)
    assert after[-1][1] == pytest.approx(3.1, abs=0.15)


# ---------------------------------------------------------------- 5: Matroska cut short


@pytest.fixture(scope="module")
def mkv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mkv")
    frames = [smooth(48, 64, i % 7) for i in range(50)]
    return write_video(folder / "whole.mkv", frames, audio="aac", audio_seconds=2.0)


def cut(src: Path, folder: Path, percent: int) -> Path:
    data = src.read_bytes()
    target = folder / f"cut{percent}{src.suffix}"
    target.write_bytes(data[: len(data) * percent // 100])
    return target


@pytest.mark.parametrize("percent", [10, 50, 99])
def test_a_cut_matroska_file_is_reported(mkv, tmp_path, capsys, percent):
    src = cut(mkv, tmp_path, percent)
    assert run("run", src, "-o", tmp_path / "out.mkv", "--preset", "ultrafast", "--no-progress") \
        == ExitCode.OK
    err = capsys.readouterr().err
    clean_stderr(err)
    assert "the file is cut short" in err
    assert f"warning: {src}: damaged, processed as far as it decodes" in err


def test_a_whole_matroska_file_is_not_reported(mkv, tmp_path, capsys):
    assert run("run", mkv, "-o", tmp_path / "out.mkv", "--preset", "ultrafast",
               "--no-progress") == ExitCode.OK
    err = capsys.readouterr().err
    assert "cut short" not in err and "damaged" not in err and "ends early" not in err


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_batch_manifest_does_not_say_plain_ok_for_a_cut_file(tmp_path, suffix):
    frames = [smooth(48, 64, i % 7) for i in range(50)]
    whole = write_video(tmp_path / f"whole{suffix}", frames, audio="aac", audio_seconds=2.0,
                        faststart=True)  # MP4: its index first, so a cut one is readable
    src = cut(whole, tmp_path, 60)
    whole.unlink()
    (item,) = plan_batch([str(src)], str(tmp_path / "out")).items
    worker = ItemWorker(PipelineConfig().replace(threads=1), engine="test")
    try:
        record = worker.process(item)
    finally:
        worker.close()
    assert record["status"] == "ok" and record["frames"] < 50
    assert record["warning"].startswith("damaged, processed as far as it decodes")
    assert record["damage"]  # where (s)


def _x264_threads(path: Path) -> bytes:
    """The thread count in the x264 settings text an H.264 output carries (its SEI)."""
    data = path.read_bytes()
    at = data.index(b" threads=")
    return data[at + 9:data.index(b" ", at + 1)]


def test_the_encoder_keeps_to_the_threads_it_is_given(tmp_path):
    from faceveil.media.video import EncodeOptions
    from faceveil.pipeline import Pipeline
    from faceveil.pipeline.video import process_video

    src = write_video(tmp_path / "in.mp4", [smooth(64, 96, i) for i in range(4)])
    pipeline = Pipeline(PipelineConfig())
    for threads, want in ((1, b"1"), (3, b"3")):
        out = tmp_path / f"out{threads}.mp4"
        process_video(src, out, pipeline, encode=EncodeOptions(preset="ultrafast", threads=threads))
        assert _x264_threads(out) == want
    with pytest.raises(ConfigError, match="at least 1"):
        EncodeOptions(threads=0)


def test_a_batch_worker_encodes_on_its_share_of_the_cores():
    from faceveil.batch.work import ItemOptions, settings_fingerprint

    worker = ItemWorker(PipelineConfig().replace(threads=1), engine="test")
    try:
        assert worker.options.encode.threads == 1
        # the thread count changes no pixel: --resume still finds the items done
        assert worker.settings == settings_fingerprint(PipelineConfig(), ItemOptions())
    finally:
        worker.close()
