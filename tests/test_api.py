"""The Python API and the runner: what a library user calls."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from PIL import Image

import faceveil
from faceveil.config import PipelineConfig
from faceveil.evaluation import changed_pixels, face_covered
from faceveil.media.images import read_image
from faceveil.pipeline import Pipeline
from faceveil.pipeline.runner import ImageJob, run_images

FACE = (180, 60, 270, 175)


@pytest.mark.parametrize("kind", ["path", "array", "pil", "gray", "rgba"])
def test_anonymize_image_accepts_paths_arrays_and_pil(kind, astronaut, tmp_path):
    src = {"path": None, "array": astronaut, "pil": Image.fromarray(astronaut),
           "gray": np.asarray(Image.fromarray(astronaut).convert("L")),
           "rgba": np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])}[kind]
    if kind == "path":
        src = tmp_path / "a.png"
        Image.fromarray(astronaut).save(src)
    out = faceveil.anonymize_image(src)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    before = astronaut if kind != "gray" else np.repeat(src[..., None], 3, 2)
    assert face_covered(changed_pixels(before, out), FACE)


def test_anonymize_image_writes_output_and_refuses_the_input(astronaut, tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    out = faceveil.anonymize_image(src, tmp_path / "b.webp", method="pixelate", blocks=6)
    assert read_image(tmp_path / "b.webp").rgb.shape == out.shape
    with pytest.raises(faceveil.UnsafeOutputError):
        faceveil.anonymize_image(src, src)


def test_detect_faces_and_options(astronaut):
    dets = faceveil.detect_faces(astronaut, quality="fast")
    assert isinstance(dets, faceveil.Detections) and len(dets) == 1
    with pytest.raises(faceveil.ConfigError, match="unknown option"):
        faceveil.detect_faces(astronaut, sparkle=True)
    with pytest.raises(TypeError):
        faceveil.detect_faces(astronaut.astype(np.float32))


def test_api_is_safe_from_several_threads(astronaut):
    outputs = []

    def work():
        outputs.append(faceveil.anonymize_image(astronaut, method="solid"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outputs) == 4 and all(np.array_equal(o, outputs[0]) for o in outputs)


def test_kept_faces_are_left_alone(astronaut, centerface):
    pipe = Pipeline(PipelineConfig(), detector=centerface)
    frame = faceveil.Frame(astronaut)
    dets = pipe.detect(frame)
    kept = pipe.render(frame, type(dets)(dets.xyxy, dets.scores, keep=np.ones(len(dets), bool)))
    assert np.array_equal(kept, astronaut)


def test_draw_boxes_marks_the_output(astronaut, centerface):
    pipe = Pipeline(PipelineConfig(), detector=centerface, method="none", draw_boxes=True)
    result = pipe.process(faceveil.Frame(astronaut))
    changed = changed_pixels(astronaut, result.image)
    assert changed.any() and not face_covered(changed, FACE)  # only the outline changed


def test_draw_boxes_labels_do_not_pile_up_on_a_crowd():
    """A crowd (as --quality thorough finds it): every box drawn, labels only where they fit,
    never over another label; a few well-spaced faces all get theirs."""
    from conftest import make_detections
    from faceveil.pipeline.pipeline import draw_boxes, label_spots

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 980, (300, 2)) * [1, 0.7]
    size = rng.uniform(8, 60, 300)
    crowd = make_detections(np.c_[xy, xy + size[:, None]])
    image = np.zeros((720, 1024, 3), np.uint8)
    thick = 2
    spots = label_spots(crowd, image.shape[:2], 0.35 * thick, thick)
    (tw, th), base = cv2.getTextSize("0.00", cv2.FONT_HERSHEY_SIMPLEX, 0.35 * thick, thick)
    rects = [(x, y - th, x + tw, y + base) for x, y in spots.values()]
    for a in range(len(rects)):
        for b in range(a):
            ra, rb = rects[a], rects[b]
            assert not (ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3])
    assert 0 < len(spots) < 300 and all(crowd.widths[i] >= tw / 2 for i in spots)
    out = draw_boxes(image, crowd)
    assert out.any() and not image.any()  # drawn on a copy
    sparse = make_detections([[100, 100, 200, 220], [400, 300, 480, 400], [700, 80, 760, 150]])
    assert len(label_spots(sparse, image.shape[:2], 0.35 * thick, thick)) == 3


def test_runner_reports_progress_and_goes_on_after_bad_files(astronaut, tmp_path, centerface):
    good = tmp_path / "good.png"
    Image.fromarray(astronaut).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    jobs = [ImageJob(bad, tmp_path / "o1.png"), ImageJob(good, tmp_path / "o2.png"),
            ImageJob(tmp_path / "missing.png", tmp_path / "o3.png")]
    events = []
    results = run_images(jobs, Pipeline(detector=centerface), on_progress=events.append)
    assert [r.ok for r in results] == [False, True, False]
    assert "no such file" in results[2].error and results[1].counts.faces == 1
    assert [e.stage for e in events] == ["start", "file", "file", "file", "done"]
    assert [e.done for e in events[1:4]] == [1, 2, 3] and events[1].ok is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "good.png", "o2.png"]


def test_failed_write_leaves_nothing(astronaut, tmp_path, centerface, monkeypatch):
    """A crash while encoding must not leave a half-written picture under the final name."""
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)

    def explode(self, fp, *args, **kwargs):
        fp.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", explode)
    results = run_images([ImageJob(src, tmp_path / "out" / "a.png")], Pipeline(detector=centerface))
    assert not results[0].ok and "disk full" in results[0].error
    assert list((tmp_path / "out").iterdir()) == []
