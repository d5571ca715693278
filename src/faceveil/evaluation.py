"""Coverage scoring: was each face really hidden in the output pixels?

A face counts as covered when at least 80% of the pixels in the central 60% x 60% of its
box changed. Collateral is the share of pixels changed outside every box grown 1.6x.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BUCKETS = ((0, 16, "<16"), (16, 32, "16-32"), (32, 64, "32-64"), (64, 1 << 30, ">=64"))


def bucket_of(height: float) -> str:
    return next(name for lo, hi, name in BUCKETS if lo <= height < hi)


def changed_pixels(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W) bool: any channel differs."""
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} vs {after.shape}")
    diff = before != after
    return diff.any(axis=2) if diff.ndim == 3 else diff


def face_covered(changed: np.ndarray, box, centre: float = 0.6, share: float = 0.8) -> bool:
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * (1 - centre) / 2, (y2 - y1) * (1 - centre) / 2
    h, w = changed.shape
    cx1, cy1 = int(np.clip(np.floor(x1 + mx), 0, w)), int(np.clip(np.floor(y1 + my), 0, h))
    cx2, cy2 = int(np.clip(np.ceil(x2 - mx), 0, w)), int(np.clip(np.ceil(y2 - my), 0, h))
    region = changed[cy1:cy2, cx1:cx2]
    return region.size > 0 and float(region.mean()) >= share


def collateral(changed: np.ndarray, boxes, grow: float = 1.6) -> float:
    inside = np.zeros_like(changed)
    for x1, y1, x2, y2 in boxes:
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * grow / 2, (y2 - y1) * grow / 2
        inside[max(0, int(cy - hh)):max(0, int(np.ceil(cy + hh))),
               max(0, int(cx - hw)):max(0, int(np.ceil(cx + hw)))] = True
    outside = ~inside
    return float(changed[outside].mean()) if outside.any() else 0.0


@dataclass
class CoverageScore:
    hits: dict[str, int] = field(default_factory=lambda: {b[2]: 0 for b in BUCKETS})
    counts: dict[str, int] = field(default_factory=lambda: {b[2]: 0 for b in BUCKETS})
    collateral_sum: float = 0.0
    images: int = 0

    def add(self, before: np.ndarray, after: np.ndarray, boxes, ignore=None) -> list[bool]:
        """Score one picture; returns, per counted (not ignored) face, whether it is covered."""
        changed = changed_pixels(before, after)
        ignore = ignore if ignore is not None else [False] * len(boxes)
        covered = []
        for box, ign in zip(boxes, ignore, strict=True):
            if ign:
                continue
            b = bucket_of(box[3] - box[1])
            covered.append(face_covered(changed, box))
            self.counts[b] += 1
            self.hits[b] += covered[-1]
        self.collateral_sum += collateral(changed, boxes)
        self.images += 1
        return covered

    def recall(self, bucket: str | None = None, min_height: int = 0) -> float:
        names = [bucket] if bucket else [n for lo, _, n in BUCKETS if lo >= min_height]
        total = sum(self.counts[n] for n in names)
        return sum(self.hits[n] for n in names) / total if total else float("nan")

    @property
    def collateral(self) -> float:
        return self.collateral_sum / self.images if self.images else 0.0
