"""Tracking: faces followed across video frames, so a face stays hidden through detection gaps."""

from .tracker import SceneCuts, Tracker, areas, intersections, iou_matrix, overlap_share

__all__ = [
    "SceneCuts", "Tracker", "areas", "intersections", "iou_matrix", "overlap_share",
]
