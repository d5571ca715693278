"""Every exit code the README lists, from real runs of `faceveil` (in-process through `main`,
and once as a real subprocess): 0 done, 1 some inputs failed, 2 bad options, 3 nothing to
process, 130 interrupted. Also: messages are one line, never a traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import REPO, textured
from faceveil.cli import ExitCode, main
from faceveil.media.images import write_image


def readme_codes() -> dict[int, str]:
    """The codes the README's "Exit codes:" sentence lists."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    sentence = text[text.index("Exit codes:"):].split("\n\n")[0]
    return {int(code): what.strip() for code, what in re.findall(r"`(\d+)` ([^,`]+)", sentence)}


def test_the_readme_lists_exactly_the_codes_of_the_enum():
    assert set(readme_codes()) == {int(c) for c in ExitCode} == {0, 1, 2, 3, 130}


@pytest.fixture
def picture(tmp_path, astronaut) -> Path:
    return write_image(tmp_path / "in" / "face.png", astronaut)


def run(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_0_all_done(picture, tmp_path, capsys):
    code, _ = run(["run", picture, "-o", tmp_path / "out.png"], capsys)
    assert code == 0 and (tmp_path / "out.png").is_file()


@pytest.mark.parametrize("case", ["missing file", "broken picture", "one of two broken"])
def test_1_some_inputs_failed(case, picture, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    inputs = {"missing file": [tmp_path / "nope.png"], "broken picture": [broken],
              "one of two broken": [picture, broken]}[case]
    code, err = run(["run", *inputs, "-o", tmp_path / "out/"], capsys)
    assert code == 1
    assert ("nope.png" if case == "missing file" else "broken.jpg") in err


@pytest.mark.parametrize("argv", [["run", "{p}", "--method", "smudge"],
                                  ["run", "{p}", "--image-quality", "0"],
                                  ["run", "{p}", "--threshold", "abc"],
                                  ["run"], ["run", "{p}", "--quality", "best"], []])
def test_2_bad_options(argv, picture, capsys):
    code, err = run([a.format(p=picture) for a in argv], capsys)
    assert code == 2 and err


@pytest.mark.parametrize("what", ["empty folder", "pattern matching nothing", "folder of notes"])
def test_3_nothing_to_process(what, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("no pictures here")
    target = {"empty folder": empty, "pattern matching nothing": tmp_path / "nothing*.jpg",
              "folder of notes": notes}[what]
    code, err = run(["run", target], capsys)
    assert code == 3, err
    assert len(err.strip().splitlines()) == 1  # one line saying why


def test_130_interrupted(tmp_path, capsys):
    """A real SIGINT (Ctrl+C) while a folder is being anonymized."""
    folder = tmp_path / "many"
    for i in range(60):
        write_image(folder / f"{i:02d}.png", textured(720, 960, seed=i))
    out = tmp_path / "out"
    stop = threading.Event()

    def interrupt_once_started() -> None:  # a fixed delay can land before or after the run
        while not stop.wait(0.05):
            if out.is_dir() and any(p.suffix == ".png" for p in out.iterdir()):
                os.kill(os.getpid(), signal.SIGINT)
                return

    # A shell without job control starts background commands with SIGINT ignored; Ctrl+C acts
    # as in a terminal only with Python's own handler in place.
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Thread(target=interrupt_once_started, daemon=True)
    timer.start()
    try:
        code, err = run(["run", folder, "-o", tmp_path / "out/"], capsys)
    finally:
        stop.set()
        signal.signal(signal.SIGINT, old)
    assert code == 130 and "interrupted" in err
    assert not [p for p in (tmp_path / "out").rglob("*") if ".part" in p.name]  # no half-written files


def test_exit_codes_as_a_real_process(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "faceveil", "run", str(empty)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 3 and proc.stderr.startswith("faceveil: error:")
    assert "Traceback" not in proc.stderr


def test_a_missing_extra_names_its_install_command_once(tmp_path, monkeypatch):
    """A backend whose own import error already says what to install is not said twice."""
    from faceveil.errors import MissingDependencyError
    from faceveil.registry import Registry

    (tmp_path / "needs_extra_backend.py").write_text(
        "from faceveil.errors import MissingDependencyError\n"
        "raise MissingDependencyError(\"the demo detector needs: pip install 'faceveil[demo]'\")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("detector")
    registry.register("demo", "needs_extra_backend:Demo", extra="demo", help="a test backend")
    with pytest.raises(MissingDependencyError) as info:
        registry.load("demo")
    assert str(info.value).count("pip install") == 1
