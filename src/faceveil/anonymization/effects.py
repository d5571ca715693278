"""Effects: how to hide. Each works on the mask's patches only, never on the whole frame."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Protocol

import cv2
import numpy as np

from ..config import EffectConfig
from ..errors import ConfigError, CorruptMediaError, UnsupportedMediaError
from ..registry import Registry
from .masks import Mask, MaskPatch

log = logging.getLogger(__name__)

# The privacy floor of each method, measured, not chosen: bench/reid.py hides the face of each
# of the 37 single-person photos of ../shared/data/identities (12 people) that has another photo
# of its person, at face heights of 40, 80 and 160 px, and counts the faces that dlib's face
# recognition ResNet still matches to their person (1-nearest neighbour over the untouched
# photos of all people, distance < 0.6, and no other person's hidden face nearer: see
# faceveil.audit.reid). The floor is the weakest setting that left none matched at any size;
# defaults sit above it. Below the floor, the warning quotes these shares (in %, at
# 40 / 80 / 160 px faces) for the measured setting nearest on the weak side.
SIZES_MEASURED = (40, 80, 160)
REIDENTIFIED: dict[str, dict[float, tuple[int, int, int]]] = {
    "blur": {0.05: (0, 27, 97), 0.2: (0, 27, 35), 0.3: (0, 3, 3), 0.5: (0, 0, 0)},
    "pixelate": {10: (0, 0, 0), 12: (3, 3, 0), 16: (11, 16, 24), 24: (35, 89, 85)},
}
BLUR_FLOOR = 0.5  # strength (sigma = strength x face / 5)
PIXELATE_FLOOR = 10  # blocks across a face (the default, 8, makes each block 25% larger)


def measured_share(method: str, setting: float, weaker_is_larger: bool) -> str:
    """ "re-identified 0% / 27% / 97% of 40 / 80 / 160 px faces" for the measured setting
    nearest to `setting` on its weak side (or the weakest measured)."""
    table = REIDENTIFIED[method]
    weak_side = [k for k in table if (k >= setting if weaker_is_larger else k <= setting)]
    key = (min(weak_side) if weaker_is_larger else max(weak_side)) if weak_side else (
        max(table) if weaker_is_larger else min(table))
    at = "" if key == setting else f" (measured at {key:g})"
    shares = " / ".join(f"{v}%" for v in table[key])
    sizes = " / ".join(map(str, SIZES_MEASURED))
    return f"a face recogniser re-identified {shares} of {sizes} px faces{at}, bench/reid.py"


class Effect(Protocol):
    name: str

    def apply(self, image: np.ndarray, mask: Mask) -> np.ndarray: ...

    def weakness(self) -> str | None:
        """Why this setting may leave faces recognisable, or None."""
        ...


def blend(base: np.ndarray, top: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """base * (1 - alpha) + top * alpha, uint8 in and out; pixels with alpha 0 stay exact."""
    a = np.ascontiguousarray(alpha, np.float32)
    return cv2.blendLinear(np.ascontiguousarray(base), np.ascontiguousarray(top), 1.0 - a, a)


class PatchEffect:
    """Base: `render` makes the hidden version of one patch, `apply` blends it in."""

    name = "base"
    context = 0  # pixels of surroundings `render` wants around the patch

    def __init__(self, config: EffectConfig | None = None) -> None:
        self.config = config or EffectConfig(method=self.name)

    def weakness(self) -> str | None:
        return None

    def margin(self, patch: MaskPatch) -> int:
        return self.context

    def render(self, region: np.ndarray, patch: MaskPatch, offset: tuple[int, int]) -> np.ndarray:
        """The hidden picture of `region` (patch plus margin; patch starts at `offset` in it)."""
        raise NotImplementedError

    def apply(self, image: np.ndarray, mask: Mask) -> np.ndarray:
        out = image.copy()
        h, w = image.shape[:2]
        for p in mask.patches:
            m = self.margin(p)
            ry0, rx0 = max(0, p.y0 - m), max(0, p.x0 - m)
            region = image[ry0:min(h, p.y1 + m), rx0:min(w, p.x1 + m)]
            oy, ox = p.y0 - ry0, p.x0 - rx0
            hidden = self.render(region, p, (oy, ox))
            hidden = hidden[oy:oy + p.alpha.shape[0], ox:ox + p.alpha.shape[1]]
            out[p.slices] = blend(image[p.slices], hidden, p.alpha)
        return out


class Blur(PatchEffect):
    """Gaussian blur whose radius grows with the face: sigma = strength * face / 5, >= 3 px."""

    name = "blur"
    min_sigma = 3.0

    def sigma(self, patch: MaskPatch) -> float:
        return max(self.min_sigma, self.config.strength * patch.face_size / 5.0)

    def margin(self, patch: MaskPatch) -> int:
        return int(np.ceil(2 * self.sigma(patch)))

    def weakness(self) -> str | None:
        s = self.config.strength
        if s < BLUR_FLOOR:
            return (f"blur strength {s:g} is below its privacy floor of {BLUR_FLOOR:g}: "
                    + measured_share("blur", s, weaker_is_larger=False))
        return None

    def render(self, region, patch, offset):
        sigma = self.sigma(patch)
        # Large blurs: blur a downscaled copy then scale back up (same look, a fraction of
        # the cost). Sigma stays >= 2 px in the small copy.
        k = max(1.0, sigma / 2.0)
        h, w = region.shape[:2]
        if k > 1.5 and min(h, w) / k >= 4:
            small = cv2.resize(region, (max(1, round(w / k)), max(1, round(h / k))),
                               interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), sigma / k, borderType=cv2.BORDER_REFLECT)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        return cv2.GaussianBlur(region, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


class Pixelate(PatchEffect):
    """Mosaic: about `blocks` blocks across a face, each the mean colour of its pixels."""

    name = "pixelate"

    def weakness(self) -> str | None:
        b = self.config.blocks
        if b > PIXELATE_FLOOR:
            return (f"pixelate with {b} blocks across a face is weaker than its privacy floor of "
                    f"{PIXELATE_FLOOR} blocks: " + measured_share("pixelate", b, weaker_is_larger=True))
        return None

    def render(self, region, patch, offset):
        h, w = region.shape[:2]
        block = max(2.0, patch.face_size / self.config.blocks)
        small = cv2.resize(region, (max(1, round(w / block)), max(1, round(h / block))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


class Solid(PatchEffect):
    name = "solid"

    def render(self, region, patch, offset):
        return np.broadcast_to(np.array(self.config.color, np.uint8), region.shape)


class Overlay(Blur):
    """A picture (PNG with alpha, an emoji...) scaled over each face, on top of a blur.

    Its privacy floor, in two parts (tests/anonymization/test_effects.py):
    - Coverage: the picture is stretched over each face's padded box (the mask's, 1.3x the
      detected box by default), so where it is opaque nothing of the face shows; a round emoji
      covers the face's centre (eyes, nose, mouth) with the picture alone.
    - What shows through: wherever the picture is not fully opaque (transparent corners, a
      see-through middle, half alpha) the face underneath is blurred at least at the blur's
      floor, whatever --strength says (a ring-shaped picture over a strength-0.05 blur left 31
      of 34 faces of 160 px re-identified in bench/reid.py; at the floor, none). So the method
      is never weaker than blur at its floor, whatever the picture.
    An opaque emoji's one re-identified face of 37 at 80 px (bench/README.md) is the recogniser
    reading the emoji itself, not the face under it: see the overlay section there.
    """

    name = "image"

    def sigma(self, patch: MaskPatch) -> float:
        return max(self.min_sigma, max(self.config.strength, BLUR_FLOOR) * patch.face_size / 5.0)

    def weakness(self) -> str | None:
        return None

    @cached_property
    def picture(self) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.config.image) as img:
                return np.asarray(img.convert("RGBA"))
        except FileNotFoundError:
            raise ConfigError(f"overlay image not found: {self.config.image}") from None
        except UnidentifiedImageError:
            raise UnsupportedMediaError(f"overlay is not a picture: {self.config.image}") from None
        except OSError as exc:
            raise CorruptMediaError(f"cannot read overlay {self.config.image}: {exc}") from None

    def render(self, region, patch, offset):
        out = super().render(region, patch, offset).copy()
        oy, ox = offset
        for bx0, by0, bx1, by1 in patch.boxes:
            x0, y0 = round(bx0) - patch.x0 + ox, round(by0) - patch.y0 + oy
            bw, bh = max(1, round(bx1 - bx0)), max(1, round(by1 - by0))
            pic = cv2.resize(self.picture, (bw, bh), interpolation=cv2.INTER_AREA)
            # clip the scaled picture to the region
            sy0, sx0 = max(0, -y0), max(0, -x0)
            ey, ex = min(bh, out.shape[0] - y0), min(bw, out.shape[1] - x0)
            if ey <= sy0 or ex <= sx0:
                continue
            dst = out[y0 + sy0:y0 + ey, x0 + sx0:x0 + ex]
            src = pic[sy0:ey, sx0:ex]
            dst[:] = blend(dst, src[..., :3], src[..., 3].astype(np.float32) / 255.0)
        return out


class NoEffect(PatchEffect):
    """Leave faces as they are (for tuning with --draw-boxes)."""

    name = "none"

    def weakness(self) -> str | None:
        return "method 'none' leaves every face visible"

    def apply(self, image: np.ndarray, mask: Mask) -> np.ndarray:
        return image.copy()


effects: Registry[Effect] = Registry("effect")
effects.register("blur", "faceveil.anonymization.effects:Blur",
                 help="Gaussian blur scaled to the face (--strength)")
effects.register("pixelate", "faceveil.anonymization.effects:Pixelate",
                 help="mosaic of block mean colours (--blocks across a face)")
effects.register("solid", "faceveil.anonymization.effects:Solid", help="fill with --color")
effects.register("image", "faceveil.anonymization.effects:Overlay",
                 help="a picture or emoji (--image) over each face, on a blur")
effects.register("none", "faceveil.anonymization.effects:NoEffect",
                 help="leave faces visible (with --draw-boxes, for tuning)")
