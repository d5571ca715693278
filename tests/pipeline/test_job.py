"""The file job (faceveil.pipeline.job): one picture or video in, a FileResult out; strict
verification, atomic outputs and "nothing half-written under any name" live here once."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from faceveil.errors import FaceveilError
from faceveil.pipeline import Pipeline
from faceveil.pipeline.job import WriteOptions, process_file
from faceveil.types import Counts
from tests.pipeline.test_video import face_crop, texture, write_clip


@pytest.fixture
def photo(tmp_path, astronaut):
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    Image.fromarray(astronaut).save(path)
    return path


def test_a_picture_gives_its_outputs_counts_and_faces_file(photo, tmp_path, centerface):
    out, side = tmp_path / "out" / "photo.png", tmp_path / "out" / "photo.faces.json"
    result = process_file(photo, out, Pipeline(detector=centerface), sidecar=side)
    assert result.ok and result.kind == "picture" and out.is_file()
    assert result.counts == Counts(faces=1, face_frames=1, boxes=1, frames=1)
    doc = json.loads(side.read_text())
    assert Counts.from_dict(doc["counts"]) == result.counts and len(doc["frames"]) == 1
    assert result.width == 512 and result.image is not None


def test_a_bad_file_is_a_result_not_an_exception(tmp_path, centerface):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    result = process_file(bad, tmp_path / "o.png", Pipeline(detector=centerface))
    assert not result.ok and result.error and not (tmp_path / "o.png").exists()
    with pytest.raises(FaceveilError):
        result.raise_for_error()


def test_a_failure_after_the_output_was_written_leaves_nothing(photo, tmp_path, centerface):
    """The picture is written, then its faces file cannot be: neither stays."""
    out = tmp_path / "out" / "photo.png"
    side = tmp_path / "out" / "taken" / "photo.faces.json"
    side.parent.parent.mkdir()
    side.parent.write_text("a file where the faces file's folder should be")
    result = process_file(photo, out, Pipeline(detector=centerface), sidecar=side)
    assert not result.ok and not out.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["taken"]


def test_an_existing_output_is_not_removed_when_the_input_cannot_be_read(tmp_path, centerface):
    out = tmp_path / "o.png"
    out.write_bytes(b"an earlier output")
    result = process_file(tmp_path / "missing.png", out, Pipeline(detector=centerface))
    assert not result.ok and out.read_bytes() == b"an earlier output"


def test_strict_verification_removes_an_output_that_may_show_a_face(photo, tmp_path):
    from faceveil.audit import Auditor

    pipeline = Pipeline(strength=0.05)  # far too weak a blur
    out = tmp_path / "out" / "photo.png"
    warn = process_file(photo, out, pipeline, auditor=Auditor(pipeline.config, "warn"))
    assert warn.ok and out.is_file() and warn.audit.failing
    strict = process_file(photo, out, pipeline, auditor=Auditor(pipeline.config, "strict"))
    assert not strict.ok and "output removed" in strict.error and not out.exists()
    assert strict.audit.status == "findings" and strict.audit.failing  # the file: failed


def test_a_video_counts_a_followed_face_once(tmp_path, astronaut, centerface):
    crop, _ = face_crop(astronaut)
    bg = texture(240, 320, seed=4)
    frames = []
    for i in range(12):
        img = bg.copy()
        img[40:140, 20 + 8 * i:120 + 8 * i] = crop
        frames.append(img)
    clip = write_clip(tmp_path / "clip.mp4", frames, rate=25)
    side = tmp_path / "clip.faces.json"
    result = process_file(clip, tmp_path / "out.mp4", Pipeline(detector=centerface), sidecar=side,
                          write=WriteOptions(want_document=True))
    assert result.ok and result.kind == "video"
    counts = result.counts
    assert counts.frames == 12 and counts.faces == 1 and counts.face_frames >= 11
    assert Counts.from_dict(json.loads(side.read_text())["counts"]) == counts
    assert Counts.from_dict(result.document["counts"]) == counts
    assert result.report.counts == counts


def test_a_cancel_goes_through_and_leaves_nothing(tmp_path, centerface):
    class Stop(Exception):
        pass

    clip = write_clip(tmp_path / "clip.mp4", [texture(120, 160, seed=i) for i in range(10)], rate=25)

    def cancel(event):
        if event.stage == "frame" and event.done >= 3:
            raise Stop

    with pytest.raises(Stop):
        process_file(clip, tmp_path / "out.mp4", Pipeline(detector=centerface),
                     on_progress=cancel, passthrough=(Stop,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
