"""Live: sources, sinks, the real-time runner and `faceveil live`, over real sockets on 127.0.0.1.

Streams are real: a clip is remuxed (no re-encode) into MPEG-TS and pushed over TCP at its real
rate by `Streamer`, and read back by faceveil through PyAV. The detector is the real one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import require_data
from faceveil.cli import ExitCode, main
from faceveil.config import LiveConfig
from faceveil.errors import ConfigError
from faceveil.live import (
    Grabber,
    MjpegServer,
    Recorder,
    SourceError,
    backoff_delays,
    open_source,
    run_live,
)
from faceveil.live.runner import _Recent
from faceveil.live.sinks import BOUNDARY, parse_address, preview_unavailable
from faceveil.live.sources import CameraSource, Captured, StreamSource, redact
from faceveil.pipeline.pipeline import Pipeline

CLIP = ("videos", "hamilton_short_clip.mp4")  # 640x360 H.264, 29.97 fps, 275 frames, stage + audience


# ------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    """A 160x120 H.264 clip, 30 fps, 45 frames (1.5 s), a keyframe every 15: moving noise."""
    path = tmp_path_factory.mktemp("live") / "small.mp4"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (120, 320, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "g": "15"})
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for i in range(45):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, i * 3:i * 3 + 160]),
                                               format="rgb24")
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return path


class Streamer:
    """Serves a video file over TCP on 127.0.0.1 as MPEG-TS, packets copied, at the real rate.

    `plan`: one entry per connection it accepts, the number of video packets to send before
    closing that connection (None: all). `stall`: after sending, keep the connection open and
    silent instead of closing it. After the last connection the port is closed (refused).
    """

    def __init__(self, path: Path, plan: list[int | None], *, stall: bool = False) -> None:
        self.path, self.plan, self.stall = path, plan, stall
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.sent: list[int] = []
        self.errors: list[BaseException] = []
        self.done = threading.Event()
        self._release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            for limit in self.plan:
                self.listener.settimeout(30)
                conn, _ = self.listener.accept()
                with conn:
                    self.sent.append(self._send(conn, limit))
                    if self.stall:
                        self._release.wait(30)
        except BaseException as exc:
            if not self._release.is_set():  # not just closed under its feet
                self.errors.append(exc)
        finally:
            self.listener.close()
            self.done.set()

    def _send(self, conn: socket.socket, limit: int | None) -> int:
        sink = conn.makefile("wb", buffering=0)
        n = 0
        with av.open(str(self.path)) as src:
            vs = src.streams.video[0]
            out = av.open(sink, "w", format="mpegts")
            ovs = out.add_stream_from_template(vs)
            start, first = time.monotonic(), None
            try:
                for packet in src.demux(vs):
                    if packet.dts is None:
                        continue
                    if limit is not None and n >= limit:
                        break
                    t = float(packet.dts * packet.time_base)
                    first = t if first is None else first
                    wait = start + (t - first) - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    packet.stream = ovs
                    out.mux(packet)
                    n += 1
                out.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the reader left
        return n

    def close(self) -> None:
        self._release.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # ends a waiting accept()
        self.thread.join(10)


class MjpegReader(threading.Thread):
    """Reads every part of an MJPEG stream until it ends; the JPEG bytes are in `.frames`."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.frames, self.error, self.ended = url, [], None, False
        self.ctype = ""

    def run(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=30) as resp:
                self.ctype = resp.headers["Content-Type"]
                while True:
                    line = resp.readline()
                    if not line:
                        return
                    line = line.strip()
                    if line == f"--{BOUNDARY}--".encode():
                        self.ended = True
                        return
                    if line != f"--{BOUNDARY}".encode():
                        continue
                    length = 0
                    while (header := resp.readline().strip()):
                        name, _, value = header.decode().partition(":")
                        if name.lower() == "content-length":
                            length = int(value)
                    self.frames.append(resp.read(length))
        except Exception as exc:
            self.error = exc



