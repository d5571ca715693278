"""OpenCV Haar cascades: no ML runtime needed; frontal plus profile (both directions)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from ...config import DetectorConfig
from ...errors import ModelError
from ...types import Detections
from ..base import ScaledDetector, unmirror

_PARAMS = {  # quality -> (scaleFactor, minNeighbors, use profile cascade)
    "fast": (1.2, 5, False),
    "balanced": (1.1, 4, True),
    "thorough": (1.05, 3, True),
}


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ModelError(f"cannot load the Haar cascade {path}; reinstall opencv-python-headless<5")
    return cascade


class HaarDetector(ScaledDetector):
    name = "haar"
    # scores are a logistic of the cascade's last-stage sum; the real filter is minNeighbors
    thresholds: ClassVar[dict[str, float]] = {"fast": 0.1, "balanced": 0.05, "thorough": 0.02}
    tile_size = 1 << 14  # cascades take any size
    min_size = 20  # smallest window (px, in the scaled image); the cascade's own is 24

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__(config)
        self.scale_factor, self.min_neighbors, profile = _PARAMS[self.config.quality]
        self.frontal = _cascade("haarcascade_frontalface_default.xml")
        self.profile = _cascade("haarcascade_profileface.xml") if profile else None

    def scales(self, height: int, width: int) -> list[float]:
        side = max(height, width)
        if self.config.quality == "fast":
            return [min(1.0, 960 / side)]
        if self.config.quality == "balanced":
            return [1.0]
        return [min(2.0, max(1.0, 3000 / side)), 1.0]  # upsampled for faces under ~20 px

    def _run(self, cascade, gray: np.ndarray) -> Detections:
        boxes, _, weights = cascade.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size), outputRejectLevels=True,
        )
        xywh = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
        return Detections(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1), scores)

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        found = [self._run(self.frontal, gray)]
        if self.profile is not None:  # the profile cascade knows one direction: run it mirrored too
            found.append(self._run(self.profile, gray))
            mirrored = self._run(self.profile, np.ascontiguousarray(gray[:, ::-1]))
            found.append(unmirror(mirrored, gray.shape[1]))
        dets = Detections.concat(found)
        return dets[dets.scores >= threshold]
