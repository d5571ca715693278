"""Effects applied straight to the planes of a YUV 4:2:0 (I420) video frame, patch by patch.

Decoded video is YUV 4:2:0. Converting whole frames to RGB and back costs more than detection
at video rates, so only each mask patch (plus the margin its effect needs) is converted, run
through the ordinary RGB effect, and written back. Pixels outside the patches are not touched.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .effects import Effect
from .masks import Mask, MaskPatch


def _even_down(v: int) -> int:
    return v - (v & 1)


def _even_up(v: int, limit: int) -> int:
    return min(limit, v + (v & 1))


# What converting one more region costs beyond its pixels, in pixels' worth (measured: ~1.3 ns a
# pixel for both conversions and the write-back, ~60 us of calls a region on the machine of
# bench/README.md's "hide" figures). Patches are converted as one rectangle around them all when
# that rectangle has fewer pixels than their own regions plus this per region.
REGION_COST_PX = 45_000


def apply_i420(effect: Effect, y: np.ndarray, u: np.ndarray, v: np.ndarray, mask: Mask) -> None:
    """Hide `mask`'s patches in place. y is (H, W), u and v (H/2, W/2); H and W even.

    Limited-range (TV) YUV only: the conversion is OpenCV's BT.601 16..235 one. Pixels where
    the mask is 0 are left exactly as they were.
    """
    if not mask.patches:
        return
    h, w = y.shape
    margin = getattr(effect, "margin", lambda patch: 0)
    regions = []
    for p in mask.patches:
        m = int(margin(p))
        regions.append((_even_down(max(0, p.y0 - m)), _even_down(max(0, p.x0 - m)),
                        _even_up(min(h, p.y1 + m), h), _even_up(min(w, p.x1 + m), w)))
    rects = np.array(regions)
    areas = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])
    union = (*rects[:, :2].min(0).tolist(), *rects[:, 2:].max(0).tolist())
    if (union[2] - union[0]) * (union[3] - union[1]) <= areas.sum() + REGION_COST_PX * len(regions):
        _hide_region(effect, y, u, v, mask.patches, union)
    else:
        for p, region in zip(mask.patches, regions, strict=True):
            _hide_region(effect, y, u, v, (p,), region)


def _hide_region(effect: Effect, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                 patches: tuple[MaskPatch, ...], region: tuple[int, int, int, int]) -> None:
    """Hide `patches`, all inside `region` (y0, x0, y1, x1, even), converting it once."""
    ry0, rx0, ry1, rx1 = region
    rgb = _to_rgb(y[ry0:ry1, rx0:rx1], u[ry0 // 2:ry1 // 2, rx0 // 2:rx1 // 2],
                  v[ry0 // 2:ry1 // 2, rx0 // 2:rx1 // 2])
    shift = np.array([rx0, ry0, rx0, ry0], np.float32)
    local = tuple(dataclasses.replace(p, y0=p.y0 - ry0, x0=p.x0 - rx0, boxes=p.boxes - shift)
                  for p in patches)
    hidden = effect.apply(rgb, Mask(rgb.shape[:2], local))
    # write back the patches' own rectangle, widened to even coordinates
    h, w = y.shape
    py0, px0 = _even_down(min(p.y0 for p in patches)), _even_down(min(p.x0 for p in patches))
    py1, px1 = _even_up(max(p.y1 for p in patches), h), _even_up(max(p.x1 for p in patches), w)
    yy, uu, vv = _to_i420(hidden[py0 - ry0:py1 - ry0, px0 - rx0:px1 - rx0])
    # only where the mask is: the colour round trip must not touch the pixels around it
    luma = np.zeros(yy.shape, bool)
    for p in patches:  # patches never overlap
        luma[p.y0 - py0:p.y1 - py0, p.x0 - px0:p.x1 - px0] = p.alpha > 0
    chroma = luma[0::2, 0::2] | luma[0::2, 1::2] | luma[1::2, 0::2] | luma[1::2, 1::2]
    np.copyto(y[py0:py1, px0:px1], yy, where=luma)
    np.copyto(u[py0 // 2:py1 // 2, px0 // 2:px1 // 2], uu, where=chroma)
    np.copyto(v[py0 // 2:py1 // 2, px0 // 2:px1 // 2], vv, where=chroma)


def _to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    h, w = y.shape
    packed = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)
    return cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_I420)


def _to_i420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = rgb.shape[:2]
    flat = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).ravel()
    q = (h // 2) * (w // 2)
    return (flat[:h * w].reshape(h, w), flat[h * w:h * w + q].reshape(h // 2, w // 2),
            flat[h * w + q:].reshape(h // 2, w // 2))
