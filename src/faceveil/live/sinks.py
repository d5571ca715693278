"""Where anonymized live frames go: a preview window, an MJPEG server, a recording.

Every sink gets only what the runner emits, which is anonymized by construction; none of them
ever sees a source frame. `send` must return quickly (the runner is waiting): the server
encodes JPEG on its clients' threads, once per frame, and the recorder encodes on its own
thread.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import html
import http.server
import ipaddress
import logging
import os
import queue
import socket
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np

from .. import http_guard
from .._files import atomic_path
from ..errors import ConfigError, OutputError, UnsupportedMediaError
from .sources import Captured

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


class Sink(Protocol):
    name: str
    wants_stop: bool  # the sink asks the run to end (q pressed, window closed)

    def send(self, image: np.ndarray, frame: Captured) -> None:
        """Take one anonymized RGB frame; return quickly."""
        ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------ preview


def preview_unavailable() -> str | None:
    """Why no preview window can be shown here, or None when one can."""
    import cv2

    if sys.platform not in ("win32", "darwin") and not (os.environ.get("DISPLAY")
                                                         or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    info = cv2.getBuildInformation()
    gui = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                if line.strip().startswith("GUI:")), "")
    if gui.upper() == "NONE":
        return ("this OpenCV has no window support (opencv-python-headless); install "
                "opencv-python in place of it for a preview")
    return None


class PreviewWindow:
    """An OpenCV window on this machine; q or Esc (or closing the window) ends the run.

    OpenCV windows belong to one thread: create, feed and close it on the runner's thread.
    """

    name = "preview"

    def __init__(self, title: str = "faceveil live (q to quit)") -> None:
        import cv2

        if why := preview_unavailable():
            raise OutputError(f"no preview window: {why}")
        self.title = title
        self.wants_stop = False
        self._shown = False
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise OutputError(f"no preview window: {exc}") from None

    def send(self, image: np.ndarray, frame: Captured) -> None:
        import cv2

        cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self._shown = True
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), 27):
            self.wants_stop = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.wants_stop = True  # the user closed the window

    def close(self) -> None:
        import cv2

        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


# ------------------------------------------------------------------------------------- server

_STYLE = """
body{margin:0;background:#111;color:#bbb;font:14px system-ui,sans-serif;text-align:center}
img{display:block;margin:0 auto;max-width:100vw;max-height:calc(100vh - 2.5em)}
a{color:#8cf}
"""
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faceveil live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style></head>
<body><img src="stream.mjpg{query}" alt="the anonymized live stream">
<p>faceveil live &middot; faces are hidden before a frame is served &middot;
<a href="stream.mjpg{query}">stream.mjpg</a> (VLC, OBS) &middot;
<a href="snapshot.jpg{query}">snapshot.jpg</a></p>
</body></html>
"""
# The page's own style and the server's pictures; nothing else, from nowhere else.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_CSP = (f"default-src 'none'; img-src 'self'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'")
_HEADERS = http_guard.security_headers(_CSP)
BOUNDARY = "faceveilframe"


def parse_address(text: str | None) -> tuple[str, int]:
    """'[HOST:]PORT' (IPv6 hosts in brackets) -> (host, port); None or '' -> the default."""
    if not text:
        return DEFAULT_HOST, DEFAULT_PORT
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"--serve {text!r}: use [HOST:]PORT, e.g. 8765 or 127.0.0.1:8765") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"--serve {text!r}: the port must be 0..65535 (0: any free port)")
    return host, number


