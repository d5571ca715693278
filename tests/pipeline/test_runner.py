"""The picture runner (faceveil.pipeline.runner): read ahead, detect, write behind; a killed
run's leftovers swept once for all the pictures. Progress and bad files: tests/test_api.py."""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceveil.pipeline import Pipeline
from faceveil.pipeline.runner import ImageJob, run_images


def test_leftovers_of_a_killed_run_are_swept_for_every_picture(tmp_path, astronaut, centerface):
    inputs = []
    for i, picture in enumerate([astronaut, astronaut[::-1], astronaut[:, ::-1]]):
        inputs.append(tmp_path / "in" / f"{i}.jpg")
        inputs[-1].parent.mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(picture)).save(inputs[-1], quality=85)
    out = tmp_path / "out"
    out.mkdir()
    leftovers = [f".{p.stem}.deadbeef.part.jpg" for p in inputs] + [".other.deadbeef.part.jpg"]
    for name in leftovers:
        (out / name).write_bytes(b"half")
    results = run_images([ImageJob(p, out / p.name) for p in inputs], Pipeline(detector=centerface))
    assert [r.ok for r in results] == [True] * 3
    assert sorted(p.name for p in out.iterdir()) == [leftovers[-1], "0.jpg", "1.jpg", "2.jpg"]
