"""faceveil: find every face in pictures and hide it, fully offline.

    >>> import faceveil
    >>> faceveil.anonymize_image("group.jpg", "group.anonymized.jpg", method="pixelate")
    >>> faces = faceveil.detect_faces("group.jpg", quality="thorough")
    >>> faceveil.anonymize_video("talk.mp4", "talk.anonymized.mp4")   # sound kept

Importing faceveil is cheap: detectors, media and front ends load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ConfigError,
    CorruptMediaError,
    FaceveilError,
    MediaTooLargeError,
    MissingDependencyError,
    ModelError,
    UnsafeOutputError,
    UnsupportedMediaError,
)

_LAZY = {
    "anonymize_image": "faceveil.api",
    "detect_faces": "faceveil.api",
    "anonymize_video": "faceveil.api",
    "Pipeline": "faceveil.pipeline",
    "Progress": "faceveil.pipeline",
    "PipelineConfig": "faceveil.config",
    "DetectorConfig": "faceveil.config",
    "MaskConfig": "faceveil.config",
    "EffectConfig": "faceveil.config",
    "VideoConfig": "faceveil.config",
    "IdentityConfig": "faceveil.config",
    "Gallery": "faceveil.identity.gallery",
    "Detections": "faceveil.types",
    "Frame": "faceveil.types",
    "Result": "faceveil.types",
    "detectors": "faceveil.detection",
    "effects": "faceveil.anonymization",
    "masks": "faceveil.anonymization",
}

__all__ = [
    "ConfigError", "CorruptMediaError", "FaceveilError", "MediaTooLargeError",
    "MissingDependencyError", "ModelError", "UnsafeOutputError", "UnsupportedMediaError",
    "__version__", *_LAZY,
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ loads them
    from .anonymization import effects, masks  # noqa: F401
    from .api import anonymize_image, anonymize_video, detect_faces  # noqa: F401
    from .config import (  # noqa: F401
        DetectorConfig,
        EffectConfig,
        IdentityConfig,
        MaskConfig,
        PipelineConfig,
        VideoConfig,
    )
    from .detection import detectors  # noqa: F401
    from .identity.gallery import Gallery  # noqa: F401
    from .pipeline import Pipeline, Progress  # noqa: F401
    from .types import Detections, Frame, Result  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'faceveil' has no attribute {name!r}")
