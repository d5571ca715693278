"""Face detectors, chosen by name from `detectors`."""

from __future__ import annotations

from ..config import DetectorConfig
from ..registry import Registry
from .base import Detector, ScaledDetector, nms

detectors: Registry[Detector] = Registry("detector")
detectors.register(
    "centerface", "faceveil.detection.backends.centerface:CenterFaceDetector",
    help="CenterFace on ONNX Runtime: best recall, small faces too (default)",
)
detectors.register(
    "blazeface", "faceveil.detection.backends.blazeface:BlazeFaceDetector", aliases=("mediapipe",),
    help="BlazeFace short and full range (from MediaPipe) on ONNX Runtime: fast, misses small faces",
)
detectors.register(
    "yunet", "faceveil.detection.backends.yunet:YuNetDetector",
    help="YuNet 2023mar on OpenCV: tiny (232 KB), five landmarks",
)
detectors.register(
    "ssd", "faceveil.detection.backends.ssd:SSDDetector",
    help="res10 SSD on OpenCV DNN (the classic tutorials' detector): misses small faces",
)
detectors.register(
    "haar", "faceveil.detection.backends.haar:HaarDetector",
    help="OpenCV Haar cascades: no ML runtime, frontal and profile faces, least accurate",
)


def create_detector(config: DetectorConfig | None = None) -> Detector:
    config = config or DetectorConfig()
    return detectors.create(config.name, config)


__all__ = ["Detector", "ScaledDetector", "create_detector", "detectors", "nms"]
