"""The local web app (`faceveil serve`): drop photos, videos or a zip, get them back anonymized.

    from faceveil.web import WebConfig, create_app
    app = create_app(WebConfig(workers=2, job_ttl=600))    # a FastAPI app; serve it with uvicorn

Needs the `web` extra (FastAPI, uvicorn, python-multipart); importing this package does not
import them, `create_app` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import WebConfig

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(config: WebConfig | None = None) -> FastAPI:
    from .app import create_app as _create_app

    return _create_app(config)


__all__ = ["WebConfig", "create_app"]
