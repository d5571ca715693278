"""The main window: open, review (keep/hide faces, draw missed ones), export.

Thin: every decision about faces is `faceveil.review.Review`'s, every picture comes from the
pipeline; the window turns clicks into calls and runs long work on a `Task` thread. Its rooms:
settings.py (the settings panel, built from the option table), preview.py (the frames the
preview shows), export.py (where exports go and the work that writes them), widgets.py (the
picture and the timeline), tasks.py (work off the Qt thread).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..config import PipelineConfig
from ..errors import FaceveilError
from ..media.images import SUFFIXES
from ..media.video import VIDEO_SUFFIXES
from ..pipeline.pipeline import Pipeline
from ..review import Review, follow_in_video
from ..sidecar import SCHEMA
from ..types import Frame
from .export import ExportSummary, default_name, export_all, export_one, plan_export
from .preview import CameraFrames, PreviewFrames
from .settings import SettingsPanel
from .tasks import Previewer, PreviewRequest, Task
from .widgets import Box, FrameView, Timeline

log = logging.getLogger(__name__)

MEDIA_FILTER = "Pictures and videos ({})".format(
    " ".join(f"*{s}" for s in sorted(set(SUFFIXES) | VIDEO_SUFFIXES)))
REVIEW_FILTER = "Saved reviews (*.faces.json *.json)"


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("faceveil", "faceveil")
        self.setWindowTitle("faceveil")
        self._ready = False  # option signals fire while the controls are built
        self.items: list[Path] = []
        self.root: Path | None = None  # the folder opened, if one was
        self.reviews: dict[Path, Review] = {}
        self.current: Path | None = None
        self.index = 0
        self.task: Task | None = None
        self.selected: int | None = None  # the track of the face last clicked
        self.last_error = ""
        self.config = PipelineConfig()
        self._detectors: dict[Any, Any] = {}  # DetectorConfig -> loaded detector
        self._render: Pipeline | None = None  # used by the preview thread only
        self._frames = PreviewFrames()
        self._preview_key = 0
        self._preview_meta = (0, 0, 0)  # (request key, picture width, height)
        self._task_what, self._note = "", ""
        self._analysed_with: dict[Path, Any] = {}  # review -> DetectorConfig it was analysed with
        self.previewer = Previewer(self)
        self.previewer.ready.connect(self._preview_ready)
        self.previewer.failed.connect(self._preview_failed)
        self.camera = CameraFrames(self)
        self.camera.frame.connect(self._camera_frame)
        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._play_step)
        self._build()
        self._restore()
        self._ready = True
        self._options_changed()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.original = FrameView("Original: click a face to keep or hide it; drag to add a box",
                                  editable=True)
        self.anonymized = FrameView("Anonymized (what will be exported)")
        self.original.clicked.connect(self._clicked)
        self.original.right_clicked.connect(self._right_clicked)
        self.original.box_drawn.connect(self._box_drawn)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.original)
        self.splitter.addWidget(self.anonymized)

        self.timeline = Timeline()
        self.timeline.seek.connect(self.go_to)
        style = self.style()
        self.back_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward),
                                      "Previous frame (Left)", lambda: self.go_to(self.index - 1))
        self.play_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay),
                                      "Play / pause (Space)", self.toggle_play)
        self.next_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward),
                                      "Next frame (Right)", lambda: self.go_to(self.index + 1))
        self.frame_label = QLabel("")
        nav = QHBoxLayout()
        for w in (self.back_button, self.play_button, self.next_button):
            nav.addWidget(w)
        nav.addWidget(self.timeline, 1)
        nav.addWidget(self.frame_label)
        self.video_bar = QWidget()
        self.video_bar.setLayout(nav)
        self.video_bar.hide()

        center = QWidget()
        layout = QVBoxLayout(center)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.video_bar)
        self.setCentralWidget(center)

        self.file_list = QListWidget()
        self.file_list.currentRowChanged.connect(self._row_changed)
        files = QDockWidget("Files", self)
        files.setObjectName("files")
        files.setWidget(self.file_list)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, files)
        self.files_dock = files
        files.hide()

        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self._settings_dock())
        self._actions()

        self.status = QLabel("Open a photo, a folder, a video or a camera to start.")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        bar = self.statusBar()
        bar.addWidget(self.status, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self.original.clear("No picture open")
        self.anonymized.clear("")
        self.resize(1280, 760)

    def _tool(self, icon, tip: str, slot) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon)
        b.setToolTip(tip)
        b.clicked.connect(slot)
        return b

    def _settings_dock(self) -> QDockWidget:
        """The settings panel (gui/settings.py, built from the option table) in a dock."""
        self.settings_panel = panel = SettingsPanel()
        panel.changed.connect(self._options_changed)
        panel.reanalyse_button.clicked.connect(self.analyse_again)
        self.reanalyse_button = panel.reanalyse_button
        # the controls, also as the window's attributes (window.method, window.blocks, ...)
        for name, widget in panel.widgets.items():
            setattr(self, name, widget)
        self.effect_image = panel.widgets["image"]
        dock = QDockWidget("Settings", self)
        dock.setObjectName("settings")
        dock.setWidget(panel)
        return dock

    def _actions(self) -> None:
        def action(text: str, slot, shortcut: Any = None, tip: str = "") -> QAction:
            a = QAction(text, self)
            a.triggered.connect(slot)
            if shortcut is not None:
                a.setShortcut(shortcut)
            a.setToolTip(tip or text)
            return a

        self.open_action = action("Open…", self.choose_files, QKeySequence.StandardKey.Open,
                                  "Open photos, videos or a saved review")
        self.open_folder_action = action("Open folder…", self.choose_folder)
        self.camera_action = action("Camera…", self.choose_camera, tip="Anonymize a camera or stream live")
        self.save_action = action("Save review…", self.choose_save, QKeySequence.StandardKey.Save,
                                  "Save faces, choices and drawn boxes to re-open later")
        self.export_action = action("Export…", self.choose_export, "Ctrl+E",
                                    "Write the anonymized picture or video")
        self.export_all_action = action("Export all…", self.choose_export_all, "Ctrl+Shift+E",
                                        "Anonymize every open file into a folder")
        quit_action = action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = action("Undo", self.undo, QKeySequence.StandardKey.Undo,
                                  "Take back the last decision, drawn box, removal or split")
        self.redo_action = action("Redo", self.redo, QKeySequence.StandardKey.Redo)
        self.split_action = action("Split the selected face here", self.split_selected, "Ctrl+T",
                                   "The selected face (the last one clicked) becomes a separate face "
                                   "from this frame on: then keep or hide only that part "
                                   "(Shift+click a face does the same)")
        menu = self.menuBar().addMenu("&File")
        for a in (self.open_action, self.open_folder_action, self.camera_action, None,
                  self.save_action, self.export_action, self.export_all_action, None, quit_action):
            menu.addSeparator() if a is None else menu.addAction(a)
        edit = self.menuBar().addMenu("&Edit")
        for a in (self.undo_action, self.redo_action, self.split_action):
            edit.addAction(a)
        tools = self.toolbar = self.addToolBar("File")
        tools.setObjectName("toolbar")
        for a in (self.open_action, self.open_folder_action, self.camera_action,
                  self.save_action, self.export_action, self.export_all_action, None,
                  self.undo_action, self.redo_action):
            tools.addSeparator() if a is None else tools.addAction(a)
        for key, slot in ((Qt.Key.Key_Left, lambda: self.go_to(self.index - 1)),
                          (Qt.Key.Key_Right, lambda: self.go_to(self.index + 1)),
                          (Qt.Key.Key_Space, self.toggle_play)):
            a = QAction(self)
            a.setShortcut(QKeySequence(key))
            a.triggered.connect(slot)
            self.addAction(a)
        self._enable()

    # ------------------------------------------------------------------ settings remembered

    def _restore(self) -> None:
        s = self.settings
        self.settings_panel.restore(s)
        if (geometry := s.value("window/geometry")) is not None:
            self.restoreGeometry(QByteArray(geometry))
        if (state := s.value("window/state")) is not None:
            self.restoreState(QByteArray(state))

    def _remember(self) -> None:
        self.settings_panel.remember(self.settings)

    def options(self) -> dict[str, Any]:
        """The controls as the pipeline's flat options (what `faceveil run` flags set)."""
        return self.settings_panel.options()

    def _options_changed(self, *_: Any) -> None:
        if not self._ready:
            return
        try:
            config = PipelineConfig.from_options(**self.options())
            render = Pipeline(config)
        except (FaceveilError, ValueError) as exc:
            self.settings_panel.show_error(str(exc))
            return
        self.settings_panel.show_error("")
        self.config, self._render = config, render
        self._remember()
        self._enable()
        self.refresh()

    # ------------------------------------------------------------------ opening

    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open photos, videos or a saved review", self._dir("open"),
            f"{MEDIA_FILTER};;{REVIEW_FILTER};;All files (*)")
        if paths:
            self.open_paths([Path(p) for p in paths])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder", self._dir("open"))
        if folder:
            self.open_paths([Path(folder)])

    def choose_camera(self) -> None:
        text, ok = QInputDialog.getText(
            self, "Camera or stream", "Camera number (0 is the first), device, stream URL or video "
            "file to play live:", text=str(self.settings.value("paths/camera", "0")))
        if ok and text.strip():
            self.settings.setValue("paths/camera", text.strip())
            self.open_camera(text.strip())

    def _dir(self, key: str) -> str:
        return str(self.settings.value(f"paths/{key}", str(Path.home())))

    def open_paths(self, paths: list[Path]) -> None:
        """Open pictures, videos, folders (searched recursively) and saved reviews."""
        from ..paths import plan

        if self._blocked():
            return
        items: list[Path] = []
        problems: list[str] = []
        media = [p for p in paths if not _is_review_file(p)]
        found = plan([str(p) for p in media], "-") if media else None
        if found is not None:
            items += [src for src, _ in found.pairs]
            problems += [f"{what}: {why}" for what, why in found.errors]
        for p in paths:
            if _is_review_file(p):
                try:
                    review = Review.load(p)
                except (FaceveilError, OSError) as exc:
                    problems.append(f"{p.name}: {exc}")
                    continue
                self.reviews[review.path] = review
                self._analysed_with[review.path] = None
                items.append(review.path)
        if problems:
            self.show_error("\n".join(problems))
        if not items:
            return
        self.root = paths[0] if len(paths) == 1 and paths[0].is_dir() else None
        self.settings.setValue("paths/open", str(paths[0].parent if paths[0].is_file() else paths[0]))
        self.items = list(dict.fromkeys(items))
        self.file_list.blockSignals(True)
        self.file_list.clear()
        for p in self.items:
            self.file_list.addItem(QListWidgetItem(p.name))
        self.file_list.blockSignals(False)
        self.files_dock.setVisible(len(self.items) > 1)
        self.file_list.setCurrentRow(0)
        self._row_changed(0)

    def _row_changed(self, row: int) -> None:
        if 0 <= row < len(self.items):
            self.select(self.items[row])

    def _blocked(self) -> bool:
        """A task that must not be dropped (export, following a box) is running: say so.
        A camera is stopped and an analysis cancelled instead."""
        if self._stop_camera() or self.task is None or self.task.name == "analyse":
            return False
        self.show_error("Wait for the current task to finish (or cancel it) first.")
        return True

    def select(self, path: Path) -> None:
        """Show `path`, analysing it first if that was not done yet."""
        if self._blocked():
            if self.current in self.items:  # the list shows what is shown
                self.file_list.blockSignals(True)
                self.file_list.setCurrentRow(self.items.index(self.current))
                self.file_list.blockSignals(False)
            return
        self.play_timer.stop()
        self.current, self.index, self.selected = path, 0, None
        self.setWindowTitle(f"faceveil: {path.name}")
        review = self.reviews.get(path)
        if review is not None and review.analyzed:
            self._shown()
            return
        self.original.clear("Looking for faces…")
        self.anonymized.clear("")
        self._analyse(path)

    def _analyse(self, path: Path) -> None:
        config = self.config
        existing = self.reviews.get(path)
        pipeline = self._pipeline(config)

        def work(progress, cancel):
            review = existing or Review.open(path)
            review.analyze(pipeline, on_progress=progress, cancel=cancel)
            return review

        def done(review: Review) -> None:
            self.reviews[path] = review
            self._analysed_with[path] = config.detector
            self._keep_detector(pipeline)
            if path == self.current:
                self._shown()

        def failed(message: str) -> None:
            if path == self.current:
                self.original.clear(f"Cannot open {path.name}:\n{message}")
            self.show_error(f"{path.name}: {message}")

        self._start(Task("analyse", work, self), f"Looking for faces in {path.name}", done, failed)

    def analyse_again(self) -> None:
        if self.current is not None and self.current in self.reviews and not self.busy:
            self._analyse(self.current)

    def _pipeline(self, config: PipelineConfig) -> Pipeline:
        """A pipeline for a task; the detector loaded for earlier tasks is reused."""
        return Pipeline(config, detector=self._detectors.get(config.detector))

    def _keep_detector(self, pipeline: Pipeline) -> None:
        if pipeline._detector is not None:
            self._detectors = {pipeline.config.detector: pipeline._detector}

    # ------------------------------------------------------------------ showing

    @property
    def review(self) -> Review | None:
        return self.reviews.get(self.current) if self.current is not None else None

    def _shown(self) -> None:
        review = self.review
        if review is None:
            return
        video = review.kind == "video"
        self.video_bar.setVisible(video)
        if video:
            self.timeline.set_marks(review.marks())
        self.go_to(self.index)
        self._enable()
        what = f"{review.frame_count} frames, " if video else ""
        self.set_status(f"{review.path.name}: {what}{review.counts().describe(video)}. "
                        "Click a face to keep it "
                        "visible; drag to hide one the detector missed.")

    def go_to(self, index: int) -> None:
        review = self.review
        if review is None or not review.frame_count:
            return
        self.index = max(0, min(index, review.frame_count - 1))
        self.timeline.set_position(self.index)
        if review.kind == "video":
            fps = review.fps or 25.0
            self.frame_label.setText(f"frame {self.index + 1} / {review.frame_count}  "
                                     f"{_clock(self.index / fps)}")
        self.refresh()

    def refresh(self) -> None:
        """Boxes now, pictures when the preview thread has rendered them."""
        review, render = self.review, self._render
        if review is None or not review.analyzed or render is None or not review.frame_count:
            return
        index = self.index
        faces = review.faces(index)
        self.original.show_boxes([
            Box(tuple(map(float, faces.xyxy[i])), int(faces.track_ids[i]), bool(faces.keep[i]),
                int(faces.track_ids[i]) in review.drawn, "" if faces.why is None else str(faces.why[i]))
            for i in range(len(faces))] if faces.track_ids is not None else [])
        self._preview_key += 1
        frames = self._frames

        def source() -> np.ndarray:
            return frames.get(review, index)

        still = review.kind == "picture"  # as the export renders it

        def anonymize(original: np.ndarray) -> np.ndarray:
            scale = original.shape[1] / review.width
            return render.render(Frame(original), faces.scaled(scale), still=still)

        self._preview_meta = (self._preview_key, review.width, review.height)
        self.previewer.request(PreviewRequest(self._preview_key, source, anonymize))

    def _preview_ready(self, key: int, original: np.ndarray, anonymized: np.ndarray) -> None:
        if key != self._preview_key:
            return
        _, w, h = self._preview_meta
        self.original.show_image(original, (w, h))
        self.anonymized.show_image(anonymized, (w, h))

    def _preview_failed(self, key: int, message: str) -> None:
        if key == self._preview_key:
            self.anonymized.clear(f"Cannot show this frame: {message}")

    def toggle_play(self) -> None:
        review = self.review
        if self.play_timer.isActive() or review is None or review.kind != "video":
            self.play_timer.stop()
            return
        self.play_timer.start(max(10, round(1000 / (review.fps or 25.0))))

    def _play_step(self) -> None:
        review = self.review
        if review is None or self.index >= review.frame_count - 1:
            self.play_timer.stop()
        elif self.previewer.idle:  # frames the preview cannot keep up with are skipped
            self.go_to(self.index + 1)

    # ------------------------------------------------------------------ editing

    def _editable(self) -> Review | None:
        review = self.review
        if review is None or not review.analyzed or self.busy:
            return None
        return review

    def _clicked(self, x: float, y: float) -> None:
        review = self._editable()
        if review is None:
            return
        track = review.face_at(self.index, x, y)
        if track is None:
            return
        self.selected = track
        if QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.split_selected()
            return
        kept = review.toggle(track, self.index)
        self.set_status(f"Face {'kept visible' if kept else 'hidden'}"
                        + (" in every frame it appears in (Shift+click: only from this frame on)."
                           if review.kind == "video" else "."))
        self._edited()

    def split_selected(self) -> None:
        """The selected face, from this frame on, becomes a face of its own."""
        review = self._editable()
        if review is None or self.selected is None:
            return
        try:
            self.selected = review.split(self.selected, self.index)
        except FaceveilError as exc:
            self.set_status(f"Cannot split: {exc}")
            return
        self.set_status(f"Face split at frame {self.index + 1}: click it to keep or hide it from "
                        "here on only.")
        self._edited()

    def undo(self) -> None:
        review = self._editable()
        if review is not None and review.undo():
            self.set_status("Undone.")
            self._edited()

    def redo(self) -> None:
        review = self._editable()
        if review is not None and review.redo():
            self.set_status("Redone.")
            self._edited()

    def _right_clicked(self, x: float, y: float) -> None:
        review = self._editable()
        if review is None:
            return
        track = review.face_at(self.index, x, y)
        if track is not None and review.remove_drawn(track):
            self.set_status("Drawn box removed.")
            self._edited()

    def _box_drawn(self, x1: float, y1: float, x2: float, y2: float) -> None:
        review = self._editable()
        if review is None:
            return
        box = (x1, y1, x2, y2)
        if review.kind == "picture":
            review.add_drawn({0: (box, False)})
            self.set_status("Box added: it will be hidden.")
            self._edited()
            return
        path, index, size, hold = review.path, self.index, (review.width, review.height), \
            self.config.video.hold

        def work(progress, cancel):
            return follow_in_video(path, index, box, size, hold=hold, on_progress=progress,
                                   cancel=cancel)

        def done(boxes: dict) -> None:
            review.add_drawn(boxes)
            first, last = min(boxes), max(boxes)
            self.set_status(f"Box added and followed from frame {first + 1} to {last + 1}.")
            self._edited()

        self._start(Task("follow", work, self), "Following the drawn face through the video", done)

    def _edited(self) -> None:
        review = self.review
        if review is not None and review.kind == "video":
            self.timeline.set_marks(review.marks())
        self._enable()
        self.refresh()

    # ------------------------------------------------------------------ saving and exporting

    def choose_save(self) -> None:
        review = self.review
        if review is None or not review.analyzed:
            return
        default = review.path.with_name(review.path.stem + ".faces.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save review", str(default), REVIEW_FILTER)
        if path:
            self.save_review_to(Path(path))

    def save_review_to(self, path: Path) -> None:
        review = self.review
        if review is None:
            return
        try:
            review.save(path, self.config)
        except (FaceveilError, OSError) as exc:
            self.show_error(f"Cannot save the review: {exc}")
            return
        self.set_status(f"Review saved to {path}. Open it again with Open…")

    def choose_export(self) -> None:
        review = self.review
        if review is None:
            return
        folder = Path(self._dir("export")) if self.settings.contains("paths/export") else \
            review.path.parent
        path, _ = QFileDialog.getSaveFileName(self, "Export anonymized",
                                              str(folder / default_name(review, self.config)))
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path) -> None:
        """Render the current review into `path`, on a task thread (export.export_one)."""
        review = self.review
        if review is None or self.busy:
            return
        self.settings.setValue("paths/export", str(path.parent))
        pipeline = self._pipeline(self.config)

        def done(out: Path) -> None:
            self._keep_detector(pipeline)
            self.set_status(f"Exported to {out}")

        self._start(Task("export", lambda progress, cancel: export_one(
            review, path, pipeline, progress, cancel), self),
            f"Exporting {review.path.name}", done)

    def choose_export_all(self) -> None:
        if not self.items:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export everything into a folder",
                                                  self._dir("export"))
        if folder:
            self.export_all_to(Path(folder))

    def export_all_to(self, folder: Path, existing: str = "ask") -> None:
        """Every open file into `folder` (export.plan_export, export.export_all). Outputs that
        are already there: `existing` "ask" (the person chooses), "overwrite" or "skip"."""
        if self.busy or not self.items:
            return
        planned = plan_export(self.items, self.root, folder)
        if planned.there and existing == "ask":
            answer = self.ask("Files already there", planned.question(),
                              ["Overwrite", "Skip those", "Cancel"], "Cancel")
            if answer == "Cancel":
                self.set_status("Export cancelled: nothing was written.")
                return
            existing = "overwrite" if answer == "Overwrite" else "skip"
        if existing == "skip":
            planned = planned.skipping_existing()
        self.settings.setValue("paths/export", str(folder))
        pipeline = self._pipeline(self.config)
        reviews = dict(self.reviews)

        def finished(summary: ExportSummary) -> None:
            self._keep_detector(pipeline)
            self.set_status(summary.status())
            if summary.failed:
                self.show_error(summary.error())

        self._start(Task("export", lambda progress, cancel: export_all(
            planned, reviews, pipeline, progress, cancel, self._task_note), self),
            f"Exporting {len(planned.pairs)} files", finished)

    # ------------------------------------------------------------------ camera

    def open_camera(self, source: str) -> None:
        from ..live import run_live

        if self.busy:
            self.show_error("Wait for the current task to finish (or cancel it) first.")
            return
        self.play_timer.stop()
        self.current = None
        self.video_bar.hide()
        self.original.clear(f"Connecting to {source}…")
        self.anonymized.clear("")
        self.original.show_boxes([])
        pipeline = Pipeline(self.config)
        sink = self.camera

        def work(progress, cancel):
            return run_live(source, pipeline, [sink], stop=cancel)

        def done(report) -> None:
            self.set_status(f"Camera stopped: {report.frames_out} frames shown, "
                            f"{report.dropped} dropped.")

        self._start(Task("camera", work, self), f"Live: {source} (Cancel stops it)", done)

    def _camera_frame(self, original: np.ndarray, anonymized: np.ndarray) -> None:
        if self.task is not None and self.task.name == "camera":
            h, w = original.shape[:2]
            self.original.show_image(original, (w, h))
            self.anonymized.show_image(anonymized, (w, h))

    def _stop_camera(self) -> bool:
        """Stop a running camera; True when nothing runs any more."""
        if self.task is not None and self.task.running and self.task.name == "camera":
            self.task.cancel()
            self.task.thread.join(10)
            if not self.task.thread.is_alive():
                self.task.handled = True  # stopped here; its queued `cancelled` changes nothing
        return not self.busy

    # ------------------------------------------------------------------ tasks

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.running

    def _start(self, task: Task, what: str, on_done, on_failed=None) -> None:
        previous = self.task
        if previous is not None and previous.running:
            previous.cancel()
            previous.thread.join(30)
        self.task = task
        self._task_what, self._note = what, ""
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.set_status(what + "…")
        task.progress.connect(self._task_progress)

        def finish() -> None:
            task.handled = True
            if self.task is task:
                self.progress.hide()
                self.cancel_button.hide()
                self._enable(busy=False)  # this task has ended, whether or not its thread has

        def done(result: Any) -> None:
            finish()
            on_done(result)

        def failed(message: str) -> None:
            finish()
            (on_failed or (lambda m: self.show_error(f"{what}: {m}")))(message)

        def cancelled() -> None:
            finish()
            if self.task is task:
                self.set_status(f"{what}: cancelled.")

        task.done.connect(done)
        task.failed.connect(failed)
        task.cancelled.connect(cancelled)
        self._enable(busy=True)
        task.start()

    def ask(self, title: str, text: str, buttons: list[str], default: str) -> str:
        """A question in a modal box; the text of the button pressed (`default` on Escape)."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton,
                          self)
        made = {}
        for name in buttons:
            role = QMessageBox.ButtonRole.RejectRole if name == default else \
                QMessageBox.ButtonRole.AcceptRole
            made[name] = box.addButton(name, role)
        box.setDefaultButton(made[buttons[0]])
        box.setEscapeButton(made[default])
        box.exec()
        clicked = box.clickedButton()
        return next((name for name, b in made.items() if b is clicked), default)

    def _task_note(self, text: str) -> None:
        """Called from a task thread: the item it works on (shown with the next progress)."""
        self._note = text

    def _task_progress(self, done: int, total: int, name: str) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
        self.set_status(f"{self._task_what}: {self._note or name} {done}/{total or '?'}")

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _enable(self, busy: bool | None = None) -> None:
        busy = self.busy if busy is None else busy
        review = self.review
        ready = review is not None and review.analyzed and not busy
        self.save_action.setEnabled(ready)
        self.export_action.setEnabled(ready)
        self.export_all_action.setEnabled(bool(self.items) and not busy)
        self.undo_action.setEnabled(ready and review.can_undo)
        self.redo_action.setEnabled(ready and review.can_redo)
        self.split_action.setEnabled(ready and review.kind == "video" and self.selected is not None)
        if self.current is not None:
            mark = " *" if review is not None and review.modified else ""
            self.setWindowTitle(f"faceveil: {self.current.name}{mark}")
        self.reanalyse_button.setEnabled(
            ready and self._analysed_with.get(self.current, self.config.detector) != self.config.detector)

    # ------------------------------------------------------------------ messages, closing

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def show_error(self, message: str) -> None:
        self.last_error = message
        self.set_status(message.splitlines()[0])
        box = QMessageBox(QMessageBox.Icon.Warning, "faceveil", message, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not modal to the app: tasks and tests go on

    def unsaved(self) -> list[Review]:
        """Reviews changed since they were opened, saved or exported."""
        return [r for r in self.reviews.values() if r.modified]

    def closeEvent(self, event: QCloseEvent) -> None:
        if changed := self.unsaved():
            names = ", ".join(r.path.name for r in changed[:5]) + (" …" if len(changed) > 5 else "")
            answer = self.ask("Unsaved changes", f"Your choices and drawn boxes in {names} are not "
                              "saved or exported. Save the review beside each file "
                              "(NAME.faces.json) before closing?",
                              ["Save", "Close without saving", "Cancel"], "Cancel")
            if answer == "Cancel":
                event.ignore()
                return
            if answer == "Save":
                for review in changed:
                    target = review.path.with_name(review.path.stem + ".faces.json")
                    try:
                        review.save(target, self.config)
                    except (FaceveilError, OSError) as exc:
                        self.show_error(f"Cannot save the review of {review.path.name}: {exc}")
                        event.ignore()
                        return
        self.play_timer.stop()
        if self.task is not None and self.task.running:
            self.task.cancel()
            self.task.thread.join(30)
        self.previewer.close()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self._remember()
        self.settings.sync()
        super().closeEvent(event)


def _is_review_file(path: Path) -> bool:
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8") as f:
            return SCHEMA in f.read(4096)
    except OSError:
        return False


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:05.2f}"
