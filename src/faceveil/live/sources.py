"""Where live frames come from: cameras, network streams, and files played at their real rate.

A source opens, hands out decoded RGB frames until it ends, and closes; it may be opened again
after it dropped (`reconnectable`). Every wait has a limit: opening gives up after
`LiveConfig.open_timeout`, reading after `read_timeout` seconds without data, so a dead camera
or a silent URL ends in a `SourceError`, never a hang.

- `0`, `1`, ...: a camera by index, through OpenCV (V4L2, AVFoundation, Media Foundation...);
- `/dev/video0`: a camera by device path (OpenCV's V4L2 backend);
- `rtsp://`, `rtsps://`, `rtmp://`, `http(s)://`, `tcp://`, `udp://`, `rtp://`, `srt://`: a
  network stream through PyAV (FFmpeg); RTSP over TCP;
- anything else: a video file, decoded with PyAV and played at the pace of its timestamps
  (the caller paces; see `Source.paced`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ..config import LiveConfig
from ..errors import FaceveilError

log = logging.getLogger(__name__)

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "tcp", "udp", "rtp",
                             "srt"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class SourceError(FaceveilError, OSError):
    """A live source cannot be opened, or stopped giving frames."""


@dataclass(frozen=True)
class Captured:
    """One frame as it came from the source."""

    image: np.ndarray  # RGB uint8, H x W x 3
    number: int  # the frame's place in the stream, from 0, counting every frame the source gave
    captured: float  # time.monotonic() when it arrived (files: when it was due)
    pts: float | None = None  # the source's timestamp in seconds, if it has one


class Source(Protocol):
    name: str  # for messages (credentials removed)
    reconnectable: bool  # worth opening again after it dropped (network streams, cameras)
    paced: bool  # frames come as fast as they decode and must be played at their timestamps

    def open(self) -> None: ...

    def frames(self) -> Iterator[tuple[np.ndarray, float | None, float]]:
        """(RGB image, pts in seconds or None, arrival time) until the source ends; raises
        SourceError when it fails."""
        ...

    def close(self) -> None: ...


def redact(url: str) -> str:
    """The URL without a password (rtsp://user:secret@cam/ -> rtsp://user:***@cam/)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def open_source(text: str, config: LiveConfig | None = None) -> Source:
    """The source a command-line argument names (not opened yet); SourceError when it cannot be."""
    config = config or LiveConfig()
    text = str(text).strip()
    if not text:
        raise SourceError("no source given: a camera number, a device, a URL or a video file")
    if text.isdigit():
        return CameraSource(int(text), config)
    if m := _SCHEME.match(text):
        scheme = m.group(1).lower()
        if scheme == "file":
            return _file_source(urlsplit(text).path, config)
        if scheme not in NETWORK_SCHEMES:
            raise SourceError(f"{redact(text)}: unsupported kind of stream {scheme}:// (use one of "
                              f"{', '.join(sorted(NETWORK_SCHEMES))})")
        return StreamSource(text, config, network=True)
    if text.startswith("/dev/"):
        return CameraSource(text, config)
    return _file_source(text, config)


def _file_source(path: str, config: LiveConfig) -> StreamSource:
    p = Path(path).expanduser()
    if not p.exists():
        raise SourceError(f"{path}: no such file (a live source is a camera number, a device, "
                          "a URL or a video file)")
    if p.is_dir():
        raise SourceError(f"{path}: is a folder, not a video")
    return StreamSource(str(p), config, network=False)


def _av():
    import av  # imported late so `import faceveil` stays light

    return av


def describe_av_error(exc: BaseException, timeout: float) -> str:
    """One line for an FFmpeg failure."""
    av = _av()
    if isinstance(exc, av.error.ExitError):  # the interrupt callback: the timeout ran out
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if isinstance(exc, av.error.InvalidDataError):
        return "not a video stream faceveil can read (unknown format or damaged)"
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r":\s*'[^']*'$", "", text)  # FFmpeg repeats the URL, password and all


