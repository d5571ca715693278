"""One core for every door: the same two pictures and one clip, with the same settings, through
`faceveil run` (main(argv)), `faceveil batch` (local engine), the Python API, the web API (a real
uvicorn on a loopback port: a job, and each picture through /api/anonymize) and the GUI's export
(real Qt) give the same decoded pixels, exactly, and the same counts (faceveil.types.Counts)
everywhere.

Exactly: every door runs the file job (faceveil.pipeline.job.process_file) with the same
detector, the same JPEG quality (the input's own) and the same x264 settings, so nothing is
allowed to differ. Inference threads are fixed at 2 for every door (the web app would otherwise
divide the cores among its workers, and ONNX Runtime's sums may differ in the last bit with
another thread count, which could move a box edge by a pixel).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gui_display import qt_platform

os.environ.update(qt_platform())  # before Qt starts (the GUI door)

from faceveil.cli import ExitCode, main
from faceveil.config import PipelineConfig
from faceveil.media.images import read_image
from faceveil.types import Counts
from tests.pipeline.test_video import decode_rgb, face_crop, texture, write_clip

pytestmark = pytest.mark.slow

THREADS = 2
CONFIG = PipelineConfig().replace(threads=THREADS)
FRAMES = 16


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, astronaut) -> Path:
    """a.png (the astronaut), b.jpg (two faces on a texture, a JPEG), clip.mp4 (a face moving,
    with sound)."""
    folder = tmp_path_factory.mktemp("parity") / "in"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "a.png")
    crop, _ = face_crop(astronaut)
    page = texture(360, 480, seed=5)
    page[40:140, 40:140] = crop
    page[180:280, 300:400] = crop[:, ::-1]
    Image.fromarray(page).save(folder / "b.jpg", quality=88)
    frames = []
    bg = texture(240, 320, seed=3)
    for i in range(FRAMES):
        img = bg.copy()
        img[30:130, 20 + 6 * i:120 + 6 * i] = crop
        frames.append(img)
    write_clip(folder / "clip.mp4", frames, rate=25, audio_seconds=FRAMES / 25)
    return folder


NAMES = ("a.png", "b.jpg", "clip.mp4")


def pixels(path: Path) -> list[np.ndarray]:
    return decode_rgb(path) if path.suffix == ".mp4" else [read_image(path).rgb]


# ------------------------------------------------------------------------------------ doors


def door_cli(inputs: Path, out: Path, capsys) -> tuple[dict[str, Path], dict[str, Counts]]:
    code = main(["run", str(inputs), "-o", str(out), "--json", "--threads", str(THREADS),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    outputs = {n: next(p for p in out.iterdir() if p.name.startswith(Path(n).stem + ".")
                       and not p.name.endswith(".faces.json")) for n in NAMES}
    counts = {}
    for n, p in outputs.items():
        doc = json.loads(p.with_name(p.stem + ".faces.json").read_text())
        counts[n] = Counts.from_dict(doc["counts"])
        assert Counts.of(_records(doc)) == counts[n]  # the file's frames say the same
    total = sum(counts.values(), Counts())
    assert total.describe(True) in err  # the summary line says the same numbers
    return outputs, counts


def _records(doc: dict):
    from faceveil.types import Detections

    return [Detections.from_records(f["faces"]) for f in doc["frames"]]


def door_batch(inputs: Path, out: Path, capsys) -> tuple[dict[str, Path], dict[str, Counts]]:
    code = main(["batch", str(inputs), "-o", str(out), "--workers", "1", "--threads",
                 str(THREADS), "--no-progress"])
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    from faceveil.batch.manifest import read_manifest

    records = read_manifest(out / ".faceveil-manifest.jsonl")
    outputs, counts = {}, {}
    for n in NAMES:
        rec = next(r for r in records if Path(r["input"]).name == n)
        assert rec["status"] == "ok", rec
        outputs[n], counts[n] = Path(rec["output"]), Counts.from_dict(rec)
    assert sum(counts.values(), Counts()).describe(True) in err
    return outputs, counts


def door_api(inputs: Path, out: Path) -> tuple[dict[str, Path], dict[str, Counts]]:
    from faceveil import anonymize_image, anonymize_video

    out.mkdir()
    outputs, counts = {}, {}
    for n in NAMES[:2]:
        outputs[n] = out / n
        anonymize_image(inputs / n, outputs[n], threads=THREADS)
    outputs["clip.mp4"] = out / "clip.mp4"
    report = anonymize_video(inputs / "clip.mp4", outputs["clip.mp4"], threads=THREADS,
                             faces_json=out / "clip.faces.json")
    counts["clip.mp4"] = report.counts
    assert Counts.from_dict(json.loads((out / "clip.faces.json").read_text())["counts"]) == \
        report.counts
    return outputs, counts


def door_web(inputs: Path, out: Path, tmp_path: Path) -> tuple[dict[str, Path], dict[str, Counts]]:
    from tests.web.test_web_http import FORM, call, multipart, running

    out.mkdir()
    with running(tmp_path, pipeline=CONFIG) as server:
        port = server.port
        status, _, data = call(port, "POST", "/api/jobs", multipart(
            [("files", n, (inputs / n).read_bytes()) for n in NAMES]), FORM)
        assert status == 202, data
        job = json.loads(data)
        deadline = time.monotonic() + 300
        while job["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
            status, _, data = call(port, "GET", f"/api/jobs/{job['id']}")
            job = json.loads(data)
        assert job["state"] == "done", job
        outputs, counts = {}, {}
        for f in job["files"]:
            assert f["state"] == "done", f
            status, _, data = call(port, "GET", f["result_url"])
            assert status == 200
            outputs[f["name"]] = out / f["result_name"]
            outputs[f["name"]].write_bytes(data)
            counts[f["name"]] = Counts.from_dict(f["counts"])
            assert f["faces"] == counts[f["name"]].faces
            assert f["summary"] == counts[f["name"]].describe(f["kind"] == "video")
        assert Counts.from_dict(job["counts"]) == sum(counts.values(), Counts())
        one = out / "one"  # the one-picture endpoint runs the same file job
        one.mkdir()
        for n in NAMES[:2]:
            status, headers, data = call(port, "POST", "/api/anonymize",
                                         multipart([("file", n, (inputs / n).read_bytes())]), FORM)
            assert status == 200, data
            (one / n).write_bytes(data)
            got = Counts.from_dict(json.loads(headers["x-faceveil-counts"]))
            assert got == counts[n], (n, got, counts[n])
            assert int(headers["x-faceveil-faces"]) == got.faces
            assert int(headers["x-faceveil-kept"]) == got.kept
            assert np.array_equal(read_image(one / n).rgb, read_image(outputs[n]).rgb), n
            assert (one / n).read_bytes() == outputs[n].read_bytes(), n  # the same file, even
    return outputs, counts


def door_gui(inputs: Path, out: Path, qtbot_factory) -> tuple[dict[str, Path], dict[str, Counts]]:
    pytest.importorskip("PySide6.QtWidgets", reason="needs the gui extra and Qt's libraries")
    from PySide6.QtCore import QSettings

    from faceveil.gui.window import MainWindow
    from tests.gui.test_gui import wait_idle

    qtbot = qtbot_factory()
    window = MainWindow(QSettings(str(out.parent / "gui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window, before_close_func=lambda w: [r.mark_saved() for r in w.reviews.values()])
    window.config = CONFIG
    window.open_paths([inputs])
    wait_idle(window, 300)
    window.export_all_to(out)
    wait_idle(window, 300)
    assert window.last_error == ""
    outputs = {n: out / n for n in NAMES}
    # the files looked at in the window (the others were analysed inside the export)
    counts = {p.name: review.counts() for p, review in window.reviews.items()}
    counts["status"] = window.status.text()
    return outputs, counts


# ------------------------------------------------------------------------------------ the test


def test_every_door_gives_the_same_pixels_and_counts(inputs, tmp_path, capsys, request):
    doors = {
        "run": door_cli(inputs, tmp_path / "cli", capsys),
        "batch": door_batch(inputs, tmp_path / "batch", capsys),
        "api": door_api(inputs, tmp_path / "api"),
        "web": door_web(inputs, tmp_path / "web", tmp_path),
    }
    try:
        import pytestqt.qtbot  # noqa: F401

        def qtbot_factory():
            return request.getfixturevalue("qtbot")

        doors["gui"] = door_gui(inputs, tmp_path / "gui", qtbot_factory)
    except pytest.skip.Exception as why:
        print(f"GUI door skipped: {why}")
    except ImportError:
        print("GUI door skipped: needs pytest-qt")

    reference_outputs, reference_counts = doors["run"]
    total = sum(reference_counts.values(), Counts())
    if "gui" in doors:  # the export's status line sums what every file's export counted
        status = doors["gui"][1].pop("status")
        assert status.endswith(f": {total.describe(True)}"), status
    for n in NAMES:
        want = pixels(reference_outputs[n])
        assert len(want) == (FRAMES if n == "clip.mp4" else 1)
        assert n == "clip.mp4" or reference_counts[n].faces >= 1
        for door, (outputs, counts) in doors.items():
            got = pixels(outputs[n])
            assert len(got) == len(want), (door, n)
            for i, (a, b) in enumerate(zip(want, got, strict=True)):
                assert a.shape == b.shape and np.array_equal(a, b), \
                    f"{door}: {n} frame {i} differs from run's in {int((a != b).any(axis=-1).sum())} px"
            if n in counts:
                assert counts[n] == reference_counts[n], (door, n, counts[n], reference_counts[n])
    clip = reference_counts["clip.mp4"]
    assert clip.frames == FRAMES and 1 <= clip.faces <= 2 and clip.face_frames >= FRAMES - 2
    assert clip.boxes + clip.filled == clip.face_frames
    # the face hidden in every door: the clip's face region changed
    before = decode_rgb(inputs / "clip.mp4")[FRAMES // 2]
    after = pixels(reference_outputs["clip.mp4"])[FRAMES // 2]
    i = FRAMES // 2
    assert np.abs(after[50:110, 40 + 6 * i:100 + 6 * i].astype(int)
                  - before[50:110, 40 + 6 * i:100 + 6 * i]).mean() > 8