def decode_jpeg(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def video_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------- parsing, etc.


@pytest.mark.parametrize(("text", "kind", "network"), [
    ("0", CameraSource, None),
    ("2", CameraSource, None),
    ("/dev/video0", CameraSource, None),
    ("rtsp://user:pw@cam.local:554/stream", StreamSource, True),
    ("http://127.0.0.1:8080/video.ts", StreamSource, True),
    ("udp://@239.0.0.1:1234", StreamSource, True),
    ("TCP://127.0.0.1:5000", StreamSource, True),
])
def test_open_source_picks_the_kind(text, kind, network):
    src = open_source(text)
    assert isinstance(src, kind)
    if network is not None:
        assert src.network is network and src.reconnectable and not src.paced
    assert "pw" not in src.name


def test_open_source_file_is_paced(small_clip):
    src = open_source(str(small_clip))
    assert isinstance(src, StreamSource) and src.paced and not src.reconnectable
    assert open_source(f"file://{small_clip}").paced


@pytest.mark.parametrize(("text", "message"), [
    ("/nonexistent/clip.mp4", "no such file"),
    ("ftp://example.com/x.mp4", "unsupported kind of stream"),
    ("", "no source given"),
])
def test_bad_sources_are_refused_before_opening(text, message):
    with pytest.raises(SourceError, match=message):
        open_source(text)


def test_a_folder_is_not_a_source(tmp_path):
    with pytest.raises(SourceError, match="is a folder"):
        open_source(str(tmp_path))


@pytest.mark.parametrize(("url", "want"), [
    ("rtsp://admin:secret@10.0.0.2:554/live", "rtsp://admin:***@10.0.0.2:554/live"),
    ("rtsp://10.0.0.2/live", "rtsp://10.0.0.2/live"),
    ("http://u:p@h/x?y=1", "http://u:***@h/x?y=1"),
])
def test_redact(url, want):
    assert redact(url) == want


@pytest.mark.parametrize(("config", "want"), [
    (LiveConfig(), [0.5, 1.0, 2.0, 4.0, 8.0]),
    (LiveConfig(reconnects=7, backoff=1, backoff_max=5), [1, 2, 4, 5, 5, 5, 5]),
    (LiveConfig(reconnects=0), []),
])
def test_backoff_doubles_up_to_a_limit(config, want):
    assert backoff_delays(config) == want


@pytest.mark.parametrize(("text", "want"), [
    (None, ("127.0.0.1", 8765)), ("", ("127.0.0.1", 8765)), ("9000", ("127.0.0.1", 9000)),
    ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:8765", ("::1", 8765)), ("localhost:0", ("localhost", 0)),
])
def test_parse_address(text, want):
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["abc", "1:2:x", "70000"])
def test_parse_address_refuses(text):
    with pytest.raises(ConfigError):
        parse_address(text)


@pytest.mark.parametrize("config", [
    {"open_timeout": 0}, {"reconnects": -1}, {"backoff": 10, "backoff_max": 1}, {"max_failures": 0},
    {"max_delay": -1},
])
def test_live_config_checks(config):
    with pytest.raises(ConfigError):
        LiveConfig(**config)


def test_the_summary_says_the_counts_once():
    """LiveReport keeps no copy of its counts: the --json summary's "faces" key (face boxes
    hidden, summed over the frames out) is read from counts.face_frames."""
    from faceveil.live import LiveReport
    from faceveil.types import Counts

    report = LiveReport("0", counts=Counts(faces=2, face_frames=7, boxes=5, filled=2, frames=4))
    doc = report.to_dict()
    assert doc["faces"] == 7 and doc["counts"] == report.counts.to_dict()
    assert not hasattr(report, "faces")


# ------------------------------------------------------------------------------ frame dropping


def frame(n: int, age: float = 0.0) -> Captured:
    return Captured(np.zeros((2, 2, 3), np.uint8), n, time.monotonic() - age)


