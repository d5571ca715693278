"""Verification: look again at what was written, with other eyes, and accuse only faces.

After a file is written, a second face detector (`VERIFY_DETECTOR`, a registry name: a real
face detector that every install has, never Haar, which calls well-blurred faces faces) looks
at the output twice: once over the whole picture, and once close up at each hidden face (the
place scaled so the face is `CLOSE_UP` px tall, where a detector is most sure). A finding
accuses a hidden face only when that face is a face: the same close-up look on the original
must find one there. So a false detection that was hidden (a patch of a shirt, a poster) is
never called "still a face" or "still recognisable".

- *recognisable* (where the `people` extra is installed): a confirmed face, 40 px or more and
  sharp enough to recognise in the original, that the recogniser still calls the same person
  after hiding (embedding distance to itself before under `RECOGNISABLE`, dlib's own 0.6) and
  that kept measurably more of itself than the *reference hiding* keeps (the default blur and
  mask, which leave no face re-identified in bench/reid.py): nearer by `MARGIN` (or a fifth
  of the reference's distance, where that is small). The reference
  is what keeps a place that stays alike whatever hides it (a shirt, a wall, a face-less
  texture) from ever being accused: hidden or not, it is as near to itself as its reference is.
- *face_found*: a hidden face still looks like a face to the second look, more than the
  reference hiding leaves it (by `SCORE_MARGIN`), and the recogniser could not clear it (too
  small or blurred to measure, beyond the faces measured, no recogniser installed): uncertain,
  so it fails (closed). A face found that nothing hid fails too (confirmed close up; a face left
  visible on purpose is not counted).
- *face_shape* (listed, never failing): a hidden face still has a face's shape (a mosaic keeps
  a head's outline) but the recogniser measured it and cannot recognise it, or, too small to
  measure, it looks no more like a face than the reference hiding leaves it (a default-blurred
  33 px head kept CenterFace's 0.80 close up on a WIDER photo). "Still detectable as
  a face" is not "recognisable": pixelation at its default 8 blocks, re-identified in none of the
  shared identity photos, showed a face to CenterFace close up on 24 of 45 of them.
- *unconfirmed* (listed, never failing): the second detector alone saw a face where nothing was
  hidden and its close-up look did not agree (most are patterns that look like faces).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..anonymization.masks import pads_unsure
from ..config import DetectorConfig, PipelineConfig
from ..geometry import iou_matrix
from ..types import Detections, Frame

log = logging.getLogger(__name__)

VERIFY_DETECTOR = "centerface"  # the second look: a detectors registry name, switchable
VERIFY_QUALITY = "balanced"  # its preset (thorough costs ~7x on the whole picture; close-ups are small)
FOUND_SCORE = 0.8  # second detector's confidence that counts as "a face is still there"
FACE_SCORE = 0.5  # close up on the original: the hidden place is a face
CLOSE_UP = 96  # px: face height the close-up looks scale each place to
MIN_CLOSE_UP = 12  # px: hidden faces smaller than this get only the whole-picture look
MAX_CLOSE_UP = 40  # hidden faces looked at close up per picture (largest first)
RECOGNISABLE = 0.6  # dlib's own same-person distance: nearer than this, after to before, is "the same"
MARGIN = 0.1  # ... and nearer than the reference hiding (the default blur) by this much,
REFERENCE_SHARE = 0.8  # or under this share of the reference's distance (small, soft faces)
SCORE_MARGIN = 0.1  # ... the second look's score over the default blur's that counts as "more a face"
# (JPEG re-encoding moved close-up scores by up to 0.07 on WIDER photos, see bench/README.md)
MIN_JUDGED = 40  # faces smaller than this (px, box height) are not embedded
MAX_EMBEDDED = 12  # faces measured per picture (embedding costs ~85 ms a face, twice)
VIDEO_SAMPLES = 24  # video frames checked, spread over the video
VIDEO_EMBEDDED = 4  # faces measured per checked video frame


@dataclass
class Finding:
    kind: str  # "face_found" | "recognisable" | "face_shape" | "unconfirmed" (the last two never fail)
    detail: str
    box: list[float]  # [x1, y1, x2, y2] in the output's (upright) pixels
    frame: int | None = None
    time: float | None = None  # seconds, for video
    score: float | None = None  # face_found: the second detector's confidence
    distance: float | None = None  # embedding distance original -> output
    reference: float | None = None  # embedding distance original -> the reference hiding
    reference_score: float | None = None  # the second look's close-up score on the reference

    @property
    def failing(self) -> bool:
        return self.kind not in ("unconfirmed", "face_shape")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Verifier:
    """Checks anonymized pictures against their originals. Models load on first use."""

    def __init__(self, config: PipelineConfig, detector: str | None = None) -> None:
        self.config = config
        self.detector_name = detector or VERIFY_DETECTOR
        self._detector = None
        self._embedder: Any = None
        self._reference: Any = None
        self.embedder_note = ""

    @property
    def detector(self):
        """The second detector. A missing one is an error, never a weaker stand-in."""
        if self._detector is None:
            from ..detection import create_detector

            self._detector = create_detector(
                DetectorConfig(name=self.detector_name, quality=VERIFY_QUALITY,
                               threads=self.config.detector.threads))
        return self._detector

    @property
    def embedder(self):
        """The face embedder, or None (and a note why) when the people extra is missing."""
        if self._embedder is None:
            from ..errors import MissingDependencyError
            from ..identity import embedders

            try:
                self._embedder = embedders.create(self.config.identity.embedder)
            except (MissingDependencyError, ImportError) as exc:
                self._embedder = False
                self.embedder_note = f"recognisability not measured: {exc}"
        return self._embedder or None

    def check(self, original: np.ndarray, output: np.ndarray, dets: Detections, *,
              frame: int | None = None, time: float | None = None,
              embed_limit: int = MAX_EMBEDDED) -> list[Finding]:
        """Findings for one picture: `dets` are the faces as hidden/kept in `output`; the
        `embed_limit` largest confirmed hidden faces are measured for recognisability."""
        findings: list[Finding] = []
        hidden, kept = dets[~dets.keep], dets[dets.keep]
        found = self.detector.detect(Frame(np.ascontiguousarray(output)))
        found = found[found.scores >= FOUND_SCORE]
        if len(found) and len(kept):
            found = found[iou_matrix(found.xyxy, kept.xyxy).max(axis=1) < 0.3]
        if len(found) and len(hidden):
            overlap = iou_matrix(found.xyxy, hidden.xyxy)
            over, which = overlap.max(axis=1) >= 0.3, overlap.argmax(axis=1)
        else:
            over, which = np.zeros(len(found), bool), np.zeros(len(found), int)
        # the second look seen over each hidden face: whole picture, then close up
        seen = np.zeros(len(hidden), np.float32)
        for score, i in zip(found.scores[over], which[over], strict=True):
            seen[i] = max(seen[i], score)
        order = [i for i in np.argsort(-hidden.heights) if hidden.heights[i] >= MIN_CLOSE_UP]
        for i in order[:MAX_CLOSE_UP]:
            if seen[i] < FOUND_SCORE:
                seen[i] = max(seen[i], self.close_up(output, hidden.xyxy[i]))
        looked: dict[int, bool] = {}  # hidden index -> is a face in the original

        def is_face(i: int) -> bool:
            if i not in looked:
                looked[i] = self.close_up(original, hidden.xyxy[i]) >= FACE_SCORE
            return looked[i]

        reference: list[np.ndarray] = []  # the original with every hidden face default-blurred

        def reference_image() -> np.ndarray:
            if not reference:
                pad = pads_unsure(self.config.detector.quality, still=frame is None)
                reference.append(self.reference(original, hidden, pad))
            return reference[0]

        measured = self.distances(original, output, hidden, is_face, embed_limit, reference_image)
        # looked at: faces the second look still sees, and faces the recogniser still calls the
        # same person without clearing them against the reference (then the second look decides)
        candidates = set(np.nonzero(seen >= FOUND_SCORE)[0].tolist())
        candidates |= {i for i, (d, _) in measured.items() if d < RECOGNISABLE}
        for i in sorted(candidates):
            if not is_face(i):
                continue
            box, score = _box(hidden.xyxy[i]), round(float(seen[i]), 3)
            m = measured.get(i)
            if m is not None and recognisable(*m):
                continue  # one finding per face: "recognisable", below, says more
            ref = self.close_up(reference_image(), hidden.xyxy[i])
            more = seen[i] > ref + SCORE_MARGIN  # more a face than the default blur leaves it
            if m is not None and m[0] < RECOGNISABLE and more:
                # two looks agree: the recogniser still calls it the same person and the second
                # look finds more of a face than the reference hiding leaves (at any score: a
                # 134 px face pixelated with 16 blocks scored 0.50 close up, its blur 0.0)
                findings.append(Finding(
                    "recognisable", f"a {int(hidden.heights[i])} px face is still recognisable "
                    f"(distance {m[0]:.2f} < {RECOGNISABLE}) and more a face than the default blur "
                    f"leaves it ({self.detector_name} {seen[i]:.2f}, the blur {ref:.2f}): the "
                    "effect is too weak for its size", box, frame, time, score=score,
                    distance=round(m[0], 3), reference=round(m[1], 3),
                    reference_score=round(ref, 3)))
            elif seen[i] < FOUND_SCORE:
                continue  # the recogniser alone, and no more a face than the reference: as safe as it
            elif m is not None and m[1] >= RECOGNISABLE:
                # a face's shape that the recogniser measured and cannot recognise: listed, not
                # failing (a mosaic keeps a head's outline). Where the reference itself stays
                # "the same person" (small, soft faces), the distance says nothing and the second
                # look decides, as for faces not measured.
                findings.append(Finding(
                    "face_shape", f"a hidden face keeps a face's shape ({self.detector_name} "
                    f"{seen[i]:.2f}) but is not recognisable (distance {m[0]:.2f}, reference "
                    f"{m[1]:.2f})", box, frame, time, score=score, distance=round(m[0], 3),
                    reference=round(m[1], 3), reference_score=round(ref, 3)))
            elif more:  # not measured (too small, blurred, no recogniser, beyond the limit): fail closed
                findings.append(Finding(
                    "face_found", f"a hidden face still looks like a face ({self.detector_name} "
                    f"{seen[i]:.2f}, the default blur leaves {ref:.2f})", box, frame, time,
                    score=score, reference_score=round(ref, 3)))
            else:  # a blurred head keeps its outline: the second look cannot tell it from a safe hiding
                findings.append(Finding(
                    "face_shape", f"a hidden face keeps a face's shape ({self.detector_name} "
                    f"{seen[i]:.2f}), no more than the default blur leaves ({ref:.2f})", box,
                    frame, time, score=score, reference_score=round(ref, 3)))
        for box, score in zip(found.xyxy[~over], found.scores[~over], strict=True):
            if self.close_up(output, box) >= FACE_SCORE:
                findings.append(Finding(
                    "face_found", f"a face was found that was not hidden ({self.detector_name} "
                    f"{score:.2f})", _box(box), frame, time, score=round(float(score), 3)))
            else:  # seen once, not again close up: most likely a pattern, listed but not failing
                findings.append(Finding(
                    "unconfirmed", f"{self.detector_name} saw a face ({score:.2f}) that a close-up "
                    "look did not", _box(box), frame, time, score=round(float(score), 3)))
        for i, (d, ref) in measured.items():
            if recognisable(d, ref):
                h = int(hidden.heights[i])
                findings.append(Finding(
                    "recognisable", f"a {h} px face is still recognisable (distance {d:.2f} < "
                    f"{RECOGNISABLE}, the default blur leaves {ref:.2f}): the effect is too weak "
                    "for its size", _box(hidden.xyxy[i]), frame, time, distance=round(d, 3),
                    reference=round(ref, 3)))
        return findings

    def distances(self, original, output, hidden: Detections, is_face, limit: int,
                  reference_image) -> dict[int, tuple[float, float]]:
        """hidden index -> (embedding distance original -> output, original -> reference) for
        the `limit` largest confirmed faces of `MIN_JUDGED` px or more that are sharp enough to
        recognise in the original; `reference_image()` is the original with every hidden face
        hidden by the default blur and mask (measured to leave no face re-identified,
        bench/reid.py)."""
        if self.embedder is None:
            return {}
        tall = [int(i) for i in np.argsort(-hidden.heights) if hidden.heights[i] >= MIN_JUDGED]
        tall = [i for i in tall if is_face(i)][:limit]  # only faces are judged, never a patch
        if not tall:
            return {}
        boxes = hidden.xyxy[tall]
        sharp = self.config.identity.min_sharpness
        before = self.embedder.embed(original, boxes, min_sharpness=sharp).vectors
        judged = np.isfinite(before).all(axis=1)
        if not judged.any():
            return {}
        tall = [i for i, j in zip(tall, judged, strict=True) if j]
        boxes, before = boxes[judged], before[judged]
        after = self.embedder.embed(output, boxes).vectors
        ref = self.embedder.embed(reference_image(), boxes).vectors
        out = {}
        for i, b, a, r in zip(tall, before, after, ref, strict=True):
            d, dr = float(np.linalg.norm(b - a)), float(np.linalg.norm(b - r))
            if np.isfinite(d) and np.isfinite(dr):
                out[i] = (d, dr)
        return out

    def reference(self, image: np.ndarray, hidden: Detections, pad_unsure: bool) -> np.ndarray:
        """`image` with the `hidden` faces hidden as faceveil hides by default (blur 1.0, padded
        ellipse; unsure boxes padded more where `pad_unsure`, as the output's were)."""
        if self._reference is None:
            from ..anonymization import effects, masks
            from ..config import EffectConfig, MaskConfig

            mask = MaskConfig()
            self._reference = (masks.create(mask.shape, mask), effects.create("blur", EffectConfig()))
        mask, effect = self._reference
        return effect.apply(image, mask.render(hidden, image.shape[:2], pad_unsure=pad_unsure))

    def close_up(self, image: np.ndarray, box: np.ndarray) -> float:
        """The second detector's best score for a face at `box`, looking at the place alone,
        scaled so that the face is `CLOSE_UP` px tall (0 when it finds none there)."""
        import cv2

        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1, 1.0)
        h, w = image.shape[:2]
        cx0, cy0 = int(max(0, x1 - side)), int(max(0, y1 - side))
        crop = image[cy0:int(min(h, y2 + side)), cx0:int(min(w, x2 + side))]
        if crop.size == 0:
            return 0.0
        scale = CLOSE_UP / side
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crop = np.ascontiguousarray(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=interp))
        seen = self.detector.detect(Frame(crop))
        if not len(seen):
            return 0.0
        here = np.array([[(x1 - cx0) * scale, (y1 - cy0) * scale, (x2 - cx0) * scale,
                          (y2 - cy0) * scale]], np.float32)
        hit = iou_matrix(seen.xyxy, here)[:, 0] >= 0.3
        return float(seen.scores[hit].max()) if hit.any() else 0.0

    @staticmethod
    def video_samples(frames: Sequence[tuple[int, float | None, Detections]],
                      samples: int = VIDEO_SAMPLES) -> dict[int, tuple[float | None, Detections]]:
        """Up to `samples` of a video's (index, pts, faces) spread over it: index -> (pts, faces)."""
        step = max(1, -(-len(frames) // samples))
        return {i: (pts, d) for i, pts, d in frames[::step]}


def recognisable(distance: float, reference: float) -> bool:
    """A hidden face is recognisable when the recogniser calls it the same person as before
    (`distance` under its own threshold) *and* it kept measurably more of that face than the
    reference hiding (the default blur, which leaves none re-identified) keeps: a patch that
    is near its original whatever is done to it (a shirt, a blank wall) never qualifies. "More"
    is by `MARGIN`, or by a fifth of the reference's own distance where that is small: a small or
    soft face stays near itself under any hiding (a 45-67 px WIDER face: reference 0.455, blur
    0.05 0.356), where 0.1 would ask for more than the recogniser can tell apart. No default
    (blur, pixelate 8, solid) came under 0.88 of the reference on any identity face."""
    return distance < RECOGNISABLE and distance < max(reference - MARGIN, REFERENCE_SHARE * reference)


def _box(box: np.ndarray) -> list[float]:
    return [round(float(v), 1) for v in box]


def paired_frames(src, dst, wanted: set[int]):
    """(index, original RGB, output RGB) for the wanted frame indexes, upright; one pass."""
    import av

    with av.open(str(src)) as a, av.open(str(dst)) as b:
        for index, (fa, fb) in enumerate(zip(a.decode(video=0), b.decode(video=0), strict=False)):
            if index in wanted:
                yield index, _upright(fa), _upright(fb)
            if index >= max(wanted):
                return


def _upright(frame) -> np.ndarray:
    turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), turns))
