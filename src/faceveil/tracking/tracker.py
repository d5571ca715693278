"""Associate faces across frames and fill detection gaps, looking ahead over a short window.

The tracker holds the most recent frames back (`Tracker.window` of them) before it hands them
on, which lets it change its mind about them in the safe direction only:

- a face detected again after a gap gets boxes interpolated over the gap;
- a new face is also hidden for `lead` frames before it was first detected;
- a face that is lost stays hidden at its last place (grown a little each frame) for `hold`
  frames.

Tracks end at a scene cut, so nothing is carried from one shot into the next. Detections pass
through unchanged apart from their track id: a tracker only ever adds hidden area. Added boxes
are marked `filled`. With `detect_every` K the detector runs on every K-th frame only (and
small faces may only be found by the full scan every `scan_every` frames): hold and lead
stretch to cover the frames in between.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from ..config import VideoConfig
from ..geometry import centres as _centres
from ..geometry import iou_matrix
from ..types import Detections

T = TypeVar("T")

_MAX_STEP = 0.5  # a held box moves at most this share of its size per frame
_GROWTH = 0.03  # a held box grows by this share of its size per frame, up to _MAX_GROWTH
_MAX_GROWTH = 0.3


def _grown(box: np.ndarray, frames: int) -> np.ndarray:
    g = min(_MAX_GROWTH, _GROWTH * frames) / 2
    w, h = box[2] - box[0], box[3] - box[1]
    return box + np.array([-g * w, -g * h, g * w, g * h], np.float32)


@dataclass
class _Track:
    id: int
    box: np.ndarray  # last detected box
    score: float
    seen: int  # frame number of the last detection
    landmarks: np.ndarray | None = None  # (5, 2) of the last detection
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))  # box change per frame

    def held(self, gap: int) -> np.ndarray:
        """Where a face not found for `gap` frames may be: its last box and where its velocity
        takes it, as one box (a held face never covers less than its last box), grown."""
        size = np.array([self.box[2] - self.box[0], self.box[3] - self.box[1]] * 2, np.float32)
        moved = self.box + np.clip(self.velocity, -_MAX_STEP * size, _MAX_STEP * size) * gap
        both = np.concatenate([np.minimum(self.box[:2], moved[:2]), np.maximum(self.box[2:], moved[2:])])
        return _grown(both.astype(np.float32), gap)

    def predicted(self, n: int) -> np.ndarray:
        """Where the face should be at frame n if it kept moving as it did (grown a little)."""
        return _grown(self.box + self.velocity * (n - self.seen), n - self.seen)

    def fill(self, box: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
        """A filled-in box for this track, with its last landmarks moved along."""
        lm = None
        if self.landmarks is not None:
            sx = (box[2] - box[0]) / max(self.box[2] - self.box[0], 1e-3)
            sy = (box[3] - box[1]) / max(self.box[3] - self.box[1], 1e-3)
            lm = (box[:2] + (self.landmarks - self.box[:2]) * [sx, sy]).astype(np.float32)
        return box.astype(np.float32), self.score, lm


@dataclass
class _Entry(Generic[T]):
    item: T
    number: int
    scene: int
    detections: Detections | None = None  # what the detector found, with track ids
    # track id -> (box, score, landmarks or None)
    filled: dict[int, tuple[np.ndarray, float, np.ndarray | None]] = field(default_factory=dict)


class Tracker(Generic[T]):
    """Feed frames in order with `push`; take finished frames from what it returns and `flush`.

    `item` is whatever the caller wants back with each frame (a frame, an index...).
    `detections` is None on a frame the detector did not run on.
    """

    def __init__(self, config: VideoConfig | None = None) -> None:
        """Give it the config with `detect_every` and `scan_every` resolved (None counts as 1)."""
        c = self.config = config or VideoConfig()
        k = max(c.detect_every or 1, c.scan_every or 1)  # frames a new face may go unseen
        self.hold = max(c.hold, k - 1)  # an unseen frame is covered from both sides
        self.lead = max(c.lead, k - 1)
        self.max_gap = max(c.max_gap, 2 * k)
        self.window = max(self.max_gap, self.lead)  # frames held back before they are final
        self._entries: deque[_Entry[T]] = deque()
        self._tracks: dict[int, _Track] = {}
        self._next_id = 0
        self._number = -1
        self._scene = 0
        self.latest: Detections | None = None  # the last pushed frame's detections, with track ids

    @property
    def number(self) -> int:
        """The number of the last frame pushed (-1 before the first)."""
        return self._number

    def push(
        self, item: T, detections: Detections | None, *, cut: bool = False
    ) -> list[tuple[T, Detections]]:
        self._number += 1
        n = self._number
        if cut and n > 0:
            self._scene += 1
            self._tracks.clear()
        entry: _Entry[T] = _Entry(item, n, self._scene)
        self._entries.append(entry)
        seen: set[int] = set()
        if detections is not None:
            entry.detections = self._associate(detections, n, seen)
        self.latest = entry.detections
        for t in list(self._tracks.values()):
            gap = n - t.seen
            if t.id in seen:
                continue
            if gap > self.max_gap:
                del self._tracks[t.id]
            elif gap <= self.hold:
                entry.filled[t.id] = t.fill(t.held(gap))
        out = []
        while self._entries and self._entries[0].number < n - self.window:
            out.append(self._finish(self._entries.popleft()))
        return out

    def recent_boxes(self) -> np.ndarray:
        """(N, 4) last boxes of the tracks seen within `hold` frames."""
        boxes = [t.box for t in self._tracks.values() if self._number - t.seen <= self.hold]
        return np.stack(boxes) if boxes else np.zeros((0, 4), np.float32)

    def release(self, upto: int) -> list[tuple[T, Detections]]:
        """The frames held back up to number `upto`, now, before the window has passed them
        (a live stream, once a detection at or after them is in: what the tracker knows about
        them then is final but for the `lead` of faces first found later)."""
        out = []
        while self._entries and self._entries[0].number <= upto:
            out.append(self._finish(self._entries.popleft()))
        return out

    def flush(self) -> list[tuple[T, Detections]]:
        """The frames still held back, after the last one was pushed."""
        out = [self._finish(e) for e in self._entries]
        self._entries.clear()
        return out

    def _associate(self, dets: Detections, n: int, seen: set[int]) -> Detections:
        ids, new, self._next_id = associate(self._tracks, self._next_id, dets, n, self.config.iou,
                                            seen, bridge=self._bridge)
        for t in new:
            for e in self._entries:  # lead: hidden a little before it was first seen
                if n - self.lead <= e.number < n and e.scene == self._scene:
                    e.filled.setdefault(t.id, t.fill(t.box))
        return dataclasses.replace(dets, track_ids=ids)

    def _bridge(self, track: _Track, box: np.ndarray, n: int) -> None:
        """Interpolate the boxes of the frames between the track's last detection and now."""
        gap = n - track.seen
        if gap <= 1:
            return
        for e in self._entries:
            if track.seen < e.number < n:
                f = (e.number - track.seen) / gap
                e.filled[track.id] = track.fill((1 - f) * track.box + f * box)

    def _finish(self, e: _Entry[T]) -> tuple[T, Detections]:
        found = e.detections if e.detections is not None else Detections.empty()
        ids = set(found.track_ids.tolist()) if found.track_ids is not None and len(found) else set()
        extra = [(tid, *rest) for tid, rest in e.filled.items() if tid not in ids]
        if not extra:
            if found.track_ids is None:
                found = dataclasses.replace(found, track_ids=np.zeros(0, np.int64))
            return e.item, found
        lms = [lm for *_, lm in extra]
        filled = Detections(
            np.stack([b for _, b, _, _ in extra]), [s for _, _, s, _ in extra],
            landmarks=None if any(lm is None for lm in lms) else np.stack(lms),
            track_ids=[t for t, *_ in extra], filled=np.ones(len(extra), bool),
        )
        return e.item, Detections.concat([found, filled]) if len(found) else filled


