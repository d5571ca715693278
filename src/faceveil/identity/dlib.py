"""dlib's face recognition ResNet (99.38% on LFW) with its 5-point aligner, both from the
`face_recognition_models` package: nothing is downloaded."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..errors import MissingDependencyError
from .base import Embedding

CHIP = 150  # the network's input size
PADDING = 0.25  # as dlib's compute_face_descriptor(img, shape)


class DlibEmbedder:
    name = "dlib-resnet-v1"
    dims = 128

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:
            raise MissingDependencyError(
                f"recognising people needs {exc.name or 'dlib'}; install it with: "
                "pip install 'faceveil[people]'") from exc
        self._dlib = dlib
        self._aligner = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self._lock = threading.Lock()  # dlib objects are not safe to share between threads

    def embed(self, image: np.ndarray, xyxy: np.ndarray, *, min_sharpness: float = 0.0,
              chips: bool = False) -> Embedding:
        image = np.ascontiguousarray(image)
        n = len(xyxy)
        vectors = np.full((n, self.dims), np.nan, np.float32)
        sharpness = np.zeros(n, np.float32)
        kept: list[np.ndarray] = []
        with self._lock:
            for i, (x1, y1, x2, y2) in enumerate(np.asarray(xyxy, np.float64)):
                rect = self._dlib.rectangle(round(x1), round(y1), round(x2), round(y2))
                chip = self._dlib.get_face_chip(image, self._aligner(image, rect), CHIP, PADDING)
                gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
                sharpness[i] = cv2.Laplacian(gray, cv2.CV_32F).var()
                if chips:
                    kept.append(chip)
                if sharpness[i] >= min_sharpness:
                    vectors[i] = self._net.compute_face_descriptor(chip)
        return Embedding(vectors, sharpness, kept if chips else None)
