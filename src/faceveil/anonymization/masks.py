"""Masks: where to hide. Padded, feathered face shapes, merged into non-overlapping patches.

A `Mask` is sparse: a list of rectangular patches, each with its own alpha. Overlapping faces
share one patch, so an effect touches every pixel at most once and never the whole frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..config import MaskConfig
from ..geometry import components, overlapping_pairs
from ..registry import Registry
from ..types import Detections


@dataclass(frozen=True, eq=False)
class MaskPatch:
    y0: int
    x0: int
    alpha: np.ndarray  # (h, w) float32 in [0, 1]; 1 = fully hidden
    face_size: float  # largest face in the patch: sqrt(width * height) of its detected box
    boxes: np.ndarray  # (k, 4) float32: the padded face boxes, frame pixels

    @property
    def y1(self) -> int:
        return self.y0 + self.alpha.shape[0]

    @property
    def x1(self) -> int:
        return self.x0 + self.alpha.shape[1]

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


@dataclass(frozen=True, eq=False)
class Mask:
    shape: tuple[int, int]  # (height, width) of the frame
    patches: tuple[MaskPatch, ...]

    def __len__(self) -> int:
        return len(self.patches)

    def to_array(self) -> np.ndarray:
        """The dense (H, W) float32 mask."""
        out = np.zeros(self.shape, np.float32)
        for p in self.patches:
            out[p.slices] = p.alpha
        return out


class MaskRenderer(Protocol):
    def render(self, detections: Detections, shape: tuple[int, int], *,
               pad_unsure: bool = True) -> Mask: ...


def _groups(boxes: np.ndarray) -> list[np.ndarray]:
    """Indices of boxes grouped so that the groups' bounding rectangles do not overlap.

    Groups come in the order of their first box, each group's indices in order."""
    n = len(boxes)
    groups = [np.array([i]) for i in range(n)]
    rects = boxes.copy()
    while len(rects) > 1:
        a, b = overlapping_pairs(rects)
        if not len(a):
            break
        roots, inverse = np.unique(components(len(rects), a, b), return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # members by group, in index order
        starts = np.searchsorted(inverse[order], np.arange(len(roots)))
        groups = [np.concatenate([groups[i] for i in members])
                  for members in np.split(order, starts[1:])]
        rects = np.stack([np.minimum.reduceat(rects[order, 0], starts),
                          np.minimum.reduceat(rects[order, 1], starts),
                          np.maximum.reduceat(rects[order, 2], starts),
                          np.maximum.reduceat(rects[order, 3], starts)], 1)
    return groups


# A detector places the box of a face it is unsure of less well: measured with CenterFace
# (balanced) against the exact boxes of 784 faces >= 16 px on 90 WIDER photos (every third photo
# of the shared subset, leaving out the four the pan clip is made of), the mask scale that puts
# 80% of a face's core (central 60% x 60%) inside the opaque part of the ellipse has a 90th
# percentile of 0.96 for scores >= 0.7, 1.15-1.23 for 0.5-0.7, 1.27-1.47 for 0.3-0.5, 1.53 for
# 0.2-0.3 and 1.72 under 0.2 (the pan clip's 3,319 found face-frames: the same shape). So the
# padding grows as the score falls: `scale` itself from UNSURE_FROM up, and UNSURE_GROWTH times
# more at UNSURE_AT and under (1.3 -> 1.69 with the defaults), which covers that 90th percentile
# at every score. Boxes without scores from the detector (1.0) are padded by `scale`.
UNSURE_FROM = 0.6
UNSURE_AT = 0.2
UNSURE_GROWTH = 0.3
# Pictures get it too, as every video and live frame does, but for thorough's: on all 274 shared
# WIDER photos (bench/README.md, session s5) it raised the share of faces >= 16 px hidden from
# 0.953 to 0.967 for balanced (collateral 1.80% -> 2.75%) and from 0.734 to 0.751 for fast, at no
# CPU cost; thorough, whose upsampled, mirrored and extra views find many more unsure boxes,
# went to 4.4% collateral against its 3% target, and hides 0.98 without it.
PADDED_STILLS = ("fast", "balanced")


def pads_unsure(quality: str, still: bool) -> bool:
    """Whether boxes are padded for their score: every video and live frame, and pictures of
    the PADDED_STILLS presets."""
    return not still or quality in PADDED_STILLS


def score_padding(scores: np.ndarray) -> np.ndarray:
    """Factor on the mask scale per box: 1 for sure detections, up to 1 + UNSURE_GROWTH."""
    unsure = np.clip((UNSURE_FROM - np.asarray(scores, np.float64)) / (UNSURE_FROM - UNSURE_AT),
                     0.0, 1.0)
    return 1.0 + UNSURE_GROWTH * unsure


class ShapeMask:
    """Ellipse or box around each face, padded by `scale` (more for unsure detections: see
    score_padding), with a feathered edge."""

    def __init__(self, config: MaskConfig | None = None, *, shape: str | None = None) -> None:
        self.config = config or MaskConfig()
        self.shape = shape or self.config.shape

    def render(self, detections: Detections, shape: tuple[int, int], *,
               pad_unsure: bool = True) -> Mask:
        """`pad_unsure`: score_padding (see pads_unsure)."""
        dets = detections.hidden
        height, width = shape
        if not len(dets):
            return Mask((height, width), ())
        xyxy = dets.xyxy.astype(np.float64)
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        half = ((xyxy[:, 2:] - xyxy[:, :2]) / 2 * self.config.scale
                * (score_padding(dets.scores)[:, None] if pad_unsure else 1.0))
        padded = np.concatenate([centre - half, centre + half], 1)
        bounds = np.concatenate([np.floor(padded[:, :2]), np.ceil(padded[:, 2:])], 1)
        bounds = np.clip(bounds, 0, [width, height, width, height]).astype(np.int64)
        valid = (bounds[:, 2] > bounds[:, 0]) & (bounds[:, 3] > bounds[:, 1])
        sizes = np.sqrt(dets.widths * dets.heights)
        patches = []
        # Python numbers in the per-box loop (numpy scalars cost more; the values are the same)
        box_list, bound_list = padded.tolist(), bounds.tolist()
        for group in _groups(bounds[valid]):
            idx = np.nonzero(valid)[0][group]
            x0, y0 = bounds[idx, 0].min(), bounds[idx, 1].min()
            x1, y1 = bounds[idx, 2].max(), bounds[idx, 3].max()
            alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
            ox, oy = int(x0), int(y0)
            for i in idx.tolist():
                bx0, by0, bx1, by1 = bound_list[i]
                sub = alpha[by0 - oy:by1 - oy, bx0 - ox:bx1 - ox]
                np.maximum(sub, self._shape_alpha(box_list[i], bound_list[i]), out=sub)
            patches.append(MaskPatch(int(y0), int(x0), alpha, float(sizes[idx].max()),
                                     padded[idx].astype(np.float32)))
        return Mask((height, width), tuple(patches))

    def _shape_alpha(self, box: Sequence[float], bounds: Sequence[int]) -> np.ndarray:
        """Alpha of one padded face box over its integer bounds (pixel centres sampled)."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        ax, ay = max((box[2] - box[0]) / 2, 0.5), max((box[3] - box[1]) / 2, 0.5)
        # float32 over the box's region only: the per-pixel work is most of a frame's rendering
        # (computed in place: the same operations, in the same order, as written out in full:
        # t = clip((1 - r) / f, 0, 1); t * t * (3 - 2 * t))
        dx = np.abs((np.arange(bounds[0], bounds[2]) + 0.5 - cx) / ax).astype(np.float32)[None, :]
        dy = np.abs((np.arange(bounds[1], bounds[3]) + 0.5 - cy) / ay).astype(np.float32)[:, None]
        if self.shape == "ellipse":
            r = np.add(dx * dx, dy * dy)
            np.sqrt(r, out=r)
        else:
            r = np.maximum(dx, dy)
        # Feather width: a fraction of the radius, but never under ~1.5 px (no jagged edges).
        f = max(self.config.feather, 1.5 / min(ax, ay)) if self.config.feather > 0 else 1e-6
        t = np.subtract(np.float32(1.0), r, out=r)
        np.multiply(t, np.float32(1.0 / f), out=t)
        np.maximum(t, np.float32(0.0), out=t)
        np.minimum(t, np.float32(1.0), out=t)
        edge = np.multiply(t, np.float32(2.0))
        np.subtract(np.float32(3.0), edge, out=edge)
        np.multiply(t, t, out=t)
        return np.multiply(t, edge, out=t)  # smoothstep


def EllipseMask(config: MaskConfig | None = None) -> ShapeMask:
    return ShapeMask(config, shape="ellipse")


def BoxMask(config: MaskConfig | None = None) -> ShapeMask:
    return ShapeMask(config, shape="box")


masks: Registry[MaskRenderer] = Registry("mask shape")
masks.register("ellipse", "faceveil.anonymization.masks:EllipseMask", help="ellipse with a soft edge")
masks.register("box", "faceveil.anonymization.masks:BoxMask", help="rectangle with a soft edge")
