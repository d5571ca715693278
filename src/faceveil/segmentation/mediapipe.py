"""MediaPipe selfie segmentation, general (256x256) and landscape (256x144), as bundled in
mediapipe 0.10.21. The graph resizes its input to the model's size itself, so callers hand it
a frame already downscaled to about that size (see PersonMasker.model_input)."""

from __future__ import annotations

import os
import threading
from typing import ClassVar

import numpy as np

from ..errors import MissingDependencyError
from ..types import Frame

os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging: warnings and up only
try:
    from mediapipe.python.solutions import selfie_segmentation as _mp_selfie
except ImportError as exc:  # the registry turns this into an install hint
    raise MissingDependencyError(
        "the selfie segmenters need: pip install 'faceveil[mediapipe]'") from exc


class SelfieSegmenter:
    name = "selfie"
    model_selection: ClassVar[int] = 0
    input_size: ClassVar[tuple[int, int]] = (256, 256)  # (width, height) the model sees

    def __init__(self) -> None:
        self._graph = _mp_selfie.SelfieSegmentation(model_selection=self.model_selection)
        self._lock = threading.Lock()  # one mediapipe graph: one frame at a time

    def person_mask(self, frame: Frame) -> np.ndarray:
        """Person confidence in [0, 1], float32, at the frame's size."""
        with self._lock:
            result = self._graph.process(frame.image)
        mask = result.segmentation_mask
        if mask is None:  # no answer: all background, so the scene is hidden (fail closed)
            return np.zeros(frame.image.shape[:2], np.float32)
        return np.asarray(mask, np.float32)

    def close(self) -> None:
        self._graph.close()


class LandscapeSegmenter(SelfieSegmenter):
    name = "landscape"
    model_selection = 1
    input_size = (256, 144)
