"""`faceveil serve`: the local web app (drop photos, videos or a zip; get them back anonymized)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys

from ..errors import ConfigError

log = logging.getLogger("faceveil")

EXAMPLES = """\
examples:
  faceveil serve                              # http://127.0.0.1:8000, this computer only
  faceveil serve --port 0                     # any free port (the address is printed)
  faceveil serve --workers 1 --ttl 300        # one job at a time; results kept 5 minutes
  FACEVEIL_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe())') \\
    faceveil serve --host 0.0.0.0             # other machines too: every request needs the token
"""


def add_parser(sub) -> None:
    from ..options import add_arguments
    from ..web.config import WebConfig

    d = WebConfig.__dataclass_fields__
    p = sub.add_parser(
        "serve", help="the local web app: drop photos, videos or a zip in a browser",
        description="Serve the web app: a page to drop photos, videos or zips on and get them back "
                    "anonymized, and the REST API behind it (/api/docs). Uploads and results are "
                    "deleted after download or after --ttl seconds; nothing else is kept.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, "serve")
    p.set_defaults(  # the limits' defaults are WebConfig's
        queue=d["queue_size"].default, ttl=d["job_ttl"].default,
        max_upload_mb=d["max_upload_bytes"].default / (1 << 20), max_files=d["max_files"].default,
        max_pixels=d["max_pixels"].default, max_video_minutes=d["max_video_seconds"].default / 60,
        upload_timeout=d["upload_timeout"].default)


def run(args: argparse.Namespace) -> int:
    from ..config import PipelineConfig
    from ..web.config import WebConfig, check_binding, is_loopback

    token = args.token or os.environ.get("FACEVEIL_TOKEN") or None
    check_binding(args.host, token)  # --port's range: argparse checked it (the option table)
    pipeline = PipelineConfig.from_toml(args.config) if args.config else PipelineConfig()
    if args.gallery:
        pipeline = pipeline.replace(gallery=args.gallery)
    kwargs = {} if args.workers is None else {"workers": args.workers}
    config = WebConfig(
        token=token, queue_size=args.queue, job_ttl=args.ttl,
        max_upload_bytes=int(args.max_upload_mb * (1 << 20)), max_files=args.max_files,
        max_pixels=int(args.max_pixels), max_video_seconds=args.max_video_minutes * 60,
        data_dir=args.data_dir, pipeline=pipeline, upload_timeout=args.upload_timeout, **kwargs)
    try:
        import uvicorn

        from ..web import create_app

        app = create_app(config)
    except ImportError as exc:
        from ..errors import MissingDependencyError

        if isinstance(exc, MissingDependencyError):
            raise
        raise MissingDependencyError(f"the web app needs uvicorn ({exc.name or exc}): "
                                     "pip install 'faceveil[web]'") from exc

    _limit_malloc_arenas()
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown_host = args.host if not _unspecified(args.host) else "127.0.0.1"
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    url = f"http://{shown_host}:{port}/" + (f"#token={token}" if token else "")

    _route_server_logs(args)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(url, flush=True)  # stdout: the one piece of data this command gives
                where = "this computer only" if is_loopback(args.host) else f"all of {args.host}"
                log.warning("serving the web app on %s (%s); Ctrl+C stops", url, where)

    server = Server(uvicorn.Config(
        app, log_config=None, access_log=args.verbose >= 1, server_header=False, proxy_headers=False,
        lifespan="on", timeout_graceful_shutdown=5))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops gracefully, then re-raises Ctrl+C: a normal stop
        pass
    finally:
        sock.close()
    return 0


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas for this server process (as MALLOC_ARENA_MAX does).

    Each thread that decodes or encodes a picture otherwise gets an arena of its own, and every
    arena keeps its high-water mark: with the default (8 per core) the server's resident memory
    crept from 1.3 to 1.4 GiB over three rounds of bench/web_load.py and stayed there; capped at
    2 it peaked at 1.0 GiB and stayed flat, at the same speed. Only `faceveil serve` does this:
    it owns its process. A no-op off glibc, or when MALLOC_ARENA_MAX is already set.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        log.debug("could not cap malloc arenas", exc_info=True)


def _unspecified(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def _bind(host: str, port: int) -> socket.socket:
    """Bind here, not in uvicorn, so a taken port is a clear error and --port 0 works."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and _unspecified(host):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        why = ("the port is in use (choose another --port, or --port 0 for any free one)"
               if exc.errno == errno.EADDRINUSE else exc.strerror)
        raise ConfigError(f"cannot listen on {host} port {port}: {why}") from None
    return sock


def _route_server_logs(args: argparse.Namespace) -> None:
    """uvicorn's messages through faceveil's stderr handler, at the same level."""
    ours = logging.getLogger("faceveil")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = list(ours.handlers) or [logging.StreamHandler(sys.stderr)]
        logger.setLevel(logging.INFO if args.verbose else ours.level)
        logger.propagate = False
