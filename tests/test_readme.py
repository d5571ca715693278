"""The README's Python code blocks, run as pasted (in order, in one namespace, in a folder that
holds the files they name: group.jpg, talk.mp4), so an example that no longer works fails here."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import REPO
from faceveil.media.images import read_image, write_image
from tests.pipeline.test_video import write_clip

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[str]:
    return BLOCK.findall((REPO / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(python_blocks()) >= 2


@pytest.fixture
def folder(tmp_path, astronaut, monkeypatch):
    group = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    write_image(tmp_path / "group.jpg", group)
    frames = [np.roll(astronaut[:256, :384], 4 * i, axis=1).copy() for i in range(12)]
    write_clip(tmp_path / "talk.mp4", frames, rate=25, audio_seconds=0.5)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_python_blocks_run_as_pasted(folder, capsys):
    namespace: dict = {"__name__": "readme"}
    for n, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"README.md python block {n + 1}", "exec"), namespace)
        except Exception as exc:  # name the block and its line in the failure
            pytest.fail(f"README python block {n + 1} fails as pasted: {type(exc).__name__}: {exc}")
    # what the blocks say they produce is there and hides the faces
    out = read_image(folder / "group.anonymized.jpg").rgb
    original = read_image(folder / "group.jpg").rgb
    assert out.shape == original.shape and np.abs(out.astype(int) - original).mean() > 1
    assert len(namespace["faces"]) >= 2  # the astronaut and her mirror image
    assert namespace["result"].image.shape == original.shape
    assert (folder / "talk.anonymized.mp4").is_file() and (folder / "talk.faces.json").is_file()
    assert namespace["report"].frames == 12
