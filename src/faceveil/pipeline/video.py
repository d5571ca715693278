"""Runs the pipeline over a video file: decode -> detect -> track -> hide -> encode.

Three threads with bounded queues between them, so memory stays flat however long the video:
the reader decodes (and collects the packets of the streams that are copied), the calling
thread detects and tracks, the writer hides faces and encodes. The detector sees each frame
downscaled to a size that fits the faces (`VideoConfig.detect_size`), turned upright when the
video carries a rotation tag. Faces are hidden on the decoded YUV planes, patch by patch; a frame
with no face goes to the encoder untouched.

Boxes in the faces sidecar are in pixels of the upright (displayed) frame, like photos'.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_path, sweep_parts
from ..anonymization.planar import apply_i420
from ..errors import CorruptMediaError, UnsupportedMediaError
from ..media.video import DEFAULT_MAX_PIXELS, EncodeOptions, VideoInput, VideoOutput
from ..sidecar import SidecarStream, faces_document
from ..types import Counts, CountTally, Detections
from .events import Progress, ProgressCallback
from .pipeline import Pipeline, draw_boxes
from .step import PRESETS as STEP_PRESETS
from .step import FrameStep

log = logging.getLogger(__name__)

# The quality presets, the detection schedule, tracking and keep/hide decisions are the frame
# step's (.step), shared with live streams.
PRESETS = STEP_PRESETS
_QUEUE = 8  # frames between two threads
_THUMB = (64, 36)  # scene-cut thumbnails
_END = object()

FrameCallback = Callable[[int, float | None, Detections], None]


@dataclass
class VideoReport:
    input: Path
    output: Path | None
    width: int = 0  # of the displayed (upright) frame
    height: int = 0
    frames: int = 0
    tracks: int = 0
    seconds: float = 0.0
    damage: list[float] = field(default_factory=list)  # times (s) where the input was damaged
    counts: Counts = field(default_factory=Counts)  # faces, face-frames, boxes: faceveil.types.Counts


@dataclass(frozen=True)
class Span:
    """A segment of a video, for one of several workers (`faceveil.batch.segments`).

    Frames are numbered from the video's first frame. Frames `start` to `end` (exclusive) go
    through the frame step, so the look-ahead tracker sees what comes before and after the
    segment; only frames `first` to `stop` are written (video only: the audio is copied once,
    when the segments are joined). Decoding starts at the key frame at or before `seek_dts`
    (video stream ticks); `start_pts` and `first_pts` are the pts of frames `start` and `first`.
    """

    start: int
    first: int
    stop: int
    end: int
    seek_dts: int
    start_pts: int
    first_pts: int


@dataclass(frozen=True)
class _Geometry:
    width: int  # as stored
    height: int
    turns: int  # quarter turns counter-clockwise from stored to displayed

    @property
    def display(self) -> tuple[int, int]:
        return (self.height, self.width) if self.turns % 2 else (self.width, self.height)


def to_stored(dets: Detections, g: _Geometry) -> Detections:
    """Boxes in displayed (upright) pixels -> pixels of the frame as stored."""
    if not g.turns or not len(dets):
        return dets
    x1, y1, x2, y2 = dets.xyxy.T
    w, h = g.width, g.height
    if g.turns == 1:  # displayed (u, v) <- stored (w - v, u)
        xyxy = np.stack([w - y2, x1, w - y1, x2], 1)
    elif g.turns == 2:  # displayed (u, v) <- stored (w - u, h - v)
        xyxy = np.stack([w - x2, h - y2, w - x1, h - y1], 1)
    else:  # displayed (u, v) <- stored (v, h - u)
        xyxy = np.stack([y1, h - x2, y2, h - x1], 1)
    return Detections(xyxy, dets.scores, None, dets.track_ids, dets.keep, dets.filled, dets.why)


def process_video(
    src: str | Path,
    dst: str | Path | None,
    pipeline: Pipeline,
    *,
    encode: EncodeOptions | None = None,
    sidecar: str | Path | None = None,
    faces: Sequence[Detections] | None = None,
    on_frame: FrameCallback | None = None,
    on_progress: ProgressCallback | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    span: Span | None = None,
) -> VideoReport:
    """Anonymize the video `src` into `dst` (None: detect only).

    `faces`: per-frame detections in displayed pixels (from a faces sidecar) to hide instead of
    detecting and tracking. `sidecar`: where to write the faces JSON. Both `dst` and `sidecar`
    are written atomically: nothing appears under their names unless the whole run succeeded.
    `span`: write only this segment of the video (its frames, no other streams); `on_frame` also
    sees its context frames (indexes outside `span.first`..`span.stop`), which are not written
    nor counted.
    """
    src, started = Path(src), time.perf_counter()
    if dst is not None and pipeline.backdrop is not None and pipeline.backdrop.transparent:
        raise UnsupportedMediaError("a transparent background is for pictures (PNG, WebP, TIFF); "
                                    "for video use blur, image or color")
    encode = encode or EncodeOptions()
    report = VideoReport(src, Path(dst) if dst is not None else None)
    sweep_parts(p for p in (dst, sidecar) if p is not None)  # leftovers of a killed run
    with contextlib.ExitStack() as stack:
        vin = stack.enter_context(VideoInput(src, copy_streams=encode.keep_audio and span is None,
                                             max_pixels=max_pixels))
        if span is not None:
            vin.seek(span.seek_dts, span.start_pts)
        out_tmp = stack.enter_context(atomic_path(dst)) if dst is not None else None
        side_tmp = stack.enter_context(atomic_path(sidecar)) if sidecar is not None else None
        _Run(vin, pipeline, report, encode=encode, out_path=out_tmp,
             container_name=str(dst) if dst is not None else None, sidecar_path=side_tmp,
             faces=faces, on_frame=on_frame, on_progress=on_progress, span=span).execute()
        if span is not None and report.frames != span.stop - span.first:
            raise CorruptMediaError(f"frames {span.first}-{span.stop - 1} of the video do not "
                                    f"decode as its index says ({report.frames} of "
                                    f"{span.stop - span.first} came out)")
    report.damage = vin.damage
    report.seconds = time.perf_counter() - started
    return report


class _Run:
    """One video's threads and state."""

    def __init__(self, vin: VideoInput, pipeline: Pipeline, report: VideoReport, *,
                 encode: EncodeOptions, out_path: Path | None, container_name: str | None,
                 sidecar_path: Path | None, faces: Sequence[Detections] | None,
                 on_frame: FrameCallback | None, on_progress: ProgressCallback | None,
                 span: Span | None = None) -> None:
        self.vin, self.pipeline, self.report, self.encode = vin, pipeline, report, encode
        self.out_path, self.container_name, self.sidecar_path = out_path, container_name, sidecar_path
        self.faces, self.on_frame, self.span = faces, on_frame, span
        self.notify = on_progress or (lambda event: None)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.decoded: queue.Queue = queue.Queue(_QUEUE)
        self.encoded: queue.Queue = queue.Queue(_QUEUE)
        self.packets: queue.SimpleQueue = queue.SimpleQueue()
        self.tracks: set[int] = set()
        self.tally = CountTally()
        self.masker = (pipeline.person_masker(video=True)
                       if pipeline.backdrop is not None and out_path is not None else None)
        # One reformatter per use and thread: each keeps its scaler between frames, where
        # frame.reformat sets one up per call (most of a 640x360 frame's conversion time).
        from av.video.reformatter import VideoReformatter

        self.thumbs, self.pictures, self.alphas = (VideoReformatter() for _ in range(3))

    # ---- queue helpers that give up when another thread failed

    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> Any:
        while True:
            if self.errors:
                raise self.errors[0]
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    raise RuntimeError("stopped") from None
                continue

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # handed to the calling thread
                self.errors.append(exc)
                self.stop.set()

        t = threading.Thread(target=body, name=name, daemon=True)
        t.start()
        return t

    # ---- the three stages

    def _read(self) -> None:
        frames = self.vin.frames(on_packet=self.packets.put if self.out_path else None)
        if self.span is not None:
            frames = itertools.islice(frames, self.span.end - self.span.start)
        for frame in frames:
            if not self._put(self.decoded, frame):
                return
        self._put(self.decoded, _END)

    def _write(self, output: VideoOutput) -> None:
        while True:
            item = self._get(self.encoded)
            self._copy_packets(output)
            if item is _END:
                break
            frame, dets = item
            output.write(self._hide(frame, dets))
        output.close()

    def _copy_packets(self, output: VideoOutput) -> None:
        while True:
            try:
                output.copy(self.packets.get_nowait())
            except queue.Empty:
                return

    def execute(self) -> None:
        total = self.vin.stream.frames or None
        self.notify(Progress("start", 0, total, str(self.vin.path)))
        reader = self._thread(self._read, "faceveil-decode")
        writer: threading.Thread | None = None
        output: VideoOutput | None = None
        side: SidecarStream | None = None
        try:
            first = self._get(self.decoded)
            if first is _END:
                raise CorruptMediaError("no video frame could be decoded")
            self.geometry = g = _Geometry(first.width, first.height,
                                          round((first.rotation or 0) / 90) % 4)
            self.report.width, self.report.height = g.display
            if self.sidecar_path is not None:
                w, h = g.display
                side = SidecarStream(self.sidecar_path, faces_document(
                    source=str(self.vin.path), output=self.container_name, width=w, height=h,
                    frames=(), config=self.pipeline.config, fps=_fps(self.vin)))
            if self.out_path is not None:
                output = VideoOutput(self.out_path, self.vin, width=g.width, height=g.height,
                                     rotation=(first.rotation or 0), options=self.encode,
                                     full_range=first.format.name == "yuvj420p",
                                     container_name=self.container_name)
                writer = self._thread(lambda: self._write(output), "faceveil-encode")
            self._detect_loop(first, side)
            if writer is not None:
                self._put(self.encoded, _END)
                while writer.is_alive() and not self.errors:
                    writer.join(0.1)
            if self.errors:
                raise self.errors[0]
            self.report.counts = self.tally.counts()
            if side is not None:
                side.close(counts=self.report.counts.to_dict())
                side = None
        finally:
            self.stop.set()
            for t in (reader, writer):
                if t is not None:
                    t.join(5)
            if side is not None:
                side.abort()
            if output is not None and (writer is None or writer.is_alive() or self.errors):
                output.abort()
        self.report.tracks = len(self.tracks)
        self.notify(Progress("done", self.report.frames, total, str(self.vin.path)))

    def _detect_loop(self, first: Any, side: SidecarStream | None) -> None:
        """Decoded frames through the frame step (schedule -> detect -> track -> decide), in
        order; the writer hides and encodes what the step hands on."""
        step: FrameStep[tuple[Any, int, float]] | None = None
        if self.faces is None:
            step = FrameStep(self.pipeline)
        g = self.geometry
        full = max(g.width, g.height)
        total = self.vin.stream.frames or None
        frame, index = first, 0 if self.span is None else self.span.start
        while frame is not _END:
            pts = float(frame.pts * frame.time_base)
            if step is None:
                assert self.faces is not None
                if index >= len(self.faces):
                    raise CorruptMediaError(f"the faces file has {len(self.faces)} frames, the video more")
                done = [((frame, index, pts), self.faces[index])]
            else:
                cut = step.cut(self.thumbs.reformat(frame, *_THUMB, format="gray",
                                                     interpolation="AREA").to_ndarray())
                found = None
                if step.schedule.due(index, cut):
                    plan = step.plan(index, cut=cut, full=full)
                    found = step.detect(self._downscaled(frame, plan.side / full), plan, g.display,
                                        index=index, pts=pts, source=str(self.vin.path))
                done = step.push((frame, index, pts), found, cut=cut,
                                 image=lambda frame=frame: self._downscaled(frame, 1.0))
            for (f, i, p), d in done:
                self._emit(f, i, p, d, side, total)
            frame, index = self._get(self.decoded), index + 1
        if step is not None:
            for (f, i, p), d in step.flush():
                self._emit(f, i, p, d, side, total)
        elif index != len(self.faces or ()):
            log.warning("%s: the faces file has %d frames, the video %d", self.vin.path,
                        len(self.faces or ()), index)

    def _downscaled(self, frame: Any, scale: float) -> np.ndarray:
        """The frame as RGB, `scale` times its size, upright."""
        g = self.geometry
        w, h = max(2, round(g.width * scale / 2) * 2), max(2, round(g.height * scale / 2) * 2)
        rgb = self.pictures.reformat(frame, w, h, format="rgb24", interpolation="AREA").to_ndarray()
        return np.rot90(rgb, g.turns)

    def _emit(self, frame: Any, index: int, pts: float, dets: Detections,
              side: SidecarStream | None, total: int | None) -> None:
        span = self.span
        if span is not None:
            if not span.first <= index < span.stop:
                if self.on_frame is not None:  # what the join compares with the neighbours'
                    self.on_frame(index, pts, dets)
                return  # context for the tracker: another segment writes it
            if index == span.first and frame.pts != span.first_pts:
                raise CorruptMediaError(f"frame {index} of the video does not decode where its "
                                        "index says")
        self.report.frames += 1
        self.tally.add(dets)
        if dets.track_ids is not None:
            self.tracks.update(dets.track_ids.tolist())
        if side is not None:
            side.add(index, pts, dets)
        if self.on_frame is not None:
            self.on_frame(index, pts, dets)
        if self.out_path is not None:
            self._put(self.encoded, (frame, dets))
        self.notify(Progress("frame", self.report.frames, total, str(self.vin.path)))

    def _hide(self, frame: Any, dets: Detections) -> Any:
        """The frame with the faces hidden; the decoded frame itself when there is nothing to do."""
        import av

        g, pipeline = self.geometry, self.pipeline
        stored = to_stored(dets, g)
        mask = pipeline.mask.render(stored, (g.height, g.width))
        boxes = pipeline.config.draw_boxes
        backdrop = pipeline.backdrop
        if not mask.patches and not boxes and backdrop is None:
            return frame
        alpha = self._person_alpha(frame) if backdrop is not None else None
        if (frame.format.name == "yuv420p" and frame.color_range != 2 and not boxes  # 2: full range
                and g.width % 2 == 0 and g.height % 2 == 0):
            frame.make_writable()
            planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width]
                      for p in frame.planes]
            apply_i420(pipeline.effect, *planes, mask)
            if backdrop is not None:
                for plane, new in zip(planes, backdrop.apply_planes(planes, alpha, "i420"),
                                      strict=True):
                    plane[...] = new
            return frame
        rgb = pipeline.effect.apply(frame.to_ndarray(format="rgb24"), mask)
        if backdrop is not None:
            rgb = backdrop.apply_rgb(rgb, alpha)
        if boxes:
            rgb = draw_boxes(rgb, stored)
        out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def _person_alpha(self, frame: Any) -> np.ndarray:
        """Person alpha for the frame as stored (1 person, 0 background), smoothed over time."""
        g, masker = self.geometry, self.masker
        dw, dh = g.display
        mw, mh = masker.model_input(dw, dh)
        if g.turns % 2:
            mw, mh = mh, mw
        small = np.rot90(self.alphas.reformat(frame, mw, mh, format="rgb24",
                                              interpolation="AREA").to_ndarray(), g.turns)
        alpha = masker.alpha(small, (dh, dw))
        return np.ascontiguousarray(np.rot90(alpha, -g.turns)) if g.turns else alpha


def _fps(vin: VideoInput) -> float | None:
    rate = vin.stream.average_rate or vin.stream.guessed_rate
    return round(float(rate), 4) if rate else None
