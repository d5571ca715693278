"""The CLI through main(argv), and once as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import faceveil
from conftest import require_data
from faceveil.cli import ExitCode, main
from faceveil.evaluation import changed_pixels, face_covered
from faceveil.media.images import read_image

FACE = (180, 60, 270, 175)


@pytest.fixture()
def photo(tmp_path, astronaut) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(astronaut).save(path, quality=95)
    return path


@pytest.fixture()
def shots(tmp_path, astronaut) -> Path:
    """A small tree: pictures in several formats, one nested, one broken, one not a picture."""
    root = tmp_path / "shots"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(astronaut).save(root / "a.png")
    Image.fromarray(astronaut).save(root / "sub" / "b.jpg", quality=90)
    Image.fromarray(astronaut[:, ::-1]).save(root / "sub" / "deeper" / "c.webp", lossless=True)
    (root / "notes.txt").write_text("not a picture")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    return root


def run(*argv: str) -> int:
    return main([str(a) for a in argv])


def covered(before: np.ndarray, after_path: Path) -> bool:
    return face_covered(changed_pixels(before, read_image(after_path).rgb), FACE)


def test_bare_input_writes_beside_it(photo, astronaut, capsys):
    assert run(photo) == ExitCode.OK
    out = photo.with_name("photo.anonymized.jpg")
    assert out.is_file()
    assert covered(read_image(photo).rgb, out)
    assert "photo.anonymized.jpg" in capsys.readouterr().err
    assert sorted(p.name for p in photo.parent.iterdir()) == ["photo.anonymized.jpg", "photo.jpg"]


def test_input_is_never_modified(photo):
    before = photo.read_bytes()
    run(photo, "--method", "solid")
    assert photo.read_bytes() == before


def test_tree_mirrored_and_bad_files_reported(shots, tmp_path, capsys):
    out = tmp_path / "clean"
    code = run("run", shots, "-o", f"{out}/", "--method", "pixelate", "--blocks", "10")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED  # broken.jpg failed
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "a.png", "sub/b.jpg", "sub/deeper/c.webp"]
    assert "broken.jpg" in err and "1 failed" in err and "3 picture(s) anonymized" in err
    assert "Traceback" not in err
    assert covered(read_image(shots / "a.png").rgb, out / "a.png")


def test_glob_and_method_flags(shots, tmp_path):
    out = tmp_path / "out"
    assert run("run", f"{shots}/**/*.jpg", "-o", out, "--method", "solid", "--color", "#ff0000",
               "--shape", "box") == ExitCode.FAILED  # broken.jpg matches the glob too
    result = read_image(out / "sub" / "b.jpg").rgb
    cx, cy = (FACE[0] + FACE[2]) // 2, (FACE[1] + FACE[3]) // 2
    assert np.abs(result[cy, cx].astype(int) - [255, 0, 0]).max() < 12  # red, within JPEG error


def test_json_sidecar(photo):
    assert run("run", photo, "--method", "solid", "--shape", "box", "--json") == ExitCode.OK
    doc = json.loads(photo.with_name("photo.anonymized.faces.json").read_text())
    assert doc["schema"] == "faceveil.faces/1" and doc["width"] == 512
    faces = doc["frames"][0]["faces"]
    assert len(faces) >= 1 and all(f["hidden"] for f in faces)
    assert doc["settings"]["effect"]["method"] == "solid"


def test_json_lines_to_stdout_writes_no_pictures(shots, capsys):
    before = sorted(shots.rglob("*"))
    run("run", shots / "a.png", shots / "sub", "-o", "-")
    lines = capsys.readouterr().out.splitlines()
    docs = [json.loads(line) for line in lines]
    assert sorted(Path(d["source"]).name for d in docs) == ["a.png", "b.jpg", "c.webp"]
    assert all(d["output"] is None and d["frames"][0]["faces"] for d in docs)
    assert sorted(shots.rglob("*")) == before


def test_refuses_output_equal_to_input(photo, capsys):
    before = photo.read_bytes()
    assert run("run", photo, "-o", photo) == ExitCode.FAILED
    assert "refusing to overwrite" in capsys.readouterr().err
    assert photo.read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["run", "missing.jpg"], ExitCode.FAILED, "no such file or folder"),
        (["run", "*.nothing-matches"], ExitCode.NO_INPUT, "no files match"),  # README: 3
        (["run", "{photo}", "--strength", "0"], ExitCode.USAGE,
         "argument --strength: must be between 0.05 and 20, got 0"),
        (["run", "{photo}", "--color", "not-a-colour", "--method", "solid"], ExitCode.USAGE, "not a colour"),
        (["run", "{photo}", "--method", "sparkles"], ExitCode.USAGE, "invalid choice"),
        (["run", "{photo}", "--image-quality", "101"], ExitCode.USAGE, "--image-quality"),
        (["run", "{photo}", "--method", "image", "--image", "nope.png"], ExitCode.FAILED,
         "overlay image not found"),
        (["run", "{photo}", "--config", "nope.toml"], ExitCode.USAGE, "cannot read config file"),
        (["run", "{photo}", "-o", "out.gif"], ExitCode.FAILED, "cannot write pictures as '.gif'"),
    ],
)
def test_bad_usage_gets_one_clear_line(argv, code, message, photo, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert run(*[a.replace("{photo}", str(photo)) for a in argv]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.jpg", b"", "empty file"),
        ("text.png", b"hello, I am text", "not a picture"),
        ("trunc.jpg", "truncate", "truncated"),
        ("anim.gif", "gif", "GIF pictures are not supported"),
    ],
)
def test_bad_files_named_with_reason(tmp_path, astronaut, capsys, name, content, reason):
    path = tmp_path / name
    if content == "truncate":
        Image.fromarray(astronaut).save(path, quality=90)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    elif content == "gif":
        Image.fromarray(astronaut).save(path)
    else:
        path.write_bytes(content)
    assert run(path) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert f"{path}: " in err and reason in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.anonymized*")) and not list(tmp_path.glob(".*part*"))


def test_decompression_bomb_refused(tmp_path, capsys):
    path = tmp_path / "bomb.png"
    Image.new("L", (12000, 12000)).save(path, optimize=True)  # ~100 kB on disk, 144 MP
    assert path.stat().st_size < 1_000_000
    assert run(path, "--max-pixels", "100e6") == ExitCode.FAILED
    assert "over the limit" in capsys.readouterr().err


def test_hostile_file_names(tmp_path, astronaut):
    names = ["-rf.png", "with space.png", "ünïcødé 😀.png", "semi;colon$(x).png", "new\nline.png"]
    for name in names:
        Image.fromarray(astronaut).save(tmp_path / name)
    out = tmp_path / "out"
    assert run("run", "-o", out, "--", *[tmp_path / n for n in names]) == ExitCode.OK
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_skip_existing_and_rerun_ignores_own_outputs(photo, capsys):
    assert run(photo) == ExitCode.OK
    out = photo.with_name("photo.anonymized.jpg")
    stamp = out.stat().st_mtime_ns
    assert run("run", photo, "--skip-existing") == ExitCode.OK
    assert out.stat().st_mtime_ns == stamp
    assert run("run", str(photo.parent / "*.jpg")) == ExitCode.OK  # the glob also matches the output
    assert not photo.with_name("photo.anonymized.anonymized.jpg").exists()


def test_config_file_and_flags(tmp_path, photo):
    cfg = tmp_path / "faceveil.toml"
    cfg.write_text('method = "solid"\n[effect]\ncolor = "#00ff00"\n')
    out = tmp_path / "o.png"
    assert run("run", photo, "-o", out, "--config", cfg, "--shape", "box") == ExitCode.OK
    cx, cy = (FACE[0] + FACE[2]) // 2, (FACE[1] + FACE[3]) // 2
    assert read_image(out).rgb[cy, cx].tolist() == [0, 255, 0]


def test_models_command(capsys):
    assert run("models", "--json") == ExitCode.OK
    names = {m["name"] for m in json.loads(capsys.readouterr().out)}
    assert "centerface" in names and "haar/haarcascade_frontalface_default.xml" in names


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"faceveil {faceveil.__version__}"
    assert run("run", "--help") == 0
    out = capsys.readouterr().out
    for flag in ("--method", "--quality", "--detector", "--json", "--keep-metadata", "examples:"):
        assert flag in out


def test_no_arguments_is_a_usage_error(capsys):
    assert main([]) == ExitCode.USAGE


@pytest.mark.slow
def test_real_subprocess(tmp_path, photo):
    """`python -m faceveil` and the installed `faceveil` script, as a user runs them."""
    exe = shutil.which("faceveil", path=str(Path(sys.executable).parent)) or "faceveil"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([exe, str(photo), "--json"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # data only on stdout, and there is none here
    assert "1 picture(s) anonymized" in proc.stderr
    out = photo.with_name("photo.anonymized.jpg")
    assert covered(read_image(photo).rgb, out)
    proc = subprocess.run([sys.executable, "-m", "faceveil", "run", str(photo.parent / "nope.jpg")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1 and "no such file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_real_photos_folder(tmp_path):
    """The dlib photos through the CLI: every annotated face covered in the output files."""
    root = require_data("images")
    meta = json.loads((root / "dlib_faces.json").read_text())["images"]
    out = tmp_path / "out"
    assert run("run", root / "dlib_faces", "-o", out, "--image-quality", "90") == ExitCode.OK
    for entry in meta:
        before = read_image(root / entry["file"]).rgb
        changed = changed_pixels(before, read_image(out / Path(entry["file"]).name).rgb)
        for box in entry["boxes"]:
            assert face_covered(changed, box), (entry["file"], box)
