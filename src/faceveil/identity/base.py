"""The Embedder protocol: face boxes in a picture -> vectors that are close for the same person."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, eq=False)
class Embedding:
    """Per face: a vector (NaN where the face could not be judged) and how sharp it was."""

    vectors: np.ndarray  # (N, dims) float32
    sharpness: np.ndarray  # (N,) float32: variance of the Laplacian of the aligned face
    chips: list[np.ndarray] | None = None  # aligned RGB faces, when asked for

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


class Embedder(Protocol):
    name: str  # stored with every vector; vectors of different embedders never mix
    dims: int

    def embed(self, image: np.ndarray, xyxy: np.ndarray, *, min_sharpness: float = 0.0,
              chips: bool = False) -> Embedding:
        """Vectors for the faces at `xyxy` (N, 4) in the RGB `image`.

        Faces whose aligned picture is less sharp than `min_sharpness` get NaN vectors (and
        cost little): a blurred face cannot be told apart from others reliably.
        """
        ...
