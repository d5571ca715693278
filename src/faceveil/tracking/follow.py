"""Following one box by its looks: for a face drawn by hand, which the detector did not find.

Tracks of detected faces are linked by overlap (`Tracker`); a drawn box has no detections to
link, so it is followed by template matching instead (normalised cross-correlation on grey
pictures, around where it was, at three sizes). It is matched against both what was drawn and
what it looked like in the last frame, so a turning head is followed, while the drawn look
keeps it from drifting. When the best match is poor, or suddenly much poorer than in the
frames before (the face left, was covered, or the scene cut; a turning head degrades slowly),
following stops: the caller holds the last box a few frames, as for
detected faces, and the user draws again if the face comes back.
"""

from __future__ import annotations

import cv2
import numpy as np

TEMPLATE_SIDE = 48  # the box's long side is matched at this many pixels
MIN_SCORE = 0.5  # poorer best matches mean the face is lost
DROP = 0.25  # ... and so does a match this much poorer than the recent ones (their running mean)
SIZES = (0.94, 1.0, 1.06)  # size changes tried per frame


class BoxFollower:
    """`step(grey)` gives the box in the next frame (either direction), or None once lost."""

    def __init__(self, grey: np.ndarray, box: np.ndarray | tuple[float, ...], *,
                 min_score: float = MIN_SCORE) -> None:
        self.box = _clip(np.asarray(box, np.float64), grey.shape)
        self.min_score = min_score
        self.drawn = self._patch(grey, self.box)
        self.last = self.drawn
        self.score = 1.0
        self._recent: float | None = None  # running mean of the scores

    def _patch(self, grey: np.ndarray, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = np.round(box).astype(int)
        return grey[y1:y2, x1:x2].astype(np.float32)

    def step(self, grey: np.ndarray) -> np.ndarray | None:
        x1, y1, x2, y2 = self.box
        w, h = x2 - x1, y2 - y1
        scale = TEMPLATE_SIDE / max(w, h, 1.0)  # work where the box is TEMPLATE_SIDE px
        # search window: the box grown by its own size on every side
        region = _clip(np.array([x1 - w, y1 - h, x2 + w, y2 + h]), grey.shape)
        rx1, ry1, rx2, ry2 = np.round(region).astype(int)
        window = grey[ry1:ry2, rx1:rx2].astype(np.float32)
        window = cv2.resize(window, (max(1, round(window.shape[1] * scale)),
                                     max(1, round(window.shape[0] * scale))),
                            interpolation=cv2.INTER_AREA)
        best = (-1.0, None)
        for size in SIZES:
            tw, th = max(4, round(w * scale * size)), max(4, round(h * scale * size))
            if tw > window.shape[1] or th > window.shape[0]:
                continue
            for template in (self.drawn, self.last):
                if template.size == 0:
                    continue
                t = cv2.resize(template, (tw, th), interpolation=cv2.INTER_AREA)
                if float(t.std()) < 2.0:  # a flat patch matches anything
                    continue
                scores = cv2.matchTemplate(window, t, cv2.TM_CCOEFF_NORMED)
                _, score, _, (mx, my) = cv2.minMaxLoc(scores)
                if score > best[0]:
                    nx1, ny1 = rx1 + mx / scale, ry1 + my / scale
                    best = (score, np.array([nx1, ny1, nx1 + tw / scale, ny1 + th / scale]))
        score, box = best
        self.score = max(score, 0.0)
        recent = self._recent if self._recent is not None else score
        if box is None or score < self.min_score or score < recent - DROP:
            return None
        self._recent = 0.7 * recent + 0.3 * score
        self.box = _clip(box, grey.shape)
        if (self.box[2] - self.box[0]) < 2 or (self.box[3] - self.box[1]) < 2:
            return None
        self.last = self._patch(grey, self.box)
        return self.box.copy()


def _clip(box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    return np.array([np.clip(box[0], 0, w), np.clip(box[1], 0, h),
                     np.clip(box[2], 0, w), np.clip(box[3], 0, h)], np.float64)