class StreamSource:
    """A network stream or a video file, through PyAV."""

    def __init__(self, url: str, config: LiveConfig, *, network: bool) -> None:
        self.url, self.config, self.network = url, config, network
        self.name = redact(url)
        self.reconnectable = network
        self.paced = not network  # a file decodes faster than real time; the stream is the clock
        self.container: Any = None
        self.stream: Any = None
        self.damaged = 0  # packets that did not decode
        # Given the packets of the first audio stream, when set (a recording keeps the sound);
        # called on the reading thread.
        self.on_audio: Callable[[Any], None] | None = None

    @property
    def audio_stream(self) -> Any:
        """The first audio stream (open sources only), or None."""
        audio = self.container.streams.audio if self.container is not None else ()
        return audio[0] if audio else None

    def open(self) -> None:
        av = _av()
        self.close()
        options: dict[str, str] = {}
        if self.network:
            scheme = self.url.split(":", 1)[0].lower()
            if scheme in ("rtsp", "rtsps"):
                options["rtsp_transport"] = "tcp"  # no lost packets, works through NAT
            # Not fflags=nobuffer: it throws away the packets read while probing the stream.
        try:
            self.container = av.open(self.url, options=options, metadata_errors="ignore",
                                     timeout=(self.config.open_timeout, self.config.read_timeout))
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self.name}: cannot open: "
                              f"{describe_av_error(exc, self.config.open_timeout)}") from None
        except OSError as exc:
            raise SourceError(f"{self.name}: cannot open: {exc.strerror or exc}") from None
        if not self.container.streams.video:
            self.close()
            raise SourceError(f"{self.name}: has no video stream")
        self.stream = self.container.streams.video[0]
        # Files: decode on frame threads (they run ahead of the clock anyway). Live streams:
        # slice threads, since frame threads hold every frame back by one per thread.
        self.stream.thread_type = "SLICE" if self.network else "AUTO"

    def frames(self) -> Iterator[tuple[np.ndarray, float | None, float]]:
        av = _av()
        if self.container is None:
            self.open()
        audio = self.audio_stream if self.on_audio is not None else None
        demux = self.container.demux(self.stream, *([audio] if audio is not None else []))
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.EOFError:
                break
            except (av.error.FFmpegError, OSError) as exc:
                raise SourceError(f"{self.name}: stopped: "
                                  f"{describe_av_error(exc, self.config.read_timeout)}") from None
            if packet.stream is not self.stream:  # audio, for a recording
                if self.on_audio is not None and packet.dts is not None and packet.size:
                    self.on_audio(packet)
                continue
            arrived = time.monotonic()
            try:
                decoded = self.stream.decode(packet)
            except av.error.FFmpegError as exc:  # damage: skip the packet, as players do
                self.damaged += 1
                log.debug("%s: a packet did not decode: %s", self.name, exc)
                continue
            for frame in decoded:
                yield _rgb(frame), frame.time, arrived
        try:
            for frame in self.stream.decode(None):
                yield _rgb(frame), frame.time, time.monotonic()
        except av.error.FFmpegError:
            pass

    def close(self) -> None:
        if self.container is not None:
            try:
                self.container.close()
            except Exception:  # already broken; nothing more to do with it
                log.debug("closing %s failed", self.name, exc_info=True)
        self.container = self.stream = None


def _rgb(frame: Any) -> np.ndarray:
    """An av.VideoFrame as upright RGB."""
    image = frame.to_ndarray(format="rgb24")
    turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


class CameraSource:
    """A camera through OpenCV: an index (0 is the first camera) or a device path."""

    reconnectable = True
    paced = False

    def __init__(self, device: int | str, config: LiveConfig) -> None:
        self.device, self.config = device, config
        self.name = f"camera {device}" if isinstance(device, int) else str(device)
        self.capture: Any = None

    def open(self) -> None:
        import cv2

        self.close()
        old = cv2.getLogLevel()
        cv2.setLogLevel(0)  # OpenCV's own warnings; the error below says it once, clearly
        try:
            capture = cv2.VideoCapture(self.device)
            if capture.isOpened():
                # Where the backend supports it: no waiting for ever on a silent camera (V4L2
                # itself gives up after 10 s).
                capture.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(1000 * self.config.read_timeout))
                capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest picture, not a queue of old ones
        finally:
            cv2.setLogLevel(old)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{self.name}: cannot open: no such camera, or it is busy or not "
                              "permitted")
        self.capture = capture

    def frames(self) -> Iterator[tuple[np.ndarray, float | None, float]]:
        import cv2

        if self.capture is None:
            self.open()
        while True:
            ok, bgr = self.capture.read()
            arrived = time.monotonic()
            if not ok or bgr is None:
                raise SourceError(f"{self.name}: stopped giving pictures")
            if bgr.ndim == 2:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None, arrived

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
        self.capture = None
