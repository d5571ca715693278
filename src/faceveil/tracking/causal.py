"""Causal tracking for live streams: each frame's faces are final the moment it is pushed.

`Tracker` holds frames back to look ahead; a live stream cannot wait, so this tracker only
uses the past. A face seen within the last `hold` frames but not found on this one (a missed
detection, or a frame the detector skipped) is still hidden: at its last box, moved along by
the velocity it had, the two boxes' union grown a little more each frame (3% of its size per
frame, at most 30%). Like `Tracker`, it only ever adds hidden area: detections pass through
unchanged apart from their track id, and added boxes are marked `filled`.

What it cannot do is hide a face before the detector first finds it (files get `lead` for
that); with `detect_every` K, a face that walks in may show for up to K - 1 frames.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import VideoConfig
from ..types import Detections
from .tracker import _grown, _Track, associate

_MAX_STEP = 0.5  # a held box moves at most this share of its size per frame


class CausalTracker:
    """Faces followed through a stream without looking ahead.

    Either call `update` once per frame, in order, with that frame's detections (None on a
    frame the detector skipped), or, when detection runs beside the stream and finishes late,
    `observe` each detection with the number of the frame it was made on and ask `faces` for
    the frames shown meanwhile. A face is held until detections have missed it for more than
    `hold` frames; frames no detection has looked at yet do not count against it.
    """

    def __init__(self, config: VideoConfig | None = None, *, detect_every: int = 1) -> None:
        c = self.config = config or VideoConfig()
        self.detect_every = max(1, detect_every)
        self.hold = max(c.hold, self.detect_every - 1)  # skipped frames are always covered
        self.max_gap = max(c.max_gap, 2 * self.detect_every, self.hold)  # a track's id lives this long
        self._tracks: dict[int, _Track] = {}
        self._next_id = 0
        self._number: int | None = None  # the last frame detections were given for (or None)
        self._found = Detections.empty()  # what was found on that frame, with track ids

    @property
    def number(self) -> int | None:
        """The frame number of the last update or observation."""
        return self._number

    def reset(self) -> None:
        """Forget every face (e.g. the picture size changed)."""
        self._tracks.clear()
        self._found = Detections.empty()

    def recent_boxes(self) -> np.ndarray:
        """(N, 4) last detected boxes of the faces seen within `hold` frames."""
        n = self._number if self._number is not None else 0
        boxes = [t.box for t in self._tracks.values() if n - t.seen <= self.hold]
        return np.stack(boxes) if boxes else np.zeros((0, 4), np.float32)

    def update(self, detections: Detections | None, number: int | None = None) -> Detections:
        """This frame's faces: the detections with track ids plus the held faces.

        `number`: the frame's number in the stream, when frames were skipped (dropped frames
        count: holding and velocities are per frame of the source); default: the next one.
        """
        n = (0 if self._number is None else self._number + 1) if number is None else int(number)
        self.observe(Detections.empty() if detections is None else detections, n,
                     looked=detections is not None)
        return self.faces(n)

    def observe(self, detections: Detections, number: int, *, looked: bool = True) -> Detections:
        """Take the detections made on frame `number` (numbers increase); they come back with
        track ids. `looked=False`: no detection ran there, only time went by."""
        n = int(number)
        if self._number is not None and n <= self._number:
            raise ValueError(f"frame numbers must increase: {n} after {self._number}")
        self._number = n
        found = self._associate(detections, n) if looked and len(detections) else Detections.empty()
        if found.track_ids is None:
            found = dataclasses.replace(found, track_ids=np.zeros(0, np.int64))
        self._found = found
        for t in list(self._tracks.values()):
            if n - t.seen > self.max_gap:
                del self._tracks[t.id]
        return found

    def faces(self, number: int) -> Detections:
        """The faces to hide on frame `number` (not before the last observed one): on that frame,
        what was found there; every face not found there but seen within `hold` frames before it
        is held, moved along by its velocity and grown with the frames since it was seen."""
        n = int(number)
        last = self._number if self._number is not None else n
        if n < last:
            raise ValueError(f"frame {n} is before the last observed one, {last}")
        found = self._found if n == last else Detections.empty()
        here = set(found.track_ids.tolist()) if found.track_ids is not None else set()
        held = [(t.id, *t.fill(self._held_box(t, n - t.seen))) for t in self._tracks.values()
                if t.id not in here and last - t.seen <= self.hold]
        if not held:
            return found
        lms = [lm for *_, lm in held]
        extra = Detections(
            np.stack([b for _, b, _, _ in held]), [s for _, _, s, _ in held],
            landmarks=None if any(lm is None for lm in lms) else np.stack(lms),
            track_ids=[t for t, *_ in held], filled=np.ones(len(held), bool),
        )
        return Detections.concat([found, extra]) if len(found) else extra

    @staticmethod
    def _held_box(t: _Track, gap: int) -> np.ndarray:
        """Where the face was and where its velocity takes it, as one box, grown with the gap."""
        size = np.array([t.box[2] - t.box[0], t.box[3] - t.box[1]] * 2, np.float32)
        step = np.clip(t.velocity, -_MAX_STEP * size, _MAX_STEP * size)
        moved = t.box + step * gap
        both = np.concatenate([np.minimum(t.box[:2], moved[:2]), np.maximum(t.box[2:], moved[2:])])
        return _grown(both.astype(np.float32), gap)

    def _associate(self, dets: Detections, n: int) -> Detections:
        """Link detections to tracks as `Tracker` does (faceveil.tracking.tracker.associate)."""
        ids, _, self._next_id = associate(self._tracks, self._next_id, dets, n, self.config.iou,
                                          set())
        return dataclasses.replace(dets, track_ids=ids)
