"""Errors the web app answers with, and the one mapping from exceptions to HTTP statuses."""

from __future__ import annotations

from ..errors import (
    ConfigError,
    CorruptMediaError,
    FaceveilError,
    MediaTooLargeError,
    MissingDependencyError,
    UnsupportedMediaError,
)


class WebError(FaceveilError):
    """An error with its own HTTP status and a short machine-readable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class BadRequest(WebError, ValueError):
    pass


class UnsafeArchiveError(WebError, ValueError):
    """A zip entry tries to leave its folder (absolute path, '..')."""

    code = "unsafe_archive"


class NotFound(WebError, LookupError):
    status, code = 404, "not_found"


class NotReady(WebError):
    status, code = 409, "not_ready"


class Busy(WebError):
    """Every worker is busy and the queue is full."""

    status, code = 429, "busy"


class Unauthorized(WebError, PermissionError):
    status, code = 401, "unauthorized"


class Forbidden(WebError, PermissionError):
    status, code = 403, "forbidden"


class BodyTooLarge(WebError):
    status, code = 413, "too_large"


class UploadTimeout(WebError):
    """The request's body stalled or came in too slowly."""

    status, code = 408, "upload_timeout"


class TooManyTries(WebError):
    """Too many wrong tokens from this client: it waits before it may try again."""

    status, code = 429, "too_many_tries"


def status_of(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, code) for an exception faceveil raised on purpose; (500, ...) otherwise."""
    if isinstance(exc, WebError):
        return exc.status, exc.code
    if isinstance(exc, MediaTooLargeError):
        return 413, "too_large"
    if isinstance(exc, UnsupportedMediaError):
        return 415, "unsupported_media"
    if isinstance(exc, CorruptMediaError):
        return 422, "corrupt_media"
    if isinstance(exc, ConfigError):
        return 422, "invalid_option"
    if isinstance(exc, MissingDependencyError):
        return 422, "not_installed"
    if isinstance(exc, FaceveilError):
        return 400, "bad_request"
    return 500, "internal_error"