class SceneCuts:
    """Spots hard cuts from small grey thumbnails of consecutive frames.

    A cut is a frame whose thumbnail differs from the previous one by more than `threshold`
    (mean absolute difference, 0..1) AND whose brightness histogram changed by more than it
    too (share of pixels that moved between 16 bins): motion alone changes the first much
    more than the second. 0.09 separates the cuts from camera motion in the shared clips.
    """

    def __init__(self, threshold: float = 0.09) -> None:
        self.threshold = threshold
        self._last: np.ndarray | None = None
        self._last_hist: np.ndarray | None = None

    def update(self, thumb: np.ndarray) -> bool:
        """`thumb`: a small uint8 grey picture of the frame (e.g. 64 x 36)."""
        thumb = thumb.astype(np.float32) / 255.0
        hist = np.histogram(thumb, 16, (0.0, 1.0))[0].astype(np.float32) / thumb.size
        last, last_hist = self._last, self._last_hist
        self._last, self._last_hist = thumb, hist
        if last is None or last_hist is None or self.threshold <= 0 or last.shape != thumb.shape:
            return False
        diff = float(np.abs(thumb - last).mean())
        hist_change = float(np.abs(hist - last_hist).sum()) / 2
        return diff > self.threshold and hist_change > self.threshold


def associate(tracks: dict[int, _Track], next_id: int, dets: Detections, n: int, iou: float,
              seen: set[int], *, bridge: Callable[[_Track, np.ndarray, int], None] | None = None,
              ) -> tuple[np.ndarray, list[_Track], int]:
    """Link frame n's detections to `tracks` (updated in place; new ones added).

    Best overlap first, with the track's last box (grown by its gap) or its predicted one; a face
    moving fast, or through a long gap, may overlap neither, so failing that by centre distance,
    allowing more the longer the track went unseen. `bridge(track, box, n)` is called before a
    track takes its new box. Returns (track id per detection, the new tracks, the next free id).
    """
    ids = np.full(len(dets), -1, np.int64)
    current = list(tracks.values())
    if len(dets) and current:
        last = np.stack([_grown(t.box, n - t.seen) for t in current])
        ahead = np.stack([t.predicted(n) for t in current])
        sim = np.maximum(iou_matrix(dets.xyxy, last), iou_matrix(dets.xyxy, ahead))
        gaps = np.array([n - t.seen for t in current], np.float32)
        dc = np.minimum(
            np.linalg.norm(_centres(dets.xyxy)[:, None] - _centres(last)[None], axis=2),
            np.linalg.norm(_centres(dets.xyxy)[:, None] - _centres(ahead)[None], axis=2))
        size = np.sqrt(np.maximum(dets.widths * dets.heights, 1.0))
        near = dc < size[:, None] * np.minimum(0.5 + 0.25 * gaps, 3.0)[None]
        sim = np.where(sim >= iou, sim, np.where(near, 1e-3 / (1 + dc), 0.0))
        for flat in np.argsort(-sim, axis=None):
            i, j = np.unravel_index(flat, sim.shape)
            if sim[i, j] <= 0:
                break
            if ids[i] >= 0 or current[j].id in seen:
                continue
            t = current[j]
            ids[i] = t.id
            seen.add(t.id)
            box = dets.xyxy[i].copy()
            if bridge is not None:
                bridge(t, box, n)
            t.velocity = ((box - t.box) / (n - t.seen)).astype(np.float32)
            t.box, t.score, t.seen = box, float(dets.scores[i]), n
            t.landmarks = None if dets.landmarks is None else dets.landmarks[i].copy()
    new = []
    for i in np.nonzero(ids < 0)[0]:
        lm = None if dets.landmarks is None else dets.landmarks[i].copy()
        t = _Track(next_id, dets.xyxy[i].copy(), float(dets.scores[i]), n, lm)
        next_id += 1
        tracks[t.id] = t
        ids[i] = t.id
        seen.add(t.id)
        new.append(t)
    return ids, new, next_id
