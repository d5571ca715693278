"""Selfie segmentation, general (256x256) and landscape (256x144), Apache-2.0, from mediapipe
0.10.21, converted once to ONNX (scripts/convert_models.py) and run on ONNX Runtime.

As mediapipe's selfie_segmentation graph does: the frame is stretched to the model's size (no
letterbox), scaled to [0, 1]; the model's person confidence is scaled back to the frame's size
bilinearly. Callers hand it a frame already downscaled to about that size
(PersonMasker.model_input), so both resizes are cheap.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from ..models import model_file
from ..models.runtime import SMALL_MODEL_THREADS, ort_session
from ..types import Frame


class SelfieSegmenter:
    name = "selfie"
    model: ClassVar[str] = "selfie_general"
    input_size: ClassVar[tuple[int, int]] = (256, 256)  # (width, height) the model sees

    def __init__(self, *, device: str = "cpu", threads: int | None = None) -> None:
        # one thread unless told otherwise: its calls are too short to share (SMALL_MODEL_THREADS)
        self.session = ort_session(str(model_file(self.model)), threads or SMALL_MODEL_THREADS, device)
        self._input = self.session.get_inputs()[0].name

    def person_mask(self, frame: Frame) -> np.ndarray:
        """Person confidence in [0, 1], float32, at the frame's size."""
        image = frame.image
        h, w = image.shape[:2]
        mw, mh = self.input_size
        small = image if (w, h) == (mw, mh) else cv2.resize(image, (mw, mh), interpolation=cv2.INTER_LINEAR)
        blob = (small.astype(np.float32) / 255.0)[None]
        (conf,) = self.session.run(None, {self._input: blob})
        mask = np.clip(conf[0, :, :, 0], 0.0, 1.0)
        if (w, h) != (mw, mh):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(mask, np.float32)

    def close(self) -> None:
        """Nothing to release (kept for callers of the former mediapipe graph)."""


class LandscapeSegmenter(SelfieSegmenter):
    name = "landscape"
    model = "selfie_landscape"
    input_size = (256, 144)
