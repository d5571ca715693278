"""Video files through PyAV: decoding with damage reports, encoding, and stream copying.

Audio and subtitle streams are copied packet for packet (byte-identical). Video timestamps are
kept as they are (variable frame rate stays variable, a start offset stays), as are the display
rotation and the colour tags. Container and stream tags other than the language (location,
device, creation time, encoder) are not copied.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import ConfigError, CorruptMediaError, MediaTooLargeError, UnsupportedMediaError
from ..options import BY_NAME as _OPTIONS
from .images import DEFAULT_MAX_PIXELS, check_pixels

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
            ".avi": "avi"}
_DEFAULT_CODECS = {".webm": "libvpx-vp9", ".avi": "mpeg4"}
_COPIED = ("audio", "subtitle")
_COLOUR_TAGS = ("color_primaries", "color_trc", "colorspace", "color_range")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    width: int  # as stored; see `rotation` for how it is shown
    height: int
    fps: float  # average frame rate
    frames: int | None  # as the container says; None when it does not say
    duration: float | None  # seconds
    codec: str
    streams: tuple[str, ...]  # every stream's type, in order, e.g. ("video", "audio")


@dataclass(frozen=True)
class EncodeOptions:
    codec: str | None = None  # None: H.264 (libx264), VP9 for .webm, MPEG-4 for .avi
    crf: int = 20  # constant quality (x264/x265/VP9): lower is better and bigger
    preset: str = "medium"  # x264/x265 speed preset
    keep_audio: bool = True  # copy audio and subtitle streams packet for packet
    threads: int | None = None  # the encoder's threads; None: its own choice (about 1.5 a core)

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"encoder threads must be at least 1, got {self.threads}")
        if (why := _OPTIONS["crf"].range_error(self.crf)) is not None:  # --crf's rule and words
            raise ConfigError(f"crf {why}")
        if self.preset not in X264_PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(X264_PRESETS)}, got {self.preset!r}")
        if self.codec is not None:
            av = _av()
            try:
                av.codec.Codec(self.codec, "w")
            except Exception:  # UnknownCodecError, or a decoder-only name
                raise ConfigError(f"no video encoder called {self.codec!r} in this FFmpeg "
                                  "(try libx264, libx265, libvpx-vp9, mpeg4)") from None


def _av():
    import av  # a core dependency; imported late so `import faceveil` stays light

    return av


def _y4m_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) a YUV4MPEG2 header claims, or None."""
    import re

    m = re.match(rb"YUV4MPEG2 (?:[^\n]* )?W(\d+) (?:[^\n]* )?H(\d+)", head)
    return (int(m.group(1)), int(m.group(2))) if m else None


def open_input(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS):
    """An av input container with a video stream, or a clear error."""
    av = _av()
    path = Path(path)
    if path.is_dir():
        raise UnsupportedMediaError("is a folder, not a video")
    if path.stat().st_size == 0:
        raise CorruptMediaError("empty file")
    from .images import open_input_file

    with open_input_file(path) as f:  # a file that cannot be read says so in words
        head = f.read(256)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise CorruptMediaError("not a video faceveil can read (unknown format or damaged)") from None
    except av.error.FFmpegError as exc:
        size = _y4m_size(head)
        if size is not None:  # what its header claims, before FFmpeg tried to allocate it
            check_pixels(*size, max_pixels)
        raise CorruptMediaError("cannot open the video: its header is damaged or asks for "
                                f"something impossible (FFmpeg says: {exc.strerror or exc})") from None
    if not container.streams.video:
        container.close()
        raise UnsupportedMediaError("has no video stream")
    return container


def probe_video(path: str | os.PathLike) -> VideoInfo:
    with open_input(path) as container:
        vs = container.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate or Fraction(25)
        duration = None
        if vs.duration is not None and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        return VideoInfo(
            width=vs.codec_context.width, height=vs.codec_context.height, fps=float(rate),
            frames=vs.frames or None, duration=duration, codec=vs.codec_context.name,
            streams=tuple(s.type for s in container.streams),
        )


