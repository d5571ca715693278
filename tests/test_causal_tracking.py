"""The causal tracker live streams use: pure numpy, no video."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_detections
from faceveil.config import VideoConfig
from faceveil.tracking import CausalTracker
from faceveil.types import Detections

SIZE = 50.0


def box_at(x: float, y: float, size: float = SIZE) -> list[float]:
    return [x, y, x + size, y + size]


def contains(outer, inner, tol: float = 1e-3) -> bool:
    return (outer[0] <= inner[0] + tol and outer[1] <= inner[1] + tol
            and outer[2] >= inner[2] - tol and outer[3] >= inner[3] - tol)


def run(frames: list, config: VideoConfig | None = None, every: int = 1,
        numbers: list[int] | None = None) -> list[Detections]:
    tracker = CausalTracker(config or VideoConfig(), detect_every=every)
    numbers = numbers or list(range(len(frames)))
    return [tracker.update(d, n) for d, n in zip(frames, numbers, strict=True)]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("every", [1, 3])
def test_detections_pass_through_unchanged_with_one_id_each(seed, every):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(60):
        if i % every:
            frames.append(None)
            continue
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 600, (n, 2))
        frames.append(make_detections(np.concatenate([xy, xy + rng.uniform(4, 120, (n, 2))], 1),
                                      scores=rng.uniform(0.1, 1, n).astype(np.float32)))
    for dets, got in zip(frames, run(frames, every=every), strict=True):
        real = got[~got.filled]
        assert got.track_ids is not None and len(got.track_ids) == len(got)
        assert not got.keep.any()
        if dets is None or not len(dets):
            assert len(real) == 0
            continue
        np.testing.assert_array_equal(real.xyxy, dets.xyxy)
        np.testing.assert_array_equal(real.scores, dets.scores)
        assert len(set(real.track_ids.tolist())) == len(real)
        assert not set(got[got.filled].track_ids.tolist()) & set(real.track_ids.tolist())


@pytest.mark.parametrize("speed", [0.0, 3.0, 10.0])
def test_smooth_motion_keeps_one_id(speed):
    frames = [make_detections([box_at(20 + speed * i, 40)]) for i in range(30)]
    ids = {int(t) for d in run(frames) for t in d.track_ids}
    assert len(ids) == 1


@pytest.mark.parametrize("empty", [True, False], ids=["nothing found", "not detected"])
@pytest.mark.parametrize("missing", [1, 4, 8])
def test_a_lost_face_is_held_for_hold_frames_and_grows(missing, empty):
    """Out at once, without looking ahead: the last box, grown a little more each frame."""
    hold = 8
    frames = [make_detections([box_at(100, 100)]) for _ in range(3)]
    frames += [Detections.empty() if empty else None] * missing
    out = run(frames, VideoConfig(hold=hold))
    tid = int(out[0].track_ids[0])
    widths = []
    for d in out[3:]:
        assert len(d) == 1 and d.filled.all()
        assert int(d.track_ids[0]) == tid
        assert contains(d.xyxy[0], box_at(100, 100))
        widths.append(float(d.widths[0]))
    assert widths == sorted(widths) and widths[0] > SIZE
    assert max(widths) <= SIZE * 1.3 + 1e-3, "growth is capped at 30%"


def test_nothing_is_held_after_hold_frames():
    frames = [make_detections([box_at(100, 100)])] + [None] * 6
    out = run(frames, VideoConfig(hold=3))
    assert [len(d) for d in out] == [1, 1, 1, 1, 0, 0, 0]


@pytest.mark.parametrize("every", [2, 3, 5])
@pytest.mark.parametrize("speed", [(4.0, 0.0), (0.0, -6.0), (8.0, 5.0)])
def test_a_moving_face_stays_covered_between_detections(every, speed):
    """With detection on every K-th frame, the held box covers where the face really is."""
    dx, dy = speed
    truth = [box_at(200 + dx * i, 200 + dy * i) for i in range(40)]
    frames = [make_detections([b]) if i % every == 0 else None for i, b in enumerate(truth)]
    out = run(frames, VideoConfig(hold=0), every=every)
    for i, (d, b) in enumerate(zip(out, truth, strict=True)):
        assert len(d) == 1, f"frame {i}"
        if i >= every:  # once the velocity is known
            assert contains(d.xyxy[0], b), f"frame {i}: {d.xyxy[0]} does not cover {b}"


def test_the_held_box_keeps_the_last_place_too():
    """Fail closed when the face stops: the union of the last box and the predicted one."""
    frames = [make_detections([box_at(100 + 10 * i, 100)]) for i in range(4)] + [None] * 3
    out = run(frames, VideoConfig(hold=5))
    for k, d in enumerate(out[4:], 1):
        assert contains(d.xyxy[0], box_at(130, 100)), "still covers where it was last seen"
        assert contains(d.xyxy[0], box_at(130 + 10 * k, 100)), "and where it was heading"


def test_skipped_frame_numbers_count_as_frames():
    """Dropped frames count: a face last seen 5 numbers ago is past a hold of 3."""
    frames = [make_detections([box_at(100, 100)]), None, None]
    out = run(frames, VideoConfig(hold=3), numbers=[0, 2, 5])
    assert [len(d) for d in out] == [1, 1, 0]


def test_hold_stretches_to_cover_skipped_detections():
    tracker = CausalTracker(VideoConfig(hold=1), detect_every=6)
    assert tracker.hold == 5
    tracker.update(make_detections([box_at(10, 10)]))
    assert all(len(tracker.update(None)) == 1 for _ in range(5))


def test_frame_numbers_must_increase():
    tracker = CausalTracker()
    tracker.update(None, 4)
    with pytest.raises(ValueError, match="increase"):
        tracker.update(None, 4)


def test_a_face_found_again_keeps_its_id_and_is_not_doubled():
    frames = [make_detections([box_at(100, 100)])] + [None] * 3 + [make_detections([box_at(110, 100)])]
    out = run(frames)
    assert len(out[-1]) == 1 and not out[-1].filled.any()
    assert int(out[-1].track_ids[0]) == int(out[0].track_ids[0])


def test_recent_boxes_and_reset():
    tracker = CausalTracker(VideoConfig(hold=2))
    tracker.update(make_detections([box_at(0, 0), box_at(200, 0)]))
    assert tracker.recent_boxes().shape == (2, 4)
    tracker.reset()
    assert len(tracker.update(None)) == 0
    assert tracker.recent_boxes().shape == (0, 4)


# ---- late detections: observe(frame n) while frames after n are shown


def test_late_detections_hide_the_frames_shown_meanwhile():
    """Detections arrive two frames late: each shown frame gets the latest faces, moved on."""
    truth = [box_at(100 + 5 * i, 100) for i in range(30)]
    tracker = CausalTracker(VideoConfig(hold=8))
    for n in range(30):
        if n >= 2 and n % 2 == 0:  # the detection of frame n - 2 has just finished
            tracker.observe(make_detections([truth[n - 2]]), n - 2)
        if n < 2:
            continue
        d = tracker.faces(n)
        assert len(d) == 1 and d.filled.all()
        if n >= 4:  # velocity known
            assert contains(d.xyxy[0], truth[n]), f"frame {n}"


def test_faces_on_the_observed_frame_are_the_detections():
    tracker = CausalTracker()
    found = tracker.observe(make_detections([box_at(10, 10), box_at(200, 10)]), 5)
    assert found.track_ids.tolist() == [0, 1]
    here = tracker.faces(5)
    np.testing.assert_array_equal(here.xyxy, found.xyxy)
    assert not here.filled.any()
    later = tracker.faces(7)
    assert later.filled.all() and later.track_ids.tolist() == [0, 1]
    with pytest.raises(ValueError, match="before"):
        tracker.faces(4)


def test_frames_not_yet_looked_at_do_not_end_a_face():
    """A face is dropped only when detections missed it for more than `hold` frames, however
    long the frames shown after the last detection are."""
    tracker = CausalTracker(VideoConfig(hold=3))
    tracker.observe(make_detections([box_at(10, 10)]), 0)
    assert len(tracker.faces(20)) == 1, "no detection has looked since: still hidden"
    tracker.observe(Detections.empty(), 2)
    assert len(tracker.faces(20)) == 1
    tracker.observe(Detections.empty(), 4)
    assert len(tracker.faces(20)) == 0, "missed by the detections up to 4 frames later"
