"""The web app's settings: limits, access token, job lifetime, worker pool, where uploads live.

Plain data with no FastAPI import, so `faceveil serve --help` and validation stay cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PipelineConfig
from ..errors import ConfigError
from ..http_guard import LOOPBACK_NAMES, MIN_TOKEN_LENGTH, check_binding, check_token, is_loopback

__all__ = ["LOOPBACK_NAMES", "MIN_TOKEN_LENGTH", "WebConfig", "check_binding", "is_loopback"]


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
    # A request body that stalls this long between two chunks is cut off (408), and so is one
    # arriving slower than `upload_min_rate` bytes/s on average once that long has passed: a
    # client that sends headers and then nothing holds no resources for long.
    upload_timeout: float = 30.0
    upload_min_rate: float = 8 * 1024
    max_uploads: int = 64  # request bodies being received at once; more answer 429
    max_uploads_per_client: int = 24  # of those, from one client address

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", check_token(self.token))  # refuses guessable ones
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
            (self.upload_timeout > 0, "upload timeout must be positive"),
            (self.upload_min_rate >= 0, "upload minimum rate must be 0 or more"),
            (1 <= self.max_uploads_per_client <= self.max_uploads,
             "uploads per client must be 1..max_uploads"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir))

