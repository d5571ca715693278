"""Hostile file-system inputs (issue 20, items 1, 2 and 12): symbolic link loops, file names
that are not UTF-8, names that start with dots, newlines in names. Each input is built here.

Real parts: the real CLI (`main(argv)`), the real planner, real worker processes for batch.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceveil.batch import BatchOptions, plan_batch, read_manifest, run_batch
from faceveil.cli import ExitCode, main
from faceveil.paths import plan

needs_bytes_names = pytest.mark.skipif(
    sys.platform in ("win32", "darwin"), reason="needs a file system that takes any bytes as a name")
LATIN1 = os.fsdecode(b"caf\xe9.jpg")  # what Python makes of the bytes caf\xe9.jpg


def picture(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fmt = "PNG" if path.suffix == ".png" else "JPEG"  # Pillow sees no suffix in "..jpg"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path, fmt)
    return path


def loops(folder: Path) -> None:
    """Every kind of link that leads nowhere, beside good files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "self.jpg").symlink_to("self.jpg")  # a link to itself
    (folder / "ping.png").symlink_to("pong.png")  # two links pointing at each other
    (folder / "pong.png").symlink_to("ping.png")
    (folder / "gone.jpg").symlink_to("missing.jpg")  # a link to nothing
    (folder / "here").symlink_to(".")  # a folder link back up (not followed)
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "up").symlink_to("..")


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    for line in err.splitlines():
        assert line.startswith("faceveil: "), line


# ---------------------------------------------------------------- 1: symbolic link loops


def test_plan_reports_each_looping_link_and_keeps_the_good_files(tmp_path):
    root = tmp_path / "in"
    picture(root / "a.jpg")
    picture(root / "sub" / "b.png")
    loops(root)
    result = plan([str(root)], str(tmp_path / "out"))
    assert [p.name for p, _ in result.pairs] == ["a.jpg", "b.png"]
    why = {Path(what).name: reason for what, reason in result.errors}
    assert why == {
        "self.jpg": "a symbolic link that loops (it leads back to itself); left out",
        "ping.png": "a symbolic link that loops (it leads back to itself); left out",
        "pong.png": "a symbolic link that loops (it leads back to itself); left out",
        "gone.jpg": "a symbolic link to nothing (its target is missing); left out",
    }
    # named directly, a looping link is one clear line too
    assert plan([str(root / "self.jpg")], None).errors == [
        (str(root / "self.jpg"), why["self.jpg"])]


def test_globs_name_the_looping_links_they_match(tmp_path):
    root = tmp_path / "in"
    picture(root / "a.jpg")
    loops(root)
    result = plan([str(root / "*.jpg")], str(tmp_path / "out"))
    assert [p.name for p, _ in result.pairs] == ["a.jpg"]
    assert sorted(Path(w).name for w, _ in result.errors) == ["gone.jpg", "self.jpg"]
    batch = plan_batch([str(root / "*.*")], str(tmp_path / "out"))
    assert [i.rel for i in batch.items] == ["a.jpg"]
    assert sorted(Path(w).name for w, _ in batch.errors) == [
        "gone.jpg", "ping.png", "pong.png", "self.jpg"]


def test_plan_survives_a_loop_as_the_output_or_as_an_input_beside_its_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    picture(tmp_path / "a.jpg")
    Path("out").symlink_to("out")
    result = plan(["a.jpg"], "out/")
    assert result.pairs == [(Path("a.jpg"), Path("out/a.jpg"))]


def test_run_over_a_folder_with_link_loops_does_the_good_files(tmp_path, capsys):
    root = tmp_path / "in"
    picture(root / "a.jpg")
    picture(root / "sub" / "b.png", 1)
    loops(root)
    code = main(["run", str(root), "-o", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED  # something was left out, and said so
    no_traceback(err)
    assert "self.jpg: a symbolic link that loops" in err
    assert "gone.jpg: a symbolic link to nothing" in err
    assert "2 picture(s) anonymized" in err
    assert (tmp_path / "out" / "a.jpg").is_file() and (tmp_path / "out" / "sub" / "b.png").is_file()


def test_batch_plan_with_link_loops_keeps_the_good_files(tmp_path):
    root = tmp_path / "in"
    picture(root / "a.jpg")
    loops(root)
    result = plan_batch([str(root)], str(tmp_path / "out"))
    assert [i.rel for i in result.items] == ["a.jpg"]
    assert sorted(Path(w).name for w, _ in result.errors) == [
        "gone.jpg", "ping.png", "pong.png", "self.jpg"]
    assert all("symbolic link" in why for _, why in result.errors)


# ---------------------------------------------------------------- 2: names that are not UTF-8


@needs_bytes_names
@pytest.mark.slow
def test_batch_with_a_latin1_name_writes_the_manifest_and_resumes(tmp_path):
    root = tmp_path / "in"
    picture(root / "a.jpg")
    picture(root / LATIN1, 1)
    picture(root / "z.jpg", 2)
    out = tmp_path / "out"
    report = run_batch([root], out, options=BatchOptions(workers=1))
    assert (report.ok, report.failed) == (3, 0), report.errors
    assert (out / LATIN1).is_file() and os.fsencode(LATIN1) in os.listdir(os.fsencode(out))
    manifest = out / ".faceveil-manifest.jsonl"
    raw = manifest.read_bytes()
    raw.decode("utf-8")  # the manifest stays valid UTF-8 (the odd byte is a JSON escape)
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert [Path(r["input"]).name for r in lines] == ["a.jpg", LATIN1, "z.jpg"]
    # --resume finds every item again, the odd name included
    again = run_batch([root], out, options=BatchOptions(workers=1, resume=True))
    assert (again.skipped, again.ok, again.failed) == (3, 0, 0)
    assert len(read_manifest(manifest)) == 3


@needs_bytes_names
@pytest.mark.slow
def test_batch_into_a_zip_with_a_latin1_name(tmp_path):
    import zipfile

    root = tmp_path / "in"
    picture(root / LATIN1)
    picture(root / "b.jpg", 1)
    target = tmp_path / "out.zip"
    report = run_batch([root], target, options=BatchOptions(workers=1))
    assert (report.ok, report.failed) == (2, 0), report.errors
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == ["b.jpg", "caf\\xe9.jpg"]
    again = run_batch([root], target, options=BatchOptions(workers=1, resume=True))
    assert (again.skipped, again.failed) == (2, 0)


# ---------------------------------------------------------------- 12: names


def test_batch_takes_a_named_file_that_starts_with_dots_as_run_does(tmp_path):
    picture(tmp_path / "..jpg")
    result = plan_batch([str(tmp_path / "..jpg")], str(tmp_path / "out"))
    assert not result.errors and [i.rel for i in result.items] == ["..jpg"]
    assert plan([str(tmp_path / "..jpg")], None).pairs  # run: the same file is taken
    # inside a walked folder, hidden files stay out
    assert not plan_batch([str(tmp_path)], str(tmp_path / "out")).items


def test_a_video_named_with_leading_dots_is_a_video(tmp_path):
    (tmp_path / "..mp4").write_bytes(b"")
    (item,) = plan_batch([str(tmp_path / "..mp4")], str(tmp_path / "out")).items
    assert item.video
