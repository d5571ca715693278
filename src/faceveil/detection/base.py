"""Detector protocol and the multi-scale, tiled driver every backend shares.

A backend only says how to run its model on one RGB array (`infer`) and which scales its quality
presets need (`scales`); `ScaledDetector.detect` resizes, tiles large inputs, maps boxes back
to frame pixels and merges everything with one non-maximum suppression.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import ClassVar, Protocol, runtime_checkable

import cv2
import numpy as np

from ..config import DetectorConfig
from ..types import Detections, Frame

log = logging.getLogger(__name__)


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, frame: Frame) -> Detections: ...


def nms(dets: Detections, iou: float) -> Detections:
    """Greedy non-maximum suppression, highest score first."""
    if len(dets) < 2:
        return dets
    xywh = dets.xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), dets.scores.tolist(), 0.0, iou)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return dets[np.sort(keep)]


def tiles(height: int, width: int, size: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """(y0, x0, y1, x1) windows of at most size x size covering the image, overlapping by `overlap`."""

    def starts(n: int) -> list[int]:
        if n <= size:
            return [0]
        count = int(np.ceil((n - overlap) / (size - overlap)))
        return [round(i * (n - size) / (count - 1)) for i in range(count)]

    for y in starts(height):
        for x in starts(width):
            yield y, x, min(y + size, height), min(x + size, width)


class ScaledDetector:
    """Base class: run `infer` at each scale of the quality preset, tiling big inputs."""

    name = "base"
    #: score threshold per quality preset (recall first: low)
    thresholds: ClassVar[dict[str, float]] = {"fast": 0.5, "balanced": 0.4, "thorough": 0.3}
    coarse_threshold = 0.0  # floor of the threshold on downscaled passes (see threshold_at)
    tile_size = 1536  # largest side fed to the model at once, in model-input pixels
    tile_overlap = 192
    # Across scales, only near-duplicates are merged: two different boxes on one face both
    # stay (their masks are merged later), so a partial box never replaces a whole one.
    nms_iou = 0.6

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig(name=self.name)
        self.threshold = self.config.threshold or self.thresholds[self.config.quality]

    def scales(self, height: int, width: int) -> Sequence[float]:
        """Resize factors to run at for this frame size (1.0 = native pixels)."""
        return [1.0]

    def threshold_at(self, scale: float) -> float:
        """Score threshold for a pass. Downscaled passes look for big faces, which score high:
        a stricter threshold there drops big false positives without losing faces."""
        return self.threshold if scale >= 1 else max(self.threshold, self.coarse_threshold)

    def mirrored(self, scale: float) -> bool:
        """Also run this pass on the mirrored picture (finds some profile and odd faces)."""
        return False

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        """Faces in one RGB uint8 array, in its pixels, with scores >= threshold."""
        raise NotImplementedError

    def detect(self, frame: Frame) -> Detections:
        return self.detect_at(frame, self.scales(*frame.image.shape[:2]))

    def detect_at(self, frame: Frame, scales: Sequence[float]) -> Detections:
        """Run the passes at these scales only (video follows known faces with one pass)."""
        image = frame.image
        h, w = image.shape[:2]
        found = []
        for scale in scales:
            threshold = self.threshold_at(scale)
            sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
            if (sh, sw) == (h, w):
                scaled = image
            else:
                interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                scaled = cv2.resize(image, (sw, sh), interpolation=interp)
            for y0, x0, y1, x1 in tiles(sh, sw, self.tile_size, self.tile_overlap):
                tile = scaled[y0:y1, x0:x1]
                dets = self.infer(np.ascontiguousarray(tile), threshold)
                if self.mirrored(scale):
                    dets = Detections.concat([dets, unmirror(
                        self.infer(np.ascontiguousarray(tile[:, ::-1]), threshold), x1 - x0)])
                if len(dets):
                    found.append(dets.scaled(w / sw, h / sh, x0 * w / sw, y0 * h / sh))
        merged = nms(Detections.concat(found), self.nms_iou)
        return merged.clipped(w, h)


def unmirror(dets: Detections, width: int) -> Detections:
    """Detections made on a left-right mirrored picture, in the original picture's pixels."""
    if not len(dets):
        return dets
    xyxy = dets.xyxy.copy()
    xyxy[:, [0, 2]] = width - dets.xyxy[:, [2, 0]]
    lm = None
    if dets.landmarks is not None:  # eyes and mouth corners swap sides
        lm = dets.landmarks[:, [1, 0, 2, 4, 3]].copy()
        lm[:, :, 0] = width - lm[:, :, 0]
    return dataclasses.replace(dets, xyxy=xyxy, landmarks=lm)
