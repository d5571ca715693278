"""Tracking: faces followed across video frames, so a face stays hidden through detection gaps."""

from ..geometry import areas, intersections, iou_matrix, overlap_share  # re-exported: they moved
from .tracker import SceneCuts, Tracker

__all__ = [
    "SceneCuts", "Tracker", "areas", "intersections", "iou_matrix", "overlap_share",
]
