"""The real-time loop: frames in -> the frame step (detect, track, decide) -> hide -> out.

Three threads. The grabber reads the source (pacing files to their timestamps, reconnecting to
network streams and cameras with backoff) and holds the frames until the loop takes them. The
detector thread runs the frame step's planned detection (`pipeline.step`: the same presets,
schedule and passes as for files) on the newest waiting frame whenever it is free, at most
every `detect_every` frames. The caller's thread keeps the frames waiting, in order, until a
detection on them or on a later frame is done; then they go through the same look-ahead
tracker as a file's frames, so a face is interpolated between two detections and hidden
`lead` frames before it was first found, within the frames that waited, and are hidden and
handed to the sinks. What a live stream cannot do is look further ahead than that: a face that
only a later detection finds may show on frames already handed on. The latency added is about
one to two detections (a frame waits for the next detection to finish).

Fail closed: no frame reaches the sinks without a detection at or after it, and only as the
output of `Pipeline.render`. A frame that has waited longer than `LiveConfig.max_delay` is
dropped (counted), so latency never piles up when detection cannot keep up; the frames a failed
detection was to cover are withheld (counted); after `LiveConfig.max_failures` failures in a
row the run stops with an error.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..config import LiveConfig
from ..errors import ConfigError, FaceveilError
from ..pipeline.pipeline import Pipeline
from ..pipeline.step import PRESETS, FrameStep, Pass
from ..types import Counts, CountTally, Detections, Frame
from .sinks import Sink
from .sources import Captured, Source, SourceError, open_source

log = logging.getLogger(__name__)

LIVE_PRESETS = PRESETS  # the one table of quality presets (faceveil.pipeline.step), as for files
_LATENCY_BINS = 5000  # latency histogram: 1 ms bins up to 5 s


class LiveError(FaceveilError, RuntimeError):
    """The live run could not go on (the detector kept failing, every output failed)."""


@dataclass
class LiveReport:
    source: str
    width: int = 0
    height: int = 0
    frames_in: int = 0  # frames the source gave
    frames_out: int = 0  # anonymized frames handed to the outputs
    # frames not shown: they waited longer than max_delay for detection, processing was behind,
    # or the run ended
    dropped: int = 0
    withheld: int = 0  # frames not shown: the detection that was to cover them failed (fail closed)
    counts: Counts = field(default_factory=Counts)  # over the frames out, as every door counts
    detections: int = 0  # frames the detector ran on
    found: int = 0  # faces those detections found, summed
    detect_mean: float = 0.0  # seconds per detection
    # frames between a frame out and the later frame whose detection let it out (0: its own), mean
    detect_lag: float = 0.0
    detect_lag_max: int = 0  # ... and at most
    reconnects: int = 0
    seconds: float = 0.0  # from the first frame in to the end
    fps: float = 0.0  # frames out per second
    latency_mean: float = 0.0  # seconds from capture to hand-over, over the frames out
    latency_p95: float = 0.0
    latency_max: float = 0.0
    detect_every: int = 1
    detect_size: int | None = None
    ended: str = ""  # why the run ended
    failed: bool = False  # ended by an error rather than by the end of the stream or a stop

    @property
    def drop_rate(self) -> float:
        return self.dropped / self.frames_in if self.frames_in else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The `--json` summary. Its "faces" key (face boxes hidden, summed over the frames out)
        is kept for readers of earlier summaries: it is `counts.face_frames`, said once."""
        d = dataclasses.asdict(self)
        d["drop_rate"] = self.drop_rate
        d["faces"] = self.counts.face_frames
        return d


@dataclass(frozen=True)
class LiveStatus:
    """About once a second while running, for progress displays."""

    frames_in: int
    frames_out: int
    dropped: int
    fps: float  # over the last second or so
    latency: float  # mean seconds over the last second or so


# -------------------------------------------------------------------------------- the grabber


