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

    All the work is done at the segmenter's resolution. In video (`video=True`) each frame's
    confidence is first blended with the last: a change under KNEE[0] moves it only by
    1 - smooth (the shimmer of an edge on a still speaker is damped), a change over KNEE[1]
    is taken at once (a person moving does not leave a trail). Then the threshold becomes a
    short linear ramp and the edge is feathered with a Gaussian. Only the result is scaled up,
    with bilinear interpolation.
    """

    RAMP = 0.15  # confidence from threshold - RAMP to threshold + RAMP fades person to background
    KNEE = (0.3, 0.7)  # confidence changes between these are taken more and more fully

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
        if self.video and c.smooth > 0:
            last = self._last
            if last is not None and last.shape == conf.shape:
                lo, hi = self.KNEE
                big = np.clip((np.abs(conf - last) - lo) / (hi - lo), 0.0, 1.0)
                conf = last + ((1.0 - c.smooth) + c.smooth * big) * (conf - last)
            self._last = conf
        a = np.clip((conf - (c.threshold - self.RAMP)) / (2 * self.RAMP), 0.0, 1.0)
        sigma = c.feather * min(a.shape)
        if sigma >= 0.3:
            a = cv2.GaussianBlur(a, (0, 0), sigma)
        h, w = shape
        if a.shape != (h, w):
            a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
        return a.astype(np.float32, copy=False)

