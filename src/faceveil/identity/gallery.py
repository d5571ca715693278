"""The people gallery: names and face vectors in one local SQLite file. Never photos.

The file lives in the user data folder (`data_dir()`), readable by its owner only: face vectors
are biometric data.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..errors import ConfigError, FaceveilError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    name TEXT PRIMARY KEY,
    added TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    person TEXT NOT NULL REFERENCES people(name) ON DELETE CASCADE,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    added TEXT NOT NULL,
    UNIQUE (person, fingerprint)
);
"""


class GalleryError(FaceveilError, OSError):
    """The gallery file cannot be read or written."""


def data_dir() -> Path:
    """$FACEVEIL_DATA_DIR, else the platform's user data folder + /faceveil."""
    if env := os.environ.get("FACEVEIL_DATA_DIR"):
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "faceveil"


def default_gallery() -> Path:
    return data_dir() / "people.sqlite3"


def check_name(name: str) -> str:
    """A person's name as stored: trimmed, NFC; refused if empty, too long or with control characters."""
    name = unicodedata.normalize("NFC", str(name)).strip()
    if not name or len(name) > 100 or any(unicodedata.category(c).startswith("C") for c in name):
        raise ConfigError(f"not a usable name: {name!r} (1-100 printable characters)")
    return name


@dataclass(frozen=True)
class Person:
    name: str
    faces: int
    added: str  # ISO time, UTC
    updated: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Gallery:
    """`Gallery(path)`; the file and its folder are created on first write."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path else default_gallery()

    @contextlib.contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.exists():
            db = sqlite3.connect(":memory:")
        else:
            if write and not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self.path.touch(mode=0o600)
            db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.executescript(_SCHEMA)
            with db:
                yield db
        except sqlite3.Error as exc:
            raise GalleryError(f"people gallery {self.path}: {exc}") from exc
        finally:
            db.close()

    def add(self, name: str, vectors: np.ndarray, model: str) -> int:
        """Store face vectors under `name`; returns how many were new (repeats are skipped)."""
        name = check_name(name)
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or not len(vectors) or not np.isfinite(vectors).all():
            raise ConfigError("no usable face vectors to add")
        now = _now()
        with self._db(write=True) as db:
            row = db.execute("SELECT LENGTH(vector) FROM faces WHERE model = ? LIMIT 1", (model,)).fetchone()
            if row and row[0] != vectors.shape[1] * 4:
                raise ConfigError(f"{model} vectors have {row[0] // 4} numbers, not {vectors.shape[1]}")
            db.execute("INSERT OR IGNORE INTO people (name, added) VALUES (?, ?)", (name, now))
            before = db.total_changes
            for v in vectors:
                blob = v.astype("<f4").tobytes()
                db.execute("INSERT OR IGNORE INTO faces (person, model, vector, fingerprint, added) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (name, model, blob, hashlib.sha256(blob).hexdigest(), now))
            return db.total_changes - before

    def remove(self, name: str) -> bool:
        name = check_name(name)
        if not self.path.exists():
            return False
        with self._db(write=True) as db:
            return db.execute("DELETE FROM people WHERE name = ?", (name,)).rowcount > 0

    def people(self) -> list[Person]:
        with self._db() as db:
            rows = db.execute(
                "SELECT p.name, COUNT(f.id), p.added, COALESCE(MAX(f.added), p.added) "
                "FROM people p LEFT JOIN faces f ON f.person = p.name GROUP BY p.name ORDER BY p.name")
            return [Person(*row) for row in rows]

    def vectors(self, name: str, model: str) -> np.ndarray:
        """(M, dims) vectors of `name` made by `model`; ConfigError if there are none."""
        name = check_name(name)
        with self._db() as db:
            rows = db.execute("SELECT vector FROM faces WHERE person = ? AND model = ? ORDER BY id",
                              (name, model)).fetchall()
        if not rows:
            names = [p.name for p in self.people()]
            known = ", ".join(names) or "nobody yet"
            if name in names:
                raise ConfigError(f"{name!r} in {self.path} has no faces made with {model}; "
                                  f"add them again with: faceveil people add {name} PHOTOS")
            raise ConfigError(f"no person named {name!r} in the people gallery {self.path} "
                              f"(known: {known}); add them with: faceveil people add {name} PHOTOS")
        return np.stack([np.frombuffer(r[0], "<f4") for r in rows]).astype(np.float32)
