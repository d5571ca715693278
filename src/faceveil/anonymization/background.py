"""Background effects: what the scene behind people becomes, given a person alpha.

A frame is a list of planes: one H x W x 3 RGB plane, or the Y, U and V planes of a YUV 4:2:0
video frame (U and V at half size). Each plane is blended with its backdrop through the alpha
scaled to that plane, so video never has to be converted to RGB and back.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..config import BackgroundConfig
from ..errors import ConfigError

BLUR_SIGMA = 0.03  # background blur: Gaussian sigma as a fraction of the frame's short side
_BLUR_WORK = 3.0  # the blur runs on a copy downscaled so that its sigma is about this many px


class Backdrop:
    """Replaces the background of frames, per `BackgroundConfig.mode`. Safe across threads."""

    def __init__(self, config: BackgroundConfig) -> None:
        if not config.active:
            raise ConfigError("no background mode set")
        self.config = config
        self._picture: np.ndarray | None = None
        self._fitted: dict[tuple, list[np.ndarray]] = {}  # (layout, h, w) -> backdrop planes
        if config.mode == "image":
            from ..media.images import read_image

            try:
                self._picture = read_image(config.image).rgb
            except Exception as exc:
                raise ConfigError(f"background image {config.image}: {exc}") from exc

    @property
    def transparent(self) -> bool:
        return self.config.mode == "transparent"

    def apply_rgb(self, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """A new picture: RGB, or RGBA for `transparent` (alpha = person)."""
        if self.transparent:
            a = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
            return np.dstack([image, a])
        return self.apply_planes([image], alpha, "rgb")[0]

    def apply_planes(self, planes: Sequence[np.ndarray], alpha: np.ndarray,
                     layout: str) -> list[np.ndarray]:
        """Blend each plane with its backdrop; layout "rgb" (one H x W x 3 plane) or "i420"."""
        if self.transparent:
            raise ConfigError("a transparent background needs a picture format with alpha "
                              "(PNG, WebP or TIFF); video has none here")
        alphas = [alpha if alpha.shape == p.shape[:2] else
                  cv2.resize(alpha, p.shape[1::-1], interpolation=cv2.INTER_AREA) for p in planes]
        if self.config.mode == "blur":
            sigma = BLUR_SIGMA * self.config.strength * min(planes[0].shape[:2])
            backs = [_masked_blur(p, a, sigma * p.shape[0] / planes[0].shape[0])
                     for p, a in zip(planes, alphas, strict=True)]
        else:
            backs = self._fitted_planes(planes[0].shape[:2], layout)
        return [cv2.blendLinear(p, b, a, 1.0 - a)
                for p, b, a in zip(planes, backs, alphas, strict=True)]

    def _fitted_planes(self, shape: tuple[int, int], layout: str) -> list[np.ndarray]:
        """The colour or picture as planes of this size; one size is cached (a run has one)."""
        h, w = shape
        key = (layout, h, w)
        if key not in self._fitted:
            if self.config.mode == "color":
                rgb = np.empty((h, w, 3), np.uint8)
                rgb[:] = self.config.color
            else:
                rgb = _cover(self._picture, w, h)
            self._fitted = {key: _split(rgb, layout)}
        return self._fitted[key]


def _cover(picture: np.ndarray, w: int, h: int) -> np.ndarray:
    """`picture` scaled to cover w x h and cropped to it, centred."""
    ph, pw = picture.shape[:2]
    scale = max(w / pw, h / ph)
    sw, sh = max(w, round(pw * scale)), max(h, round(ph * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    big = cv2.resize(picture, (sw, sh), interpolation=interp)
    x0, y0 = (sw - w) // 2, (sh - h) // 2
    return np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w])


def _split(rgb: np.ndarray, layout: str) -> list[np.ndarray]:
    if layout == "rgb":
        return [rgb]
    h, w = rgb.shape[:2]
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # BT.601 16..235, as planar.py
    q = (h // 2) * (w // 2)
    chroma = yuv[h:].reshape(-1)
    return [yuv[:h], chroma[:q].reshape(h // 2, w // 2), chroma[q:2 * q].reshape(h // 2, w // 2)]


def _masked_blur(plane: np.ndarray, alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the background only (alpha 0): person pixels do not bleed into it.

    Runs on a copy downscaled by a whole factor k, so the blur is a few pixels wide there, then
    stretched back. Cropping to a multiple of k takes OpenCV's fast area reduction; the few
    pixels cropped off are filled in by the stretch, invisible under this much blur.
    """
    h, w = plane.shape[:2]
    k = max(1, min(int(sigma / _BLUR_WORK), w, h))
    sw, sh = w // k, h // k
    small = cv2.resize(plane[:sh * k, :sw * k], (sw, sh), interpolation=cv2.INTER_AREA)
    weight = 1.0 - cv2.resize(alpha[:sh * k, :sw * k], (sw, sh), interpolation=cv2.INTER_AREA)
    s = max(0.5, sigma / k)
    den = cv2.GaussianBlur(weight, (0, 0), s)
    if small.ndim == 3:
        weight, den = weight[..., None], den[..., None]
    small = small.astype(np.float32)
    background = cv2.GaussianBlur(small * weight, (0, 0), s).reshape(small.shape) / np.maximum(den, 1e-3)
    plain = cv2.GaussianBlur(small, (0, 0), s)  # where no background is near, all is person
    out = np.where(den > 0.02, background, plain)
    return cv2.resize(np.clip(out + 0.5, 0, 255).astype(np.uint8), (w, h),
                      interpolation=cv2.INTER_LINEAR)
