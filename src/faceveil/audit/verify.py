"""Verification: look again at what was written, with other eyes.

After a file is written, a second, different detector looks at the output (at its thorough
scales); a face it finds with confidence is listed, with where and when. A face found over a
hidden face means the effect left it looking like a face; one found elsewhere may be a face the
first detector missed (a face left visible on purpose is not counted). Where the `people`
extra is installed, each hidden face is also embedded before and after: an anonymized face
whose vector stays as close to the original as two photos of the same person usually are is
still recognisable, so the effect is too weak for that face's size. A face the second
detector alone sees where nothing was hidden is shown to the main detector again, close up; if
it does not agree either, it is listed as unconfirmed (most are patterns that look like faces)
rather than counted as a finding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import DetectorConfig, PipelineConfig
from ..errors import MissingDependencyError
from ..tracking import iou_matrix
from ..types import Detections, Frame

log = logging.getLogger(__name__)

FOUND_SCORE = 0.8  # second detector's confidence that counts as "a face is still there"
RECOGNISABLE = 0.3  # embedding distance original -> anonymized below which a face is recognisable
MIN_JUDGED = 40  # faces smaller than this (px, box height) are not embedded
MAX_EMBEDDED = 12  # faces measured per picture (embedding costs ~85 ms a face, twice)
VIDEO_SAMPLES = 24  # video frames checked, spread over the video
VIDEO_EMBEDDED = 4  # faces measured per checked video frame


@dataclass
class Finding:
    kind: str  # "face_found" | "recognisable" | "unconfirmed" (second detector only: not failing)
    detail: str
    box: list[float]  # [x1, y1, x2, y2] in the output's (upright) pixels
    frame: int | None = None
    time: float | None = None  # seconds, for video
    score: float | None = None  # face_found: the second detector's confidence
    distance: float | None = None  # recognisable: embedding distance original -> output

    @property
    def failing(self) -> bool:
        return self.kind != "unconfirmed"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Verifier:
    """Checks anonymized pictures against their originals. Models load on first use."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        primary = config.detector.name
        # "mediapipe" is BlazeFace's former name (still accepted): never check with the same model
        self.detector_name = "mediapipe" if primary not in ("mediapipe", "blazeface") else "centerface"
        self._detector = self._primary = None
        self._embedder: Any = None
        self.embedder_note = ""

    @property
    def detector(self):
        if self._detector is None:
            from ..detection import create_detector

            try:
                self._detector = create_detector(
                    DetectorConfig(name=self.detector_name, quality="thorough"))
            except MissingDependencyError:
                log.info("verification: %s is not installed, using haar", self.detector_name)
                self.detector_name = "haar"
                self._detector = create_detector(DetectorConfig(name="haar", quality="thorough"))
        return self._detector

    @property
    def embedder(self):
        """The face embedder, or None (and a note why) when the people extra is missing."""
        if self._embedder is None:
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
        `embed_limit` largest hidden faces are measured for recognisability."""
        findings = []
        hidden, kept = dets[~dets.keep], dets[dets.keep]
        found = self.detector.detect(Frame(np.ascontiguousarray(output)))
        found = found[found.scores >= FOUND_SCORE]
        if len(found) and len(kept):
            found = found[iou_matrix(found.xyxy, kept.xyxy).max(axis=1) < 0.3]
        over = (iou_matrix(found.xyxy, hidden.xyxy).max(axis=1) >= 0.3 if len(hidden) and len(found)
                else np.zeros(len(found), bool))
        for box, score, on_hidden in zip(found.xyxy, found.scores, over, strict=True):
            if on_hidden:
                what = "a hidden face still looks like a face"
            elif self._confirmed(output, box):
                what = "a face was found that was not hidden"
            else:  # the second detector alone: most likely a pattern, listed but not failing
                findings.append(Finding(
                    "unconfirmed", f"{self.detector_name} alone saw a face ({score:.2f}); the main "
                    "detector, close up, did not", _box(box), frame, time, score=round(float(score), 3)))
                continue
            findings.append(Finding("face_found", f"{what} ({self.detector_name} {score:.2f})",
                                    _box(box), frame, time, score=round(float(score), 3)))
        tall = hidden[hidden.heights >= MIN_JUDGED]
        if len(tall) and self.embedder is not None:
            tall = tall[np.argsort(-tall.heights)[:embed_limit]]
            # only faces that could be recognised in the original (sharp enough) are measured
            before = self.embedder.embed(original, tall.xyxy,
                                         min_sharpness=self.config.identity.min_sharpness).vectors
            judged = np.isfinite(before).all(axis=1)
            tall, before = tall[judged], before[judged]
            after = self.embedder.embed(output, tall.xyxy).vectors if len(tall) else before
            dist = np.linalg.norm(before - after, axis=1)
            for box, d in zip(tall.xyxy, dist, strict=True):
                if np.isfinite(d) and d < RECOGNISABLE:
                    h = int(box[3] - box[1])
                    findings.append(Finding(
                        "recognisable", f"a {h} px face is still recognisable (distance {d:.2f} "
                        f"< {RECOGNISABLE}): the effect is too weak for its size",
                        _box(box), frame, time, distance=round(float(d), 3)))
        return findings

    def _confirmed(self, image: np.ndarray, box: np.ndarray) -> bool:
        """Does the main detector agree, on a close-up of the place (face scaled to ~96 px)?"""
        import cv2

        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1)
        h, w = image.shape[:2]
        cx0, cy0 = int(max(0, x1 - side)), int(max(0, y1 - side))
        crop = image[cy0:int(min(h, y2 + side)), cx0:int(min(w, x2 + side))]
        scale = 96 / max(side, 1.0)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crop = np.ascontiguousarray(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=interp))
        seen = self.primary.detect(Frame(crop))
        seen = seen[seen.scores >= 0.5]
        if not len(seen):
            return False
        here = np.array([[(x1 - cx0) * scale, (y1 - cy0) * scale, (x2 - cx0) * scale,
                          (y2 - cy0) * scale]], np.float32)
        return bool(iou_matrix(seen.xyxy, here).max() >= 0.3)

    @property
    def primary(self):
        if self._primary is None:
            from ..detection import create_detector

            self._primary = create_detector(self.config.detector)
        return self._primary

    @staticmethod
    def video_samples(frames: Sequence[tuple[int, float | None, Detections]],
                      samples: int = VIDEO_SAMPLES) -> dict[int, tuple[float | None, Detections]]:
        """Up to `samples` of a video's (index, pts, faces) spread over it: index -> (pts, faces)."""
        step = max(1, -(-len(frames) // samples))
        return {i: (pts, d) for i, pts, d in frames[::step]}


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
