"""Tracking: faces followed across video frames, so a face stays hidden through detection gaps."""

from .tracker import SceneCuts, Tracker, iou_matrix

__all__ = ["SceneCuts", "Tracker", "iou_matrix"]
