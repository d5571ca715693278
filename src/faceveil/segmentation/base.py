"""The Segmenter protocol and PersonMasker, which turns its output into a soft alpha."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..config import BackgroundConfig
from ..types import Frame


@runtime_checkable
class Segmenter(Protocol):
    name: str
    input_size: tuple[int, int]  # (width, height) the model works at; more pixels are wasted

    def person_mask(self, frame: Frame) -> np.ndarray:
        """Person confidence in [0, 1], float32, at the frame's size."""
        ...


class PersonMasker:
    """Segmenter confidence -> alpha at the output size: 1 person, 0 background.

    All the work is done at the segmenter's resolution: the threshold becomes a short linear
    ramp, the edge is feathered with a Gaussian, and in video (`video=True`) each mask is blended
    with the last one. The blend damps small changes (the shimmer of an edge on a still speaker)
    and lets big ones through at once (a person moving), so edges neither shimmer nor trail.
    Only the result is scaled up, with bilinear interpolation.
    """

    RAMP = 0.15  # confidence from threshold - RAMP to threshold + RAMP fades person to background

    def __init__(self, segmenter: Segmenter, config: BackgroundConfig, *, video: bool = False) -> None:
        self.segmenter, self.config, self.video = segmenter, config, video
        self._last: np.ndarray | None = None

    def model_input(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) to downscale a frame to before `alpha`: it covers the model's
        input size, with the frame's aspect ratio."""
        mw, mh = self.segmenter.input_size
        scale = min(1.0, max(mw / width, mh / height))
        return max(1, round(width * scale)), max(1, round(height * scale))

    def alpha(self, small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """`small`: the RGB frame at (about) model_input size; shape: (height, width) wanted."""
        c = self.config
        conf = self.segmenter.person_mask(Frame(np.ascontiguousarray(small)))
        a = np.clip((conf - (c.threshold - self.RAMP)) / (2 * self.RAMP), 0.0, 1.0)
        if self.video and c.smooth > 0:
            last = self._last
            if last is not None and last.shape == a.shape:
                # weight of the new mask: 1 - smooth for tiny changes, 1 for a full flip
                weight = (1.0 - c.smooth) + c.smooth * np.abs(a - last)
                a = last + weight * (a - last)
            self._last = a
        sigma = c.feather * min(a.shape)
        if sigma >= 0.3:
            a = cv2.GaussianBlur(a, (0, 0), sigma)
        h, w = shape
        if a.shape != (h, w):
            a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
        return a.astype(np.float32, copy=False)

    def reset(self) -> None:
        """Forget the last mask (a new video, or a scene cut)."""
        self._last = None
