"""The window's drawing widgets: a picture with face boxes, and a video timeline. No pipeline here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

HIDDEN = QColor(40, 220, 40)  # as `--draw-boxes`: green hidden, red kept
KEPT = QColor(255, 60, 60)
DRAWN = QColor(255, 170, 0)
DRAG = 5  # pixels the mouse must move before a press becomes drawing a box


def to_qimage(rgb: np.ndarray) -> QImage:
    """An RGB (or RGBA) uint8 array as a QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb)
    h, w, c = rgb.shape
    fmt = QImage.Format.Format_RGBA8888 if c == 4 else QImage.Format.Format_RGB888
    return QImage(rgb.data, w, h, rgb.strides[0], fmt).copy()


@dataclass(frozen=True)
class Box:
    xyxy: tuple[float, float, float, float]  # in pixels of the full-size picture
    track: int
    kept: bool
    drawn: bool
    why: str = ""  # the people decision ("kept: ann at 0.31; ..."), when --keep/--only is on

    @property
    def label(self) -> str:
        state = "kept" if self.kept else "hidden"
        if not self.drawn and self.why.startswith(state):  # not overridden by the person
            return self.why.split(";")[0]
        return ("drawn, " if self.drawn else "") + state


class FrameView(QWidget):
    """A picture scaled to fit, with face boxes over it.

    Boxes and the signals are in pixels of the full-size picture (`size`), whatever the size of
    the image shown. When `editable`: a click on a face emits `clicked`, a right-click
    `right_clicked`, and a drag draws a box (`box_drawn`).
    """

    clicked = Signal(float, float)
    right_clicked = Signal(float, float)
    box_drawn = Signal(float, float, float, float)

    def __init__(self, title: str, *, editable: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.editable = editable
        self.pixmap: QPixmap | None = None
        self.size_ = (0, 0)
        self.boxes: list[Box] = []
        self.placeholder = ""
        self._press: QPointF | None = None
        self._drag: QPointF | None = None
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        if editable:
            self.setCursor(Qt.CursorShape.CrossCursor)

    def sizeHint(self) -> QSize:
        return QSize(640, 420)

    def show_image(self, rgb: np.ndarray | None, size: tuple[int, int] | None = None) -> None:
        """`size`: (width, height) of the full-size picture the boxes refer to."""
        self.pixmap = None if rgb is None else QPixmap.fromImage(to_qimage(rgb))
        if rgb is not None:
            self.size_ = size or (rgb.shape[1], rgb.shape[0])
        self.update()

    def show_boxes(self, boxes: list[Box]) -> None:
        self.boxes = boxes
        self.update()

    def clear(self, placeholder: str = "") -> None:
        self.pixmap, self.boxes, self.placeholder = None, [], placeholder
        self.update()

    # ---- geometry: full-size picture pixels <-> widget pixels

    def picture_rect(self) -> QRectF:
        w, h = self.size_
        if not w or not h:
            return QRectF()
        s = min(self.width() / w, (self.height() - 20) / h)
        return QRectF((self.width() - w * s) / 2, 20 + (self.height() - 20 - h * s) / 2, w * s, h * s)

    def to_widget(self, x: float, y: float) -> QPointF:
        r = self.picture_rect()
        return QPointF(r.x() + x * r.width() / self.size_[0], r.y() + y * r.height() / self.size_[1])

    def to_picture(self, p: QPointF) -> tuple[float, float]:
        r = self.picture_rect()
        x = (p.x() - r.x()) * self.size_[0] / r.width()
        y = (p.y() - r.y()) * self.size_[1] / r.height()
        return min(max(x, 0.0), self.size_[0]), min(max(y, 0.0), self.size_[1])

    # ---- painting

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(32, 32, 36))
        p.setPen(QColor(220, 220, 220))
        p.drawText(QRectF(6, 0, self.width() - 12, 20), Qt.AlignmentFlag.AlignVCenter, self.title)
        if self.pixmap is None:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        r = self.picture_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawPixmap(r, self.pixmap, QRectF(self.pixmap.rect()))
        for box in self.boxes:
            color = DRAWN if box.drawn else (KEPT if box.kept else HIDDEN)
            pen = QPen(color, 2, Qt.PenStyle.DashLine if box.kept else Qt.PenStyle.SolidLine)
            p.setPen(pen)
            a, b = self.to_widget(*box.xyxy[:2]), self.to_widget(*box.xyxy[2:])
            p.drawRect(QRectF(a, b))
            label = box.label
            tag = p.fontMetrics().boundingRect(label).adjusted(-3, -1, 3, 1)
            tag.moveBottomLeft(QPointF(a.x(), a.y() - 1).toPoint())
            p.fillRect(tag, QColor(0, 0, 0, 170))
            p.drawText(tag, Qt.AlignmentFlag.AlignCenter, label)
        if self._press is not None and self._drag is not None:
            p.setPen(QPen(DRAWN, 1, Qt.PenStyle.DashLine))
            p.drawRect(QRectF(self._press, self._drag).normalized())

    # ---- mouse

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if not self.editable or self.pixmap is None:
            return
        if event.button() == Qt.MouseButton.RightButton:
            self.right_clicked.emit(*self.to_picture(event.position()))
        elif event.button() == Qt.MouseButton.LeftButton:
            self._press, self._drag = event.position(), None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is not None and (event.position() - self._press).manhattanLength() >= DRAG:
            self._drag = event.position()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._press is None or event.button() != Qt.MouseButton.LeftButton:
            return
        press, self._press, self._drag = self._press, None, None
        if (event.position() - press).manhattanLength() < DRAG:
            self.clicked.emit(*self.to_picture(press))
        else:
            (x1, y1), (x2, y2) = self.to_picture(press), self.to_picture(event.position())
            if abs(x2 - x1) >= 2 and abs(y2 - y1) >= 2:
                self.box_drawn.emit(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        self.update()


class Timeline(QWidget):
    """A video's frames as a strip: marks where faces are (green hidden, red kept, orange
    drawn), the current frame as a line; click or drag to go to a frame (`seek`)."""

    seek = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.marks = np.zeros((0, 3), np.int32)
        self.frames = 0
        self.position = 0
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_marks(self, marks: np.ndarray, frames: int | None = None) -> None:
        self.marks = marks
        self.frames = frames if frames is not None else len(marks)
        self.update()

    def set_position(self, index: int) -> None:
        self.position = index
        self.update()

    def frame_at(self, x: float) -> int:
        return int(min(max(x / max(self.width(), 1) * self.frames, 0), max(self.frames - 1, 0)))

    def x_of(self, index: int) -> float:
        return (index + 0.5) * self.width() / max(self.frames, 1)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor(48, 48, 54))
        if self.frames and len(self.marks) and w > 0:
            # each pixel column is marked when any frame under it has such a face
            n = len(self.marks)
            starts = np.minimum((np.arange(w) * n) // w, n - 1)
            for row, color in ((0, HIDDEN), (1, KEPT), (2, DRAWN)):
                has = np.maximum.reduceat(self.marks[:, row] > 0, starts)
                y0, band = 4 + row * (h - 8) // 3, max(1, (h - 8) // 3 - 1)
                edges = np.flatnonzero(np.diff(np.concatenate([[0], has.astype(np.int8), [0]])))
                for x0, x1 in zip(edges[::2], edges[1::2], strict=True):
                    p.fillRect(int(x0), y0, int(x1 - x0), band, color)
        if self.frames:
            p.setPen(QPen(QColor(255, 255, 255), 2))
            x = self.x_of(self.position)
            p.drawLine(QPointF(x, 0), QPointF(x, h))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.frames:
            self.seek.emit(self.frame_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self.frames and event.buttons() & Qt.MouseButton.LeftButton:
            self.seek.emit(self.frame_at(event.position().x()))
