"""Work off the window's thread: long tasks (analyse, follow, export, camera) and the preview.

A `Task` runs one function on a Python thread and reports through Qt signals, which Qt delivers
on the window's thread; the function gets a progress callback and a cancel event (the library's
`Progress` events; `faceveil.review.checked` turns the event into `Cancelled`). The `Previewer`
renders the frame on show on its own thread, newest request first, so scrubbing a video never
queues up work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..errors import describe_error
from ..pipeline.events import Progress, ProgressCallback
from ..review import Cancelled

log = logging.getLogger(__name__)

PREVIEW_SIDE = 1280  # the preview is rendered at most this long a side

Work = Callable[[ProgressCallback, threading.Event], Any]


class Task(QObject):
    """One function on its own thread. Signals: progress(done, total or 0, what), done(result),
    failed(message), cancelled()."""

    progress = Signal(int, int, str)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, name: str, work: Work, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.work = work
        self.cancel_event = threading.Event()
        # set on the window's thread once the end (done, failed or cancelled) has been handled
        # there: "running" must not depend on whether the worker thread is still winding down
        # (in the `done` slot it often is) nor on a signal still queued after it has ended
        self.handled = False
        self.thread = threading.Thread(target=self._run, name=f"faceveil-gui-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def running(self) -> bool:
        return self.thread.ident is not None and not self.handled

    def _progress(self, event: Progress) -> None:
        self.progress.emit(event.done, event.total or 0, Path(event.path).name if event.path else "")

    def _run(self) -> None:
        try:
            result = self.work(self._progress, self.cancel_event)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # shown to the person as one line
            log.debug("task %s failed", self.name, exc_info=True)
            self.failed.emit(describe_error(exc))
        else:
            self.done.emit(result)


@dataclass(frozen=True)
class PreviewRequest:
    key: int  # echoed back, so the window can drop answers to old requests
    source: Callable[[], np.ndarray]  # gives the original picture (on the preview thread)
    render: Callable[[np.ndarray], np.ndarray]  # the anonymized picture from the original


class Previewer(QObject):
    """Renders the newest request on one thread: ready(key, original, anonymized) or
    failed(key, message). Requests not started yet are replaced by newer ones."""

    ready = Signal(int, object, object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: PreviewRequest | None = None
        self._wake = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="faceveil-gui-preview", daemon=True)
        self._thread.start()

    def request(self, req: PreviewRequest) -> None:
        with self._wake:
            self._pending = req
            self._wake.notify()

    @property
    def idle(self) -> bool:
        with self._wake:
            return self._pending is None and not self._busy

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                req, self._pending, self._busy = self._pending, None, True
            try:
                original = req.source()
                self.ready.emit(req.key, original, req.render(original))
            except Exception as exc:
                log.debug("preview failed", exc_info=True)
                self.failed.emit(req.key, describe_error(exc))
            finally:
                with self._wake:
                    self._busy = False
