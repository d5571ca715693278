from .events import Progress, ProgressCallback
from .pipeline import Pipeline, draw_boxes

__all__ = ["Pipeline", "Progress", "ProgressCallback", "draw_boxes"]
