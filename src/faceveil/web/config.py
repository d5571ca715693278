"""The web app's settings: limits, access token, job lifetime, worker pool, where uploads live.

Plain data with no FastAPI import, so `faceveil serve --help` and validation stay cheap.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PipelineConfig
from ..errors import ConfigError

MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class WebConfig:
    """How `create_app` behaves. Sizes are bytes, times seconds."""

    token: str | None = None  # when set, every API request must carry it (header)
    workers: int = field(default_factory=_default_workers)  # jobs processed at once
    queue_size: int = 32  # jobs and one-image requests waiting for a worker; more answer 429
    job_ttl: float = 900.0  # a finished job is deleted this long after it was last used
    max_upload_bytes: int = 1 << 30  # one request's body (all its files together)
    max_files: int = 200  # files in one job, counting those found in zips
    max_pixels: int = 64_000_000  # per picture and per video frame
    max_video_seconds: float = 1800.0  # longest video accepted
    zip_max_entries: int = 2000  # entries (files and folders) in one zip
    zip_max_total: int = 2 << 30  # uncompressed bytes of all entries of one zip
    zip_max_ratio: float = 100.0  # uncompressed / compressed, for entries over 1 MiB and in all
    data_dir: Path | None = None  # where the private upload folder is made (default: system temp)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)  # the form's defaults
    warm: bool = True  # load the default detector in every worker at start-up
    hosts: tuple[str, ...] = ()  # further Host names accepted without a token (e.g. a LAN name)

    def __post_init__(self) -> None:
        if self.token is not None:
            token = self.token.strip()
            if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
                raise ConfigError(
                    f"the access token must be at least {MIN_TOKEN_LENGTH} characters without spaces "
                    "(make one with: python -c \"import secrets; print(secrets.token_urlsafe())\")")
            object.__setattr__(self, "token", token)
        checks = [
            (1 <= self.workers <= 64, f"workers must be 1..64, got {self.workers}"),
            (0 <= self.queue_size <= 10_000, f"queue size must be 0..10000, got {self.queue_size}"),
            (self.job_ttl > 0, f"job lifetime must be positive, got {self.job_ttl}"),
            (self.max_upload_bytes >= 1024, "upload limit must be at least 1 KiB"),
            (self.max_files >= 1, "max files must be at least 1"),
            (self.max_pixels >= 1, "max pixels must be at least 1"),
            (self.max_video_seconds > 0, "max video seconds must be positive"),
            (self.zip_max_entries >= 1, "zip entry limit must be at least 1"),
            (self.zip_max_total >= 1024, "zip size limit must be at least 1 KiB"),
            (self.zip_max_ratio >= 1, "zip ratio limit must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir))


def is_loopback(host: str) -> bool:
    """True for addresses and names that only this machine can reach."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Binding to anything but loopback reaches other machines, so it needs a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host} lets other machines reach the server: give an access token with "
            f"--token (or FACEVEIL_TOKEN), at least {MIN_TOKEN_LENGTH} characters; "
            "every request must then carry it")
