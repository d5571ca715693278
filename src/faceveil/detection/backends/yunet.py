"""YuNet 2023mar (MIT, Shiqi Yu; 232 KB) on OpenCV's FaceDetectorYN, its native form.

A small anchor-free detector with five landmarks, strides 8 to 32: faces from about 10 px at the
size it is shown. Quality presets as CenterFace's: native pixels plus a coarse pass for big
faces; thorough also upsampled and mirrored. The thresholds are recall first and were not tuned
(YuNet's demo uses 0.9).
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


class YuNetDetector(ScaledDetector):
    name = "yunet"
    thresholds: ClassVar[dict[str, float]] = {"fast": 0.6, "balanced": 0.5, "thorough": 0.4}
    nms_threshold = 0.3

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__(config)
        path = str(model_file("yunet"))
        try:
            # the score threshold is applied in infer (passes differ); the model's own floor here
            self.net = cv2.FaceDetectorYN.create(path, "", (320, 320), 0.2, self.nms_threshold, 5000)
        except cv2.error as exc:
            raise ModelError(f"cannot load {path} with OpenCV {cv2.__version__}: {exc}") from exc
        if self.config.threads:
            cv2.setNumThreads(self.config.threads)

    def scales(self, height: int, width: int) -> list[float]:
        side = max(height, width)
        quality = self.config.quality
        if quality == "fast":
            return [min(1.0, 640 / side)]
        out = [1.0] if quality == "balanced" else [min(2.0, 2560 / side), 1.0]
        out += [s for s in (640 / side, 320 / side) if s < 0.75 * out[-1]]
        return out

    def mirrored(self, scale: float) -> bool:
        return self.config.quality == "thorough" and scale <= 1.0

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        h, w = image.shape[:2]
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if h < 32 or w < 32:  # the network's coarsest stride: pad slivers (it returns NaN boxes)
            bgr = cv2.copyMakeBorder(bgr, 0, max(0, 32 - h), 0, max(0, 32 - w), cv2.BORDER_CONSTANT)
        self.net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self.net.detect(bgr)
        if faces is None or not len(faces):
            return Detections.empty()
        faces = faces[(faces[:, 14] >= threshold) & np.isfinite(faces).all(1)]
        if not len(faces):
            return Detections.empty()
        xyxy = np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:4]], 1)
        # YuNet: right eye, left eye, nose, right and left mouth corners (in the picture: x order)
        return Detections(xyxy, faces[:, 14], faces[:, 4:14].reshape(-1, 5, 2))
