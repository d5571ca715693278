"""faceveil.geometry: the one home of box arithmetic (table-driven)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_detections
from faceveil import geometry as g

A = [0, 0, 10, 10]


@pytest.mark.parametrize(("a", "b", "iou", "share"), [
    (A, A, 1.0, 1.0),
    (A, [5, 0, 15, 10], 50 / 150, 0.5),
    (A, [10, 10, 20, 20], 0.0, 0.0),  # touching corners
    (A, [2, 2, 8, 8], 36 / 100, 0.36),  # inside
    ([2, 2, 8, 8], A, 36 / 100, 1.0),
    ([0, 0, 0, 0], A, 0.0, 0.0),  # empty box: no division by zero
])
def test_iou_and_overlap_share(a, b, iou, share):
    a, b = np.array([a], np.float32), np.array([b], np.float32)
    assert g.iou_matrix(a, b)[0, 0] == pytest.approx(iou)
    assert g.overlap_share(a, b)[0, 0] == pytest.approx(share)
    assert g.iou_matrix(a, b).shape == (1, 1)


def test_matrices_are_n_by_m_and_areas_centres():
    a = np.array([A, [0, 0, 4, 2]], np.float32)
    b = np.array([A, [20, 20, 30, 40], [1, 1, 2, 2]], np.float32)
    assert g.iou_matrix(a, b).shape == (2, 3) and g.intersections(a, b).shape == (2, 3)
    np.testing.assert_allclose(g.areas(a), [100, 8])
    np.testing.assert_allclose(g.centres(b), [[5, 5], [25, 30], [1.5, 1.5]])


def test_scaled_keeps_centre_and_dtype_and_clipped_cuts_to_the_frame():
    box = np.array([[10, 20, 30, 60]], np.float32)
    big = g.scaled(box, 1.5)
    assert big.dtype == np.float32
    np.testing.assert_allclose(big, [[5, 10, 35, 70]])
    np.testing.assert_allclose(g.centres(big), g.centres(box))
    np.testing.assert_allclose(g.clipped(np.array([[-5, -1, 50, 80]], np.float32), 40, 70),
                               [[0, 0, 40, 70]])


def test_nms_keeps_the_best_of_overlapping_boxes():
    scores = np.array([0.6, 0.9, 0.5], np.float32)
    dets = make_detections([A, [1, 1, 11, 11], [50, 50, 60, 60]], scores=scores)
    kept = g.nms(dets, 0.4)
    np.testing.assert_allclose(kept.xyxy, [[1, 1, 11, 11], [50, 50, 60, 60]])


def test_weighted_nms_averages_a_group_by_score():
    out = g.weighted_nms(np.array([A, [2, 0, 12, 10], [50, 50, 60, 60]], np.float32),
                         np.array([0.75, 0.25, 0.5], np.float32), 0.3)
    np.testing.assert_allclose(out.xyxy, [[0.5, 0, 10.5, 10], [50, 50, 60, 60]])
    np.testing.assert_allclose(out.scores, [0.75, 0.5])


@pytest.mark.parametrize("turn", ["unmirror", "rotate180"])
def test_turning_twice_gives_the_boxes_back(turn):
    dets = make_detections([[10, 5, 30, 25], [60, 10, 90, 45]])
    once = g.unmirror(dets, 100) if turn == "unmirror" else g.rotate180(dets, 100, 50)
    twice = g.unmirror(once, 100) if turn == "unmirror" else g.rotate180(once, 100, 50)
    assert not np.allclose(once.xyxy, dets.xyxy)
    np.testing.assert_allclose(twice.xyxy, dets.xyxy)
    assert (once.xyxy[:, 2:] > once.xyxy[:, :2]).all()  # still x1 < x2, y1 < y2


def test_components_label_each_node_with_the_lowest_index_of_its_component():
    components = g.components
    # 5-3-1 a chain given out of order, 4-2 a pair, 0 and 6 alone
    a, b = np.array([5, 3, 4]), np.array([3, 1, 2])
    assert components(7, a, b).tolist() == [0, 1, 2, 1, 2, 1, 6]
    assert components(3, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == [0, 1, 2]
    chain = np.arange(1, 1000)  # a long chain, each node linked to the one before
    assert not components(1000, chain, chain - 1).any()
