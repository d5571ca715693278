"""What the preview shows: the originals of the open file's frames, and a camera's frames.

`PreviewFrames` is used on the preview thread only; `CameraFrames` is the live sink that hands a
camera's frames to the window's thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal

from ..media.images import read_image
from ..media.video import FrameReader
from ..review import Review
from .tasks import PREVIEW_SIDE


class PreviewFrames:
    """Originals for the preview, used on the preview thread only: one video reader (kept
    for cheap next-frame reads) and the last picture."""

    def __init__(self) -> None:
        self._reader: FrameReader | None = None
        self._key: tuple | None = None
        self._picture: tuple[Path, np.ndarray] | None = None

    def get(self, review: Review, index: int) -> np.ndarray:
        if review.kind == "picture":
            if self._picture is None or self._picture[0] != review.path:
                rgb = read_image(review.path).rgb
                s = min(1.0, PREVIEW_SIDE / max(rgb.shape[:2]))
                if s < 1:
                    rgb = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)),
                                     interpolation=cv2.INTER_AREA)
                self._picture = (review.path, rgb)
            return self._picture[1]
        key = (review.path, len(review.pts))
        if self._reader is None or key != self._key:
            if self._reader is not None:
                self._reader.close()
            self._reader, self._key = FrameReader(review.path, review.pts, max_side=PREVIEW_SIDE), key
        return self._reader.image(index)


class CameraFrames(QObject):
    """A live sink that hands each frame (original, anonymized) to the window's thread."""

    frame = Signal(object, object)
    name = "window"
    wants_stop = False

    def send(self, image: np.ndarray, frame: Any) -> None:
        self.frame.emit(frame.image, image)

    def close(self) -> None:
        pass
