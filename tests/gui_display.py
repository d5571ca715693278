"""Where the GUI tests open their windows: a real X server when one can be had.

A private Xvfb is started when it is installed and no $DISPLAY is set, and Qt's xcb platform is
used when its libraries load; otherwise Qt's offscreen platform. FACEVEIL_GUI_PLATFORM=offscreen
forces the latter.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess


def start_xvfb() -> str | None:
    """A private X server for this test session: its display (":N"), or None."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        return None
    read, write = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1600x1000x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        return None
    atexit.register(proc.kill)
    return f":{number}"


# True when the person running the tests chose the platform (QT_QPA_PLATFORM or
# FACEVEIL_GUI_PLATFORM), so not having an X server is not a failure
CHOSEN = "QT_QPA_PLATFORM" in os.environ or "FACEVEIL_GUI_PLATFORM" in os.environ


def qt_platform() -> dict[str, str]:
    """The environment for Qt: QT_QPA_PLATFORM (xcb or offscreen) and DISPLAY when started."""
    if "QT_QPA_PLATFORM" in os.environ:
        return {}
    env: dict[str, str] = {}
    if os.environ.get("FACEVEIL_GUI_PLATFORM", "") != "offscreen":
        display = os.environ.get("DISPLAY") or start_xvfb()
        if display:
            from faceveil.gui import missing_libraries

            if not missing_libraries():
                env = {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    return env or {"QT_QPA_PLATFORM": "offscreen"}