class _Recent:
    """The frames waiting to be processed, none older than `max_delay` seconds.

    Frames are taken oldest first, so a short hiccup of the loop (a detection it waits for at a
    cut) is caught up on without a drop; a frame that has waited longer than `max_delay` is
    dropped, unless it is the newest (with nothing newer to show, it is shown late). With
    `max_delay` 0 only the newest frame is kept. Both kinds of drop are counted.
    """

    def __init__(self, max_delay: float, depth: int = 8) -> None:
        self.max_delay = max_delay
        self.depth = 1 if max_delay <= 0 else depth
        self._cond = threading.Condition()
        self._items: deque[Captured] = deque()
        self._woken = False
        self.dropped = 0

    def put(self, item: Captured) -> None:
        with self._cond:
            self._items.append(item)
            while len(self._items) > self.depth:
                self._items.popleft()
                self.dropped += 1
            self._cond.notify()

    def take(self, timeout: float) -> Captured | None:
        """The oldest frame still within `max_delay` (or the newest); None when none came."""
        with self._cond:
            # after close, wait for a wake (a detection done) rather than spin until it comes
            self._cond.wait_for(lambda: self._items or self._woken, timeout)
            self._woken = False
            now = time.monotonic()
            while len(self._items) > 1 and now - self._items[0].captured > self.max_delay:
                self._items.popleft()
                self.dropped += 1
            return self._items.popleft() if self._items else None

    def wake(self) -> None:
        """End a `take` that is waiting now (or the next one) without a frame."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def close(self) -> None:
        """The source ended: a waiting `take` returns; later ones wait for a wake or time out."""
        self.wake()

    def empty(self) -> bool:
        with self._cond:
            return not self._items


def backoff_delays(config: LiveConfig) -> list[float]:
    """The waits before each reconnect attempt: `backoff`, doubled each time, at most `backoff_max`."""
    return [min(config.backoff_max, config.backoff * 2 ** i) for i in range(config.reconnects)]


class Grabber:
    """Reads a source on its own thread; keeps the frames not older than `max_delay` (see
    `_Recent`): when processing is behind, the older ones are dropped."""

    def __init__(self, source: Source, config: LiveConfig, stop: threading.Event) -> None:
        self.source, self.config, self.stop = source, config, stop
        self.frames_in = 0
        self.reconnects = 0
        self.waits: list[float] = []  # every backoff wait, in order
        self.ended = ""
        self.failed = False
        self._slot = _Recent(config.max_delay)
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def start(self) -> None:
        """Open the source (here, so a bad one fails at once) and start reading."""
        self.source.open()
        self._thread = threading.Thread(target=self._run, name="faceveil-grab", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Frames dropped so far because processing was behind."""
        return self._slot.dropped

    @property
    def done(self) -> bool:
        """The source ended and nothing is left to take."""
        return self._done.is_set() and self._slot.empty()

    def take(self, timeout: float) -> Captured | None:
        return self._slot.take(timeout)

    def wake(self) -> None:
        """Make a waiting `take` return now (a detection finished: the loop has work)."""
        self._slot.wake()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._read_all()
        except Exception as exc:  # a bug rather than a source problem; still end cleanly
            log.debug("the grabber failed", exc_info=True)
            self.ended, self.failed = f"reading failed: {type(exc).__name__}: {exc}", True
        finally:
            self.source.close()
            self._done.set()
            self._slot.close()

    def _read_all(self) -> None:
        attempts = 0  # reconnect attempts since frames last came
        while not self.stop.is_set():
            before = self.frames_in
            why, error = self._read_until_lost()
            self.source.close()
            if self.stop.is_set():
                return
            if self.frames_in > before:
                attempts = 0
            if not self.source.reconnectable or attempts >= self.config.reconnects:
                self.ended, self.failed = why, error
                if attempts:
                    self.ended += f"; no frames after {attempts} reconnect attempt(s)"
                return
            attempts = self._reconnect(why, attempts)
            if attempts > self.config.reconnects:  # every attempt failed
                if not self.stop.is_set():
                    self.ended = f"{why}; no luck reconnecting after {self.config.reconnects} attempt(s)"
                    self.failed = error
                return

    def _read_until_lost(self) -> tuple[str, bool]:
        """Read until the source ends; (why, whether it was an error)."""
        anchor: float | None = None  # monotonic time of pts 0, for files played at their pace
        last_pts: float | None = None
        try:
            for image, pts, arrived in self.source.frames():
                if self.stop.is_set():
                    break
                if self.source.paced:
                    if pts is None:
                        pts = (last_pts or 0.0) + 1 / 30
                    if anchor is None or last_pts is None or not 0 <= pts - last_pts <= 2.0:
                        anchor = time.monotonic() - pts  # start, or a jump: restart the clock
                    last_pts = pts
                    wait = anchor + pts - time.monotonic()
                    if wait > 0 and self.stop.wait(wait):
                        break
                    arrived = time.monotonic()
                captured = Captured(image, self.frames_in, arrived, pts)
                self.frames_in += 1
                self._slot.put(captured)
            else:
                return "end of stream", False
        except SourceError as exc:
            return _without_name(str(exc), self.source.name), True
        return "stopped", False

    def _reconnect(self, why: str, done: int) -> int:
        """Open the source again, after the `done` attempts already made since frames last came,
        waiting longer before each; the attempts made in all (more than `reconnects`: failed)."""
        name = self.source.name
        delays = backoff_delays(self.config)
        for attempt in range(done + 1, self.config.reconnects + 1):
            delay = delays[attempt - 1]
            log.warning("%s: %s; reconnecting in %.3g s (attempt %d of %d)", name, why, delay,
                        attempt, self.config.reconnects)
            self.waits.append(delay)
            if self.stop.wait(delay):
                return self.config.reconnects + 1
            try:
                self.source.open()
            except SourceError as exc:
                why = _without_name(str(exc), name)
                continue
            self.reconnects += 1
            log.warning("%s: reconnected", name)
            return attempt
        return self.config.reconnects + 1


