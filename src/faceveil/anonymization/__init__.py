"""Masks (where to hide) and effects (how to hide)."""

from .effects import Effect, effects
from .masks import Mask, MaskPatch, MaskRenderer, masks

__all__ = ["Effect", "Mask", "MaskPatch", "MaskRenderer", "effects", "masks"]
