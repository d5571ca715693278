"""The desktop app, in real Qt (PySide6) on the offscreen platform, driven by real mouse events.

    FACEVEIL_SCREENSHOT=1 pytest tests/test_gui.py -k screenshot   # rewrites docs/gui*.png

Screenshots show scikit-image's astronaut (a NASA photo in the public domain), never the shared
evaluation data, whose licence allows no copies in the project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6.QtWidgets", reason="needs the gui extra (PySide6) and Qt's system "
                    "libraries (libEGL, libGL, libxkbcommon, fontconfig; see .ci/run)")
pytest.importorskip("pytestqt", reason="needs pytest-qt")

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtTest import QTest

from conftest import REPO, require_data
from faceveil.cli import main
from faceveil.evaluation import face_covered
from faceveil.gui.window import MainWindow
from faceveil.media.images import read_image, write_image
from faceveil.tracking import iou_matrix
from test_video import decode_rgb, face_crop, texture, write_clip

pytestmark = pytest.mark.gui
MAGENTA = (255, 0, 255)


def wait_idle(window: MainWindow, timeout: float = 60.0) -> None:
    """Until no task runs and the preview is drawn."""
    import time

    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QApplication.processEvents()
        if not window.busy and window.previewer.idle:
            QApplication.processEvents()  # deliver what the threads emitted last
            if not window.busy and window.previewer.idle:
                return
        time.sleep(0.02)
    raise TimeoutError("the window stayed busy")


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.resize(1400, 820)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def point(view, x: float, y: float):
    return view.to_widget(x, y).toPoint()


def click(view, x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:
    QTest.mouseClick(view, button, Qt.KeyboardModifier.NoModifier, point(view, x, y))


def drag(view, box) -> None:
    """Press, move and release the left button: draws a box over (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = box
    left = Qt.MouseButton.LeftButton
    QTest.mousePress(view, left, Qt.KeyboardModifier.NoModifier, point(view, x1, y1))
    QTest.mouseMove(view, point(view, (x1 + x2) / 2, (y1 + y2) / 2))
    QTest.mouseMove(view, point(view, x2, y2))
    QTest.mouseRelease(view, left, Qt.KeyboardModifier.NoModifier, point(view, x2, y2))


def use_solid_magenta(window: MainWindow) -> None:
    window.method.setCurrentText("solid")
    window.color.setText("#ff00ff")
    window.color.editingFinished.emit()
    assert window.config.effect.method == "solid" and window.config.effect.color == MAGENTA


def shown_faces(window: MainWindow) -> np.ndarray:
    return np.array([b.xyxy for b in window.original.boxes])


# ---------------------------------------------------------------- a photo


def test_keep_one_face_draw_a_box_and_export_a_photo(window, tmp_path):
    """A real photo with three labelled faces: keep one, draw a box where no face was found,
    export, and check the pixels of the output."""
    folder = require_data("images")
    entry = next(e for e in json.loads((folder / "dlib_faces.json").read_text())["images"]
                 if e["file"].endswith("2008_001322.jpg"))
    photo = folder / entry["file"]
    labels = np.array(entry["boxes"], np.float64)
    use_solid_magenta(window)
    window.open_paths([photo])
    wait_idle(window)
    review = window.review
    assert review is not None and review.kind == "picture"
    found = review.faces(0)
    assert len(found) >= 3 and len(window.original.boxes) == len(found)
    assert window.original.pixmap is not None and window.anonymized.pixmap is not None

    keep = labels[2]  # the face on the right
    cx, cy = (keep[0] + keep[2]) / 2, (keep[1] + keep[3]) / 2
    click(window.original, cx, cy)
    wait_idle(window)
    kept = review.faces(0)
    assert kept.keep.sum() >= 1
    kept_boxes = kept.xyxy[kept.keep]
    assert iou_matrix(kept_boxes, keep[None]).max() > 0.4
    assert any(b.kept for b in window.original.boxes)

    drawn = (20.0, 20.0, 70.0, 80.0)  # top left: a wall, no face
    drag(window.original, drawn)
    wait_idle(window)
    assert len(review.drawn) == 1
    (box, held), = next(iter(review.drawn.values())).values()
    assert np.allclose(box, drawn, atol=2.0) and not held

    out = tmp_path / "out" / "photo.png"
    window.export_to(out)
    wait_idle(window)
    assert out.is_file() and window.last_error == ""
    original, result = read_image(photo).rgb, read_image(out).rgb
    changed = np.abs(result.astype(int) - original.astype(int)).max(axis=2) > 0
    x1, y1, x2, y2 = keep.astype(int)
    assert not changed[y1:y2, x1:x2].any()  # the kept face is exactly as it was
    for other in labels[:2]:
        assert face_covered(changed, other)  # the others are hidden
    assert face_covered(changed, drawn)  # the drawn box too, with the chosen colour
    assert (result[40:60, 35:55] == MAGENTA).all()

    # the same review, saved and opened again in a new window, shows the same faces
    saved = tmp_path / "photo.faces.json"
    window.save_review_to(saved)
    assert saved.is_file()
    before = shown_faces(window)
    window.close()
    again = MainWindow(window.settings)
    try:
        again.show()
        again.open_paths([saved])
        wait_idle(again)
        assert again.review.path == photo
        assert np.allclose(shown_faces(again), before, atol=0.01)
        assert [b.kept for b in again.original.boxes] == [b.kept for b in window.original.boxes]
    finally:
        again.close()


def test_clicking_a_kept_face_hides_it_again_and_right_click_removes_a_drawn_box(window, astronaut,
                                                                               tmp_path):
    photo = write_image(tmp_path / "astronaut.png", astronaut)
    window.open_paths([photo])
    wait_idle(window)
    review = window.review
    face = review.faces(0).xyxy[0]
    centre = ((face[0] + face[2]) / 2, (face[1] + face[3]) / 2)
    click(window.original, *centre)
    assert review.faces(0).keep[0]
    click(window.original, *centre)
    assert not review.faces(0).keep[0]
    drag(window.original, (300, 300, 360, 380))
    assert len(review.drawn) == 1
    click(window.original, 330, 340, Qt.MouseButton.RightButton)
    assert not review.drawn
    click(window.original, 5, 500)  # nowhere near a face: nothing changes
    assert not review.faces(0).keep.any()


# ---------------------------------------------------------------- a video


@pytest.fixture(scope="module")
def face_and_patch_clip(tmp_path_factory, astronaut):
    """A real face (the astronaut) moving right, and a textured patch moving left that no
    detector finds (a stand-in for a missed face), with sound."""
    crop, inner = face_crop(astronaut)
    bg = texture(240, 320, seed=2)
    patch = texture(40, 40, seed=11)
    frames, faces, patches = [], [], []
    for i in range(40):
        fx, fy = 10 + 4 * i, 20
        px, py = 260 - 4 * i, 170
        img = bg.copy()
        img[fy:fy + 100, fx:fx + 100] = crop
        img[py:py + 40, px:px + 40] = patch
        frames.append(img)
        faces.append(inner + np.array([fx, fy, fx, fy]))
        patches.append([px, py, px + 40, py + 40])
    path = write_clip(tmp_path_factory.mktemp("gui") / "clip.mp4", frames, rate=25,
                      audio_seconds=1.6)
    return path, np.array(faces), np.array(patches, np.float64), frames


def test_review_a_video_follow_a_drawn_box_and_export_while_the_window_stays_responsive(
        window, face_and_patch_clip, tmp_path):
    path, faces, patches, _ = face_and_patch_clip
    use_solid_magenta(window)
    window.open_paths([path])
    wait_idle(window)
    review = window.review
    assert review.kind == "video" and review.frame_count == 40
    assert window.video_bar.isVisible()
    assert window.timeline.marks[:, 0].sum() >= 40  # the face is marked in every frame

    QTest.mouseClick(window.timeline, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     window.timeline.rect().center())
    wait_idle(window)
    assert 15 <= window.index <= 25
    index = window.index
    drag(window.original, patches[index])
    wait_idle(window)
    (_, boxes), = review.drawn.items()
    followed = sorted(i for i, (_, held) in boxes.items() if not held)
    assert followed == list(range(40))  # forwards and backwards through the whole clip
    for i in followed:
        assert iou_matrix(np.array([boxes[i][0]]), patches[i][None])[0, 0] > 0.6, i
    assert window.timeline.marks[:, 2].sum() == 40

    face = faces[index]
    click(window.original, (face[0] + face[2]) / 2, (face[1] + face[3]) / 2)
    wait_idle(window)
    assert all(review.faces(i).keep.sum() >= 1 for i in range(40))  # kept in every frame

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(window.progress.value()))
    timer.start(20)
    out = tmp_path / "clip.anonymized.mp4"
    window.export_to(out)
    assert window.busy and window.progress.isVisible()
    wait_idle(window)
    timer.stop()
    assert window.last_error == "" and out.is_file()
    assert len(ticks) >= 3  # the window's event loop ran all through the export
    assert not window.progress.isVisible()

    import av

    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
    before, after = decode_rgb(path), decode_rgb(out)
    assert len(after) == 40
    for i in range(40):
        x1, y1, x2, y2 = patches[i].astype(int)
        region = after[i][y1 + 6:y2 - 6, x1 + 6:x2 - 6].astype(int)
        assert (np.abs(region - MAGENTA).max(axis=2) < 40).mean() > 0.95, f"patch shows in frame {i}"
        x1, y1, x2, y2 = faces[i].astype(int)
        diff = np.abs(after[i][y1:y2, x1:x2].astype(int) - before[i][y1:y2, x1:x2].astype(int))
        assert diff.mean() < 6, f"kept face changed in frame {i}"


