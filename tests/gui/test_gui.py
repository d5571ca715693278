"""The desktop app, in real Qt (PySide6) driven by real mouse events: on a real X server (Xvfb,
started here when it is installed and no $DISPLAY is set; the xcb platform plugin) or else on
Qt's offscreen platform. FACEVEIL_GUI_PLATFORM=offscreen forces the latter.

    FACEVEIL_SCREENSHOT=1 pytest tests/gui/test_gui.py -k screenshot   # rewrites docs/gui*.png

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

from gui_display import qt_platform

os.environ.update(qt_platform())
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
from tests.pipeline.test_video import decode_rgb, face_crop, texture, write_clip

pytestmark = pytest.mark.gui
X11_EXPECTED = os.environ["QT_QPA_PLATFORM"] == "xcb"  # set above, before Qt starts
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
    # closing asks about unsaved changes; the tests that want that close it themselves
    qtbot.addWidget(w, before_close_func=lambda w: [r.mark_saved() for r in w.reviews.values()])
    w.resize(1400, 820)
    w.show()
    qtbot.waitExposed(w)
    yield w


def when_modal(act, timeout: float = 20.0, kind=None) -> None:
    """Do `act(dialog)` to the next modal dialog (of `kind`) once it is shown (from inside its
    own event loop, as a person would)."""
    import time

    from PySide6.QtWidgets import QApplication, QDialog

    end = time.monotonic() + timeout

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is not None and dialog.isVisible() and isinstance(dialog, kind or QDialog):
            act(dialog)
        elif time.monotonic() < end:
            QTimer.singleShot(50, poll)

    QTimer.singleShot(50, poll)


def type_file_name(path):
    """Puts `path` in a file dialog's name field and clicks its Open/Save button (typing it key
    by key would open the name completer's popup, which takes the click)."""
    def act(dialog) -> None:
        from PySide6.QtWidgets import QDialogButtonBox, QLineEdit

        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        assert edit is not None, f"not Qt's file dialog: {dialog!r}"
        edit.setText(str(path))
        buttons = dialog.findChild(QDialogButtonBox)
        ok = next(b for b in buttons.buttons()
                  if buttons.buttonRole(b) == QDialogButtonBox.ButtonRole.AcceptRole)
        QTest.mouseClick(ok, Qt.MouseButton.LeftButton)
    return act


def press(text: str, seen: list | None = None):
    """Clicks the button labelled `text` in a message box (its text goes to `seen`)."""
    def act(box) -> None:
        from PySide6.QtWidgets import QAbstractButton

        if seen is not None:
            seen.append(box.text())
        names = {b.text().replace("&", ""): b for b in box.findChildren(QAbstractButton)}
        assert text in names, f"no button {text!r} in {list(names)}"
        button = names[text]
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    return act


def click_action(window: MainWindow, action) -> None:
    """A real click on the action's toolbar button."""
    button = window.toolbar.widgetForAction(action)
    assert button is not None and button.isEnabled(), action.text()
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


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


def test_the_platform_is_a_real_x_server_when_xvfb_is_installed():
    import shutil

    from PySide6.QtWidgets import QApplication

    import gui_display

    app = QApplication.instance() or QApplication([])
    if shutil.which("Xvfb") is None or gui_display.CHOSEN:
        pytest.skip(f"Xvfb is not installed (apt install xvfb) or the platform was chosen; the "
                    f"tests ran on {app.platformName()}")
    assert X11_EXPECTED and app.platformName() == "xcb"


