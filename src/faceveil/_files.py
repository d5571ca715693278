"""Small file helpers shared by media writers and the model cache."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import OutputError

log = logging.getLogger(__name__)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


PART = re.compile(r"\.(.*)\.[0-9a-f]{8}\.part(\.[^.]*)?")  # atomic_path's temporary names
_STALE_WITHOUT_LOCKS = 24 * 3600.0  # s: where files cannot be locked, leftovers this old go


def _part_name(final: Path) -> tuple[str, str]:
    return final.stem[:40], final.suffix


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it is renamed over `final`.

    On any error the temporary file is removed, so nothing half-written is ever left under the
    final name. The temporary name keeps the final suffix so writers that pick a format from
    the extension still work. While it is written the temporary file holds an advisory lock,
    so `sweep_parts` (a later run) can tell a leftover of a killed run from a file being written.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {final.parent}: {_reason(exc)}") from None
    stem, suffix = _part_name(final)
    # Not mkstemp: its 0600 mode would stick to the output; 0666 lets the umask decide as usual.
    while True:
        tmp_path = final.parent / f".{stem}.{secrets.token_hex(4)}.part{suffix}"
        try:
            fd = os.open(tmp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write into {final.parent}: {_reason(exc)}") from None
    try:
        _lock(fd, blocking=True)
        yield tmp_path
        try:
            os.replace(tmp_path, final)
        except OSError as exc:
            raise OutputError(f"cannot write {final}: {_reason(exc)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


def _lock(fd: int, blocking: bool) -> bool:
    """An exclusive advisory lock on `fd`; False when another process holds one (non-blocking).
    True where there are no such locks (then nothing is known)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks
        return True
    return True


def sweep_parts(finals: Iterable[str | Path]) -> int:
    """Remove the temporary files that killed runs (SIGKILL, a power cut) left beside these
    outputs: only names `atomic_path` makes for exactly these outputs, and only when no running
    writer holds them (their lock). Returns how many were removed."""
    wanted: dict[Path, set[tuple[str, str]]] = {}
    for final in finals:
        final = Path(final)
        wanted.setdefault(final.parent, set()).add(_part_name(final))
    removed = 0
    for folder, names in wanted.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = PART.fullmatch(entry.name)
            if not m or (m.group(1), m.group(2) or "") not in names:
                continue
            if _remove_if_stale(entry):
                removed += 1
                log.info("removed %s, left by a stopped run", entry.path)
    return removed


def _remove_if_stale(entry: os.DirEntry) -> bool:
    try:
        if not entry.is_file(follow_symlinks=False):
            return False
        fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not _lock(fd, blocking=False):
            return False  # being written right now
        try:
            import fcntl  # noqa: F401
        except ImportError:
            if time.time() - os.fstat(fd).st_mtime < _STALE_WITHOUT_LOCKS:
                return False
        os.unlink(entry.path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def resolved(path: Path) -> Path:
    """`path.resolve()`, or its absolute form where a symbolic link loops (Python raises
    RuntimeError or OSError there) or cannot be followed: never an exception."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path))


def dangling(path: Path) -> str | None:
    """Why a symbolic link leads to no file (a loop, or nothing there), or None."""
    if not path.is_symlink():
        return None
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that loops (it leads back to itself); left out"
        return "a symbolic link to nothing (its target is missing); left out"
    return None
