"""The batch manifest: one JSON object per line, appended and flushed as each item finishes.

A run that is killed keeps every line it wrote; a line cut short by the kill is ignored when the
manifest is read back (and the next run starts on a fresh line). Only one run at a time may
append to a manifest: it holds an exclusive lock on the file while it runs.

Record fields: ``input`` (absolute path, URI or ARCHIVE!/member), ``size`` and ``sha256`` of the
input bytes, ``output``, ``kind`` (picture or video), the counts of `faceveil.types.Counts`
(``faces``: distinct faces hidden, a video's tracks; ``face_frames``: hidden boxes summed over
frames, of which ``boxes`` detected and ``filled`` by the tracker; ``kept`` and
``kept_frames``: left visible for --keep/--only; ``frames``), ``tracks``, ``status`` ("ok" or
"error"), ``error``, ``warning`` (an "ok" that needs a look, e.g. a video cut short),
``damage`` (times in s where a video was damaged), ``seconds``, ``engine``, ``worker``,
``peak_rss_mb`` (of the worker so far), ``settings`` (fingerprint of what changes outputs),
``run`` and ``finished``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from ..errors import FaceveilError

log = logging.getLogger(__name__)


class ManifestBusyError(FaceveilError, RuntimeError):
    """Another run is appending to the same manifest."""


def read_manifest(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete record; damaged lines (e.g. cut short by a kill) are skipped with a note."""
    path = Path(path)
    if not path.is_file():
        return []
    records, bad = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(record, dict):
                records.append(record)
    if bad:
        log.warning("%s: %d damaged line(s) skipped (a run was probably killed while writing)",
                    path, bad)
    return records


class ManifestWriter:
    """Appends records to a manifest under an exclusive lock; use as a context manager."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def __enter__(self) -> ManifestWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # closed in __exit__
        try:
            _lock(f, self.path)
            f.seek(0, os.SEEK_END)
            if f.tell():  # a line cut short by a kill must not swallow the next record
                f.seek(f.tell() - 1)
                if f.read(1) != "\n":
                    f.write("\n")
        except BaseException:
            f.close()
            raise
        self._file = f
        return self

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            raise RuntimeError("the manifest is not open")
        self._file.write(_line(record) + "\n")
        self._file.flush()

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._file.fileno())
            self._file.close()  # closing drops the lock
            self._file = None


def _line(record: dict[str, Any]) -> str:
    """One JSON line, readable UTF-8. A file name that is not valid UTF-8 (Python holds its odd
    bytes as lone surrogates, e.g. b"caf\\xe9.jpg" -> "caf\\udce9.jpg") cannot be written as
    UTF-8: such a line is written with JSON escapes instead ("caf\\udce9.jpg"), which reads back
    to the very same name, so --resume finds it again."""
    text = json.dumps(record, ensure_ascii=False, separators=(", ", ": "))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, ensure_ascii=True, separators=(", ", ": "))
    return text


def _lock(f: IO[str], path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; one run at a time is up to the user
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ManifestBusyError(f"{path} is in use by another faceveil batch run; wait for it "
                                "to finish or give another --manifest") from None