class VideoInput:
    """Decodes the first video stream; hands packets of audio/subtitle streams to `on_packet`.

    Damage is survived: a packet that does not decode is skipped, and reading stops where the
    file stops making sense, with a warning giving the time. `damage` says where, if anywhere.
    """

    def __init__(self, path: str | os.PathLike, *, copy_streams: bool = True,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.path = Path(path)
        self.container = open_input(path, max_pixels)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        cc = self.stream.codec_context
        try:
            check_pixels(cc.width, cc.height, max_pixels)
        except (CorruptMediaError, MediaTooLargeError):
            self.container.close()
            raise
        self.copied = [s for s in self.container.streams if s.type in _COPIED] if copy_streams else []
        self.damage: list[float] = []  # times (s) where decoding hit damage
        self.frames_read = 0
        self._last_pts: int | None = None  # of the last frame handed out
        self._packets_end: float | None = None  # s: where the last packet of any stream ends
        self._from_pts: int | None = None  # a segment: frames before this pts are not handed out

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def seek(self, dts: int | None, from_pts: int) -> None:
        """Read a segment: decode from the key frame at or before `dts` (video stream ticks) and
        hand out only the frames from `from_pts` on. Other streams are not read (nor copied),
        and the end is not checked against what the header announces."""
        if dts is not None:
            self.container.seek(dts, stream=self.stream, backward=True, any_frame=False)
        self._from_pts, self.copied = from_pts, []

    def _damaged(self, packet: Any, exc: Exception) -> None:
        tb = self.stream.time_base
        t = float(packet.pts * packet.time_base) if packet is not None and packet.pts is not None \
            else (float(self._last_pts * tb) if self._last_pts is not None else 0.0)
        if not self.damage or t - self.damage[-1] > 1.0:
            log.warning("%s: damaged at %.2f s (%s); going on with what decodes",
                        self.path, t, getattr(exc, "strerror", None) or exc)
        self.damage.append(t)

    def frames(self, on_packet: Callable[[Any], None] | None = None) -> Iterator[Any]:
        """av.VideoFrames in presentation order, each with a pts that only ever increases."""
        av = _av()
        # Every audio stream is read (the copied ones are handed on): where the last packet of
        # any stream ends tells a file cut short from a video shorter than its sound.
        others = [st for st in self.container.streams if st.type == "audio"]
        if self._from_pts is not None:
            others = []
        demux = self.container.demux(self.stream, *{*self.copied, *others})
        step = self._frame_ticks()
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                self._damaged(None, exc)
                log.warning("%s: the rest of the file cannot be read; stopping at %.2f s", self.path,
                            self.damage[-1])
                break
            self._note_end(packet)
            if packet.stream is not self.stream:
                if (on_packet is not None and packet.dts is not None and packet.size
                        and packet.stream in self.copied):
                    on_packet(packet)
                continue
            try:
                decoded = self.stream.decode(packet)
            except av.error.FFmpegError as exc:
                self._damaged(packet, exc)
                continue
            yield from self._stamped(decoded, step)
        try:
            yield from self._stamped(self.stream.decode(None), step)
        except av.error.EOFError:
            pass
        except av.error.FFmpegError as exc:
            self._damaged(None, exc)
        if self._from_pts is None:
            self._check_end(step)

    def _check_end(self, step: int) -> None:
        """Warn (and note damage) when the file stops before what its header announces."""
        tb = self.stream.time_base
        end = float(self._last_pts * tb) if self._last_pts is not None else 0.0
        expected = self.stream.frames
        # AVI counts the empty chunks of dropped frames too: short only when time is short as well
        start = float(self.stream.start_time * tb) if self.stream.start_time is not None else 0.0
        if expected and self.frames_read < expected and (
                end + 1.5 * float(step * tb) < start + expected * float(step * tb)):
            log.warning("%s: ends early at %.2f s: %d of the %d frames it announces could be read",
                        self.path, end, self.frames_read, expected)
            self.damage.append(end)
            return
        cut = _matroska_cut(self.path, self.container)
        if cut is not None:
            have, announced = cut
            log.warning("%s: the file is cut short (%s of the %s bytes its header announces); "
                        "processed as far as it goes (%.2f s, %d frames)", self.path,
                        f"{have:,}", f"{announced:,}", end, self.frames_read)
            self.damage.append(end)
            return
        if not expected and self.container.duration and self._packets_end is not None:
            announced = self.container.duration / 1_000_000 + (
                self.container.start_time or 0) / 1_000_000
            if self._packets_end + max(0.5, 3 * float(step * tb)) < announced:
                log.warning("%s: ends early at %.2f s of the %.2f s it announces", self.path,
                            self._packets_end, announced)
                self.damage.append(end)

    def _note_end(self, packet: Any) -> None:
        t = packet.pts if packet.pts is not None else packet.dts
        if t is None or packet.time_base is None or not packet.size:
            return
        end = float((t + (packet.duration or 0)) * packet.time_base)
        if self._packets_end is None or end > self._packets_end:
            self._packets_end = end

    def _frame_ticks(self) -> int:
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        return max(1, round(1 / (rate * self.stream.time_base)))

    def _stamped(self, frames: list, step: int) -> Iterator[Any]:
        for frame in frames:
            pts = frame.pts
            if self._from_pts is not None and self._last_pts is None and (
                    pts is None or pts < self._from_pts):
                continue  # a segment: before its first frame
            if pts is None:
                pts = frame.dts if frame.dts is not None else (
                    0 if self._last_pts is None else self._last_pts + step)
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1  # encoders need strictly increasing timestamps
            frame.pts, frame.time_base = pts, self.stream.time_base
            self._last_pts = pts
            self.frames_read += 1
            yield frame


class VideoOutput:
    """Encodes frames into a new file and copies the other streams of `source` into it."""

    def __init__(self, path: str | os.PathLike, source: VideoInput, *, width: int, height: int,
                 rotation: int = 0, full_range: bool = False, options: EncodeOptions | None = None,
                 container_name: str | os.PathLike | None = None) -> None:
        av = _av()
        options = options or EncodeOptions()
        path = Path(path)
        suffix = Path(container_name or path).suffix.lower()
        if suffix not in _FORMATS:
            raise UnsupportedMediaError(
                f"cannot write {suffix or 'files without an extension'} videos; "
                f"use one of {', '.join(sorted(_FORMATS))}")
        codec = options.codec or _DEFAULT_CODECS.get(suffix, "libx264")
        self.path = path
        self.container = av.open(str(path), "w", format=_FORMATS[suffix])
        try:
            src = source.stream
            try:
                self.stream = self.container.add_stream(codec, rate=src.average_rate or src.guessed_rate)
            except (ValueError, av.error.FFmpegError) as exc:
                raise ConfigError(f"video codec {codec!r} is not available here: {exc}") from None
            # Frame threads, as ffmpeg gives x264 (PyAV's default, slices, is slower).
            self.stream.thread_type = "FRAME"
            cc = self.stream.codec_context
            if options.threads:
                cc.thread_count = options.threads
            # 4:2:0 encoders (all the defaults) need even sizes: an odd side gets its last
            # column or row repeated once (641x479 -> 642x480, 1x1 -> 2x2). Nothing new is shown:
            # the padding repeats the edge of the frame as written, faces already hidden.
            self.pad = (width % 2, height % 2)
            if any(self.pad):
                log.warning("%s: %dx%d frames: the %s encoder needs even sizes, so the output is "
                            "%dx%d (the last column or row repeated)", source.path, width, height,
                            codec, width + self.pad[0], height + self.pad[1])
            cc.width, cc.height = width + self.pad[0], height + self.pad[1]
            # Full-range (JPEG) sources stay full range where the encoder can say so.
            cc.pix_fmt = "yuvj420p" if full_range and codec in ("libx264", "libx265") else "yuv420p"
            takes = [f.name for f in (cc.codec.video_formats or ())]
            if takes and cc.pix_fmt not in takes:  # e.g. mjpeg: full-range 4:2:0 only
                cc.pix_fmt = next((f for f in ("yuvj420p", "yuv420p", "yuv444p") if f in takes),
                                  takes[0])
            self.time_base = src.time_base
            if codec in ("mpeg4", "mpeg2video", "mjpeg") and src.time_base.denominator > 65535:
                self.time_base = Fraction(1, 60000)  # these encoders refuse finer time bases
            self.stream.time_base = cc.time_base = self.time_base
            if codec in ("libx264", "libx265"):
                cc.options = {"crf": str(options.crf), "preset": options.preset}
            elif codec in ("libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1"):
                cc.options = {"crf": str(options.crf), "b": "0"}
            for tag in _COLOUR_TAGS:
                value = getattr(src.codec_context, tag, None)
                if value:
                    setattr(cc, tag, value)
            if rotation:
                self.stream.set_display_rotation(rotation)
            _copy_language(src, self.stream)
            self._last_pts = -(1 << 62)
            self._opened = False
            self._map: dict[int, Any] = {}
            self._avi_vbr: dict[int, int] = {}  # AVI: MPEG audio streams -> packets muxed
            for s in source.copied:
                try:
                    out = self.container.add_stream_from_template(s)
                except (ValueError, av.error.FFmpegError) as exc:
                    log.warning("%s: %s stream %d (%s) cannot go into a %s file and is left out: %s",
                                source.path, s.type, s.index, s.codec_context.name, suffix, exc)
                    continue
                _copy_language(s, out)
                self._map[s.index] = out
                if suffix == ".avi" and s.codec_context.name.startswith(("mp3", "mp2", "mp1")):
                    self._avi_vbr[out.index] = 0
        except BaseException:
            self.container.close()
            raise

    def copy(self, packet: Any) -> None:
        """Mux a packet of a copied stream as it is (PyAV rebases its timestamps)."""
        out = self._map.get(packet.stream.index)
        if out is not None:
            packet.stream = out
            self.container.mux(packet)
            if out.index in self._avi_vbr:
                self._avi_vbr[out.index] += 1

    def write(self, frame: Any) -> None:
        if any(self.pad):
            frame = self._padded(frame)
        if frame.time_base != self.time_base:
            pts = round(frame.pts * frame.time_base / self.time_base)
            frame.pts, frame.time_base = max(pts, self._last_pts + 1), self.time_base
        self._last_pts = frame.pts
        frame.pict_type = _av().video.frame.PictureType.NONE  # let the encoder choose, not copy the source's
        if self._opened:
            self.container.mux(self.stream.encode(frame))
            return
        try:  # the encoder opens on the first frame: say in plain words what it refused
            packets = self.stream.encode(frame)
        except _av().error.FFmpegError as exc:
            cc = self.stream.codec_context
            raise UnsupportedMediaError(
                f"the {cc.name} encoder refuses this video ({cc.width}x{cc.height} {cc.pix_fmt}, "
                f"time base {self.time_base}): {exc.strerror or exc}; try another --codec or "
                "output format") from None
        self._opened = True
        self.container.mux(packets)

    def _padded(self, frame: Any) -> Any:
        """The frame with its last column/row repeated up to the encoded (even) size."""
        import numpy as np

        av = _av()
        rgb = frame.to_ndarray(format="rgb24")
        rgb = np.pad(rgb, ((0, self.pad[1]), (0, self.pad[0]), (0, 0)), mode="edge")
        out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        try:
            self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()
        if self._avi_vbr:
            _avi_audio_per_packet(self.path, self._avi_vbr)

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # the file is being thrown away anyway
            log.debug("closing an aborted output failed", exc_info=True)


def _ebml_vint(f: Any) -> tuple[int, bool] | None:
    """An EBML variable-size integer: (value, all ones = unknown size), or None."""
    first = f.read(1)
    if not first or not first[0]:
        return None
    length = 8 - first[0].bit_length() + 1
    rest = f.read(length - 1)
    if len(rest) != length - 1:
        return None
    value = first[0] & ((1 << (8 - length)) - 1)
    for byte in rest:
        value = (value << 8) | byte
    return value, value == (1 << (7 * length)) - 1


def _matroska_cut(path: Path, container: Any) -> tuple[int, int] | None:
    """(bytes there, bytes announced) when a Matroska/WebM file is shorter than its Segment
    says; None when whole, not Matroska, or the size is unknown (a live recording)."""
    if "matroska" not in (container.format.name or "") and "webm" not in (container.format.name or ""):
        return None
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if f.read(4) != b"\x1a\x45\xdf\xa3":  # the EBML header
                return None
            header = _ebml_vint(f)
            if header is None or header[1]:
                return None
            f.seek(header[0], os.SEEK_CUR)
            if f.read(4) != b"\x18\x53\x80\x67":  # the Segment
                return None
            segment = _ebml_vint(f)
            if segment is None or segment[1]:
                return None
            announced = f.tell() + segment[0]
    except OSError:
        return None
    return (size, announced) if size < announced else None


def _avi_audio_per_packet(path: Path, packets: dict[int, int]) -> None:
    """Mark copied MP3/MP2 streams of a finished AVI as one packet per frame (sample size 0).

    A copied MPEG audio stream carries the block align its demuxer read (576 or 1152), and the
    AVI muxer writes that as the stream's sample size, which tells every reader to time the
    audio by bytes: 22.05 kHz MP3 then plays ~2.8 times too fast (timestamps 0,0,0,1,1,1...).
    ffmpeg's own stream copy clears the block align first; PyAV cannot, so the stream header
    (`strh`) is set right here: sample size 0 and its length in packets, as ffmpeg writes them.
    """
    import struct

    with open(path, "r+b") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
            return
        index = -1
        pos, end = 12, 12 + struct.unpack("<I", head[4:8])[0]
        while pos + 8 <= end:  # top level: LIST hdrl, then the strl lists inside it
            f.seek(pos)
            fourcc, size = struct.unpack("<4sI", f.read(8))
            kind = f.read(4) if fourcc == b"LIST" else b""
            if kind == b"hdrl":
                pos += 12  # go inside
                continue
            if kind == b"strl":
                index += 1
                if index in packets:
                    f.seek(pos + 12)
                    inner, inner_size = struct.unpack("<4sI", f.read(8))
                    if inner == b"strh" and inner_size >= 48:
                        f.seek(pos + 12 + 8 + 32)  # dwLength
                        f.write(struct.pack("<I", packets[index]))
                        f.seek(pos + 12 + 8 + 44)  # dwSampleSize
                        f.write(struct.pack("<I", 0))
            elif kind == b"movi":
                return
            pos += 8 + size + (size & 1)


def _copy_language(src: Any, dst: Any) -> None:
    lang = src.metadata.get("language")
    if lang and lang != "und":
        dst.metadata["language"] = lang


class FrameReader:
    """Frames of a video by index, upright RGB, for a viewer: the next frame is cheap; any other
    seeks to the key frame before it and decodes forward.

    `pts`: the time (s) of each frame as decoding gives them (a faces file lists them), which
    maps an index to a seek target. Without it a jump back decodes again from the start.
    `max_side`: frames are scaled down to at most this long a side.
    """

    def __init__(self, path: str | os.PathLike, pts: list[float | None] | None = None, *,
                 max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.path = Path(path)
        self.pts = [p for p in pts if p is not None] if pts else []
        if len(self.pts) != len(pts or ()):
            self.pts = []  # some frames without a time: only decoding from the start is exact
        self.max_side = max_side
        self.max_pixels = max_pixels
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._index = -1  # of the frame last decoded

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._frames = None

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, at: float | None) -> None:
        self.close()
        vin = VideoInput(self.path, copy_streams=False, max_pixels=self.max_pixels)
        self._container = vin.container
        stream = vin.stream
        if at:
            self._container.seek(int(at / stream.time_base), stream=stream, backward=True,
                                 any_frame=False)
        self._frames = self._decode(stream)
        self._index = -1

    def _decode(self, stream: Any) -> Iterator[Any]:
        av = _av()
        for packet in self._container.demux(stream):
            try:
                yield from stream.decode(packet)
            except av.error.FFmpegError:
                continue

    def frame(self, index: int) -> Any:
        """The av.VideoFrame at `index`; IndexError past the end."""
        if self._frames is None or index <= self._index or (self.pts and index > self._index + 60):
            self._open(self.pts[index] if self.pts and 0 <= index < len(self.pts) else None)
        assert self._frames is not None
        for frame in self._frames:
            self._index = self._place(frame)
            if self._index >= index:
                return frame
        raise IndexError(f"{self.path}: no frame {index}")

    def _place(self, frame: Any) -> int:
        """The index of a decoded frame: by its time when times are known, else by counting."""
        if not self.pts or frame.pts is None:
            return self._index + 1
        i = bisect.bisect_left(self.pts, float(frame.pts * frame.time_base) - 1e-4)
        return max(self._index + 1, min(i, len(self.pts) - 1))

    def image(self, index: int) -> Any:
        """Frame `index` as an upright RGB uint8 array."""
        frame = self.frame(index)
        scale = min(1.0, self.max_side / max(frame.width, frame.height)) if self.max_side else 1.0
        return upright(frame, scale)


def turns(frame: Any) -> int:
    """Quarter turns counter-clockwise from a decoded frame as stored to as displayed."""
    return round((frame.rotation or 0) / 90) % 4


def upright(frame: Any, scale: float = 1.0, format: str = "rgb24") -> Any:
    """A decoded av.VideoFrame as a numpy array, `scale` times its size, turned upright."""
    import numpy as np

    w, h = frame.width, frame.height
    if scale != 1.0:
        w, h = max(2, round(w * scale)), max(2, round(h * scale))
        array = frame.reformat(w, h, format=format, interpolation="AREA").to_ndarray()
    else:
        array = frame.to_ndarray(format=format)
    n = turns(frame)
    return np.ascontiguousarray(np.rot90(array, n)) if n else array