def test_open_analyse_export_a_photo_by_clicks_and_the_actions_come_alive(window, astronaut,
                                                                         tmp_path):
    """Open… and Export… through their toolbar buttons and Qt's file dialogs. Export, Save
    review and Export all are live as soon as the faces are shown, every time (they used to
    stay grey when the worker thread outlived its `done` signal)."""
    photo = write_image(tmp_path / "astronaut.png", astronaut)
    use_solid_magenta(window)
    for attempt in range(3):
        when_modal(type_file_name(photo))
        click_action(window, window.open_action)
        wait_idle(window)
        assert window.review is not None and window.review.analyzed, attempt
        assert window.export_action.isEnabled(), attempt
        assert window.save_action.isEnabled() and window.export_all_action.isEnabled(), attempt
    out = tmp_path / "out" / "astronaut.anonymized.png"
    out.parent.mkdir()
    when_modal(type_file_name(out))
    click_action(window, window.export_action)
    wait_idle(window)
    assert out.is_file() and window.last_error == "" and "Exported to" in window.status.text()
    face = window.review.faces(0).xyxy[0].astype(int)
    result = read_image(out).rgb
    x1, y1, x2, y2 = face
    assert (np.abs(result[y1:y2, x1:x2].astype(int) - MAGENTA).max(axis=2) < 40).mean() > 0.5
    assert not window.review.modified and window.windowTitle() == "faceveil: astronaut.png"

    # exporting again over that file: Qt's dialog asks first; "No" leaves it alone
    before = out.stat().st_mtime_ns
    seen: list[str] = []

    def refuse(dialog) -> None:
        from PySide6.QtWidgets import QDialogButtonBox, QFileDialog, QMessageBox

        def no_then_cancel(box) -> None:
            press("No", seen)(box)
            when_modal(lambda d: QTest.mouseClick(
                d.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Cancel),
                Qt.MouseButton.LeftButton), kind=QFileDialog)

        when_modal(no_then_cancel, kind=QMessageBox)
        type_file_name(out)(dialog)

    when_modal(refuse)
    click_action(window, window.export_action)
    wait_idle(window)
    assert seen and "already exists" in seen[0]
    assert out.stat().st_mtime_ns == before


def test_undo_redo_and_the_unsaved_changes_prompt(window, astronaut, tmp_path):
    photo = write_image(tmp_path / "astronaut.png", astronaut)
    window.open_paths([photo])
    wait_idle(window)
    review = window.review
    assert not window.undo_action.isEnabled()
    face = review.faces(0).xyxy[0]
    click(window.original, (face[0] + face[2]) / 2, (face[1] + face[3]) / 2)
    drag(window.original, (300, 300, 360, 380))
    assert review.faces(0).keep[0] and len(review.drawn) == 1
    assert window.windowTitle().endswith("*")
    click_action(window, window.undo_action)  # the drawn box goes
    assert not review.drawn and review.faces(0).keep[0]
    click_action(window, window.undo_action)  # then the decision
    assert not review.faces(0).keep.any() and not review.modified
    assert not window.windowTitle().endswith("*") and window.redo_action.isEnabled()
    click_action(window, window.redo_action)
    assert review.faces(0).keep[0] and review.modified
    wait_idle(window)

    seen: list[str] = []
    when_modal(press("Cancel", seen))
    window.close()
    assert window.isVisible() and "not saved" in seen[0] and "astronaut.png" in seen[0]
    when_modal(press("Save"))
    window.close()
    assert not window.isVisible()
    saved = tmp_path / "astronaut.faces.json"
    assert saved.is_file()
    from faceveil.review import Review

    assert Review.load(saved).faces(0).keep[0]


def test_export_all_asks_before_overwriting(window, astronaut, tmp_path):
    src = tmp_path / "shots"
    src.mkdir()
    write_image(src / "a.png", astronaut)
    write_image(src / "b.png", astronaut[:, ::-1])
    out = tmp_path / "clean"
    out.mkdir()
    (out / "a.png").write_bytes(b"an earlier output")
    window.open_paths([src])
    wait_idle(window)
    seen: list[str] = []
    when_modal(press("Cancel", seen))
    window.export_all_to(out)
    wait_idle(window)
    assert "1 of the 2 files are already in" in seen[0] and "a.png" in seen[0]
    assert not (out / "b.png").exists() and (out / "a.png").read_bytes() == b"an earlier output"
    when_modal(press("Skip those"))
    window.export_all_to(out)
    wait_idle(window)
    assert (out / "b.png").is_file() and (out / "a.png").read_bytes() == b"an earlier output"
    when_modal(press("Overwrite"))
    window.export_all_to(out)
    wait_idle(window)
    assert read_image(out / "a.png").rgb.shape == astronaut.shape
    assert "Exported 2 of 2" in window.status.text()


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
    when_modal(type_file_name(path))  # File > Open… by a click on its toolbar button
    click_action(window, window.open_action)
    wait_idle(window)
    review = window.review
    assert window.export_action.isEnabled()
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
    when_modal(type_file_name(out))  # Export… by a click, the name typed in Qt's dialog
    click_action(window, window.export_action)
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


