"""The picture runner (faceveil.pipeline.runner): read ahead, write behind, and with `workers`
several pictures anonymized at once, each on its own copy of the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceveil.config import PipelineConfig
from faceveil.models.runtime import usable_cores
from faceveil.pipeline import Pipeline
from faceveil.pipeline.runner import MAX_WORKERS, ImageJob, picture_workers, run_images


@pytest.fixture
def pictures(tmp_path, astronaut):
    """Four pictures and, second, a file that is no picture: (inputs, jobs for an output folder)."""
    folder = tmp_path / "in"
    folder.mkdir()
    inputs = []
    for i, picture in enumerate([astronaut, None, astronaut[::-1], astronaut[:, ::-1],
                                 astronaut[100:400]]):
        path = folder / f"{i}.jpg"
        if picture is None:
            path.write_bytes(b"\xff\xd8not a JPEG")
        else:
            Image.fromarray(np.ascontiguousarray(picture)).save(path, quality=85)
        inputs.append(path)

    def jobs(out):
        return [ImageJob(p, tmp_path / out / p.name) for p in inputs]

    return inputs, jobs


def test_two_workers_give_the_same_pictures_in_the_same_order(pictures):
    inputs, jobs = pictures
    pipeline = Pipeline(PipelineConfig())
    pixels: dict[str, list] = {"one": [], "two": []}
    one = run_images(jobs("one"), pipeline, on_result=lambda r: pixels["one"].append(r.image))
    seen = []

    def on_two(result):
        seen.append(result.input)
        pixels["two"].append(result.image)

    two = run_images(jobs("two"), pipeline, on_result=on_two, workers=2)
    assert seen == inputs and [r.input for r in two] == inputs
    assert [r.ok for r in two] == [r.ok for r in one] == [True, False, True, True, True]
    assert [r.counts for r in two] == [r.counts for r in one]
    assert one[0].counts.faces == 1 and "not a picture" in two[1].error
    for a, b, pa, pb in zip(one, two, pixels["one"], pixels["two"], strict=True):
        if a.ok:
            assert np.array_equal(pa, pb)  # the same boxes, the same pixels
            assert a.output.read_bytes() == b.output.read_bytes()
    # on_result saw the pixels; the results kept afterwards do not hold them
    assert pixels["one"][0] is not None and all(r.image is None for r in one + two)


@pytest.mark.parametrize("big", [False, True])
def test_a_slow_picture_does_not_hold_the_other_worker_back(pictures, monkeypatch, big):
    """While the first picture (a crowd, say) takes long, the other worker goes on with the next
    ones (up to twice the workers staged at once); the results still come in input order.
    Pictures bigger than EARLY_PIXELS are staged only as many at a time as there are workers."""
    import threading
    import time

    from faceveil.pipeline import runner

    if big:
        monkeypatch.setattr(runner, "EARLY_PIXELS", 100_000)  # the test pictures: 150-260 kpx
    inputs, jobs = pictures
    real, lock, events, staged = runner.picture_stage, threading.Lock(), [], [0]
    most = (2 if big else 4) + 1  # staged, and the one being written behind

    def stage(path, *args, **kwargs):
        with lock:
            staged[0] += 1
            assert staged[0] <= most, f"more than {most} pictures held at once"
            events.append(("start", path.name))
        if path.name == "0.jpg":
            time.sleep(1.5)
        try:
            return real(path, *args, **kwargs)
        finally:
            with lock:
                events.append(("end", path.name))

    monkeypatch.setattr(runner, "picture_stage", stage)

    def on_result(result):
        if result.ok:  # 1.jpg fails to read: never staged
            with lock:
                staged[0] -= 1

    results = run_images(jobs("out"), Pipeline(PipelineConfig()), workers=2, on_result=on_result)
    assert [r.input for r in results] == inputs
    assert [r.ok for r in results] == [True, False, True, True, True]
    started_before_0_ended = {name for kind, name in events[:events.index(("end", "0.jpg"))]
                              if kind == "start"}
    # 1.jpg fails to read, never staged; big pictures wait for the head, as with one stage
    # a worker
    assert started_before_0_ended == ({"0.jpg"} if big else {"0.jpg", "2.jpg", "3.jpg"})


def test_failed_pictures_do_not_keep_their_pixels(pictures, tmp_path, monkeypatch):
    """A full disk fails every picture's write; the failures' exceptions must not keep each
    picture's pixels alive through their frames, and their tracebacks still print."""
    import traceback

    _, jobs = pictures

    def full(self, fp, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    results = run_images(jobs("out"), Pipeline(PipelineConfig()), workers=2)
    assert not any(r.ok for r in results) and "No space left" in results[0].error
    printed = "".join(traceback.format_exception(results[0].exception))
    assert "No space left" in printed and "write_image" in printed
    for result in results:
        tb = result.exception.__traceback__
        while tb is not None:
            assert not any(isinstance(v, np.ndarray) for v in tb.tb_frame.f_locals.values())
            tb = tb.tb_next
    assert not list((tmp_path / "out").glob("*"))  # nothing half-written


def test_a_replica_loads_its_own_models_with_its_threads(centerface):
    pipeline = Pipeline(PipelineConfig())
    twin = pipeline.replica(1)
    assert twin is not None and twin.config.detector.threads == 1
    assert twin.detector is not pipeline.detector and twin.effect is pipeline.effect
    assert pipeline.config.detector.threads is None
    assert Pipeline(detector=centerface).replica(1) is None  # a given detector cannot be copied


@pytest.mark.parametrize(("options", "pictures", "expected"), [
    ({}, 10, min(usable_cores(), MAX_WORKERS)),
    ({}, 1, 1),
    ({"detector": "blazeface"}, 10, min(usable_cores(), MAX_WORKERS)),
    ({"threads": 2}, 10, 1),  # the user's threads: one picture at a time with them
    ({"detector": "yunet"}, 10, 1),  # OpenCV's threads are one setting for the process
    ({"background": "blur"}, 10, 1),  # another model per copy
])
def test_picture_workers_follow_the_settings(options, pictures, expected):
    assert picture_workers(Pipeline(PipelineConfig().replace(**options)), pictures) == expected


def test_leftovers_of_a_killed_run_are_swept_for_every_picture(pictures, tmp_path):
    inputs, jobs = pictures
    out = tmp_path / "out"
    out.mkdir()
    leftovers = [f".{p.stem}.deadbeef.part.jpg" for p in inputs] + [".other.deadbeef.part.jpg"]
    for name in leftovers:
        (out / name).write_bytes(b"half")
    run_images(jobs("out"), Pipeline(PipelineConfig()), workers=2)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [leftovers[-1]]