def test_only_the_newest_frame_with_no_delay_allowed():
    slot = _Recent(max_delay=0)
    for n in range(3):
        slot.put(frame(n))
    assert slot.take(0.01).number == 2 and slot.dropped == 2
    assert slot.take(0.01) is None
    slot.put(frame(3))
    slot.close()
    assert slot.take(0.01).number == 3
    assert slot.take(1.0) is None  # closed: no waiting


def test_frames_wait_up_to_max_delay_oldest_first():
    """A hiccup is caught up on; a frame that waited too long is dropped, but never the newest."""
    slot = _Recent(max_delay=0.1, depth=4)
    for n, age in enumerate([0.5, 0.2, 0.05, 0.0]):
        slot.put(frame(n, age))
    assert [slot.take(0.01).number for _ in range(2)] == [2, 3]
    assert slot.dropped == 2  # 0 and 1 waited more than 0.1 s
    slot.put(frame(4, age=5.0))
    assert slot.take(0.01).number == 4, "the newest is shown however late"
    for n in range(5, 11):
        slot.put(frame(n))
    assert slot.dropped == 4 and slot.take(0.01).number == 7, "at most `depth` frames wait"


@pytest.mark.slow
def test_a_slow_reader_gets_the_newest_frames_and_the_rest_are_counted_dropped(small_clip):
    """A file played at 30 fps, taken at most ~7 times a second: frames are skipped, not
    queued, and every frame is either taken or counted as dropped."""
    stop = threading.Event()
    grabber = Grabber(open_source(str(small_clip)), LiveConfig(), stop)
    grabber.start()
    taken = []
    while not grabber.done:
        cap = grabber.take(0.5)
        if cap is not None:
            taken.append(cap.number)
            time.sleep(0.15)  # processing slower than the source
    assert grabber.frames_in == 45
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert grabber.dropped > 0
    assert len(taken) + grabber.dropped == grabber.frames_in
    assert grabber.ended == "end of stream" and not grabber.failed


# ----------------------------------------------------------------------- bad sources: main()


def run_cli(*argv: str) -> int:
    return main([str(a) for a in argv])


def test_cli_nonexistent_file_is_one_clean_line(tmp_path, capsys):
    code = run_cli("live", tmp_path / "nope.mp4", "--serve", "127.0.0.1:0")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED
    assert "no such file" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_refused_url_is_one_clean_error(tmp_path, capsys):
    port = free_port()  # nothing listens there
    code = run_cli("live", f"tcp://127.0.0.1:{port}", "--record", tmp_path / "r.mp4", "--no-preview")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED
    assert "connection refused" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir()), "no recording, not even a temporary file, is left"


def test_cli_missing_camera_is_a_clean_error(capsys):
    code = run_cli("live", "7", "--serve", "127.0.0.1:0")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED and "camera 7: cannot open" in err and "Traceback" not in err


