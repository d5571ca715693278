"""The web app's private data folder: uploads and results live there only while the server runs.

A server that stops normally removes its folder. One that is killed (SIGKILL, out of memory, a
power cut) cannot, so two more things make sure un-anonymized uploads do not stay on disk:

- a watchdog: a tiny separate process, started with the folder, that waits for the server to
  go away (its end of a pipe closes when the server's process ends, however it ends) and then
  removes the folder. It ignores Ctrl+C and runs in its own session, so it outlives the server
  just long enough to clean up;
- a clean-up at start: every server holds an exclusive lock on `.lock` inside its folder while
  it runs (the system drops it when the process ends); a new server removes the folders next
  to its own (same parent, `faceveil-web-*`, same owner) whose lock nobody holds, i.e. those
  of servers that died with their watchdog (a reboot, a killed process group). A folder with
  no lock file at all (a server of an older version, perhaps still running) is left alone.

Starlette spools large uploads into unnamed temporary files (deleted by the system when the
process ends), so nothing else of an upload is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

PREFIX = "faceveil-web-"
LOCK = ".lock"

# Waits for EOF on stdin (the server's end closes when its process ends), then removes the folder.
_WATCHDOG = (
    "import shutil, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "sys.stdin.buffer.read()\n"
    "shutil.rmtree(sys.argv[1], ignore_errors=True)\n"
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the watchdog still cleans up
    fcntl = None  # type: ignore[assignment]


class DataDir:
    """`open()` makes the folder (mode 0700) after removing dead servers' folders beside it;
    `close()` removes it."""

    def __init__(self, parent: Path | None = None, *, watchdog: bool = True) -> None:
        self.parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
        self.watchdog = watchdog
        self.path: Path | None = None
        self._lock: IO[bytes] | None = None
        self._dog: subprocess.Popen | None = None

    def open(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        removed = remove_stale(self.parent)
        if removed:
            log.warning("removed %d folder(s) of web servers that did not stop cleanly: %s",
                        len(removed), ", ".join(p.name for p in removed))
        path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self.parent))
        os.chmod(path, 0o700)
        self.path = path
        try:
            self._lock = _hold_lock(path / LOCK)
            if self.watchdog:
                self._dog = _start_watchdog(path)
        except BaseException:
            self.close()
            raise
        return path

    def close(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.close()
            self._lock = None
        if self._dog is not None:
            dog, self._dog = self._dog, None
            with contextlib.suppress(OSError):
                assert dog.stdin is not None
                dog.stdin.close()  # the folder is gone already; it exits at once
            try:
                dog.wait(5)
            except subprocess.TimeoutExpired:
                dog.kill()
                dog.wait()


def remove_stale(parent: Path) -> list[Path]:
    """Remove the folders in `parent` left by web servers that are no longer running."""
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            st = entry.lstat()
        except OSError:
            continue
        if not _is_dir(st) or (uid is not None and st.st_uid != uid):
            continue  # links, files and other users' folders are never touched
        if _stale(entry):
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.append(entry)
    return removed


def _is_dir(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISDIR(st.st_mode)


def _stale(folder: Path) -> bool:
    lock = folder / LOCK
    try:
        handle = open(lock, "rb")  # noqa: SIM115 - closed below
    except OSError:  # no lock: being made right now, or a server of a version without locks
        return False  # that may still be running; only a folder proven dead is removed
    with handle:
        if fcntl is None:
            return False
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False  # a running server holds it
        return True  # released when the handle closes


def _hold_lock(path: Path) -> IO[bytes]:
    handle = open(path, "wb")  # noqa: SIM115 - held open while the server runs
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _start_watchdog(path: Path) -> subprocess.Popen[Any] | None:
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(path)], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
            start_new_session=True)
    except OSError as exc:  # still cleaned at the next start
        log.warning("no clean-up watchdog for %s: %s", path, exc)
        return None
