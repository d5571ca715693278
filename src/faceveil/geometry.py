"""Box geometry, once: overlap, area, centres, scaling and clipping of `[x1, y1, x2, y2]` boxes,
suppression of duplicate detections and the turns detectors look through.

Boxes are float arrays of shape (N, 4) in frame pixels (`Detections.xyxy`). Matrices compare
every box of `a` (N) with every box of `b` (M) and are (N, M). The tracker, the detectors, the
identity decisions, the review model and the verifier all use these; nothing keeps its own copy.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .types import Detections


def areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection area of every box in a (N, 4) with every box in b (M, 4): (N, M)."""
    return paired_intersections(a[:, None], b[None])


def paired_intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection area of each box in a with the box at the same place in b (shapes that
    broadcast, e.g. (K, 4) and (K, 4) for K pairs: (K,))."""
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) against every box in b (M, 4): (N, M)."""
    inter = intersections(a, b)
    return inter / np.maximum(areas(a)[:, None] + areas(b)[None, :] - inter, 1e-6)


def overlap_share(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M): the share of each box of a's own area that each box of b covers."""
    return intersections(a, b) / np.maximum(areas(a)[:, None], 1e-6)


def overlapping_pairs(rects: np.ndarray, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index pairs of the rectangles (x0, y0, x1, y1) that share area, each pair once.

    A sweep along x: with the rectangles sorted by their left side, those a rectangle overlaps
    along x are the next ones that start before it ends; only they are tested along y, a chunk of
    pairs at a time. So a crowd of thousands of faces needs no N x N matrix (those above are for
    few boxes against few)."""
    n = len(rects)
    order = np.argsort(rects[:, 0], kind="stable")
    r = rects[order]
    ends = np.searchsorted(r[:, 0], r[:, 2], side="left")  # first one starting at or after my end
    counts = np.maximum(ends - np.arange(n) - 1, 0)
    total = np.cumsum(counts)
    found_i, found_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    start = 0
    while start < n:
        done = int(total[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(total, done + chunk, side="right")))
        c = counts[start:stop]
        i = np.repeat(np.arange(start, stop), c)
        j = i + 1 + np.arange(len(i)) - np.repeat(np.cumsum(c) - c, c)
        y = np.maximum(r[i, 1], r[j, 1]) < np.minimum(r[i, 3], r[j, 3])
        found_i.append(order[i[y]])
        found_j.append(order[j[y]])
        start = stop
    return np.concatenate(found_i), np.concatenate(found_j)


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the graph on n nodes with edges (a[k], b[k]): each node's label is
    the lowest index in its component. Vectorised, for the pairs of a crowd's boxes."""
    label = np.arange(n)
    while True:  # every node takes the lowest label among its neighbours, until settled
        lowest = label.copy()
        np.minimum.at(lowest, a, label[b])
        np.minimum.at(lowest, b, label[a])
        lowest = lowest[lowest]  # jump along chains (labels point to lower indices)
        if np.array_equal(lowest, label):
            return label
        label = lowest


def centres(boxes: np.ndarray) -> np.ndarray:
    """(N, 2) centre points."""
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def scaled(boxes: np.ndarray, factor: float) -> np.ndarray:
    """The boxes grown (factor > 1) or shrunk about their centres; same dtype."""
    c, half = centres(boxes), (boxes[:, 2:] - boxes[:, :2]) / 2 * factor
    return np.concatenate([c - half, c + half], 1).astype(boxes.dtype, copy=False)


def clipped(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """The boxes cut to a width x height frame."""
    return np.clip(boxes, 0, [width, height, width, height]).astype(boxes.dtype, copy=False)


def nms(dets: Detections, iou: float) -> Detections:
    """Greedy non-maximum suppression, highest score first."""
    if len(dets) < 2:
        return dets
    import cv2

    xywh = dets.xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), dets.scores.tolist(), 0.0, iou)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return dets[np.sort(keep)]


def weighted_nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> Detections:
    """mediapipe's WEIGHTED suppression: each group of boxes overlapping the best remaining one
    by more than `iou` becomes their score-weighted mean, with the best one's score."""
    order = np.argsort(-scores)
    xyxy, scores = xyxy[order], scores[order]
    overlaps = iou_matrix(xyxy, xyxy)
    left = np.ones(len(scores), bool)
    boxes, best = [], []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (overlaps[i] > iou)
        group[i] = True
        left &= ~group
        wts = scores[group][:, None]
        boxes.append((xyxy[group] * wts).sum(0) / wts.sum())
        best.append(scores[i])
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(best, np.float32))


def unmirror(dets: Detections, width: int) -> Detections:
    """Detections made on a left-right mirrored picture, in the original picture's pixels."""
    if not len(dets):
        return dets
    xyxy = dets.xyxy.copy()
    xyxy[:, [0, 2]] = width - dets.xyxy[:, [2, 0]]
    lm = None
    if dets.landmarks is not None:  # eyes and mouth corners swap sides
        lm = dets.landmarks[:, [1, 0, 2, 4, 3]].copy()
        lm[:, :, 0] = width - lm[:, :, 0]
    return dataclasses.replace(dets, xyxy=xyxy, landmarks=lm)


def rotate180(dets: Detections, width: int, height: int) -> Detections:
    """Detections made on a picture turned 180 degrees, in the upright picture's pixels."""
    if not len(dets):
        return dets
    turned = unmirror(dets, width)  # left-right, landmarks' sides swapped; then top-bottom
    xyxy = turned.xyxy.copy()
    xyxy[:, [1, 3]] = height - turned.xyxy[:, [3, 1]]
    lm = None
    if turned.landmarks is not None:
        lm = turned.landmarks.copy()
        lm[:, :, 1] = height - lm[:, :, 1]
    return dataclasses.replace(turned, xyxy=xyxy, landmarks=lm)