def test_silent_server_times_out_on_open():
    """A server that accepts and never sends: opening gives up after the timeout, no hang."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        src = open_source(f"tcp://127.0.0.1:{port}", LiveConfig(open_timeout=0.5, read_timeout=0.5))
        with pytest.raises(SourceError, match=r"no answer within 0.5 s"):
            src.open()


def test_no_output_possible_is_a_clear_error(monkeypatch, capsys, small_clip):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert preview_unavailable() is not None
    assert run_cli("live", small_clip) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "no output" in err and "--serve" in err and "Traceback" not in err
    assert run_cli("live", small_clip, "--no-preview") == ExitCode.USAGE


def test_cli_remote_serving_needs_the_flag(small_clip, capsys):
    assert run_cli("live", small_clip, "--serve", "0.0.0.0:0", "--no-preview") == ExitCode.USAGE
    assert "--allow-remote" in capsys.readouterr().err


def test_remote_serving_needs_the_flag_and_warns(logs):
    with pytest.raises(ConfigError, match="--allow-remote"):
        MjpegServer("0.0.0.0", 0)
    server = MjpegServer("0.0.0.0", 0, allow_remote=True)
    server.close()
    assert "anyone who can reach this address" in logs.text


def test_cli_live_keep_an_unknown_person_is_one_clean_line(small_clip, tmp_path, capsys):
    """--keep/--only work live; a person who is not in the gallery is said before anything
    starts, and nothing is recorded."""
    record = tmp_path / "r.mp4"
    code = run_cli("live", small_clip, "--no-preview", "--record", record, "--keep", "nobody_here",
                   "--gallery", tmp_path / "people.sqlite3")
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE and "no person named 'nobody_here'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("r*"))


def test_cli_refuses_a_transparent_background(small_clip, capsys):
    assert run_cli("live", small_clip, "--no-preview", "--serve", "127.0.0.1:0",
                   "--background", "transparent") == ExitCode.USAGE
    assert "transparent" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- sinks


def test_mjpeg_server_serves_page_snapshot_and_stream():
    server = MjpegServer("127.0.0.1", 0, quality=95)
    try:
        base = server.url
        page = urllib.request.urlopen(base, timeout=5).read().decode()
        assert "stream.mjpg" in page and "<img" in page
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "snapshot.jpg", timeout=5)
        assert err.value.code == 503  # nothing emitted yet: nothing to show
        reader = MjpegReader(base + "stream.mjpg")
        reader.start()
        deadline = time.monotonic() + 10
        while server.clients < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        images = [np.full((48, 64, 3), (40 * i, 200 - 40 * i, 90), np.uint8) for i in range(4)]
        for i, image in enumerate(images):
            server.send(image, frame(i))
            deadline = time.monotonic() + 10
            while len(reader.frames) <= i and time.monotonic() < deadline:
                time.sleep(0.01)
        snap = decode_jpeg(urllib.request.urlopen(base + "snapshot.jpg", timeout=5).read())
        np.testing.assert_allclose(snap, images[-1], atol=6)
    finally:
        server.close()
    reader.join(10)
    assert reader.error is None and reader.ended, "closing ends the stream with the last boundary"
    assert reader.ctype.startswith("multipart/x-mixed-replace")
    assert len(reader.frames) == len(images)
    for data, image in zip(reader.frames, images, strict=True):
        np.testing.assert_allclose(decode_jpeg(data), image, atol=6)


def test_mjpeg_server_port_in_use_is_a_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve on 127.0.0.1:{port}"):
            MjpegServer("127.0.0.1", port)


def test_recorder_writes_at_capture_pace_and_atomically(tmp_path):
    path = tmp_path / "rec.mp4"
    rec = Recorder(path, preset="ultrafast")
    start = time.monotonic()
    for i in range(20):
        image = np.full((120, 161, 3), (10 * i, 50, 200 - 5 * i), np.uint8)  # odd width: cropped
        rec.send(image, Captured(image, i, start + i / 10))  # 10 fps, by capture time
    assert not path.exists(), "nothing under the final name until it is finished"
    rec.close()
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == ["rec.mp4"]
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == rec.frames == 20
    assert (frames[0].width, frames[0].height) == (160, 120)
    assert frames[-1].time - frames[0].time == pytest.approx(1.9, abs=0.01)


def test_recorder_abort_and_empty_leave_nothing(tmp_path, logs):
    rec = Recorder(tmp_path / "a.mp4")
    image = np.zeros((64, 64, 3), np.uint8)
    rec.send(image, Captured(image, 0, time.monotonic()))
    rec.abort()
    Recorder(tmp_path / "b.mkv").close()
    assert "nothing was recorded" in logs.text
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"cannot record \.txt"):
        Recorder(tmp_path / "c.txt")


# ------------------------------------------------------------------ the runner over real TCP


@pytest.mark.slow
def test_reconnects_with_backoff_after_the_stream_drops(small_clip, logs):
    """Connection 1 drops after 20 packets, connection 2 sends the whole clip, then the port is
    closed: one reconnect, then the attempts (0.05 s, then doubled) fail and the run ends."""
    streamer = Streamer(small_clip, [20, None])
    config = LiveConfig(reconnects=2, backoff=0.05, backoff_max=1.0, open_timeout=5, read_timeout=5)
    seen = []

    class Collect:
        name, wants_stop = "collect", False

        def send(self, image, cap):
            seen.append(cap.number)

        def close(self):
            pass

    try:
        report = run_live(streamer.url, Pipeline(quality="fast"), [Collect()], config)
    finally:
        streamer.close()
    assert not streamer.errors
    assert streamer.sent == [20, 45]
    assert report.reconnects == 1
    assert not report.failed and "no luck reconnecting after 2 attempt(s)" in report.ended
    assert report.frames_in > 45 and report.frames_out == len(seen) > 0
    assert seen == sorted(seen), "frame numbers go on across the reconnect"
    waits = [float(m) for m in re.findall(r"reconnecting in ([\d.]+) s", logs.text)]
    assert waits == [0.05, 0.05, 0.1], "after the reconnect the attempts start again"
    assert "reconnected" in logs.text
    assert report.frames_in == report.frames_out + report.dropped + report.withheld


@pytest.mark.slow
def test_reconnect_attempts_are_bounded_when_no_frames_come(small_clip, logs):
    """A server that takes every connection and sends nothing: the attempts do not start again
    (they only do once frames flow), so the run ends after `reconnects` of them."""
    streamer = Streamer(small_clip, [10, 0, 0, 0, 0])
    config = LiveConfig(reconnects=3, backoff=0.05, open_timeout=0.5, read_timeout=0.5)
    try:
        report = run_live(streamer.url, Pipeline(quality="fast"), [_Null()], config)
    finally:
        streamer.close()
    assert "3 reconnect attempt(s)" in report.ended or "after 3 attempt(s)" in report.ended
    assert re.findall(r"attempt (\d) of 3", logs.text) == ["1", "2", "3"]


@pytest.mark.slow
def test_a_stream_that_goes_silent_ends_with_a_clear_error(small_clip):
    streamer = Streamer(small_clip, [15], stall=True)
    try:
        report = run_live(streamer.url, Pipeline(quality="fast"), [_Null()],
                          LiveConfig(reconnects=0, open_timeout=2, read_timeout=1))
    finally:
        streamer.close()
    assert report.failed and "no answer within 1 s" in report.ended
    assert report.frames_in > 0


class _Null:
    name, wants_stop = "null", False

    def send(self, image, cap):
        pass

    def close(self):
        pass


# --------------------------------------------------------------- end to end: `faceveil live`


def _faceveil() -> list[str]:
    return [sys.executable, "-m", "faceveil"]


def _wait_for_url(proc: subprocess.Popen, lines: list[str], timeout: float = 60) -> str:
    """Read stderr lines (kept in `lines`) until the 'serving' line (the rest: communicate())."""
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if m := re.search(r"serving (http://\S+/)", line):
            url = m.group(1)
            break
    assert url, "".join(lines)
    return url


def _matcher(originals: list[np.ndarray]):
    """Finds which original frame an output frame shows: the smallest mean difference of small
    grey pictures, over the pixels the fill (magenta) left alone. Outputs come in stream order,
    so each match is searched from the previous one on."""
    size = (160, 90)

    def thumb(img):
        return cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), size,
                          interpolation=cv2.INTER_AREA).astype(np.float32)
    thumbs = np.stack([thumb(o) for o in originals])
    last = [0]

    def match(img) -> tuple[int, float]:
        r, g, b = (img[..., c].astype(np.int16) for c in range(3))
        fill = ((r - g > 60) & (b - g > 60)).astype(np.float32)
        keep = cv2.resize(fill, size, interpolation=cv2.INTER_AREA) < 0.01
        d = np.abs(thumbs[last[0]:] - thumb(img))[:, keep].mean(axis=1)
        best = int(np.argmin(d))
        last[0] += best
        return last[0], float(d[best])
    return match


def _covered(original: np.ndarray, output: np.ndarray, box, *, level: int = 60) -> bool:
    """The data README's criterion, for lossy outputs: at least 80% of the central 60% x 60% of
    the box changed by more than `level` (in some channel)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * 0.2, (y2 - y1) * 0.2
    h, w = original.shape[:2]
    ys = slice(int(max(0, np.floor(y1 + my))), int(min(h, np.ceil(y2 - my))))
    xs = slice(int(max(0, np.floor(x1 + mx))), int(min(w, np.ceil(x2 - mx))))
    diff = np.abs(output[ys, xs].astype(np.int16) - original[ys, xs]).max(axis=2)
    return diff.size > 0 and float((diff > level).mean()) >= 0.8


