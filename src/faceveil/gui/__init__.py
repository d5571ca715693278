"""The desktop app (`faceveil gui`, the gui extra): see what will be hidden, fix it, export.

Qt (PySide6) is imported only here and below; `import faceveil` never loads it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import FaceveilError, MissingDependencyError

# What Qt's X11 platform plugin (libqxcb.so in PySide6 6.x) loads, by soname, with the Debian
# package that has it (`ldd .../PySide6/Qt/plugins/platforms/libqxcb.so`). A missing one makes Qt
# abort the whole process (SIGABRT) with a message that names only xcb-cursor.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def missing_libraries(libraries: dict[str, str] | None = None) -> list[str]:
    """The packages of the libraries (soname -> package) that cannot be loaded here."""
    missing = []
    for soname, package in (XCB_LIBRARIES if libraries is None else libraries).items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(package)
    return missing


def display_problem() -> str | None:
    """Why no window can open here (checked before Qt, which would abort the process), or None."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or (platform and not platform.startswith("xcb")):
        return None
    if not platform and os.environ.get("WAYLAND_DISPLAY"):
        return None
    if not os.environ.get("DISPLAY"):
        return ("no display to open a window on ($DISPLAY and $WAYLAND_DISPLAY are not set); "
                "run it on a desktop, or use `faceveil run` / `faceveil serve` instead")
    if missing := missing_libraries():
        return (f"Qt needs {len(missing)} system librar{'y' if len(missing) == 1 else 'ies'} to "
                f"open a window on X11 that {'is' if len(missing) == 1 else 'are'} not installed: "
                f"{' '.join(missing)} (Debian/Ubuntu: sudo apt install {' '.join(missing)})")
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
