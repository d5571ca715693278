"""The review model behind the desktop app (no Qt): following drawn boxes, frame access by index,
decisions, saving and re-opening, exporting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_detections, textured
from faceveil.cli import main
from faceveil.errors import ConfigError, FaceveilError
from faceveil.media.images import read_image, write_image
from faceveil.media.video import FrameReader, VideoInput
from faceveil.pipeline import Pipeline
from faceveil.review import Cancelled, Review, follow_in_video
from faceveil.sidecar import read_sidecar
from faceveil.tracking import iou_matrix
from faceveil.tracking.follow import BoxFollower
from faceveil.types import Detections
from tests.pipeline.test_video import FAST, texture, write_clip

PATCH = 40


def moving_patch(n: int, *, gone_after: int | None = None, h: int = 240, w: int = 320):
    """Frames of a textured patch moving over another texture; (frames, true boxes)."""
    bg = texture(h, w, seed=3)
    patch = texture(PATCH, PATCH, seed=11)
    frames, boxes = [], []
    for i in range(n):
        x, y = 40 + 4 * i, 60 + 2 * i
        img = bg.copy()
        if gone_after is None or i <= gone_after:
            img[y:y + PATCH, x:x + PATCH] = patch
        frames.append(img)
        boxes.append([x, y, x + PATCH, y + PATCH])
    return frames, np.array(boxes, np.float64)


def grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.mean(axis=2).astype(np.uint8)


# ---------------------------------------------------------------- BoxFollower


def test_follower_keeps_to_a_moving_patch_and_stops_when_it_is_gone():
    frames, boxes = moving_patch(30, gone_after=20)
    follower = BoxFollower(grey(frames[0]), boxes[0])
    for i in range(1, 21):
        found = follower.step(grey(frames[i]))
        assert found is not None, f"lost at frame {i}"
        assert iou_matrix(found[None], boxes[i][None])[0, 0] > 0.8
    assert follower.step(grey(frames[21])) is None  # the patch left: nothing matches well


def test_follower_works_backwards_too():
    frames, boxes = moving_patch(15)
    follower = BoxFollower(grey(frames[14]), boxes[14])
    for i in range(13, -1, -1):
        found = follower.step(grey(frames[i]))
        assert found is not None and iou_matrix(found[None], boxes[i][None])[0, 0] > 0.8


# ---------------------------------------------------------------- FrameReader


@pytest.fixture(scope="module")
def patch_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review")
    frames, boxes = moving_patch(40, gone_after=30)
    # the video starts 0.5 s after the audio: indexes must not be confused by the offset
    path = write_clip(folder / "patch.mp4", frames, rate=25, audio_seconds=1.8, video_start=0.5)
    with VideoInput(path, copy_streams=False) as vin:
        decoded = [f.to_ndarray(format="rgb24") for f in vin.frames()]
    return path, boxes, decoded


def test_frame_reader_gives_the_frame_of_each_index_in_any_order(patch_clip):
    path, _, decoded = patch_clip
    pts = []
    with VideoInput(path, copy_streams=False) as vin:
        pts = [float(f.pts * f.time_base) for f in vin.frames()]
    with FrameReader(path, pts) as reader:
        for i in (0, 1, 2, 35, 10, 11, 39, 0, 20):
            assert np.array_equal(reader.image(i), decoded[i]), i
        with pytest.raises(IndexError):
            reader.image(40)
    with FrameReader(path) as reader:  # no times known: counting from the start
        assert np.array_equal(reader.image(25), decoded[25])
        assert np.array_equal(reader.image(3), decoded[3])
        assert reader.image(5).shape == decoded[5].shape


def test_frame_reader_scales_down(patch_clip):
    with FrameReader(patch_clip[0], max_side=160) as reader:
        assert reader.image(0).shape == (120, 160, 3)


# ---------------------------------------------------------------- following in a video


def test_a_drawn_box_is_followed_both_ways_and_held_after_it_is_lost(patch_clip):
    path, boxes, _ = patch_clip
    events = []
    out = follow_in_video(path, 15, tuple(boxes[15]), (320, 240), hold=4, on_progress=events.append)
    followed = sorted(i for i, (_, held) in out.items() if not held)
    held = sorted(i for i, (_, h) in out.items() if h)
    assert followed == list(range(0, 31))  # back to the first frame, forward until it left
    assert held == [31, 32, 33, 34]
    for i in followed:
        assert iou_matrix(np.array([out[i][0]]), boxes[i][None])[0, 0] > 0.7, i
    assert out[34][0] == out[30][0]  # held where it was last seen
    assert events[0].stage == "start" and events[-1].stage == "done"


def test_following_can_be_cancelled(patch_clip):
    import threading

    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        follow_in_video(patch_clip[0], 5, (0, 0, 10, 10), (320, 240), cancel=stop)


# ---------------------------------------------------------------- decisions


def fake_video_review(tmp_path: Path, found: list[Detections]) -> Review:
    review = Review(tmp_path / "v.mp4", kind="video", width=320, height=240, fps=25.0)
    review.found, review.pts, review.analyzed = found, [i / 25 for i in range(len(found))], True
    return review


def tracked(boxes, tracks, keep=None):
    d = make_detections(boxes, keep=keep)
    return Detections(d.xyxy, d.scores, track_ids=tracks, keep=d.keep)


def test_toggle_keeps_a_whole_track_and_every_box_on_the_same_face(tmp_path):
    frames = [tracked([[10, 10, 60, 60], [14, 12, 58, 62], [200, 50, 250, 100]], [0, 1, 2])
              for _ in range(3)]
    review = fake_video_review(tmp_path, frames)
    assert review.face_at(1, 30, 30) == 1  # the smaller of the two boxes under the click
    assert review.toggle(1, index=1) is True
    for i in range(3):  # track 0 is a second box on the same face: kept too; track 2 is not
        assert review.faces(i).keep.tolist() == [True, True, False]
    assert review.toggle(0, index=0) is False
    assert not review.faces(2).keep.any()
    assert review.face_at(0, 150, 200) is None


def test_drawn_faces_are_hidden_listed_and_removable(tmp_path):
    review = fake_video_review(tmp_path, [tracked([[10, 10, 60, 60]], [4]) for _ in range(5)])
    track = review.add_drawn({1: ((100, 100, 140, 150), False), 2: ((102, 100, 142, 150), True)})
    assert track == 5
    faces = review.faces(2)
    assert faces.track_ids.tolist() == [4, 5] and faces.filled.tolist() == [False, True]
    assert not faces.keep.any()
    assert review.marks().tolist() == [[1, 0, 0], [2, 0, 1], [2, 0, 1], [1, 0, 0], [1, 0, 0]]
    with pytest.raises(ConfigError):
        review.add_drawn({9: ((0, 0, 5, 5), False)})
    with pytest.raises(ConfigError):
        review.add_drawn({0: ((5, 5, 5, 9), False)})
    assert review.remove_drawn(track) and not review.remove_drawn(track)
    assert len(review.faces(2)) == 1


def test_decisions_and_drawn_boxes_survive_a_new_analysis(tmp_path):
    review = fake_video_review(tmp_path, [tracked([[10, 10, 60, 60], [200, 50, 250, 100]], [0, 1])
                                          for _ in range(4)])
    review.toggle(0)
    review.add_drawn({2: ((100, 100, 140, 150), False)})
    # a new analysis: other track ids, slightly moved boxes, one new face
    new = [tracked([[202, 52, 251, 99], [12, 11, 61, 59], [280, 10, 300, 30]], [7, 8, 9])
           for _ in range(4)]
    old = review.found
    review.found = new
    review._carry(old)
    assert review.faces(0).keep.tolist() == [False, True, False]
    drawn = review.faces(2)
    assert len(drawn) == 4 and drawn.track_ids[-1] not in (7, 8, 9)
    assert drawn.xyxy[-1].tolist() == [100, 100, 140, 150]


def test_undo_and_redo_take_back_decisions_drawn_boxes_and_removals(tmp_path):
    review = fake_video_review(tmp_path, [tracked([[10, 10, 60, 60], [200, 50, 250, 100]], [0, 1])
                                          for _ in range(4)])
    assert not review.can_undo and not review.undo() and not review.modified
    review.toggle(0)
    drawn = review.add_drawn({2: ((100, 100, 140, 150), False)})
    review.remove_drawn(drawn)
    states = []
    while review.can_undo:
        states.append((review.faces(2).keep.tolist(), len(review.faces(2))))
        assert review.undo()
    assert states == [([True, False], 2), ([True, False, False], 3), ([True, False], 2)]
    assert review.faces(2).keep.tolist() == [False, False] and not review.drawn
    assert not review.modified  # back where it was opened
    assert review.redo() and review.redo()
    assert len(review.faces(2)) == 3 and review.modified
    review.toggle(1)  # a new change drops what could be redone
    assert not review.can_redo and review.faces(2).keep.tolist() == [True, True, False]


def test_saving_or_exporting_clears_modified_and_undoing_past_it_sets_it(tmp_path, astronaut,
                                                                        centerface):
    photo = write_image(tmp_path / "a.png", astronaut)
    review = Review.open(photo)
    pipeline = Pipeline(detector=centerface)
    review.analyze(pipeline)
    assert not review.modified  # analysing is not an edit
    review.toggle(0)
    assert review.modified
    review.save(tmp_path / "a.faces.json", pipeline.config)
    assert not review.modified
    review.undo()
    assert review.modified
    review.export(tmp_path / "out.png", pipeline)
    assert not review.modified
    assert not Review.load(tmp_path / "a.faces.json").modified


def test_split_keeps_a_face_only_from_a_frame_on(tmp_path):
    review = fake_video_review(tmp_path, [tracked([[10, 10, 60, 60], [200, 50, 250, 100]], [0, 1])
                                          for _ in range(6)])
    drawn = review.add_drawn({i: ((100, 100, 140, 150), False) for i in range(6)})
    new = review.split(0, 3)  # "keep him only from here": split, then keep the new part
    assert new not in (0, 1, drawn)
    review.toggle(new, index=3)
    assert [review.faces(i).keep.tolist()[0] for i in range(6)] == [False] * 3 + [True] * 3
    assert [int(review.faces(i).track_ids[0]) for i in range(6)] == [0] * 3 + [new] * 3
    assert not any(review.faces(i).keep[1:].any() for i in range(6))  # the others stay hidden
    # a drawn face splits too, and keeps its boxes on each side
    later = review.split(drawn, 2)
    assert sorted(review.drawn[drawn]) == [0, 1] and sorted(review.drawn[later]) == [2, 3, 4, 5]
    with pytest.raises(ConfigError, match="nothing to split"):
        review.split(1, 0)  # no frames before the first
    review.undo()
    review.undo()
    review.undo()
    assert [int(review.faces(i).track_ids[0]) for i in range(6)] == [0] * 6
    assert sorted(review.drawn[drawn]) == list(range(6))


# ---------------------------------------------------------------- saving, re-opening, exporting


@pytest.fixture
def portrait(tmp_path, astronaut) -> Path:
    return write_image(tmp_path / "astronaut.png", astronaut)


def test_a_saved_review_reopens_as_it_was_left_and_renders_with_the_cli(portrait, tmp_path, centerface):
    review = Review.open(portrait)
    assert review.kind == "picture" and not review.analyzed
    pipeline = Pipeline(detector=centerface, method="solid", color="#ff00ff")
    review.analyze(pipeline)
    assert len(review.found[0]) >= 1
    face = review.found[0].track_ids[0]
    review.toggle(int(face), index=0)
    review.add_drawn({0: ((20, 400, 120, 500), False)})
    saved = review.save(tmp_path / "astronaut.faces.json", pipeline.config)

    doc, frames = read_sidecar(saved)
    assert doc["review"]["drawn"] and frames[0].keep.sum() >= 1

    again = Review.load(saved)
    assert again.analyzed and again.drawn.keys() == review.drawn.keys()
    a, b = again.faces(0), review.faces(0)
    assert np.allclose(a.xyxy, b.xyxy, atol=0.01) and a.keep.tolist() == b.keep.tolist()

    out = review.export(tmp_path / "gui.png", pipeline)
    assert main(["render", str(portrait), "--faces", str(saved), "-o", str(tmp_path / "cli.png"),
                 "--method", "solid", "--color", "#ff00ff", "-q"]) == 0
    gui, cli = read_image(out).rgb, read_image(tmp_path / "cli.png").rgb
    assert np.array_equal(gui, cli)
    original = read_image(portrait).rgb
    x1, y1, x2, y2 = (int(v) for v in review.found[0].xyxy[0])
    assert np.array_equal(gui[y1:y2, x1:x2], original[y1:y2, x1:x2])  # the kept face
    assert (gui[420:480, 40:100] == [255, 0, 255]).all()  # the drawn box


def test_an_unanalysed_review_is_analysed_before_export(portrait, tmp_path, centerface):
    out = Review.open(portrait).export(tmp_path / "out.png", Pipeline(detector=centerface,
                                                                     method="solid"))
    img = read_image(out).rgb
    assert (img[110:150, 200:240] == 0).all()  # the astronaut's face, blacked out


def test_export_never_overwrites_its_input(portrait, centerface):
    review = Review.open(portrait)
    with pytest.raises(ConfigError, match="is the input"):
        review.export(portrait, Pipeline(detector=centerface))


@pytest.mark.parametrize("problem", ["missing source", "other size", "not a faces file"])
def test_loading_a_bad_review_is_a_clear_error(problem, portrait, tmp_path):
    review = Review.open(portrait)
    review.analyzed = True
    saved = review.save(tmp_path / "r.faces.json", Pipeline().config)
    if problem == "missing source":
        portrait.rename(tmp_path / "moved.png")
        match = "not there"
    elif problem == "other size":
        write_image(portrait, textured(50, 60))
        match = "60x50"
    else:
        saved.write_text(json.dumps({"schema": "something/else"}))
        match = "not a faceveil faces file"
    with pytest.raises(FaceveilError, match=match):
        Review.load(saved)


def test_a_video_review_exports_its_faces_with_the_sound(patch_clip, tmp_path):
    path, boxes, _ = patch_clip
    review = Review.open(path)
    assert (review.width, review.height, review.kind) == (320, 240, "video")
    review.found, review.pts, review.analyzed = [Detections.empty()] * 40, [None] * 40, True
    review.add_drawn(follow_in_video(path, 10, tuple(boxes[10]), (320, 240)))
    out = review.export(tmp_path / "out.mp4", Pipeline(method="solid", color="#ff00ff"), encode=FAST)
    import av

    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 40
    for i in range(31):
        x1, y1, x2, y2 = (int(v) for v in boxes[i])
        centre = frames[i][y1 + 8:y2 - 8, x1 + 8:x2 - 8].astype(int)
        assert (np.abs(centre - [255, 0, 255]).max(axis=2) < 40).mean() > 0.95, i
