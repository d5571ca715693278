"""faceveil.anonymization.planar: effects on a video frame's I420 planes, converted as one region
around all patches or one region per patch, whichever has fewer pixels to convert."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import make_detections, textured
from faceveil.anonymization import planar
from faceveil.anonymization.effects import effects
from faceveil.anonymization.masks import ShapeMask
from faceveil.config import EffectConfig, MaskConfig

H, W = 240, 480
# Far enough apart that no face's region (patch plus the effect's margin) reaches another's.
FACES = [[20, 30, 60, 80], [380, 40, 420, 90], [200, 150, 250, 210]]
METHODS = ["blur", "pixelate", "solid"]


def i420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = rgb.shape[:2]
    flat = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).ravel()
    q = (h // 2) * (w // 2)
    return (flat[:h * w].reshape(h, w).copy(), flat[h * w:h * w + q].reshape(h // 2, w // 2).copy(),
            flat[h * w + q:].reshape(h // 2, w // 2).copy())


def hide(method: str, monkeypatch, region_cost: int) -> tuple[list[np.ndarray], int, object]:
    """The planes of a textured frame with FACES hidden, and how many regions were converted."""
    monkeypatch.setattr(planar, "REGION_COST_PX", region_cost)
    calls = []
    real = planar._hide_region

    def counted(*args):
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(planar, "_hide_region", counted)
    rgb = cv2.GaussianBlur(textured(H, W, seed=3), (0, 0), 1.5)
    planes = list(i420(rgb))
    mask = ShapeMask(MaskConfig()).render(make_detections(FACES), (H, W))
    planar.apply_i420(effects.create(method, EffectConfig(method=method)), *planes, mask)
    return planes, len(calls), mask


@pytest.mark.parametrize("method", METHODS)
def test_one_region_and_one_region_per_patch_give_the_same_frame(method, monkeypatch):
    together, regions_together, _ = hide(method, monkeypatch, region_cost=10**9)
    apart, regions_apart, _ = hide(method, monkeypatch, region_cost=-10**9)
    assert (regions_together, regions_apart) == (1, len(FACES))
    for a, b in zip(together, apart, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("region_cost", [10**9, -10**9], ids=["one region", "per patch"])
def test_only_the_masked_pixels_change_and_they_are_hidden(region_cost, monkeypatch):
    rgb = cv2.GaussianBlur(textured(H, W, seed=3), (0, 0), 1.5)
    before = i420(rgb)
    (y, u, v), _, mask = hide("blur", monkeypatch, region_cost)
    dense = mask.to_array() > 0
    chroma = dense.reshape(H // 2, 2, W // 2, 2).any(axis=(1, 3))
    np.testing.assert_array_equal(y[~dense], before[0][~dense])
    np.testing.assert_array_equal(u[~chroma], before[1][~chroma])
    np.testing.assert_array_equal(v[~chroma], before[2][~chroma])
    inner = mask.to_array() > 0.99
    # blurred: the texture inside the faces is mostly gone
    assert y[inner].std() < 0.5 * before[0][inner].std()


def test_the_planes_match_the_effect_on_rgb(monkeypatch):
    rgb = cv2.GaussianBlur(textured(H, W, seed=3), (0, 0), 1.5)
    (y, _, _), _, mask = hide("blur", monkeypatch, region_cost=10**9)
    as_rgb = cv2.cvtColor(np.concatenate([p.ravel() for p in i420(rgb)]).reshape(H * 3 // 2, W),
                          cv2.COLOR_YUV2RGB_I420)
    expected = i420(effects.create("blur", EffectConfig()).apply(as_rgb, mask))[0]
    inside = mask.to_array() > 0
    # the colour round trip of the hidden pixels: a level or two of luma
    assert np.abs(y.astype(int) - expected)[inside].max() <= 3
