"""The res10 SSD face detector (OpenCV's face_detector sample, 2017) on OpenCV DNN, its native form.

The detector the seed tutorials use: a ResNet-10 SSD that sees every input squeezed to 300x300
(BGR, mean 104/177/123 subtracted). It misses small faces in big frames, so like BlazeFace it is
tiled: the whole frame, then overlapping tiles. The seeds' threshold is 0.5; these are lower
(recall first) and were not tuned.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from ...config import DetectorConfig
from ...errors import ModelError
from ...models import model_file
from ...types import Detections
from ..base import ScaledDetector

_SIZE = 300
_MEAN = (104.0, 177.0, 123.0)


class SSDDetector(ScaledDetector):
    name = "ssd"
    thresholds: ClassVar[dict[str, float]] = {"fast": 0.5, "balanced": 0.35, "thorough": 0.25}
    tile_size = 600  # a tile is squeezed to 300x300: faces of ~30 px and up in it
    tile_overlap = 150

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__(config)
        proto, weights = model_file("ssd_prototxt"), model_file("ssd_caffemodel")
        try:
            self.net = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
        except cv2.error as exc:
            raise ModelError(f"cannot load {weights}: {exc}") from exc
        if self.config.threads:
            cv2.setNumThreads(self.config.threads)

    def scales(self, height: int, width: int) -> list[float]:
        side = max(height, width)
        out = [min(1.0, self.tile_size / side)]  # the whole frame in one tile
        if self.config.quality != "fast":
            out.append(min(1.0, 3 * self.tile_size / side))  # about 3x3 tiles
        if self.config.quality == "thorough":
            out.append(1.0)  # native pixels
        return sorted(set(out))

    def mirrored(self, scale: float) -> bool:
        return self.config.quality == "thorough"

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        h, w = image.shape[:2]
        bgr = cv2.cvtColor(cv2.resize(image, (_SIZE, _SIZE)), cv2.COLOR_RGB2BGR)
        blob = cv2.dnn.blobFromImage(bgr, 1.0, (_SIZE, _SIZE), _MEAN, swapRB=False)
        self.net.setInput(blob)
        out = self.net.forward().reshape(-1, 7)
        out = out[out[:, 2] >= threshold]
        if not len(out):
            return Detections.empty()
        xyxy = np.clip(out[:, 3:7], 0.0, 1.0) * np.array([w, h, w, h], np.float32)
        ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return Detections(xyxy[ok], out[ok, 2])
