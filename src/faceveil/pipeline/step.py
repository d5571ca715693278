"""The frame step: detection schedule -> detect -> track -> decide, for every stream of frames.

File video (`pipeline.video`), live streams (`live.runner`) and, through `process_video`, the
GUI's preview and export, the web jobs, batch and the Python API all drive this one step; they
keep only their threads, queues, pacing and I/O. Hiding is the pipeline's mask and effect.

- **Schedule** (`Schedule.plan`): a frame the detector runs on gets either a full scan (every
  pass of the detector at `detect_size`, less those coarser than COARSE_MIN) or a quick pass (one
  pass, at the smallest size that still shows every known face at FOLLOW_FACE px). Full scans
  come every `scan_every` frames (the first frame detected at or after each multiple of it, so a
  segment of a video scans where the whole does) and at scene cuts; the detector runs at most
  every `detect_every` frames. The presets of all three are in PRESETS, the one table.
- **Track**: `tracking.Tracker`, which holds frames back and only ever adds hidden area
  (hold, interpolation, lead). A file hands frames on when they leave its look-ahead window
  (`push`, `flush`); a live stream hands a frame on as soon as a detection on it, or on a later
  frame, has been tracked (`release`): frames wait for detection rather than being shown with
  boxes guessed from the past, so a face is interpolated between two detections and hidden
  `lead` frames before it was first found, as in a file, within the frames still waiting.
- **Decide**: with `--keep`/`--only`, one keep/hide decision per track (`identity.TrackVotes`).

The one difference in what a file and a live stream hide is how far the tracker may look ahead:
a file `window` frames, a live stream only as far as the frames that wait for a detection. So
that a new face a quick pass misses is not shown until the next full scan finds it (a file hides
it there with `lead`; a live stream has already shown those frames), a live stream's quick pass
also looks for new faces of LIVE_MIN_FACE px and more: it sees the frame at no less than the
size where they are DETECTABLE px (half the frame; at most the full scan's size).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from ..config import VideoConfig
from ..tracking import SceneCuts, Tracker
from ..types import Detections, Frame

if TYPE_CHECKING:
    from .pipeline import Pipeline

T = TypeVar("T")


@dataclass(frozen=True)
class Preset:
    """What a quality preset leaves the video settings at when they are not set."""

    detect_size: int | None  # long side of the frame a full scan sees; None: as decoded
    scan_every: int  # frames between full scans
    detect_every: int  # frames between detections (full scans or quick passes)


# CenterFace finds faces from about 10 px at the size it sees, so a 640 px scan keeps faces of
# ~20 px and up in 1280x720, and every face of 10 px and up in 640x480.
PRESETS: dict[str, Preset] = {
    "fast": Preset(480, 12, 3),
    "balanced": Preset(640, 8, 2),
    "thorough": Preset(None, 1, 1),
}
FOLLOW_FACE = 16  # a quick pass shows every known face at this many pixels or more
FOLLOW_MIN = 320  # ... and never looks at a frame smaller than this (long side)
COARSE_MIN = 320  # a full scan leaves out passes where the whole frame is smaller than this
# A quick pass also runs the full scan's coarser passes while a followed face is COARSE_FACE px
# or more (its height at the quick pass's size). CenterFace (balanced) on the pan clip's exact
# boxes, every third frame: faces 32-64 px tall are found in 94.8% of frames at native pixels and
# 97.4% at half size, and each size finds faces the other misses (22 face-frames at half size
# only, 83 at native only); faces 20-32 px are found at native pixels in 100%, at half size in
# 85%. So a face of 32 px or more is followed at both sizes, as a full scan would see it, and a
# crowd of small faces by the native pass alone.
COARSE_FACE = 32
# A quick pass looks at the whole frame, not only around the faces it follows: passes limited to
# those regions were tried (2026-12-03) and saved no measurable CPU on the shared clips, while a
# face that comes and goes between two full scans could then never be found.
# Live: every detection also looks for new faces of LIVE_MIN_FACE px (in the frame) and more, at
# DETECTABLE px or more at the size the detector sees (as a 640 px scan of 1280x720 does).
LIVE_MIN_FACE = 20
DETECTABLE = 10


def video_settings(pipeline_config) -> VideoConfig:
    """The pipeline's video settings with what is left open filled in from PRESETS."""
    c: VideoConfig = pipeline_config.video
    p = PRESETS[pipeline_config.detector.quality]
    return dataclasses.replace(c, detect_size=c.detect_size or p.detect_size,
                               scan_every=c.scan_every or p.scan_every,
                               detect_every=c.detect_every or p.detect_every)


@dataclass(frozen=True)
class Pass:
    """One detection: a full scan or a quick pass, seeing the frame at `side` px (long side).
    `coarse`: a quick pass that also runs the scan's coarser passes (see COARSE_FACE)."""

    scan: bool
    side: int
    coarse: bool = False