def test_a_camera_stream_is_shown_anonymized_until_stopped(window, face_and_patch_clip, qtbot):
    """A video file played live stands in for a camera (there is none here)."""
    path = face_and_patch_clip[0]
    use_solid_magenta(window)
    frames = []
    window.camera.frame.connect(lambda original, anonymized: frames.append((original, anonymized)))
    window.open_camera(str(path))
    qtbot.waitUntil(lambda: len(frames) >= 5, timeout=30_000)
    window.cancel()
    wait_idle(window)
    assert "Camera stopped" in window.status.text()
    assert window.anonymized.pixmap is not None
    original, anonymized = frames[-1]
    assert original.shape == anonymized.shape == (240, 320, 3)
    magenta = (np.abs(anonymized.astype(int) - MAGENTA).max(axis=2) < 40).sum()
    assert magenta > 2000  # the face is hidden in what is shown


# ---------------------------------------------------------------- settings, files, errors


def test_settings_are_remembered(window, settings):
    window.method.setCurrentText("pixelate")
    window.blocks.setValue(12)
    window.quality.setCurrentText("thorough")
    window.background.setCurrentText("blur")
    window.close()
    again = MainWindow(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    try:
        assert again.method.currentText() == "pixelate" and again.blocks.value() == 12
        assert again.quality.currentText() == "thorough"
        assert again.config.effect.method == "pixelate" and again.config.effect.blocks == 12
        assert again.config.detector.quality == "thorough"
        assert again.config.background.mode == "blur"
    finally:
        again.close()


def test_a_folder_opens_as_a_list_and_exports_mirrored(window, astronaut, tmp_path):
    src = tmp_path / "shots"
    (src / "sub").mkdir(parents=True)
    write_image(src / "a.png", astronaut)
    write_image(src / "sub" / "b.jpg", astronaut[:, ::-1])
    (src / "notes.txt").write_text("not a picture")
    window.open_paths([src])
    wait_idle(window)
    assert [p.name for p in window.items] == ["a.png", "b.jpg"]
    assert window.files_dock.isVisible() and window.file_list.count() == 2
    window.file_list.setCurrentRow(1)
    wait_idle(window)
    assert window.review.path.name == "b.jpg" and window.review.analyzed
    out = tmp_path / "clean"
    window.export_all_to(out)
    window.file_list.setCurrentRow(0)  # during an export: refused, the shown file stays
    assert "Wait for the current task" in window.last_error
    assert window.current.name == "b.jpg" and window.file_list.currentRow() == 1
    wait_idle(window)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        ["a.png", "sub/b.jpg"]
    assert "Exported 2 of 2" in window.status.text()
    img = read_image(out / "a.png").rgb
    assert np.abs(img[110:150, 200:240].astype(int) - astronaut[110:150, 200:240]).mean() > 5


def test_a_bad_file_is_a_message_not_a_crash(window, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    window.open_paths([bad])
    wait_idle(window)
    assert "broken.jpg" in window.last_error and "Traceback" not in window.last_error
    assert window.review is None and not window.export_action.isEnabled()
    window.open_paths([tmp_path / "missing.png"])
    assert "no such file" in window.last_error


def test_gui_without_a_display_says_so(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main(["gui"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("faceveil: error: no display") and "Traceback" not in err


def test_gui_help_runs_as_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "faceveil", "gui", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "--camera" in proc.stdout


# ---------------------------------------------------------------- screenshots


def test_screenshot(window, astronaut, face_and_patch_clip, tmp_path):
    """The window on a picture with a kept face and a drawn box, and on a video;
    FACEVEIL_SCREENSHOT=1 also writes docs/gui.png and docs/gui-video.png."""
    from PIL import Image

    group = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    photo = write_image(tmp_path / "two.png", group)
    window.open_paths([photo])
    wait_idle(window)
    faces = window.review.faces(0).xyxy
    right = faces[faces[:, 0].argmax()]
    click(window.original, (right[0] + right[2]) / 2, (right[1] + right[3]) / 2)
    drag(window.original, (430, 330, 520, 440))
    wait_idle(window)
    shots = {"gui.png": window.grab().toImage()}
    window.open_paths([face_and_patch_clip[0]])
    wait_idle(window)
    window.go_to(20)
    wait_idle(window)
    drag(window.original, face_and_patch_clip[2][20])
    wait_idle(window)
    shots["gui-video.png"] = window.grab().toImage()
    for name, image in shots.items():
        path = tmp_path / name
        assert image.save(str(path))
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert pixels.shape[0] >= 600 and pixels.std() > 20  # a real window, not a blank one
        if os.environ.get("FACEVEIL_SCREENSHOT"):
            target = REPO / "docs" / name
            target.parent.mkdir(exist_ok=True)
            Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                                     dither=Image.Dither.NONE).save(target, optimize=True)
