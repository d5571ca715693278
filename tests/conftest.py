"""Shared fixtures. Real data comes from ../shared/data (never copied into the repo)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEVEIL_DATA", REPO.parent / "shared" / "data"))


def require_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared evaluation data at {path} (set FACEVEIL_DATA)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """The test session uses a private model cache, never the user's."""
    old = os.environ.get("FACEVEIL_CACHE_DIR")
    os.environ["FACEVEIL_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("FACEVEIL_CACHE_DIR", None)
    else:
        os.environ["FACEVEIL_CACHE_DIR"] = old


@pytest.fixture
def logs(caplog):
    """caplog for the "faceveil" logger, also after main() gave it its own handler."""
    logger = logging.getLogger("faceveil")
    saved = logger.propagate, logger.handlers[:]
    logger.propagate, logger.handlers[:] = True, []
    with caplog.at_level(logging.INFO, logger="faceveil"):
        yield caplog
    logger.propagate, logger.handlers[:] = saved


@pytest.fixture(scope="session")
def wider() -> tuple[Path, list[dict]]:
    """(images folder, entries) of the WIDER FACE validation subset."""
    root = require_data("images")
    meta = json.loads((root / "wider_face_val_subset.json").read_text())
    return root, meta["images"]


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real portrait (RGB) that ships with scikit-image."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def centerface():
    """One loaded CenterFace detector for the whole session (balanced)."""
    from faceveil.config import DetectorConfig
    from faceveil.detection import create_detector

    return create_detector(DetectorConfig())


def make_detections(boxes, scores=None, keep=None):
    """Detections from a list of [x1, y1, x2, y2]."""
    from faceveil.types import Detections

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9, np.float32) if scores is None else scores
    return Detections(boxes, scores, keep=keep)


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A random RGB picture: every effect changes nearly every pixel of it."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