def _coverage(outputs: list[np.ndarray], originals: list[np.ndarray], match, detector, *,
              quality: int | None = None) -> dict:
    """Faces the detector finds on the original frame each output shows; covered or not."""
    from faceveil.types import Frame

    faces = covered = control = 0
    worst = 0.0
    missed = []
    for out in outputs:
        i, dist = match(out)
        worst = max(worst, dist)
        orig = originals[i]
        dets = detector.detect(Frame(orig))
        dets = dets[(dets.scores >= 0.5) & (dets.heights >= 16)]
        if quality is not None:  # the control: the original through the same lossy codec
            _, buf = cv2.imencode(".jpg", cv2.cvtColor(orig, cv2.COLOR_RGB2BGR),
                                  [cv2.IMWRITE_JPEG_QUALITY, quality])
            same = decode_jpeg(buf.tobytes())
        for box in dets.xyxy:
            faces += 1
            if _covered(orig, out, box):
                covered += 1
            else:
                missed.append((i, [round(float(v)) for v in box]))
            if quality is not None:
                control += _covered(orig, same, box)
    return {"faces": faces, "covered": covered, "control": control, "worst_match": worst,
            "missed": missed}


@pytest.mark.slow
def test_live_network_stream_served_and_recorded_anonymized(tmp_path):
    """The stage clip pushed over TCP (MPEG-TS, real rate) -> `faceveil live` as a subprocess with
    --serve and --record -> every served and recorded frame checked against the original frame
    it shows: the faces the detector finds there (score >= 0.5, >= 16 px) are covered.

    The fill is magenta so that 'changed' survives JPEG and H.264 losses: a pixel counts as
    changed when it moved by more than 60 levels, and a control (the original frame through the
    same JPEG) must not count as covered, so the check measures hiding, not compression.
    """
    clip = require_data(*CLIP)
    originals = video_frames(clip)
    record = tmp_path / "session.mp4"
    streamer = Streamer(clip, [None])
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [*_faceveil(), "live", streamer.url, "--serve", "127.0.0.1:0", "--record", str(record),
           "--method", "solid", "--color", "#ff00ff", "--reconnect", "1", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    try:
        url = _wait_for_url(proc, lines)
        reader = MjpegReader(url + "stream.mjpg")
        reader.start()
        out, rest = proc.communicate(timeout=120)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
        streamer.close()
    reader.join(10)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "no preview window" in err  # said once, and the run went on
    summary = [ln for ln in err.splitlines() if ln.startswith("faceveil: live ")]
    assert len(summary) == 1 and "end of stream" in summary[0], err
    doc = json.loads(out)
    assert doc["frames_in"] == streamer.sent[0] == len(originals)
    assert doc["frames_in"] == doc["frames_out"] + doc["dropped"] + doc["withheld"]
    assert doc["frames_out"] > 0 and not doc["failed"]
    assert doc["faces"] == doc["counts"]["face_frames"]  # one count, said twice for old readers
    assert doc["recording"]["ok"] and record.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name != record.name], "no temporary file left"

    recorded = video_frames(record)
    assert len(recorded) == doc["recording"]["frames"] == doc["frames_out"] - doc["recording"]["dropped"]
    # Frames that waited too long for detection are dropped, never shown unchecked: on a busy
    # machine few come out (25 of 275 at load 19; all of them on an idle one).
    assert reader.error is None and reader.ended and len(reader.frames) > 10
    served = [decode_jpeg(data) for data in reader.frames]

    from faceveil.config import DetectorConfig
    from faceveil.detection import create_detector

    detector = create_detector(DetectorConfig())
    results = {  # every 3rd frame: enough frames, a bearable time
        "served": _coverage(served[::3], originals, _matcher(originals), detector, quality=80),
        "recorded": _coverage(recorded[::3], originals, _matcher(originals), detector),
    }
    for name, r in results.items():
        assert r["worst_match"] < 4, f"{name}: an output frame matches no original frame: {r}"
        # Frames that waited too long for detection are dropped (never shown undetected): on a
        # busy machine fewer frames, and faces, come out (41 at load 12).
        assert r["faces"] > 15, f"{name}: {r}"
        # Measured: 0.996 with live seeing 320 px (a face half hidden behind the pianist's head
        # and a blurred hand at the frame's edge); 1.0 since it sees 640 px as files do.
        assert r["covered"] / r["faces"] >= 0.97, f"{name}: {r}"
    assert results["served"]["control"] == 0, "JPEG loss alone never counts as hidden"


