"""Exceptions. Each also inherits the builtin a caller would naturally catch."""

from __future__ import annotations


class FaceveilError(Exception):
    """Base class of every error faceveil raises on purpose."""


class ConfigError(FaceveilError, ValueError):
    """An option has a value faceveil cannot use."""


class UnsupportedMediaError(FaceveilError, ValueError):
    """The file is not a kind of media faceveil reads (or writes)."""


class CorruptMediaError(FaceveilError, ValueError):
    """The file claims to be media faceveil reads but cannot be decoded (truncated, damaged, empty)."""


class MediaTooLargeError(FaceveilError, ValueError):
    """The media is larger than the configured limit (decompression bombs, absurd sizes)."""


class OutputError(FaceveilError, OSError):
    """An output cannot be written (read-only folder, no space); the message names the output."""


class UnreadableInputError(FaceveilError, OSError):
    """An input exists but cannot be read (permissions); the message says so plainly."""


class UnsafeOutputError(FaceveilError, FileExistsError):
    """Writing the output would overwrite an input or is otherwise refused."""


class MissingDependencyError(FaceveilError, ImportError):
    """An optional part is not installed; the message says which extra installs it."""


class ModelError(FaceveilError, RuntimeError):
    """A model file is missing, damaged or cannot be loaded."""


def describe_error(exc: BaseException) -> str:
    """One line for a user: our own messages as they are, OS errors without the noise."""
    if isinstance(exc, FaceveilError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"{type(exc).__name__}: {exc}"
