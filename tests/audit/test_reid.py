"""faceveil.audit.reid: a face recogniser against each hiding method, on the shared identities.

The defaults of every method must leave no shared identity photo matched to its person, at any
of the measured face heights; the same measurement must match nearly every unhidden face (so a
test that passes is not a recogniser that matches nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import require_data
from faceveil.audit.reid import MATCH, Gallery, at_size, emoji_picture, load_probes, pipeline_hide
from faceveil.config import DetectorConfig, PipelineConfig

SIZES = (40, 80, 160)


@pytest.fixture(scope="module")
def gallery() -> Gallery:
    pytest.importorskip("dlib", reason="re-identification needs the people extra (dlib)")
    from faceveil.detection import create_detector
    from faceveil.identity import embedders

    probes = load_probes(require_data("identities"), create_detector(DetectorConfig()))
    return Gallery(embedders.create("dlib"), probes)


@pytest.fixture(scope="module")
def emoji(tmp_path_factory):
    path = tmp_path_factory.mktemp("emoji") / "emoji.png"
    Image.fromarray(emoji_picture()).save(path)
    return path


def test_at_size_only_shrinks():
    image = np.zeros((400, 300, 3), np.uint8)
    box = np.array([100, 100, 200, 300], np.float32)  # 200 px tall
    small, sbox = at_size(image, box, 50)
    assert small.shape[:2] == (100, 75) and sbox[3] - sbox[1] == pytest.approx(50)
    assert at_size(image, box, 400) is None
    same, same_box = at_size(image, box, None)
    assert same is image and (same_box == box).all()


@pytest.mark.slow
def test_unhidden_faces_are_matched(gallery):
    """The recogniser works here: nearly every visible face is matched to its person."""
    assert len(gallery.probes) >= 30 and gallery.judged.sum() >= 30
    hits = [h for h in gallery.reidentified(lambda image, box: image, 80) if h is not None]
    assert sum(hits) >= 0.9 * len(hits)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["blur", "pixelate", "solid"])
def test_defaults_leave_no_identity_photo_matched(gallery, method):
    hide = pipeline_hide(PipelineConfig().replace(method=method))
    for size in SIZES:
        hits = gallery.reidentified(hide, size)
        matched = [gallery.probes[i].file for i, h in enumerate(hits) if h]
        assert not matched, f"{method} defaults at {size} px faces: matched {matched}"
        assert sum(h is not None for h in hits) >= 30


@pytest.mark.slow
def test_an_opaque_emoji_leaves_at_most_one_match(gallery, emoji):
    """Known gap, not hidden: an emoji makes every face look alike, and they all land near one
    person (deepface_id04); one of that person's photos sits 0.02 inside the lineup at 80 px
    (bench/README.md). No face shows through the picture: the same emoji over a grey face lands
    on the same person, 0.06-0.20 away (the recogniser reads the emoji). This guards against it
    getting worse."""
    hide = pipeline_hide(PipelineConfig().replace(method="image", image=str(emoji)))
    for size in SIZES:
        assert sum(bool(h) for h in gallery.reidentified(hide, size)) <= 1


@pytest.mark.slow
def test_a_weak_setting_is_matched(gallery):
    """Pixelation with 16 blocks (above the floor) leaves faces matched: the test can fail."""
    hide = pipeline_hide(PipelineConfig().replace(method="pixelate", blocks=16))
    near = [r for r in gallery.nearest_after(hide, 80) if r is not None]
    assert sum(same and d < min(MATCH, lineup) for same, d, lineup in near) >= 2
