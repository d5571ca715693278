"""Small file helpers shared by media writers and the model cache."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it is renamed over `final`.

    On any error the temporary file is removed, so nothing half-written is ever left under the
    final name. The temporary name keeps the final suffix so writers that pick a format from
    the extension still work.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 mode would stick to the output; 0666 lets the umask decide as usual.
    while True:
        tmp_path = final.parent / f".{final.stem[:40]}.{secrets.token_hex(4)}.part{final.suffix}"
        try:
            os.close(os.open(tmp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


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