@pytest.mark.slow
def test_sigterm_ends_cleanly_with_a_complete_recording(tmp_path, small_clip):
    """SIGTERM in the middle of a file played at its real rate: exit 0, summary, playable file."""
    clip = small_clip
    data = Path(os.environ.get("FACEVEIL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    if (data / CLIP[0] / CLIP[1]).is_file():
        clip = data / CLIP[0] / CLIP[1]  # 9 s: long enough to stop it in the middle
    record = tmp_path / "part.mkv"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([*_faceveil(), "live", str(clip), "--serve", "127.0.0.1:0", "--no-preview",
                             "--record", str(record), "--fps-overlay"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    try:
        url = _wait_for_url(proc, lines)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until a frame has been emitted
            try:
                urllib.request.urlopen(url + "snapshot.jpg", timeout=5).read()
                break
            except urllib.error.HTTPError:
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines)
    assert proc.returncode == 0, err
    summary = [ln for ln in err.splitlines() if ln.startswith("faceveil: live ")]
    assert len(summary) == 1 and "stopped" in summary[0], err
    m = re.search(r"recorded (\d+) frames", summary[0])
    assert m, summary[0]
    assert len(video_frames(record)) == int(m.group(1)) > 0


class FlakyDetector:
    """The real CenterFace detector, failing on every call after the first `good` ones."""

    name = "flaky"

    def __init__(self, good: int) -> None:
        from faceveil.config import DetectorConfig
        from faceveil.detection import create_detector

        self.real, self.good, self.calls = create_detector(DetectorConfig()), good, 0

    def detect(self, frame):
        self.calls += 1
        if self.calls > self.good:
            raise RuntimeError("simulated inference failure")
        return self.real.detect(frame)


@pytest.mark.slow
def test_failing_detection_withholds_frames_then_stops(small_clip):
    """Fail closed: frames keep coming out only while the last good detection is recent; then
    they wait for a detection of their own, which fails, so they are withheld; after
    `max_failures` failures in a row the run stops with an error."""
    seen = []

    class Collect(_Null):
        def send(self, image, cap):
            seen.append(cap.number)

    pipeline = Pipeline(detector=FlakyDetector(good=3))  # the warm-up, the first frame, one more
    report = run_live(str(small_clip), pipeline, [Collect()], LiveConfig(max_failures=20))
    assert report.failed and "failed 20 times in a row" in report.ended
    assert report.withheld >= 1
    assert seen and report.frames_out == len(seen) < 45
    assert report.detect_lag_max <= 16, "no frame shown with faces older than 16 frames"