def _without_name(message: str, name: str) -> str:
    """A SourceError's message without the source's name in front (said once is enough)."""
    return message.removeprefix(f"{name}: ")


# ---------------------------------------------------------------------------------- the loop


def run_live(
    source: Source | str,
    pipeline: Pipeline,
    sinks: Sequence[Sink],
    config: LiveConfig | None = None,
    *,
    stop: threading.Event | None = None,
    on_status: Callable[[LiveStatus], None] | None = None,
) -> LiveReport:
    """Anonymize `source` in real time into `sinks` until it ends or `stop` is set.

    `source`: a Source, or what `open_source` takes (a camera number, a device, a URL, a file).
    Raises SourceError when the source cannot be opened; problems after that end the run and
    are described in the report (`ended`, `failed`). Sinks are not closed here.
    """
    config = config or LiveConfig()
    if isinstance(source, str):
        source = open_source(source, config)
    if pipeline.backdrop is not None and pipeline.backdrop.transparent:
        raise ConfigError("a transparent background is for pictures; for live streams use blur, "
                          "image or color")
    if not sinks:
        raise ConfigError("no output for the live stream")
    return _Live(source, pipeline, list(sinks), config, stop or threading.Event(), on_status).run()


@dataclass
class _Job:
    cap: Captured
    plan: Pass


class _DetectWorker:
    """Detection on its own thread, one frame at a time; results collected in frame order."""

    def __init__(self, detect: Callable[[_Job], Detections],
                 on_done: Callable[[], None] | None = None) -> None:
        self._detect = detect
        self._on_done = on_done
        self._cond = threading.Condition()
        self._job: _Job | None = None
        self._busy = False
        self._closed = False
        self._results: list[tuple[int, Detections | Exception, float]] = []
        self._thread = threading.Thread(target=self._run, name="faceveil-detect", daemon=True)
        self._thread.start()

    def idle(self) -> bool:
        with self._cond:
            return not self._busy

    def submit(self, job: _Job) -> None:
        with self._cond:
            if self._busy:
                raise RuntimeError("the detector is busy")
            self._job, self._busy = job, True
            self._cond.notify_all()

    def results(self) -> list[tuple[int, Detections | Exception, float]]:
        """(frame number, detections or the error, seconds) of what finished since the last call."""
        with self._cond:
            out, self._results = self._results, []
            return out

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._closed)
                if self._closed:
                    return
                job, self._job = self._job, None
            started = time.monotonic()
            result: Detections | Exception
            try:
                result = self._detect(job)
            except Exception as exc:  # handed to the loop, which fails closed
                result = exc
            with self._cond:
                self._results.append((job.cap.number, result, time.monotonic() - started))
                self._busy = False
                self._cond.notify_all()
            if self._on_done is not None:
                self._on_done()


@dataclass
class _Waiting:
    """A frame waiting for a detection on itself or on a later frame."""

    number: int
    cap: Captured | None  # None: never shown (dropped, or its detection failed)
    cut: bool


