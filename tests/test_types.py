"""faceveil.types: Detections and Frame validation, selection, geometry helpers, immutability."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import make_detections
from faceveil.types import Detections, Frame

BOXES = [[0, 0, 10, 10], [20, 20, 40, 50], [100, 0, 130, 30]]


def full(n: int = 3) -> Detections:
    """Detections with every optional field set, values easy to tell apart per face."""
    boxes = np.asarray(BOXES[:n], np.float32)
    landmarks = np.arange(n * 10, dtype=np.float32).reshape(n, 5, 2)
    return Detections(
        boxes,
        np.linspace(0.5, 0.9, n, dtype=np.float32),
        landmarks,
        np.arange(n, dtype=np.int64) + 7,
        np.arange(n) % 2 == 1,
    )


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"xyxy": [1, 2, 3, 4], "scores": [0.9]}, "xyxy must have shape"),  # 1-D box
        ({"xyxy": [[1, 2, 3]], "scores": [0.9]}, "xyxy must have shape"),  # 3 coordinates
        ({"xyxy": np.zeros((2, 4, 1)), "scores": [0.9, 0.9]}, "xyxy must have shape"),
        ({"xyxy": [[0, 0, 1, 1]], "scores": [0.9, 0.8]}, "scores must have shape"),  # length mismatch
        ({"xyxy": [[0, 0, 1, 1]], "scores": [[0.9]]}, "scores must have shape"),
        ({"xyxy": [[0, 0, 1, 1]], "scores": [0.9], "landmarks": np.zeros((1, 4, 2))}, "landmarks"),
        ({"xyxy": [[0, 0, 1, 1]], "scores": [0.9], "landmarks": np.zeros((2, 5, 2))}, "landmarks"),
        ({"xyxy": [[0, 0, 1, 1]], "scores": [0.9], "track_ids": [1, 2]}, "track_ids"),
        ({"xyxy": [[0, 0, 1, 1]], "scores": [0.9], "keep": [True, False]}, "keep"),
        ({"xyxy": [[0, 0, np.nan, 1]], "scores": [0.9]}, "finite"),
        ({"xyxy": [[0, 0, 1, 1], [0, np.inf, 1, 1]], "scores": [0.9, 0.9]}, "finite"),
    ],
)
def test_detections_rejects_bad_shapes_and_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Detections(**kwargs)


def test_detections_normalises_dtypes_and_defaults():
    d = Detections([[1, 2, 3, 4]], [1], track_ids=[3.0])
    assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (1, 4)
    assert d.scores.dtype == np.float32
    assert d.track_ids.dtype == np.int64
    assert d.keep.dtype == bool and d.keep.tolist() == [False]  # default: hide every face
    assert d.landmarks is None


@pytest.mark.parametrize("boxes", [[], np.zeros((0, 4)), np.zeros((0,))])
def test_detections_accepts_empty_inputs_of_any_empty_shape(boxes):
    d = Detections(boxes, [])
    assert len(d) == 0
    assert d.xyxy.shape == (0, 4) and d.scores.shape == (0,) and d.keep.shape == (0,)


def test_empty():
    d = Detections.empty()
    assert len(d) == 0
    assert d.xyxy.shape == (0, 4) and d.xyxy.dtype == np.float32
    assert d.scores.shape == (0,) and d.keep.shape == (0,)
    assert d.to_records() == []
    assert len(d.hidden) == 0


def test_widths_heights():
    d = make_detections(BOXES)
    np.testing.assert_array_equal(d.widths, [10, 20, 30])
    np.testing.assert_array_equal(d.heights, [10, 30, 30])


# --- concat ------------------------------------------------------------------------------------

def test_concat_keeps_order_and_all_fields():
    a, b = full(3)[:2], full(3)[2:]
    c = Detections.concat([a, b])
    ref = full(3)
    for name in ("xyxy", "scores", "landmarks", "track_ids", "keep"):
        np.testing.assert_array_equal(getattr(c, name), getattr(ref, name), err_msg=name)


@pytest.mark.parametrize("missing", ["landmarks", "track_ids"])
def test_concat_drops_optional_field_missing_in_one_part(missing):
    a = full(2)
    b = dataclasses.replace(full(1), **{missing: None})
    c = Detections.concat([a, b])
    assert len(c) == 3
    assert getattr(c, missing) is None
    other = "track_ids" if missing == "landmarks" else "landmarks"
    assert getattr(c, other) is not None and len(getattr(c, other)) == 3
    np.testing.assert_array_equal(c.keep, [*a.keep, *b.keep])


@pytest.mark.parametrize(
    ("parts", "n"),
    [
        ([], 0),
        ([Detections.empty(), Detections.empty()], 0),
        ([Detections.empty(), make_detections(BOXES[:2])], 2),
        ([make_detections(BOXES[:1]), Detections.empty(), make_detections(BOXES[1:])], 3),
    ],
)
def test_concat_with_empty_parts(parts, n):
    c = Detections.concat(parts)
    assert len(c) == n
    assert c.xyxy.shape == (n, 4)


def test_concat_empty_part_without_landmarks_does_not_drop_landmarks():
    c = Detections.concat([Detections.empty(), full(2)])
    assert c.landmarks is not None and c.landmarks.shape == (2, 5, 2)


# --- indexing ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (np.array([True, False, True]), [0, 2]),
        ([False, True, False], [1]),
        (np.array([2, 0]), [2, 0]),
        ([1], [1]),
        (slice(1, None), [1, 2]),
        (slice(None, None, -1), [2, 1, 0]),
        (slice(0, 0), []),
        (1, [1]),
        (-1, [2]),
        (np.int64(0), [0]),
    ],
)
def test_indexing_selects_every_field_consistently(index, expected):
    d = full(3)
    sub = d[index]
    assert isinstance(sub, Detections)
    assert len(sub) == len(expected)
    for name in ("xyxy", "scores", "landmarks", "track_ids", "keep"):
        np.testing.assert_array_equal(getattr(sub, name), getattr(d, name)[expected], err_msg=name)


def test_indexing_without_optional_fields_keeps_them_none():
    sub = make_detections(BOXES)[[0, 2]]
    assert sub.landmarks is None and sub.track_ids is None
    np.testing.assert_array_equal(sub.xyxy, np.asarray(BOXES, np.float32)[[0, 2]])


@pytest.mark.parametrize(
    ("keep", "hidden_rows"),
    [(None, [0, 1, 2]), ([True, False, True], [1]), ([True, True, True], []), ([False, True, False], [0, 2])],
)
def test_hidden_is_the_faces_not_kept(keep, hidden_rows):
    d = make_detections(BOXES, keep=keep)
    h = d.hidden
    np.testing.assert_array_equal(h.xyxy, np.asarray(BOXES, np.float32)[hidden_rows].reshape(-1, 4))
    assert not h.keep.any()


# --- geometry ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "box", "landmark"),
    [
        ((2.0,), [0, 2, 20, 22], [2, 4]),  # uniform scale
        ((2.0, 3.0), [0, 3, 20, 33], [2, 6]),  # anisotropic
        ((1.0, 1.0, 5.0, -1.0), [5, 0, 15, 10], [6, 1]),  # pure shift
        ((0.5, 0.5, 1.0, 1.0), [1, 1.5, 6, 6.5], [1.5, 2]),  # scale then shift
    ],
)
def test_scaled_boxes_and_landmarks(args, box, landmark):
    d = Detections([[0, 1, 10, 11]], [0.8], np.tile([[1.0, 2.0]], (1, 5, 1)), [4], [True])
    s = d.scaled(*args)
    np.testing.assert_allclose(s.xyxy[0], box)
    np.testing.assert_allclose(s.landmarks[0, 0], landmark)
    # the rest is carried over untouched
    assert s.scores[0] == pytest.approx(0.8) and s.track_ids[0] == 4 and s.keep[0]
    np.testing.assert_array_equal(d.xyxy[0], [0, 1, 10, 11])  # original unchanged


def test_scaled_without_landmarks():
    s = make_detections([[1, 1, 3, 3]]).scaled(10)
    assert s.landmarks is None
    np.testing.assert_allclose(s.xyxy, [[10, 10, 30, 30]])


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ([10, 10, 20, 20], [10, 10, 20, 20]),  # inside: unchanged
        ([-5, -5, 20, 20], [0, 0, 20, 20]),  # top-left corner outside
        ([90, 40, 130, 70], [90, 40, 100, 50]),  # bottom-right outside
        ([-10, -10, 200, 200], [0, 0, 100, 50]),  # covers the frame
        ([120, 10, 150, 20], None),  # right of the frame: no area left
        ([10, -30, 20, 0], None),  # above the frame: touches the edge only
        ([10, 10, 10, 20], None),  # zero width already
    ],
)
def test_clipped(box, expected):
    d = Detections([box, [1, 1, 2, 2]], [0.5, 0.6], track_ids=[8, 9])
    c = d.clipped(100, 50)
    if expected is None:
        assert len(c) == 1
        np.testing.assert_array_equal(c.xyxy, [[1, 1, 2, 2]])
        assert c.track_ids.tolist() == [9]  # parallel fields dropped together
    else:
        assert len(c) == 2
        np.testing.assert_array_equal(c.xyxy[0], expected)
        assert c.track_ids.tolist() == [8, 9]
    np.testing.assert_array_equal(d.xyxy[0], box)  # the original is untouched


# --- records -----------------------------------------------------------------------------------

@pytest.mark.parametrize("with_optional", [True, False])
def test_records_round_trip(with_optional):
    d = full(3) if with_optional else make_detections(BOXES, keep=[False, True, False])
    records = d.to_records()
    records = json.loads(json.dumps(records))  # JSON-ready
    assert [r["hidden"] for r in records] == (~d.keep).tolist()
    back = Detections.from_records(records)
    for name in ("xyxy", "scores", "landmarks", "track_ids", "keep"):
        a, b = getattr(back, name), getattr(d, name)
        if b is None:
            assert a is None, name
        else:
            np.testing.assert_allclose(a, b, atol=1e-4, err_msg=name)


def test_records_rounding_and_defaults():
    d = Detections([[1.23456, 2, 3, 4]], [0.123456])
    (rec,) = d.to_records()
    assert rec == {"box": [1.23, 2.0, 3.0, 4.0], "score": 0.1235, "hidden": True}
    # score and hidden may be left out when reading: score 1, hidden
    back = Detections.from_records([{"box": [0, 0, 5, 5]}])
    assert back.scores.tolist() == [1.0] and back.keep.tolist() == [False]


def test_from_records_empty_and_partial_optional_fields():
    assert len(Detections.from_records([])) == 0
    recs = [{"box": [0, 0, 1, 1], "track": 3}, {"box": [2, 2, 3, 3]}]
    assert Detections.from_records(recs).track_ids is None  # not every face has one


# --- immutability ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["xyxy", "scores", "landmarks", "track_ids", "keep"])
def test_arrays_are_read_only(name):
    arr = getattr(full(2), name)
    assert not arr.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = 0


@pytest.mark.parametrize("derive", ["hidden", "slice", "scaled", "clipped", "concat"])
def test_derived_detections_are_read_only_too(derive):
    d = full(3)
    out = {
        "hidden": lambda: d.hidden,
        "slice": lambda: d[1:],
        "scaled": lambda: d.scaled(2),
        "clipped": lambda: d.clipped(50, 50),
        "concat": lambda: Detections.concat([d, d]),
    }[derive]()
    assert len(out)
    assert not out.xyxy.flags.writeable and not out.keep.flags.writeable


def test_detections_is_frozen():
    d = make_detections(BOXES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.xyxy = np.zeros((0, 4), np.float32)  # type: ignore[misc]


def test_detections_do_not_alias_caller_memory():
    base = np.array([[0, 0, 10, 10]], np.float32)
    d = Detections(base[:], np.array([0.9], np.float32))
    base[0, 0] = 5  # the caller keeps using its own array
    assert d.xyxy[0, 0] == 0


# --- Frame -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((4, 4, 3), np.float32), "RGB uint8"),
        (np.zeros((4, 4, 3), np.uint16), "RGB uint8"),
        (np.zeros((4, 4), np.uint8), "RGB uint8"),
        (np.zeros((4, 4, 4), np.uint8), "RGB uint8"),
        (np.zeros((4, 4, 1), np.uint8), "RGB uint8"),
        ([[[0, 0, 0]]], "RGB uint8"),  # not an array
        (np.zeros((0, 4, 3), np.uint8), "no pixels"),
        (np.zeros((4, 0, 3), np.uint8), "no pixels"),
    ],
)
def test_frame_rejects(image, match):
    with pytest.raises(ValueError, match=match):
        Frame(image)


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[:, ::2],  # strided columns
        lambda a: a[::-1],  # flipped rows
        lambda a: a.transpose(1, 0, 2),  # transposed
        lambda a: a[..., ::-1],  # BGR <-> RGB by a view
    ],
)
def test_frame_makes_views_contiguous(view):
    base = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = view(base)
    assert not img.flags.c_contiguous
    f = Frame(img, index=3, pts=0.5, source="x")
    assert f.image.flags.c_contiguous
    np.testing.assert_array_equal(f.image, img)
    assert (f.height, f.width) == img.shape[:2]
    assert (f.index, f.pts, f.source) == (3, 0.5, "x")


def test_frame_keeps_contiguous_image_and_is_frozen():
    img = np.zeros((2, 3, 3), np.uint8)
    f = Frame(img)
    assert f.image is img  # no needless copy of big frames
    assert (f.height, f.width) == (2, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.index = 1  # type: ignore[misc]


# ---------------------------------------------------------------------------------- Counts


def _frame(tracks, keep=None, filled=None):
    from faceveil.types import Detections

    n = len(tracks)
    return Detections(np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1)), np.ones(n),
                      track_ids=None if any(t is None for t in tracks) else tracks,
                      keep=keep, filled=filled)


@pytest.mark.parametrize("frames, want", [
    # a picture: boxes without tracks are faces each
    ([[None, None, None]], dict(faces=3, face_frames=3, boxes=3, frames=1)),
    # one face followed through 4 frames, held (filled) in one: 1 face, 4 face-frames
    ([[7], [7], [7], [7]], dict(faces=1, face_frames=4, boxes=3, filled=1, frames=4)),
    # two faces, one kept visible in every frame
    ([[1, 2], [1, 2]], dict(faces=1, face_frames=2, boxes=2, kept=1, kept_frames=2, frames=2)),
    # untracked boxes (-1) in a video: the most in any one frame
    ([[-1, -1], [-1], [3]], dict(faces=3, face_frames=4, boxes=4, frames=3)),
    ([], dict()),
])
def test_counts_are_defined_once(frames, want):
    from faceveil.types import Counts

    dets = []
    for i, tracks in enumerate(frames):
        keep = [t == 2 for t in tracks] if tracks == [1, 2] else None
        filled = [i == 3] * len(tracks) if tracks == [7] else None
        dets.append(_frame(tracks, keep, filled))
    counts = Counts.of(dets)
    assert counts == Counts(**want)
    assert counts.boxes + counts.filled == counts.face_frames
    assert Counts.from_dict(counts.to_dict()) == counts
    assert Counts.of((i, None, d) for i, d in enumerate(dets)) == counts  # faces-file records


def test_counts_are_said_the_same_way_everywhere():
    from faceveil.types import Counts

    assert Counts(12, 340, 300, 40, frames=100).describe() == "12 faces hidden (340 face-frames)"
    assert Counts(1, 1, 1, frames=1).describe() == "1 face hidden"
    assert Counts(3, 3, 3, kept=1, kept_frames=1, frames=1).describe() == \
        "3 faces hidden, 1 kept visible"
    total = Counts(1, 1, 1, frames=1) + Counts(2, 50, 45, 5, frames=50)
    assert total == Counts(3, 51, 46, 5, frames=51)
    assert total.describe(video=True) == "3 faces hidden (51 face-frames)"
