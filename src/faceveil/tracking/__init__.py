"""Tracking: faces followed across video frames, so a face stays hidden through detection gaps."""

from .causal import CausalTracker
from .tracker import SceneCuts, Tracker, iou_matrix

__all__ = ["CausalTracker", "SceneCuts", "Tracker", "iou_matrix"]
