"""The look-ahead tracker and the scene-cut detector: pure numpy, no video."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_detections
from faceveil.config import VideoConfig
from faceveil.tracking import SceneCuts, Tracker, iou_matrix
from faceveil.types import Detections

SIZE = 50.0  # side of the synthetic face boxes, in pixels


def box_at(x: float, y: float, size: float = SIZE) -> list[float]:
    return [x, y, x + size, y + size]


def run(config: VideoConfig, frames: list, cuts: set[int] | frozenset = frozenset()) -> list[Detections]:
    """Push `frames` (Detections or None) through a tracker; the output Detections by frame.

    Also checks the contract every caller relies on: frames come out in order, each once.
    """
    tracker: Tracker[int] = Tracker(config)
    out: list[tuple[int, Detections]] = []
    for i, dets in enumerate(frames):
        out += tracker.push(i, dets, cut=i in cuts)
    out += tracker.flush()
    assert [i for i, _ in out] == list(range(len(frames)))
    assert tracker.flush() == []
    return [d for _, d in out]


def filled(d: Detections) -> Detections:
    return d[d.filled]


def found(d: Detections) -> Detections:
    return d[~d.filled]


def contains(outer, inner, tol: float = 1e-3) -> bool:
    return (outer[0] <= inner[0] + tol and outer[1] <= inner[1] + tol
            and outer[2] >= inner[2] - tol and outer[3] >= inner[3] - tol)


# ---- iou_matrix


@pytest.mark.parametrize(("a", "b", "want"), [
    (box_at(0, 0), box_at(0, 0), 1.0),  # identical
    (box_at(0, 0), box_at(100, 100), 0.0),  # far apart
    (box_at(0, 0), box_at(50, 0), 0.0),  # touching edges
    ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),  # half overlap
    ([0, 0, 10, 10], [2, 2, 8, 8], 36 / 100),  # one inside the other
])
def test_iou_matrix_values(a, b, want):
    got = iou_matrix(np.array([a], np.float32), np.array([b], np.float32))
    assert got.shape == (1, 1)
    assert got[0, 0] == pytest.approx(want, abs=1e-6)


def test_iou_matrix_shape_and_symmetry():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 200, (5, 2))
    a = np.concatenate([xy, xy + rng.uniform(5, 60, (5, 2))], 1).astype(np.float32)
    b = a[:3][::-1].copy()
    m = iou_matrix(a, b)
    assert m.shape == (5, 3)
    np.testing.assert_allclose(m, iou_matrix(b, a).T, atol=1e-6)
    assert ((m >= 0) & (m <= 1 + 1e-6)).all()
    np.testing.assert_allclose(np.diag(iou_matrix(a, a)), 1.0, atol=1e-6)


# ---- association


@pytest.mark.parametrize("speed", [0.0, 2.0, 6.0, 12.0])  # pixels per frame for a 50 px face
def test_smooth_motion_keeps_one_track(speed):
    frames = [make_detections([box_at(20 + speed * i, 30 + speed * i / 2)]) for i in range(40)]
    out = run(VideoConfig(), frames)
    ids = {int(t) for d in out for t in d.track_ids}
    assert len(ids) == 1
    assert all(len(d) == 1 and not d.filled.any() for d in out)


@pytest.mark.parametrize(("first", "second"), [
    ((20, 20), (200, 20)),  # side by side
    ((20, 20), (40, 200)),  # one above the other
    ((20, 20), (75, 20)),  # close: 5 px apart
])
def test_two_faces_two_stable_ids(first, second):
    frames = [make_detections([box_at(first[0] + 2 * i, first[1]), box_at(second[0] + 2 * i, second[1])])
              for i in range(30)]
    out = run(VideoConfig(), frames)
    per_frame = [tuple(int(t) for t in d.track_ids) for d in out]
    assert len(set(per_frame)) == 1, "each face keeps its id"
    a, b = per_frame[0]
    assert a != b


def test_a_new_face_gets_a_new_id_and_the_old_keeps_its_own():
    frames = [make_detections([box_at(20, 20)] + ([box_at(200, 100)] if i >= 10 else []))
              for i in range(20)]
    out = run(VideoConfig(lead=0), frames)
    first = int(found(out[0]).track_ids[0])
    for d in out[10:]:
        ids = [int(t) for t in found(d).track_ids]
        assert ids[0] == first and ids[1] != first


# ---- detections pass through untouched


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("config", [
    VideoConfig(), VideoConfig(hold=0, lead=0, max_gap=0), VideoConfig(detect_every=3),
    VideoConfig(hold=30, lead=30, max_gap=40, iou=0.05),
], ids=["default", "no-fill", "every-3", "generous"])
def test_never_drops_or_moves_a_detection(seed, config):
    """Random faces and gaps: every input box comes out unchanged, in its own frame."""
    rng = np.random.default_rng(seed)
    frames, cuts = [], set()
    for i in range(60):
        r = rng.random()
        if r < 0.15:
            frames.append(None)
        elif r < 0.25:
            frames.append(Detections.empty())
        else:
            n = int(rng.integers(1, 5))
            xy = rng.uniform(0, 600, (n, 2))
            wh = rng.uniform(4, 120, (n, 2))
            frames.append(make_detections(np.concatenate([xy, xy + wh], 1),
                                          scores=rng.uniform(0.1, 1, n).astype(np.float32)))
        if rng.random() < 0.05:
            cuts.add(i)
    out = run(config, frames, cuts)
    for dets, got in zip(frames, out, strict=True):
        assert got.track_ids is not None and len(got.track_ids) == len(got)
        real = found(got)
        if dets is None or not len(dets):
            assert len(real) == 0
            continue
        np.testing.assert_array_equal(real.xyxy, dets.xyxy)
        np.testing.assert_array_equal(real.scores, dets.scores)
        assert (real.track_ids >= 0).all()
        assert len(set(real.track_ids.tolist())) == len(real), "one id per face in a frame"
        assert not got.keep.any(), "a tracker never marks a face as kept"
        # A track that was detected in this frame is not also filled in
        assert not set(filled(got).track_ids.tolist()) & set(real.track_ids.tolist())


def test_detections_keep_their_landmarks_and_keep_flags():
    lm = np.arange(10, dtype=np.float32).reshape(1, 5, 2) + 20
    dets = Detections(np.array([box_at(20, 20)], np.float32), np.array([0.8], np.float32),
                      landmarks=lm, keep=np.array([True]))
    (out,) = run(VideoConfig(), [dets])
    np.testing.assert_array_equal(out.landmarks, lm)
    assert out.keep.tolist() == [True]


# ---- gaps


@pytest.mark.parametrize("missing", [1, 2, 5, 10, 24])
@pytest.mark.parametrize("empty", [True, False], ids=["empty", "None"])
def test_short_gap_is_interpolated(missing, empty):
    """A face that comes back within max_gap is covered on every missing frame, on the line
    between where it was and where it came back."""
    start, end = box_at(20, 40), box_at(32, 46)  # moved a quarter face (see the moving test)
    frames = [make_detections([start]) for _ in range(5)]
    frames += [Detections.empty() if empty else None for _ in range(missing)]
    frames += [make_detections([end]) for _ in range(5)]
    out = run(VideoConfig(hold=0, lead=0), frames)
    tid = int(out[0].track_ids[0])
    for k in range(missing):
        d = out[5 + k]
        assert len(d) == 1 and d.filled.all(), f"missing frame {k} not covered"
        assert int(d.track_ids[0]) == tid
        f = (k + 1) / (missing + 1)
        np.testing.assert_allclose(d.xyxy[0], (1 - f) * np.array(start) + f * np.array(end), atol=1e-3)
        lo, hi = np.minimum(start, end), np.maximum(start, end)
        assert ((d.xyxy[0] >= lo - 1e-3) & (d.xyxy[0] <= hi + 1e-3)).all()
    assert int(out[-1].track_ids[0]) == tid


@pytest.mark.parametrize(("missing", "bridged"), [(6, True), (7, False), (12, False)])
def test_gap_longer_than_max_gap_is_not_interpolated(missing, bridged):
    frames = [make_detections([box_at(20, 40)]) for _ in range(3)]
    frames += [None] * missing + [make_detections([box_at(30, 40)]) for _ in range(3)]
    out = run(VideoConfig(hold=2, lead=0, max_gap=6), frames)
    gap = out[3:3 + missing]
    covered = [len(d) > 0 for d in gap]
    if bridged:
        assert all(covered)
        assert int(out[-1].track_ids[0]) == int(out[0].track_ids[0])
    else:
        assert covered == [True, True] + [False] * (missing - 2), "only the hold covers it"
        assert int(out[-1].track_ids[0]) != int(out[0].track_ids[0])


# A face that moved far while undetected must still be linked to its track (the gate widens with
# the gap and follows the track's velocity), so the gap is interpolated where the face really was.
@pytest.mark.parametrize(("speed", "missing"), [
    pytest.param(1.0, 10, id="slow"),
    pytest.param(2.0, 4, id="medium-short-gap"),
    pytest.param(4.0, 11, id="fast-long-gap"),
])
def test_moving_face_is_followed_through_a_gap(speed, missing):
    """A 50 px face moving steadily; detections missing for `missing` frames (< max_gap)."""
    n = 10 + missing + 10
    truth = [box_at(20 + speed * i, 60) for i in range(n)]
    frames = [make_detections([b]) if not 10 <= i < 10 + missing else None
              for i, b in enumerate(truth)]
    out = run(VideoConfig(), frames)
    for i in range(10, 10 + missing):
        ious = iou_matrix(np.array([truth[i]], np.float32), out[i].xyxy)
        assert ious.size and ious.max() > 0.5, f"frame {i}: no box follows the face"
    assert int(out[-1].track_ids[0]) == int(out[0].track_ids[0])


# ---- lead and hold


@pytest.mark.parametrize("lead", [0, 1, 3, 8])
def test_lead_hides_a_face_before_it_was_first_seen(lead):
    first = 12
    b = box_at(100, 50)
    frames = [None if i < first else make_detections([b]) for i in range(first + 5)]
    out = run(VideoConfig(lead=lead, hold=0), frames)
    for i in range(first):
        if i >= first - lead:
            assert len(out[i]) == 1 and out[i].filled.all(), f"frame {i} should lead"
            np.testing.assert_allclose(out[i].xyxy[0], b)
            assert int(out[i].track_ids[0]) == int(out[first].track_ids[0])
        else:
            assert len(out[i]) == 0, f"frame {i} is too early for the lead"
    assert not out[first].filled.any()


def test_lead_does_not_reach_before_the_start():
    out = run(VideoConfig(lead=8), [make_detections([box_at(0, 0)])] + [None] * 3)
    assert len(out) == 4 and not out[0].filled.any()


@pytest.mark.parametrize("hold", [0, 1, 4, 8, 20])
def test_hold_keeps_a_lost_face_hidden_then_stops(hold):
    last = 5
    b = np.array(box_at(100, 50), np.float32)
    frames = [make_detections([b]) if i <= last else Detections.empty()
              for i in range(last + hold + 6)]
    out = run(VideoConfig(hold=hold, lead=0), frames)
    areas = []
    for i in range(last + 1, len(frames)):
        d = out[i]
        if i - last <= hold:
            assert len(d) == 1 and d.filled.all(), f"frame {i} should be held"
            assert contains(d.xyxy[0], b), "the held box covers the last detection"
            w, h = d.xyxy[0, 2] - d.xyxy[0, 0], d.xyxy[0, 3] - d.xyxy[0, 1]
            assert w <= 1.3 * SIZE + 1e-3 and h <= 1.3 * SIZE + 1e-3, "grown only a little"
            np.testing.assert_allclose((d.xyxy[0, :2] + d.xyxy[0, 2:]) / 2, (b[:2] + b[2:]) / 2,
                                       atol=1e-3)
            areas.append(w * h)
        else:
            assert len(d) == 0, f"frame {i} is past the hold"
    assert areas == sorted(areas)
    if hold >= 2:
        assert areas[-1] > areas[0], "the held box grows"


# ---- detect_every


@pytest.mark.parametrize("k", [2, 3, 5, 10])
@pytest.mark.parametrize("n", [31, 33])  # the clip ends on / after a detection frame
def test_detect_every_covers_every_frame(k, n):
    """The detector runs on every k-th frame only; every frame still has the face."""
    truth = [box_at(20 + 2 * i, 40) for i in range(n)]
    frames = [make_detections([b]) if i % k == 0 else None for i, b in enumerate(truth)]
    config = VideoConfig(detect_every=k, hold=0, lead=0, max_gap=0)  # k overrides these
    out = run(config, frames)
    for i, (b, d) in enumerate(zip(truth, out, strict=True)):
        assert len(d) == 1, f"frame {i}"
        assert bool(d.filled[0]) == (i % k != 0)
        if i <= (n - 1) // k * k:  # between two detections: on the line
            assert iou_matrix(np.array([b], np.float32), d.xyxy)[0, 0] > 0.9
        else:  # after the last detection: held in place
            assert contains(d.xyxy[0], truth[(n - 1) // k * k])
    assert len({int(d.track_ids[0]) for d in out}) == 1


def test_detect_every_covers_a_face_appearing_between_detections():
    """A face first found on a detection frame is also hidden on the k-1 frames before."""
    k = 4
    frames = [make_detections([box_at(60, 60)]) if i % k == 0 and i >= 8 else None for i in range(16)]
    out = run(VideoConfig(detect_every=k, lead=0), frames)
    assert [len(d) for d in out] == [0] * 5 + [1] * 11


@pytest.mark.parametrize(("detect_every", "scan_every", "k"), [
    (1, None, 1), (1, 6, 6), (3, 2, 3), (2, 12, 12),
])
def test_scan_every_stretches_hold_and_lead(detect_every, scan_every, k):
    """A new face may go unseen until the next full scan: hold and lead cover that long."""
    config = VideoConfig(detect_every=detect_every, scan_every=scan_every, hold=0, lead=0, max_gap=0)
    tracker = Tracker(config)
    assert (tracker.hold, tracker.lead, tracker.max_gap) == (k - 1, k - 1, 2 * k)
    first, last = 20, 22
    frames = [make_detections([box_at(60, 60)]) if first <= i <= last else Detections.empty()
              for i in range(40)]
    out = run(config, frames)
    covered = [i for i, d in enumerate(out) if len(d)]
    assert covered == list(range(first - (k - 1), last + k))


# ---- scene cuts


@pytest.mark.parametrize("cut", [False, True])
def test_hold_and_interpolation_stop_at_a_cut(cut):
    """Same place before and after a gap; a cut inside the gap ends the track."""
    b = box_at(100, 50)
    frames = [make_detections([b]) if i < 10 or i >= 16 else None for i in range(22)]
    out = run(VideoConfig(hold=8, lead=0), frames, cuts={12} if cut else set())
    gap = [len(d) for d in out[10:16]]
    before, after = int(out[0].track_ids[0]), int(out[-1].track_ids[0])
    if cut:
        assert gap == [1, 1, 0, 0, 0, 0], "held until the cut, then nothing"
        assert before != after
    else:
        assert gap == [1] * 6
        assert before == after


def test_lead_stops_at_a_cut():
    frames = [make_detections([box_at(20, 20)]) if i < 5 else None for i in range(8)]
    frames += [make_detections([box_at(300, 100)]) for _ in range(5)]
    out = run(VideoConfig(hold=0, lead=8), frames, cuts={6})
    new = int(out[-1].track_ids[0])
    for i in range(6):
        assert new not in out[i].track_ids.tolist(), f"frame {i} is before the cut"
    assert all(new in out[i].track_ids.tolist() for i in range(6, 13))


def test_cut_on_the_first_frame_changes_nothing():
    frames = [make_detections([box_at(20, 20)]) for _ in range(3)]
    a = run(VideoConfig(), frames, cuts={0})
    b = run(VideoConfig(), frames)
    assert [d.track_ids.tolist() for d in a] == [d.track_ids.tolist() for d in b]


# ---- output timing


@pytest.mark.parametrize("config", [
    VideoConfig(), VideoConfig(hold=0, lead=0, max_gap=0), VideoConfig(lead=40, max_gap=3),
    VideoConfig(detect_every=7),
])
def test_frames_come_out_in_order_after_the_look_ahead(config):
    tracker: Tracker[str] = Tracker(config)
    released: list[str] = []
    for i in range(100):
        got = tracker.push(f"f{i}", make_detections([box_at(i, 0)]) if i % 5 else None)
        released += [item for item, _ in got]
        # everything older than the window is out, nothing newer
        assert len(released) == max(0, i - tracker.window)
    released += [item for item, _ in tracker.flush()]
    assert released == [f"f{i}" for i in range(100)]


# ---- SceneCuts


def _thumb(seed: int, brightness: float = 1.0, shape=(36, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(0, 256, shape) * brightness, 0, 255).astype(np.uint8)


def _smooth(shape=(36, 64), phase: float = 0.0) -> np.ndarray:
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    return (127 + 100 * np.sin((x + phase) / 5.0) * np.cos(y / 7.0)).astype(np.uint8)


@pytest.mark.parametrize(("a", "b", "cut"), [
    (_thumb(0), _thumb(0), False),  # identical
    (_smooth(), _smooth(), False),
    (np.full((36, 64), 10, np.uint8), _thumb(1), True),  # dark -> bright textured
    (_thumb(2, 0.15), _thumb(3), True),  # dim scene -> another, brighter scene
    (_smooth(), np.roll(_smooth(), 2, axis=1), False),  # the same picture moved 2 px
    (_smooth(), _smooth(phase=3.0), False),  # panning
    (_thumb(4), np.roll(_thumb(4), 1, axis=0), False),  # even a noisy picture, moved 1 px
    (_smooth(), np.clip(_smooth().astype(int) + 8, 0, 255).astype(np.uint8), False),  # flicker
])
def test_scene_cuts(a, b, cut):
    cuts = SceneCuts()
    assert cuts.update(a) is False, "the first frame is never a cut"
    assert cuts.update(b) is cut


def test_scene_cuts_off_and_size_change():
    off = SceneCuts(0.0)
    off.update(np.zeros((36, 64), np.uint8))
    assert off.update(np.full((36, 64), 255, np.uint8)) is False
    cuts = SceneCuts()
    cuts.update(np.zeros((36, 64), np.uint8))
    assert cuts.update(np.full((18, 32), 255, np.uint8)) is False  # not comparable
    assert cuts.update(np.zeros((18, 32), np.uint8)) is True  # compares with the last one


def test_scene_cut_is_relative_to_the_previous_frame():
    """A slow fade changes everything over time but never cuts."""
    cuts = SceneCuts()
    base = _smooth()
    flags = [cuts.update(np.clip(base.astype(int) - 4 * i, 0, 255).astype(np.uint8)) for i in range(30)]
    assert not any(flags)