class _Live:
    """The loop: frames wait, in order, for the frame step. The detector runs on its own thread
    on the newest waiting frame whenever it is free (at most every `detect_every` frames, a full
    scan or a quick pass by the step's schedule); when it is done, the frames up to that one go
    through the tracker (interpolated between two detections, new faces hidden `lead` frames
    before they were found) and are hidden and handed to the sinks. A frame that waited longer
    than `max_delay` is dropped, and the frames a failed detection was to cover are withheld:
    no frame is shown without a detection at or after it."""

    def __init__(self, source: Source, pipeline: Pipeline, sinks: list[Sink], config: LiveConfig,
                 stop: threading.Event, on_status: Callable[[LiveStatus], None] | None) -> None:
        self.source, self.pipeline, self.sinks, self.config = source, pipeline, sinks, config
        self.stop, self.on_status = stop, on_status
        self.step: FrameStep[_Waiting] = FrameStep(pipeline, live=True)
        self.video = self.step.video
        self.every = self.video.detect_every or 1
        self.report = LiveReport(source.name, detect_every=self.every, detect_size=self.video.detect_size)
        self.masker = pipeline.person_masker(video=True) if pipeline.backdrop is not None else None
        self.size: tuple[int, int] | None = None
        self.since = 0  # the first frame number of the current picture size
        self.waiting: deque[_Waiting] = deque()
        # frames let out by a detection, in order, to hide and hand on: (frame, faces, the
        # frame number of that detection)
        self.ready: list[tuple[Captured, Detections, int]] = []
        self.next_number = 0  # the next frame number the step expects
        self.last_sent: int | None = None  # the last frame given to the detector
        self.cut_waiting = False  # a cut among the frames after the last one given to the detector
        self.failures = 0
        self.detect_time = 0.0
        self.tally = CountTally()
        self.lag_sum = 0  # frames between each frame out and the detection that let it out
        self.hist = np.zeros(_LATENCY_BINS + 1, np.int64)
        self.latency_sum = 0.0
        self.recent: deque[tuple[float, float]] = deque()  # (emitted, latency) over the last second
        self.first_in: float | None = None
        self.first_out = self.last_out = 0.0
        self.late = 0  # frames dropped here: they waited longer than max_delay
        self.grabber: Grabber | None = None
        self.worker: _DetectWorker | None = None

    def run(self) -> LiveReport:
        grabber = self.grabber = Grabber(self.source, self.config, self.stop)
        side = self.video.detect_size or 640  # load and warm the model up before the clock starts
        warm = np.zeros((side * 9 // 16, side, 3), np.uint8)
        self.step.detect(warm, Pass(True, side), (side, side * 9 // 16), source=self.source.name)
        grabber.start()
        self.worker = _DetectWorker(self._detect, on_done=grabber.wake)
        ended, failed = "", False
        next_status = time.monotonic() + 1.0
        try:
            while not self.stop.is_set():
                busy = bool(self.waiting) or not self.worker.idle()
                cap = grabber.take(timeout=0.02 if busy else 0.2)  # frames and results wake it
                if cap is not None:
                    if self.first_in is None:
                        self.first_in = cap.captured
                    self._arrive(cap)
                self._advance(final=cap is None and grabber.done)
                if cap is None and grabber.done and not self.waiting and self.worker.idle():
                    self._advance(final=True)
                    if not self.waiting:
                        break
                if wants := [s.name for s in self.sinks if s.wants_stop]:
                    ended = f"stopped from the {wants[0]}"
                    break
                if self.on_status is not None and time.monotonic() >= next_status:
                    next_status = time.monotonic() + 1.0
                    self.on_status(self._status(grabber))
        except LiveError as exc:
            ended, failed = str(exc), True
        finally:
            self.stop.set()
            self.worker.close()
            # A source blocked in a read gives up within its read timeout; do not wait longer.
            grabber.join(self.config.read_timeout + 1.0)
        r = self.report
        r.frames_in, r.reconnects = grabber.frames_in, grabber.reconnects
        r.dropped = r.frames_in - r.frames_out - r.withheld
        if not ended:
            ended, failed = (grabber.ended or "stopped"), grabber.failed
        r.ended, r.failed = ended, failed
        end = time.monotonic()
        r.seconds = end - self.first_in if self.first_in is not None else 0.0
        if r.frames_out > 1 and self.last_out > self.first_out:
            r.fps = (r.frames_out - 1) / (self.last_out - self.first_out)
        if r.frames_out:
            r.latency_mean = self.latency_sum / r.frames_out
            r.latency_p95 = float(np.searchsorted(np.cumsum(self.hist), 0.95 * r.frames_out)) / 1000
            r.detect_lag = self.lag_sum / r.frames_out
        if r.detections:
            r.detect_mean = self.detect_time / r.detections
        return r

    # ---- frames in

    def _arrive(self, cap: Captured) -> None:
        image = cap.image
        h, w = image.shape[:2]
        if self.size != (w, h):
            if self.size is not None:
                log.info("%s: the picture is now %dx%d (was %dx%d)", self.source.name, w, h, *self.size)
            for item in self.waiting:  # of the old size, never detected: not shown
                item.cap = None
            self.waiting.clear()
            self.step = FrameStep(self.pipeline, live=True)
            self.size, self.since, self.next_number = (w, h), cap.number, cap.number
            self.last_sent, self.cut_waiting = None, False
            self.report.width, self.report.height = w, h
        # A hard cut (an edited stream) brings new faces all at once: the next detection is a
        # full scan, and the tracks end there.
        cut = self.step.cut(_thumbnail(image))
        while self.next_number < cap.number:  # frames the grabber dropped: numbers go on
            self.waiting.append(_Waiting(self.next_number, None, False))
            self.next_number += 1
        self.waiting.append(_Waiting(cap.number, cap, cut))
        self.next_number = cap.number + 1
        self.cut_waiting = self.cut_waiting or cut

    # ---- detection and frames out

    def _advance(self, *, final: bool = False) -> None:
        """Take the finished detection (its frames become ready to show), drop the frames
        too late to show, give the detector its next frame, then show the ready frames."""
        worker = self.worker
        assert worker is not None
        for number, result, seconds in worker.results():
            if number < self.since:
                continue  # made before the picture changed size
            if isinstance(result, Exception):
                self._failed(number, result)
            else:
                self._found(number, result, seconds)
        now = time.monotonic()
        for item in self.waiting:  # too late to show: dropped (never shown undetected)
            if item.cap is not None and now - item.cap.captured > self.config.max_delay:
                if item.number == self.last_sent and not worker.idle():
                    continue  # being detected: wait for it
                item.cap = None
                self.late += 1
        if worker.idle():
            newest = next((i for i in reversed(self.waiting) if i.cap is not None), None)
            if newest is not None and (self.last_sent is None or newest.number > self.last_sent):
                far = self.last_sent is None or newest.number - self.last_sent >= self.every
                # The detector is free and a frame would wait too long for the next one (a slow
                # source): detect now rather than every `every` frames.
                oldest = next(i for i in self.waiting if i.cap is not None)
                assert oldest.cap is not None
                urgent = now - oldest.cap.captured >= self.config.max_delay / 2
                if far or urgent or self.cut_waiting or final:
                    full = max(self.size or (1, 1))
                    plan = self.step.plan(newest.number - self.since, cut=self.cut_waiting, full=full)
                    worker.submit(_Job(newest.cap, plan))
                    self.last_sent, self.cut_waiting = newest.number, False
            elif final and self.waiting and all(i.cap is None for i in self.waiting):
                self._push_upto(self.waiting[-1].number, None)  # nothing left worth showing
        # Hidden and handed on only now: the next detection (planned from the tracks just
        # updated) runs while these frames are hidden and encoded, not after.
        self._show_ready()

    def _detect(self, job: _Job) -> Detections:
        """On the detector's thread: the planned detection on the job's frame."""
        image = job.cap.image
        h, w = image.shape[:2]
        side = max(w, h)
        small = image
        if job.plan.side < side:
            s = job.plan.side / side
            small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                               interpolation=cv2.INTER_AREA)
        return self.step.detect(small, job.plan, (w, h), index=job.cap.number, pts=job.cap.pts,
                                source=self.source.name)

    def _found(self, number: int, found: Detections, seconds: float) -> None:
        if self.failures:
            log.warning("detection works again after %d failure(s)", self.failures)
        self.failures = 0
        self.report.detections += 1
        self.report.found += len(found)
        self.detect_time += seconds
        self._push_upto(number, found)

    def _failed(self, number: int, exc: Exception) -> None:
        self.failures += 1
        if self.failures == 1:
            log.warning("detection failed (%s: %s); the frames waiting for it are withheld",
                        type(exc).__name__, exc)
        for item in self.waiting:  # fail closed: nothing looked at them
            if item.number <= number and item.cap is not None:
                item.cap = None
                self.report.withheld += 1
        self._push_upto(number, None)
        if self.failures >= self.config.max_failures:
            self._show_ready()
            raise LiveError(f"the detector failed {self.failures} times in a row: "
                            f"{type(exc).__name__}: {exc}") from exc

    def _push_upto(self, number: int, found: Detections | None) -> None:
        """The waiting frames up to `number` through the step (`found`: the detection made on
        frame `number`); those it lets out are ready to be hidden and handed on (`_show_ready`)."""
        step = self.step
        # the media time of frame `number`: a frame that detection reaches more than max_delay
        # later is not shown (at the start, while the first detection warms up, the frames
        # before it would otherwise get only the boxes of a much later frame)
        seen_at = next((it.cap.pts for it in self.waiting
                        if it.number == number and it.cap is not None), None)
        while self.waiting and self.waiting[0].number <= number:
            item = self.waiting.popleft()
            here = found if item.number == number else None
            cap = item.cap
            # What push hands on is not shown: such a frame waited past the tracker's whole
            # window, far longer than max_delay allows (showing them let small faces through).
            step.push(item, here, cut=item.cut,
                      image=(lambda cap=cap: cap.image) if cap is not None else None)
        for item, faces in step.release(number - self.since):
            cap = item.cap
            if cap is None:
                continue
            if (seen_at is not None and cap.pts is not None
                    and seen_at - cap.pts > self.config.max_delay):
                continue  # counted as dropped: never shown with another moment's boxes
            self.ready.append((cap, faces, number))

    def _show_ready(self) -> None:
        ready, self.ready = self.ready, []
        for cap, faces, number in ready:
            self._show(cap, faces, number)

    def _show(self, cap: Captured, faces: Detections, detected: int) -> None:
        h, w = cap.image.shape[:2]
        faces = faces.clipped(w, h)
        try:
            out = self.pipeline.render(Frame(cap.image, cap.number, cap.pts, self.source.name),
                                       faces, masker=self.masker)
        except Exception as exc:  # fail closed again
            self.report.withheld += 1
            log.warning("hiding failed on a frame (%s: %s); it is withheld", type(exc).__name__, exc)
            return
        self.tally.add(faces)
        self.report.counts = self.tally.counts()
        lag = detected - cap.number
        self.lag_sum += lag
        self.report.detect_lag_max = max(self.report.detect_lag_max, lag)
        if self.config.overlay:
            self._overlay(out, time.monotonic() - cap.captured)
        self._emit(out, cap)

    def _emit(self, out: np.ndarray, cap: Captured) -> None:
        for sink in list(self.sinks):
            try:
                sink.send(out, cap)
            except Exception as exc:
                log.error("%s stopped working: %s", sink.name, exc)
                self.sinks.remove(sink)
                if not self.sinks:
                    raise LiveError(f"every output failed (the last: {sink.name}: {exc})") from exc
        now = time.monotonic()
        latency = now - cap.captured
        r = self.report
        if not r.frames_out:
            self.first_out = now
        self.last_out = now
        r.frames_out += 1
        self.latency_sum += latency
        r.latency_max = max(r.latency_max, latency)
        self.hist[min(_LATENCY_BINS, max(0, round(latency * 1000)))] += 1
        self.recent.append((now, latency))
        while self.recent and self.recent[0][0] < now - 1.0:
            self.recent.popleft()

    def _rates(self) -> tuple[float, float]:
        """(fps, mean latency) over the last second."""
        if len(self.recent) < 2:
            return 0.0, (self.recent[0][1] if self.recent else 0.0)
        span = self.recent[-1][0] - self.recent[0][0]
        fps = (len(self.recent) - 1) / span if span > 0 else 0.0
        return fps, sum(lat for _, lat in self.recent) / len(self.recent)

    def _status(self, grabber: Grabber) -> LiveStatus:
        fps, latency = self._rates()
        r = self.report
        return LiveStatus(grabber.frames_in, r.frames_out, grabber.dropped, fps, latency)

    def _overlay(self, out: np.ndarray, latency: float) -> None:
        """Output fps over the last second, this frame's latency so far, frames dropped so far."""
        fps, _ = self._rates()
        dropped = self.grabber.dropped if self.grabber is not None else 0
        draw_text(out, f"{fps:4.1f} fps  {latency * 1000:3.0f} ms  {dropped} dropped")


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """A 64 x 36 grey picture of the frame, for spotting cuts."""
    return cv2.cvtColor(cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)


def draw_text(image: np.ndarray, text: str) -> None:
    """White text on a dark outline in the top left corner, in place, sized to the picture."""
    h = image.shape[0]
    scale = max(0.4, h / 720)
    thick = max(1, round(scale * 1.5))
    org = (round(8 * scale), round(24 * scale))
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
