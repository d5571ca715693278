"""Detector protocol and the multi-scale, tiled driver every backend shares.

A backend only says how to run its model on one RGB array (`infer`) and which scales its quality
presets need (`scales`, plus optional extra `views` of the whole frame); `ScaledDetector.detect`
resizes, tiles large inputs, maps boxes back to frame pixels and merges everything with one
non-maximum suppression.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import ClassVar, Protocol, runtime_checkable

import cv2
import numpy as np

from ..config import DetectorConfig
from ..geometry import iou_matrix, nms, overlap_share, rotate180, unmirror
from ..types import Detections, Frame

log = logging.getLogger(__name__)


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, frame: Frame) -> Detections: ...


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

    #: Extra views: a detection from a view is kept only when the view and its mirror image
    #: both find it (boxes overlapping by at least view_agreement IoU) with at least
    #: view_threshold, and only where the regular passes found no face (it covers less than
    #: view_novelty of its own area with their boxes). Views show the model pictures unlike its
    #: training data, where its false positives are frequent but rarely mirror-consistent; and
    #: where a regular pass already found the face, a view's coarser box only adds blur.
    view_threshold = 0.25
    view_agreement = 0.4
    view_novelty = 0.3
    view_sigma = 2.0  # "smoothed": Gaussian sigma in pixels of the reduced picture

    def views(self, height: int, width: int) -> Sequence[tuple[str, float]]:
        """Extra looks at the whole frame, as (view, scale) pairs; see VIEWS. None by default."""
        return ()

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        """Faces in one RGB uint8 array, in its pixels, with scores >= threshold."""
        raise NotImplementedError

    def detect(self, frame: Frame) -> Detections:
        h, w = frame.image.shape[:2]
        found = self.detect_at(frame, self.scales(h, w))
        views = self.views(h, w)
        if not views:
            return found
        extra = Detections.concat([self.detect_view(frame.image, v, s) for v, s in views])
        if len(extra) and len(found):
            extra = extra[overlap_share(extra.xyxy, found.xyxy).max(1) < self.view_novelty]
        if not len(extra):
            return found
        return nms(Detections.concat([found, extra]), self.nms_iou).clipped(w, h)

    def detect_view(self, image: np.ndarray, view: str, scale: float) -> Detections:
        """One extra view of the whole frame (reduced by `scale`, never tiled), in frame pixels."""
        h, w = image.shape[:2]
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = image if (sh, sw) == (h, w) else cv2.resize(image, (sw, sh), interpolation=interp)
        if view == "smoothed":
            shown = cv2.GaussianBlur(small, (0, 0), self.view_sigma)
        elif view == "upside_down":
            shown = np.ascontiguousarray(small[::-1, ::-1])
        else:
            raise ValueError(f"unknown view {view!r}; known: {', '.join(VIEWS)}")
        dets = self.infer(shown, self.view_threshold)
        mirror = unmirror(self.infer(np.ascontiguousarray(shown[:, ::-1]), self.view_threshold), sw)
        if not (len(dets) and len(mirror)):
            return Detections.empty()
        dets = dets[iou_matrix(dets.xyxy, mirror.xyxy).max(1) >= self.view_agreement]
        if view == "upside_down":
            dets = rotate180(dets, sw, sh)
        return dets.scaled(w / sw, h / sh)

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


#: What each view shows the model, and why it finds faces the regular passes cannot.
VIEWS = {
    # Low-pass filtered: faces seen on LED walls and screens, through blinds or in halftone
    # print carry a stripe or dot pattern the model was not trained on, and reducing the frame
    # does not remove a pattern coarser than the reduction step. A blur of a few pixels of the
    # reduced frame removes it while keeping what a face of 64 px and more needs.
    "smoothed": "Gaussian blur of the reduced frame",
    # CenterFace, like most face detectors, is trained on upright faces and misses faces
    # turned past ~60 degrees: acrobatics, people lying down, pictures stored upside down.
    "upside_down": "the reduced frame turned 180 degrees",
}


