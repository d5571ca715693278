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
from ..geometry import centres, iou_matrix, nms, overlap_share, rotate180, unmirror
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

    #: A closer look (pictures): the native pass also keeps candidates scoring at least
    #: `closer_seed` but under the threshold (unsure). Around those of at most `closer_seed_px`
    #: px (faces too small for the model to be sure of), windows `closer_context` times their
    #: size (at least `closer_min_window` px) are looked at again in a mirror image, and an
    #: unsure candidate the mirror image also finds (boxes overlapping by view_agreement IoU) is
    #: kept: the model's false positives are rarely mirror-consistent. Only the places where
    #: small faces can be are looked at again, at most about the whole frame once (the windows
    #: of a group do not overlap). None: no closer look.
    closer_seed: float | None = None
    closer_seed_px = 40
    closer_context = 3.0
    closer_min_window = 64
    closer_cell = 32  # windows are merged on a grid of cells this many px wide
    closer_window_max = 256  # ... into windows of at most this many px a side

    def closer_look(self) -> bool:
        return self.closer_seed is not None and self.closer_seed < self.threshold

    def detect(self, frame: Frame, *, closer: bool = False) -> Detections:
        """`closer`: the picture path's closer look (see `closer_seed`) where the preset has one.
        Other callers (reference photos, the verifier, discovery) get the preset's passes only:
        a closer look's extra small faces would change which face a reference photo shows."""
        h, w = frame.image.shape[:2]
        closer = closer and self.closer_look()
        found = self.detect_closer(frame) if closer else self.detect_at(frame, self.scales(h, w))
        views = self.views(h, w)
        if not views:
            return found
        extra = Detections.concat([self.detect_view(frame.image, v, s) for v, s in views])
        if len(extra) and len(found):
            extra = extra[overlap_share(extra.xyxy, found.xyxy).max(1) < self.view_novelty]
        if not len(extra):
            return found
        return nms(Detections.concat([found, extra]), self.nms_iou).clipped(w, h)

    def detect_closer(self, frame: Frame) -> Detections:
        """All passes of the preset, the native one down to `closer_seed`, and the unsure
        candidates a mirror image of the windows around the small ones confirms."""
        h, w = frame.image.shape[:2]
        native = self.detect_at(frame, [1.0], threshold=self.closer_seed)
        sure = native.scores >= self.threshold
        unsure = native[~sure]
        found = [native[sure], self.detect_at(frame, [s for s in self.scales(h, w) if s != 1.0])]
        b = unsure.xyxy
        for y0, x0, y1, x1 in self.closer_windows(unsure, h, w):
            mirror = unmirror(self.infer(np.ascontiguousarray(frame.image[y0:y1, x0:x1][:, ::-1]),
                                         self.closer_seed), x1 - x0).scaled(1, 1, x0, y0)
            # a candidate a box of this window's mirror image overlaps reaches into the window
            # (matched window by window: a crowd has tens of thousands of candidates)
            near = unsure[(b[:, 0] < x1) & (b[:, 2] > x0) & (b[:, 1] < y1) & (b[:, 3] > y0)]
            if len(near) and len(mirror):
                found.append(near[iou_matrix(near.xyxy, mirror.xyxy).max(1) >= self.view_agreement])
        return nms(Detections.concat(found), self.nms_iou).clipped(w, h)

    def closer_windows(self, seeds: Detections, height: int,
                       width: int) -> list[tuple[int, int, int, int]]:
        """(y0, x0, y1, x1) windows around the small `seeds`, merged on a grid of cells and cut
        into windows of at most `closer_window_max` px."""
        if not len(seeds):
            return []
        size = np.maximum(seeds.widths, seeds.heights)
        small = size <= self.closer_seed_px
        if not small.any():
            return []
        cell = self.closer_cell
        grid = np.zeros((-(-height // cell), -(-width // cell)), np.uint8)
        half = np.maximum(size[small] * self.closer_context, self.closer_min_window) / 2
        for (x, y), r in zip(centres(seeds.xyxy[small]), half, strict=True):
            gx0, gx1 = int(max(0, x - r) // cell), int(min(width - 1, x + r) // cell) + 1
            gy0, gy1 = int(max(0, y - r) // cell), int(min(height - 1, y + r) // cell) + 1
            grid[gy0:gy1, gx0:gx1] = 1
        count, labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
        windows = []
        side = self.closer_window_max // cell
        for label in range(1, count):
            gx, gy, gw, gh = (int(v) for v in stats[label, :4])
            # a big group (a crowd) is cut into windows of at most closer_window_max px, and
            # only those holding some of the group are looked at
            for ty in range(gy, gy + gh, side):
                for tx in range(gx, gx + gw, side):
                    ty1, tx1 = min(gy + gh, ty + side), min(gx + gw, tx + side)
                    if (labels[ty:ty1, tx:tx1] == label).any():
                        windows.append((ty * cell, tx * cell, min(height, ty1 * cell),
                                        min(width, tx1 * cell)))
        return windows

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

    def detect_at(self, frame: Frame, scales: Sequence[float],
                  threshold: float | None = None) -> Detections:
        """Run the passes at these scales only (video follows known faces with one pass);
        `threshold` replaces the preset's score threshold for all of them."""
        image = frame.image
        h, w = image.shape[:2]
        found = []
        source, source_scale = image, 1.0
        for scale in scales:
            at = self.threshold_at(scale) if threshold is None else threshold
            sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
            if (sh, sw) == (h, w):
                scaled = image
            elif scale < 1:
                # a pass at half a reduced one's size or less is reduced from that one, not from
                # the frame: an area average of an area average, at ~1% of the cost
                src = source if scale * 2 <= source_scale else image
                scaled = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA)
                source, source_scale = scaled, scale
            else:
                scaled = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_LINEAR)
            for y0, x0, y1, x1 in tiles(sh, sw, self.tile_size, self.tile_overlap):
                tile = scaled[y0:y1, x0:x1]
                dets = self.infer(np.ascontiguousarray(tile), at)
                if self.mirrored(scale):
                    dets = Detections.concat([dets, unmirror(
                        self.infer(np.ascontiguousarray(tile[:, ::-1]), at), x1 - x0)])
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


