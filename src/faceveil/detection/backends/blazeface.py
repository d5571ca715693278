"""BlazeFace short and full range (Apache-2.0, from mediapipe 0.10.21) on ONNX Runtime.

The .tflite files were converted once to ONNX (scripts/convert_models.py); this module does
what mediapipe's face_detection graphs do around them: letterbox the input to 128 (short) or
192 (full range) pixels scaled to [-1, 1], decode the boxes against the SSD anchors, and merge
overlapping boxes by weighted non-maximum suppression. BlazeFace sees so few pixels that small
faces in big frames are found by tiling: the whole frame once, then overlapping tiles at native
resolution.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from ...config import DetectorConfig
from ...geometry import weighted_nms
from ...models import model_file
from ...models.runtime import SMALL_MODEL_THREADS, ort_session
from ...types import Detections
from ..base import ScaledDetector


def ssd_anchors(size: int, strides: list[int], per_cell: list[int]) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], as mediapipe's SsdAnchorsCalculator with fixed-size
    anchors makes them: row-major per layer, `per_cell` anchors at each cell centre."""
    out = []
    for stride, count in zip(strides, per_cell, strict=True):
        n = -(-size // stride)
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(centres, count, axis=0))
    return np.concatenate(out).astype(np.float32)


class _Graph:
    """One BlazeFace model with its pre- and post-processing, in the letterboxed input's terms."""

    def __init__(self, key: str, size: int, anchors: np.ndarray, threads, device: str) -> None:
        self.session = ort_session(str(model_file(key)), threads, device)
        self.input = self.session.get_inputs()[0].name
        self.size, self.anchors = size, anchors

    def run(self, image: np.ndarray, threshold: float) -> Detections:
        h, w = image.shape[:2]
        s = self.size
        # As mediapipe's ImageToTensorCalculator on the CPU: the picture's square bounding ROI
        # (centred, side = its long side) is warped bilinearly onto the model's input, corners
        # onto corners, black outside the picture; then [0, 255] -> [-1, 1].
        side = float(max(h, w))
        scale = s / side
        x0, y0 = (side - w) / 2, (side - h) / 2  # picture's offset inside the ROI
        warp = np.array([[scale, 0.0, x0 * scale], [0.0, scale, y0 * scale]], np.float32)
        square = cv2.warpAffine(image, warp, (s, s), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        blob = (square.astype(np.float32) / 127.5 - 1.0)[None]
        boxes, logits = self.session.run(None, {self.input: blob})
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0], -80, 80)))
        keep = np.nonzero(scores >= threshold)[0]
        if keep.size == 0:
            return Detections.empty()
        raw = boxes[0, keep] / s
        centre = raw[:, :2] + self.anchors[keep]
        half = raw[:, 2:4] / 2
        xyxy = np.concatenate([centre - half, centre + half], 1) * s
        xyxy = xyxy / scale - [x0, y0, x0, y0]  # model input -> picture pixels
        # (its six keypoints, raw[:, 4:16], are not BlazeFace's own 5-point layout: unused)
        return weighted_nms(xyxy.astype(np.float32), scores[keep].astype(np.float32), 0.3)


class BlazeFaceDetector(ScaledDetector):
    name = "blazeface"
    thresholds: ClassVar[dict[str, float]] = {"fast": 0.5, "balanced": 0.4, "thorough": 0.3}
    tile_size = 480
    tile_overlap = 160

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__(config)
        # one thread unless told otherwise: its calls are too short to share (SMALL_MODEL_THREADS)
        threads, device = self.config.threads or SMALL_MODEL_THREADS, self.config.device
        self.full = _Graph("blazeface_full", 192, ssd_anchors(192, [4], [1]), threads, device)
        self.short = None
        if self.config.quality != "fast":
            self.short = _Graph("blazeface_short", 128, ssd_anchors(128, [8, 16], [2, 6]),
                                threads, device)

    def scales(self, height: int, width: int) -> list[float]:
        whole = min(1.0, self.tile_size / max(height, width))
        out = [whole]
        if self.config.quality != "fast" and whole < 1.0:
            out.append(1.0)  # tiles at native resolution
        if self.config.quality == "thorough":
            out.append(min(2.0, 4096 / max(height, width)))
        return sorted(set(out))

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        found = [g.run(image, threshold) for g in (self.full, self.short) if g is not None]
        return Detections.concat(found)  # clipped to the frame by ScaledDetector.detect
