"""MediaPipe BlazeFace (short and full range), the models bundled in mediapipe 0.10.21.

BlazeFace sees a 128 or 192 px version of its input, so small faces in big frames are found
by tiling: the whole frame once, then overlapping tiles at native resolution.
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np

from ...config import DetectorConfig
from ...errors import MissingDependencyError
from ...types import Detections
from ..base import ScaledDetector

os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging: warnings and up only
try:
    from mediapipe.python.solutions import face_detection as _mp_face
except ImportError as exc:  # the registry turns this into an install hint
    raise MissingDependencyError(
        "the mediapipe detector needs: pip install 'faceveil[mediapipe]'"
    ) from exc


class MediaPipeDetector(ScaledDetector):
    name = "mediapipe"
    thresholds: ClassVar[dict[str, float]] = {"fast": 0.5, "balanced": 0.4, "thorough": 0.3}
    tile_size = 480
    tile_overlap = 160

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__(config)
        # The threshold is applied here, not inside mediapipe, so passes can differ.
        floor = min(self.threshold, 0.2)
        self.full = _mp_face.FaceDetection(model_selection=1, min_detection_confidence=floor)
        self.short = None
        if self.config.quality != "fast":
            self.short = _mp_face.FaceDetection(model_selection=0, min_detection_confidence=floor)

    def scales(self, height: int, width: int) -> list[float]:
        whole = min(1.0, self.tile_size / max(height, width))
        out = [whole]
        if self.config.quality != "fast" and whole < 1.0:
            out.append(1.0)  # tiles at native resolution
        if self.config.quality == "thorough":
            out.append(min(2.0, 4096 / max(height, width)))
        return sorted(set(out))

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        h, w = image.shape[:2]
        boxes, scores = [], []
        for graph in (self.full, self.short):
            if graph is None:
                continue
            for det in graph.process(image).detections or ():
                score = float(det.score[0])
                if score < threshold:
                    continue
                rb = det.location_data.relative_bounding_box
                boxes.append([rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w,
                              (rb.ymin + rb.height) * h])
                scores.append(score)
        if not boxes:
            return Detections.empty()
        return Detections(boxes, scores)  # clipped to the frame by ScaledDetector.detect