def is_loopback(host: str) -> bool:
    """True when every address `host` names is this machine's loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a client that stays connected never holds the exit up
    allow_reuse_address = True


class MjpegServer:
    """`multipart/x-mixed-replace` MJPEG at /stream.mjpg, the newest frame at /snapshot.jpg and
    a page showing the stream at /.

    Each client gets the newest frame when it is ready for one: a slow client skips frames
    rather than falling behind. Each frame is JPEG-encoded once, by the first client that
    wants it.

    The web app's rules (`faceveil.http_guard`): without a token only loopback Host names are
    answered (no DNS rebinding) and requests from other sites' pages are refused; every answer
    carries the security headers. Serving on anything but loopback needs a token; with
    `allow_remote` and none given one is made (`token`, and in `url`). A token goes as
    `Authorization: Bearer T`, as the password of HTTP Basic auth (browsers and VLC ask for it;
    any user name), or as `?token=T`; wrong ones are throttled per client address.
    """

    name = "server"

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, quality: int = 80,
                 allow_remote: bool = False, token: str | None = None) -> None:
        if not 1 <= quality <= 100:
            raise ConfigError(f"JPEG quality must be 1..100, got {quality}")
        token = http_guard.check_token(token)
        if not is_loopback(host):
            if not (allow_remote or token):
                raise ConfigError(
                    f"--serve {host}: not a loopback address, so others could watch; give an "
                    "access token with --token (or FACEVEIL_TOKEN), or add --allow-remote to "
                    "have one made")
            if token is None:
                token = http_guard.new_token()
            log.warning("serving on %s: anyone who can reach this address and has the token "
                        "can watch the stream", host)
        self.token = token
        self.throttle = http_guard.Throttle()
        self.quality = quality
        self.wants_stop = False
        self._cond = threading.Condition()
        self._image: np.ndarray | None = None
        self._seq = 0
        self._closed = False
        self._jpeg_lock = threading.Lock()
        self._jpeg: tuple[int, bytes] = (0, b"")
        self.clients = 0  # connected stream clients now
        self.served = 0  # frames sent, all clients together
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_Server", (_Server,), {"address_family": family})
        try:
            self._httpd = server_class((host, port), _handler(self))
        except OSError as exc:
            raise OutputError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = host, self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="faceveil-serve", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The page's address, with the token when there is one."""
        return self._base + self._query

    @property
    def stream_url(self) -> str:
        return f"{self._base}stream.mjpg{self._query}"

    @property
    def _base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def _query(self) -> str:
        return f"?token={quote(self.token, safe='')}" if self.token else ""

    def send(self, image: np.ndarray, frame: Captured) -> None:
        with self._cond:
            self._image = image
            self._seq += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    # ---- used by the handler threads

    def next_frame(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """(sequence number, JPEG) of the newest frame after `after`; None when closed or none came."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._seq > after, timeout)
            if self._closed or self._seq <= after or self._image is None:
                return None
            seq, image = self._seq, self._image
        return seq, self._encoded(seq, image)

    def latest(self) -> bytes | None:
        with self._cond:
            seq, image = self._seq, self._image
        return None if image is None else self._encoded(seq, image)

    @property
    def closed(self) -> bool:
        return self._closed

    def count_client(self, change: int) -> None:
        with self._cond:
            self.clients += change

    def _encoded(self, seq: int, image: np.ndarray) -> bytes:
        import cv2

        with self._jpeg_lock:
            if self._jpeg[0] != seq:
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if not ok:
                    raise OutputError("JPEG encoding failed")
                self._jpeg = (seq, buf.tobytes())
            return self._jpeg[1]


def _handler(server: MjpegServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "faceveil"
        sys_version = ""
        timeout = 30  # a client that sends no request (or takes no frame) for this long is dropped

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("serve: %s - %s", self.address_string(), format % args)

        def send_response(self, code: int, message: str | None = None) -> None:
            super().send_response(code, message)
            for key, value in _HEADERS.items():  # on every answer, errors included
                self.send_header(key, value)

        def _headers(self, status: int, ctype: str, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Cache-Control", "no-store, no-cache, must-revalidate, private")
            self.send_header("Pragma", "no-cache")
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()

        def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            body = (message + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _refusal(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, dict] | None:
            host = self.headers.get("Host", "")
            why = http_guard.host_refusal(host, token=server.token is not None)
            if why:
                return 403, why, {}
            if path != "/" and http_guard.cross_site(self.headers.get, host):
                return 403, "requests from other sites are refused", {}
            if server.token is None:
                return None
            client = self.client_address[0]
            wait = server.throttle.wait(client)
            if wait > 0:
                return 429, f"too many wrong tokens; try again in {wait:.0f} s", {
                    "Retry-After": str(max(1, round(wait + 0.5)))}
            given = self._given_token(query)
            if http_guard.token_matches(given, server.token):
                server.throttle.succeeded(client)
                return None
            if given:
                server.throttle.failed(client)
            return 401, ("this stream needs its access token: open the address faceveil printed "
                         "(...?token=...), or give the token as the password"), {
                "WWW-Authenticate": 'Basic realm="faceveil live", charset="UTF-8"'}

        def _given_token(self, query: dict[str, list[str]]) -> str:
            auth = self.headers.get("Authorization", "")
            kind, _, value = auth.partition(" ")
            if kind.lower() == "bearer":
                return value.strip()
            if kind.lower() == "basic":
                try:
                    return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
                except (binascii.Error, UnicodeDecodeError):
                    return ""
            return self.headers.get("X-Faceveil-Token") or (query.get("token") or [""])[0]

        def do_GET(self) -> None:
            try:
                parts = urlsplit(self.path)
                path, query = parts.path, parse_qs(parts.query)
            except ValueError:
                self._refuse(400, "bad address")
                return
            try:
                refused = self._refusal(path, query)
                if refused:
                    self._refuse(*refused)
                    return
                if path in ("/", "/index.html"):
                    token = (query.get("token") or [""])[0]
                    q = f"?token={quote(token, safe='')}" if token else ""
                    body = _PAGE.format(style=_STYLE, query=html.escape(q)).encode()
                    self._headers(200, "text/html; charset=utf-8", len(body))
                    self.wfile.write(body)
                elif path == "/snapshot.jpg":
                    data = server.latest()
                    if data is None:
                        self._refuse(503, "no frame yet")
                        return
                    self._headers(200, "image/jpeg", len(data))
                    self.wfile.write(data)
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._refuse(404, "not found")
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass  # the client left

        def _stream(self) -> None:
            self._headers(200, f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            server.count_client(+1)
            try:
                seq = 0
                while not server.closed:
                    got = server.next_frame(seq, timeout=1.0)
                    if got is None:
                        continue
                    seq, data = got
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    server.served += 1  # a statistic; a lost update does not matter
                self.wfile.write(f"--{BOUNDARY}--\r\n".encode())
            finally:
                server.count_client(-1)

    return Handler


# ----------------------------------------------------------------------------------- recorder

_STOP = object()


class Recorder:
    """Encodes the emitted frames into a video file, on its own thread.

    Timestamps are the frames' capture times, so the file plays at the pace the stream was
    seen, dropped frames included (the frame before lasts longer). Written to a temporary name
    and renamed when closed: an interrupted or failed recording never leaves a half-written
    file under the final name. When encoding cannot keep up, frames are left out (counted in
    `dropped`) rather than delaying the stream.

    `keep_audio_of(source)`: the source's first audio stream is copied in, packet by packet,
    from the first recorded frame on (timed by the source's timestamps); when it cannot be,
    one warning says why (`audio` tells what happened).
    """

    name = "recording"

    def __init__(self, path: str | os.PathLike, *, crf: int = 23, preset: str = "ultrafast",
                 codec: str | None = None, fps: float = 30.0, queue_size: int = 30) -> None:
        from ..media.video import _DEFAULT_CODECS, _FORMATS, EncodeOptions

        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FORMATS:
            raise UnsupportedMediaError(
                f"cannot record {suffix or 'files without an extension'}; use one of "
                f"{', '.join(sorted(_FORMATS))}")
        EncodeOptions(codec=codec, crf=crf, preset=preset)  # checks the values and the codec
        self.format = _FORMATS[suffix]
        self.codec = codec or _DEFAULT_CODECS.get(suffix, "libx264")
        self.crf, self.preset, self.fps = crf, preset, fps
        self.wants_stop = False
        self.frames = 0  # written
        self.dropped = 0  # left out because the encoder was behind
        self.error: BaseException | None = None
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()  # fails early when the folder cannot be written
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._audio_source: Any = None
        self._audio: queue.SimpleQueue = queue.SimpleQueue()
        self.audio = "none"  # "copied", or why the recording has no sound
        self._thread = threading.Thread(target=self._run, name="faceveil-record", daemon=True)
        self._thread.start()
        self._closed = False

    def keep_audio_of(self, source: Any) -> None:
        """Copy the audio of `source` (a live Source, not started yet) into the recording."""
        if not hasattr(source, "on_audio"):
            self.audio = f"{source.name} gives pictures only (a camera's sound is not recorded)"
            log.warning("recording: no sound: %s", self.audio)
            return
        self._audio_source = source
        source.on_audio = self._audio.put

    def send(self, image: np.ndarray, frame: Captured) -> None:
        if self.error is not None:
            raise OutputError(f"recording {self.path} failed: {self.error}")
        try:
            self._queue.put_nowait((image, frame.captured, frame.pts))
        except queue.Full:
            if not self.dropped:
                log.warning("recording: the encoder cannot keep up; frames are left out of %s "
                            "(a faster --preset, or a higher --crf, helps)", self.path)
            self.dropped += 1

    def close(self) -> None:
        """Finish the file and give it its name (nothing is left when no frame was recorded)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        if self.error is None and self.frames:
            self._atomic.__exit__(None, None, None)
            return
        why = self.error or OutputError("no frame to record")
        with contextlib.suppress(BaseException):
            self._atomic.__exit__(type(why), why, None)  # removes the temporary file
        if self.error is not None:
            raise OutputError(f"recording {self.path} failed: {self.error}")
        log.warning("nothing was recorded (no frame came out); %s was not written", self.path)

    def abort(self) -> None:
        """Stop and throw away what was recorded."""
        if self._closed:
            return
        self._closed = True
        self.error = self.error or OutputError("aborted")
        self._queue.put(_STOP)
        self._thread.join()
        with contextlib.suppress(BaseException):
            self._atomic.__exit__(OutputError, self.error, None)

    def _run(self) -> None:
        av_out: Any = None
        _lower_priority(RECORD_NICENESS)  # before the encoder starts its threads: they inherit it
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                if self.error is not None:
                    continue  # drain until told to stop
                image, captured, pts = item
                if av_out is None:
                    av_out = _Encoder(self._tmp, self.format, self.codec, self.crf, self.preset,
                                      self.fps, image.shape[1], image.shape[0], captured)
                    self._add_audio(av_out, pts)
                av_out.write(image, captured)
                self.frames += 1
                av_out.copy_audio(self._audio, until=None)
            if av_out is not None:
                av_out.copy_audio(self._audio, until=av_out.last / 1000 + 0.1)
                av_out.close()
                av_out = None
        except Exception as exc:  # reported by send/close on the runner's thread
            log.debug("recording failed", exc_info=True)
            self.error = exc
            if av_out is not None:
                av_out.abort()


    def _add_audio(self, av_out: _Encoder, pts: float | None) -> None:
        source = self._audio_source
        if source is None:
            return
        stream = source.audio_stream
        if stream is None:
            self.audio = f"{source.name} has no audio stream"
            log.info("recording: no sound: %s", self.audio)
        elif pts is None:
            self.audio = f"{source.name} gives no timestamps to put its sound in time with"
            log.warning("recording: no sound: %s", self.audio)
        else:
            why = av_out.add_audio(stream, pts)
            self.audio = why or "copied"
            if why:
                log.warning("recording: no sound: %s", why)
        if self.audio != "copied":
            source.on_audio = None


# The recording waits in a queue (`queue_size` frames) and may lag; the frames a viewer waits
# for may not. So on Linux, where niceness is per thread, the recorder's thread and the encoder
# threads it starts run a little behind the detector and the loop when the cores are short.
RECORD_NICENESS = 5


def _lower_priority(step: int) -> None:
    """Make this thread (and the threads it starts later) `step` nicer; Linux only, best effort."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))
    except OSError as exc:
        log.debug("recording: could not lower the encoder's priority: %s", exc)


class _Encoder:
    """One PyAV output file with one video stream, timestamps in milliseconds; and the source's
    audio, copied."""

    def __init__(self, path: Path, fmt: str, codec: str, crf: int, preset: str, fps: float,
                 width: int, height: int, start: float) -> None:
        import av

        self.container = av.open(str(path), "w", format=fmt)
        try:
            self.stream = self.container.add_stream(codec, rate=Fraction(round(fps * 1000), 1000))
            self.stream.thread_type = "FRAME"
            cc = self.stream.codec_context
            # 4:2:0 needs even sides: an odd one loses its last pixel; 1 px becomes 2 (scaled)
            self.width, self.height = max(2, width - width % 2), max(2, height - height % 2)
            cc.width, cc.height, cc.pix_fmt = self.width, self.height, "yuv420p"
            self.time_base = Fraction(1, 1000)
            self.stream.time_base = cc.time_base = self.time_base
            if codec in ("libx264", "libx265"):
                cc.options = {"crf": str(crf), "preset": preset}
            elif codec in ("libvpx-vp9", "libvpx"):
                cc.options = {"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8"}
        except BaseException:
            self.container.close()
            raise
        self.start = start
        self.last = -1
        self.audio: Any = None  # the output audio stream
        self.audio_start = 0.0  # source time (s) of the first frame
        self._audio_dts: int | None = None

    def add_audio(self, template: Any, start: float) -> str | None:
        """Add a copy of the source's audio stream (before anything is written); why not, if not."""
        import av

        try:
            self.audio = self.container.add_stream_from_template(template)
        except (ValueError, av.error.FFmpegError) as exc:
            return (f"its audio ({template.codec_context.name}) cannot go into a "
                    f"{self.container.format.name} file: {exc}")
        self.audio_start = start
        return None

    def copy_audio(self, packets: queue.SimpleQueue, until: float | None) -> None:
        """Mux the audio packets that came, shifted so that the first frame's time is 0; those
        before it are left out (and, at the end, those after `until` seconds)."""
        while True:
            try:
                packet = packets.get_nowait()
            except queue.Empty:
                return
            if self.audio is None or packet.pts is None or packet.dts is None:
                continue
            tb = packet.time_base
            shift = round(self.audio_start / tb)
            t = float((packet.pts - shift) * tb)
            if t < 0 or (until is not None and t > until):
                continue
            dts = packet.dts - shift
            if self._audio_dts is not None and dts <= self._audio_dts:
                continue  # timestamps went back (a reconnect): left out
            packet.pts, packet.dts = packet.pts - shift, dts
            self._audio_dts = dts
            packet.stream = self.audio
            self.container.mux(packet)

    def write(self, image: np.ndarray, captured: float) -> None:
        import av
        import cv2

        h, w = image.shape[:2]
        if (w, h) != (self.width, self.height):
            if w >= self.width and h >= self.height and (w - self.width, h - self.height) <= (1, 1):
                image = np.ascontiguousarray(image[:self.height, :self.width])
            else:  # the source changed size (e.g. after reconnecting): fit the first size
                image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        pts = max(round((captured - self.start) * 1000), self.last + 1)
        frame.pts, frame.time_base = pts, self.time_base
        self.last = pts
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()

