"""The desktop app (`faceveil gui`, the gui extra): see what will be hidden, fix it, export.

Qt (PySide6) is imported only here and below; `import faceveil` never loads it.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import FaceveilError, MissingDependencyError


def display_problem() -> str | None:
    """Why no window can open here (checked before Qt, which would abort the process), or None."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform or not sys.platform.startswith("linux"):
        return None
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return ("no display to open a window on ($DISPLAY and $WAYLAND_DISPLAY are not set); "
                "run it on a desktop, or use `faceveil run` / `faceveil serve` instead")
    if not os.environ.get("WAYLAND_DISPLAY") and ctypes.util.find_library("xcb-cursor") is None:
        return ("Qt needs the system library libxcb-cursor to open a window on X11: "
                "sudo apt install libxcb-cursor0 (or your system's package of it)")
    return None


def main(paths: Sequence[str | Path] = (), *, camera: str | None = None) -> int:
    """Open the window (with these files, or a camera), run until it closes; the exit status."""
    if problem := display_problem():
        raise FaceveilError(problem)
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:
        raise MissingDependencyError(
            f"the desktop app needs PySide6 ({exc.name or exc}): pip install 'faceveil[gui]'") from exc
    from .window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "faceveil"])
    app.setApplicationName("faceveil")
    app.setOrganizationName("faceveil")
    window = MainWindow()
    window.show()
    if paths:
        window.open_paths([Path(p) for p in paths])
    elif camera is not None:
        window.open_camera(camera)
    return int(app.exec())
