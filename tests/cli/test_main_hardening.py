"""Stops and messages (issue 20, items 6 and 12): SIGTERM during a video, leftovers of killed
runs, and one plain line for unreadable inputs, read-only outputs, absurd headers, 1x1 live
videos and file names with newlines. Inputs are built here; the CLI runs for real (in-process,
or as a subprocess where a signal or another user is needed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from faceveil._files import atomic_path, sweep_parts
from faceveil.cli import ExitCode, main, one_line
from tests.media.test_video import smooth, write_video

SRC = Path(__file__).resolve().parents[2] / "src"


def run(*argv) -> int:
    return main([str(a) for a in argv])


def one_clean_line_each(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    for line in err.splitlines():
        assert line.startswith("faceveil: "), err


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def picture(path: Path) -> Path:
    Image.fromarray(smooth(48, 64)).save(path, "JPEG")
    return path


# ---------------------------------------------------------------- 6: SIGTERM and leftovers


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_during_a_video_leaves_no_temporary_files(tmp_path):
    src = write_video(tmp_path / "long.mp4", [smooth(360, 640, i % 9) for i in range(900)],
                      audio="aac", audio_seconds=36)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "faceveil", "run", str(src), "-o", str(out / "long.mp4"),
           "--json", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(parts(out)) < 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    time.sleep(0.5)  # frames are being encoded into the temporary file
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err and "interrupted" in err
    assert os.listdir(out) == []  # no output, no .long.*.part.mp4, no .part.json


def test_a_later_run_removes_leftovers_of_a_killed_one_and_only_those(tmp_path, capsys):
    src = write_video(tmp_path / "in.mp4", [smooth(48, 64, i) for i in range(4)])
    out = tmp_path / "out"
    out.mkdir()
    leftovers = [".clip.deadbeef.part.mp4", ".clip.faces.0badf00d.part.json"]
    others = [".other.12345678.part.mp4", ".clip.nothex00.part.mp4", "clip.deadbeef.part.mp4"]
    for name in leftovers + others:
        (out / name).write_bytes(b"half")
    # a temporary file another run is writing right now (it holds the lock) stays
    writing = atomic_path(out / "elsewhere" / "clip.mp4")
    busy = writing.__enter__()
    busy_here = out / f".clip.{busy.name.split('.')[2]}.part.mp4"
    os.link(busy, busy_here)  # the same locked file, under a leftover's name for clip.mp4
    try:
        assert run("run", src, "-o", out / "clip.mp4", "--json", "--preset", "ultrafast",
                   "--no-progress") == ExitCode.OK
        assert busy_here.exists()
        kept = set(parts(out))
    finally:
        writing.__exit__(RuntimeError, RuntimeError("aborted"), None)
        busy_here.unlink()
    one_clean_line_each(capsys.readouterr().err)
    assert not kept & set(leftovers)
    assert set(others) <= kept | {"clip.deadbeef.part.mp4"} and (out / others[2]).exists()
    assert (out / "clip.mp4").is_file() and (out / "clip.faces.json").is_file()


def test_sweep_parts_for_pictures_and_batch_names(tmp_path):
    (tmp_path / ".a.0123abcd.part.jpg").write_bytes(b"x")
    (tmp_path / ".a.0123abcd.part.png").write_bytes(b"x")  # another output's
    (tmp_path / ".b.0123abcd.part.jpg").write_bytes(b"x")
    assert sweep_parts([tmp_path / "a.jpg"]) == 1
    assert parts(tmp_path) == [".a.0123abcd.part.png", ".b.0123abcd.part.jpg"]


# ---------------------------------------------------------------- 12: messages


def without_root_powers(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The CLI as a subprocess to which file permissions apply: as root (which reads and writes
    everything) without the capabilities that override them."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv (util-linux) is not there to drop its powers")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([*prefix, sys.executable, "-m", "faceveil", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_unreadable_inputs_say_so(tmp_path):
    picture(tmp_path / "locked.jpg").chmod(0)
    write_video(tmp_path / "locked.mp4", [smooth(48, 64)] * 2).chmod(0)
    proc = without_root_powers(["run", "locked.jpg", "locked.mp4", "-o", "out/", "--no-progress"],
                           tmp_path)
    assert proc.returncode == ExitCode.FAILED, proc.stderr
    one_clean_line_each(proc.stderr)
    assert "faceveil: error: locked.jpg: cannot read it: permission denied" in proc.stderr
    assert "faceveil: error: locked.mp4: cannot read it: permission denied" in proc.stderr
    assert "truncated or damaged" not in proc.stderr


def test_a_read_only_output_folder_is_named_as_the_problem(tmp_path):
    picture(tmp_path / "a.jpg").chmod(0o644)
    write_video(tmp_path / "v.mp4", [smooth(48, 64)] * 2).chmod(0o644)
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    proc = without_root_powers(["run", "a.jpg", "v.mp4", "-o", "ro/", "--no-progress"], tmp_path)
    assert proc.returncode == ExitCode.FAILED, proc.stderr
    one_clean_line_each(proc.stderr)
    assert "faceveil: error: a.jpg: cannot write into ro: permission denied" in proc.stderr
    assert "faceveil: error: v.mp4: cannot write into ro: permission denied" in proc.stderr


@pytest.mark.parametrize("name", ["huge.mp4", "huge.avi"])
def test_a_header_claiming_absurd_frames_is_named(tmp_path, capsys, name):
    (tmp_path / name).write_bytes(b"YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\n"
                                  + b"\x80" * 1000)
    assert run("run", tmp_path / name, "--no-progress") == ExitCode.FAILED
    err = capsys.readouterr().err
    one_clean_line_each(err)
    assert "100000x100000 is 10,000,000,000 pixels, over the limit of 150,000,000" in err
    assert "busy" not in err


def test_live_on_a_1x1_video_records_it(tmp_path, capsys):
    src = write_video(tmp_path / "one.mp4", [smooth(1, 1, i) for i in range(6)],
                      pix_fmt="yuv444p")
    rec = tmp_path / "rec.mp4"
    assert run("live", src, "--no-preview", "--record", rec) == ExitCode.OK
    err = capsys.readouterr().err
    one_clean_line_each(err)
    assert "tuple index" not in err and rec.is_file()
    import av

    with av.open(str(rec)) as c:
        assert len(list(c.decode(video=0))) >= 1


@pytest.mark.skipif(sys.platform == "win32", reason="a newline cannot be in a Windows file name")
def test_a_newline_in_a_file_name_keeps_every_message_on_one_line(tmp_path, capsys):
    good = picture(tmp_path / "new\nline.jpg")
    bad = tmp_path / "bad\nname.jpg"
    bad.write_bytes(b"not a picture")
    assert run("run", good, bad, "-o", tmp_path / "out", "--no-progress") == ExitCode.FAILED
    err = capsys.readouterr().err
    one_clean_line_each(err)
    assert "bad\\nname.jpg: " in err
    assert "1 picture(s) anonymized" in err and (tmp_path / "out" / "new\nline.jpg").is_file()


@pytest.mark.parametrize(("text", "shown"), [
    ("a.jpg", "a.jpg"), ("new\nline.jpg", "new\\nline.jpg"), ("tab\there", "tab\\there"),
    (os.fsdecode(b"caf\xe9.jpg"), "caf\\xe9.jpg"), ("ÄÖÜ-éè.jpg", "ÄÖÜ-éè.jpg"),
    ("\x1b[31mred", "\\x1b[31mred"),
])
def test_one_line(text, shown):
    assert one_line(text) == shown

