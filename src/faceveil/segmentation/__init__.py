"""Who is a person and what is background: soft person masks for background effects.

    segmenter = segmenters.create("selfie")               # selfie segmentation (ONNX Runtime)
    masker = PersonMasker(segmenter, config.background, video=True)
    alpha = masker.alpha(small_rgb, (height, width))      # 1 = person, 0 = background, soft edge

A better model is one more file: a class with `input_size` and `person_mask(frame)`,
registered below.
"""

from __future__ import annotations

from ..registry import Registry
from .base import PersonMasker, Segmenter

segmenters: Registry[Segmenter] = Registry("segmenter")
segmenters.register(
    "selfie", "faceveil.segmentation.selfie:SelfieSegmenter",
    help="selfie segmentation (from MediaPipe), general model (256x256)",
)
segmenters.register(
    "landscape", "faceveil.segmentation.selfie:LandscapeSegmenter",
    help="selfie segmentation (from MediaPipe), landscape model (256x144, faster, for wide frames)",
)

__all__ = ["PersonMasker", "Segmenter", "segmenters"]