def test_shift_click_splits_a_face_so_it_is_kept_only_from_that_frame(window, face_and_patch_clip,
                                                                     tmp_path):
    path, faces, _, _ = face_and_patch_clip
    window.open_paths([path])
    wait_idle(window)
    review = window.review
    window.go_to(20)
    wait_idle(window)
    face = faces[20]
    centre = ((face[0] + face[2]) / 2, (face[1] + face[3]) / 2)
    QTest.mouseClick(window.original, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     point(window.original, *centre))
    assert "split at frame 21" in window.status.text()
    click(window.original, *centre)  # keep him, only from here
    wait_idle(window)
    kept = [bool(review.faces(i).keep.any()) for i in range(40)]
    assert kept == [False] * 20 + [True] * 20
    click_action(window, window.undo_action)
    click_action(window, window.undo_action)
    assert not any(review.faces(i).keep.any() for i in range(40))
    assert len({int(t) for i in range(40) for t in review.faces(i).track_ids}) == \
        len({int(t) for t in review.faces(0).track_ids})  # one track again
    wait_idle(window)


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


def test_gui_names_exactly_the_missing_qt_xcb_libraries(monkeypatch, capsys):
    """Qt aborts the process (SIGABRT) when a library of its xcb plugin is missing, naming only
    xcb-cursor; `faceveil gui` checks every one first and names the packages that are missing."""
    from faceveil import gui

    monkeypatch.setenv("DISPLAY", os.environ.get("DISPLAY") or ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    missing = [p for p in gui.XCB_LIBRARIES.values() if p in gui.missing_libraries()]
    monkeypatch.setattr(gui, "XCB_LIBRARIES", {**gui.XCB_LIBRARIES,
                                               "libxcb-not-there.so.9": "libxcb-not-there9"})
    assert main(["gui"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.endswith(f"sudo apt install {' '.join([*missing, 'libxcb-not-there9'])})\n")
    if X11_EXPECTED:  # here every real one is installed
        assert not missing
        monkeypatch.undo()
        monkeypatch.setenv("DISPLAY", os.environ["DISPLAY"])
        monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
        assert gui.display_problem() is None


def test_gui_help_runs_as_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "faceveil", "gui", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "--camera" in proc.stdout


# ---------------------------------------------------------------- screenshots


def test_screenshot(window, astronaut, face_and_patch_clip, tmp_path):
    """The window on a picture with a kept face and a drawn box, and on a video, each after its
    export; FACEVEIL_SCREENSHOT=1 also writes docs/gui.png and docs/gui-video.png (`make
    screenshot`: under Xvfb when it is installed)."""
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
    window.export_to(tmp_path / "two.anonymized.png")  # shown after the export, as a person sees it
    wait_idle(window)
    assert "Exported to" in window.status.text() and window.export_action.isEnabled()
    shots = {"gui.png": window.grab().toImage()}
    window.open_paths([face_and_patch_clip[0]])
    wait_idle(window)
    window.go_to(20)
    wait_idle(window)
    drag(window.original, face_and_patch_clip[2][20])
    wait_idle(window)
    window.export_to(tmp_path / "clip.anonymized.mp4")
    wait_idle(window)
    assert "Exported to" in window.status.text() and window.export_action.isEnabled()
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