class Schedule:
    """Which frames the detector runs on, full scan or quick pass, and at what size."""

    def __init__(self, video: VideoConfig, *, live: bool = False) -> None:
        self.every = video.detect_every or 1
        self.scan_every = video.scan_every or 1
        self.detect_size = video.detect_size
        self.live = live
        self.last_scan: int | None = None

    def scan_side(self, full: int) -> int:
        """Long side of the frame a full scan sees, for frames `full` px on their long side."""
        return min(full, self.detect_size or full)

    def due(self, index: int, cut: bool) -> bool:
        """For a file, whose every frame comes through: is this one detected?"""
        return cut or index % self.every == 0

    def plan(self, index: int, *, cut: bool, full: int, known: np.ndarray,
             can_follow: bool = True) -> Pass:
        """The detection for frame `index` (frames `full` px on their long side), given the boxes
        of the faces known now (`known`, (N, 4) in frame pixels)."""
        scan_side = self.scan_side(full)
        # on the grid of multiples of scan_every, not counted from the last scan: a cut adds a
        # scan without moving the others, so a video's segments (batch) scan where it does whole
        scan = (cut or not can_follow or self.last_scan is None
                or index - index % self.scan_every > self.last_scan)
        if scan:
            self.last_scan = index
            return Pass(True, scan_side)
        side = follow_side(known, full, scan_side)
        if self.live:  # no lead to hide what a quick pass misses until the next scan finds it
            side = max(side, min(scan_side, -(-full * DETECTABLE // LIVE_MIN_FACE)))
        coarse = bool(len(known)) and float((known[:, 3] - known[:, 1]).max()) * side / full >= COARSE_FACE
        return Pass(False, side, coarse)

    def reset(self) -> None:
        self.last_scan = None


def follow_side(boxes: np.ndarray, full: int, scan_side: int) -> int:
    """Long side of a quick pass: every known face at FOLLOW_FACE px or more, within limits."""
    if not len(boxes):
        return min(FOLLOW_MIN, scan_side)
    smallest = float(np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).min())
    side = full * FOLLOW_FACE / max(smallest, 1.0)
    return int(min(scan_side, max(FOLLOW_MIN, -(-side // 32) * 32)))


def detect(detector, picture: np.ndarray, plan: Pass, size: tuple[int, int], *, index: int = 0,
           pts: float | None = None, source: str = "") -> Detections:
    """Run the planned detection on `picture` (the frame upright, RGB, `plan.side` px on its long
    side); boxes come back in pixels of the frame at `size` (width, height)."""
    frame = Frame(picture, index, pts, source)
    scales = getattr(detector, "scales", None)
    detect_at = getattr(detector, "detect_at", None)
    if detect_at is None:
        found = detector.detect(frame)
    elif not (plan.scan or plan.coarse):
        found = detect_at(frame, [1.0])
    elif scales is None:
        found = detector.detect(frame)
    else:
        side = max(picture.shape[:2])
        found = detect_at(frame, [s for s in scales(*picture.shape[:2]) if s * side >= COARSE_MIN]
                          or [1.0])
    w, h = size
    ph, pw = picture.shape[:2]
    return found if (pw, ph) == (w, h) else found.scaled(w / pw, h / ph)


class FrameStep(Generic[T]):
    """One stream's detection schedule, tracker and keep/hide decisions.

    Per frame, in order: `cut` with its thumbnail; for a frame the detector runs on, `plan`, then
    `detect` with the picture at the planned size; then `push` with what was found (None when
    nothing ran). A
    file takes the frames `push` and `flush` hand back; a live stream also takes those `release`
    hands back once a detection has been pushed. Each frame comes back as (item, Detections in
    frame pixels, with track ids, `filled` for the tracker's boxes and `keep` for who stays
    visible).
    """

    def __init__(self, pipeline: Pipeline, *, live: bool = False,
                 video: VideoConfig | None = None, use_identity: bool = True) -> None:
        self.pipeline = pipeline
        self.video = video or video_settings(pipeline.config)
        self.live = live
        self.schedule = Schedule(self.video, live=live)
        self.cuts = SceneCuts(self.video.scene_cut)
        self.tracker: Tracker[T] = Tracker(self.video)
        self.votes = None
        if use_identity and pipeline.identifier is not None:
            from ..identity.decide import TrackVotes

            self.votes = TrackVotes(pipeline.identifier, self.video.detect_every or 1,
                                    min_votes=TrackVotes.VOTES if live else 1)
        detector = pipeline.detector
        self.can_follow = hasattr(detector, "detect_at")

    @property
    def number(self) -> int:
        """The number of the last frame pushed (-1 before the first)."""
        return self.tracker.number

    def cut(self, thumbnail: np.ndarray) -> bool:
        """Whether the frame is a hard cut, from its small grey thumbnail (e.g. 64 x 36): the
        next detection is then a full scan, and the tracks end there."""
        return self.cuts.update(thumbnail)

    def plan(self, index: int, *, cut: bool, full: int) -> Pass:
        return self.schedule.plan(index, cut=cut, full=full, known=self.tracker.recent_boxes(),
                                  can_follow=self.can_follow)

    def detect(self, picture: np.ndarray, plan: Pass, size: tuple[int, int], *, index: int = 0,
               pts: float | None = None, source: str = "") -> Detections:
        return detect(self.pipeline.detector, picture, plan, size, index=index, pts=pts,
                      source=source)

    def push(self, item: T, found: Detections | None, *, cut: bool = False,
             image: Callable[[], np.ndarray] | None = None) -> list[tuple[T, Detections]]:
        """The next frame (frames are numbered by the pushes, from 0) and what was found on it.
        `image`: the frame, upright, RGB, at full size, for identity decisions (asked for only
        when a face is judged)."""
        done = self.tracker.push(item, found, cut=cut)
        if self.votes is not None and self.tracker.latest is not None and image is not None:
            self.votes.observe(self.number, self.tracker.latest, image)
        return self._decided(done)

    def release(self, upto: int) -> list[tuple[T, Detections]]:
        """Hand on the frames up to number `upto` now (live: a detection at or after them has
        been pushed, so all that a tracker can know about them without looking further ahead)."""
        return self._decided(self.tracker.release(upto))

    def flush(self) -> list[tuple[T, Detections]]:
        return self._decided(self.tracker.flush())

    def _decided(self, done: list[tuple[T, Detections]]) -> list[tuple[T, Detections]]:
        if self.votes is None:
            return done
        return [(item, self.votes.decide(d)) for item, d in done]
