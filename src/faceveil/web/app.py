"""The FastAPI app behind `faceveil serve`: `create_app(WebConfig(...))`.

Routes: the page (`/`, `/static/*`), its options (`/api/options`), one picture in and out
(`/api/anonymize`), jobs of many files, zips and videos (`/api/jobs...`), the OpenAPI schema
(`/api/openapi.json`) and a page that shows it (`/api/docs`, no CDN).

One middleware (`Guard`) sits in front of everything: Host and Origin checks, the token, the
request size limit, security headers on every response, and the last-resort handler that turns
a genuine bug into a logged, clean JSON 500. Every deliberate error is JSON
`{"error": code, "message": text}` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import json
import logging
import os
import shutil
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import (
    CorruptMediaError,
    FaceveilError,
    MediaTooLargeError,
    MissingDependencyError,
    UnsupportedMediaError,
)
from ..types import Counts

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import Headers, MutableHeaders, UploadFile
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        f"the web app needs FastAPI and uvicorn ({exc.name or exc}): pip install 'faceveil[web]'"
    ) from exc

from .. import http_guard
from .._version import __version__
from . import options as web_options
from .config import WebConfig
from .datadir import DataDir
from .errors import (
    BadRequest,
    BodyTooLarge,
    Forbidden,
    NotFound,
    TooManyTries,
    Unauthorized,
    UnsafeArchiveError,
    UploadTimeout,
    WebError,
    status_of,
)
from .jobs import Download, Item, Job, JobStore, UploadGate, WorkerPool
from .media import (
    IMAGE_KINDS,
    ArchiveTooLargeError,
    Kind,
    ZipLimits,
    copy_limited,
    display_name,
    extract,
    head_of,
    open_zip,
    output_name,
    probe,
    sniff,
    unique,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PUBLIC_PATHS = ("/", "/api/docs", "/favicon.ico")  # the page shell: no data, no token needed
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = http_guard.security_headers(CSP)
MAX_FIELD = 64 * 1024  # one non-file form field
_SUFFIX_MIME = {k.suffix: k.mime for k in IMAGE_KINDS.values()}
_SUFFIX_FORMAT = {k.suffix: k.format for k in IMAGE_KINDS.values()}


# ------------------------------------------------------------------------------- API schemas


class ErrorBody(BaseModel):
    error: str
    message: str


class FileStatus(BaseModel):
    index: int
    name: str
    kind: str
    state: str
    progress: float
    frames_done: int | None
    frames_total: int | None
    faces: int  # distinct faces hidden (a video's tracks): counts.faces
    kept: int
    counts: dict[str, int]  # faceveil.types.Counts: faces, face_frames, boxes, filled, kept, ...
    summary: str | None  # the counts in words, as every door says them
    error: str | None
    size: int
    upload: int
    entry: int | None
    seconds: float
    result_url: str | None
    result_name: str
    result_type: str


class JobStatus(BaseModel):
    id: str
    state: str
    progress: float
    created: float
    started: float | None
    finished: float | None
    expires_in: float | None
    files_done: int
    files_total: int
    faces: int
    counts: dict[str, int]
    summary: str
    files: list[FileStatus]
    rejected: list[dict[str, str]]
    skipped: list[dict[str, str]]
    result_url: str | None


class OptionsBody(BaseModel):
    version: str
    token_required: bool
    options: list[dict[str, Any]]
    limits: dict[str, Any]


class HealthBody(BaseModel):
    ok: bool
    ready: bool
    workers: int
    running: int
    waiting: int
    queue_size: int
    jobs: int


_ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in (
    (400, "bad request (no file, empty file, unsafe zip)"), (401, "missing or wrong token"),
    (403, "request from another site or host"), (413, "too large (bytes, pixels, zip bomb)"),
    (415, "not a supported picture or video"), (422, "damaged file or bad option"),
    (429, "queue full; retry after Retry-After seconds"))}
_JOB_ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in (
    (401, "missing or wrong token"), (404, "no such job (deleted or expired)"),
    (409, "not finished yet"))}
def _option_fields() -> dict[str, str]:
    """The form fields besides the files, from the option table (choices from the registries)."""
    return web_options.form_fields()


def _form_schema(field: str, many: bool) -> dict[str, Any]:
    binary: dict[str, Any] = {"type": "string", "format": "binary"}
    props: dict[str, Any] = {field: {"type": "array", "items": binary} if many else binary}
    props.update({k: {"type": "string", "description": v} for k, v in _option_fields().items()})
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [field], "properties": props}}}}}


# ----------------------------------------------------------------------------------- runtime


@dataclass(frozen=True)
class OneResult:
    data: bytes
    mime: str
    suffix: str
    counts: Counts
    seconds: float


class Runtime:
    """The app's moving parts, made at start-up and removed at shutdown."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        base = config.pipeline
        if base.detector.threads is None:  # share the cores between the workers
            base = base.replace(threads=max(1, (os.cpu_count() or 1) // config.workers))
        self.base = base
        self.data: Path | None = None
        self.folder: DataDir | None = None
        self.uploads = UploadGate(config.max_uploads, config.max_uploads_per_client)
        self.pool: WorkerPool | None = None
        self.store: JobStore | None = None

    def start(self) -> None:
        # mode 0700; dead servers' folders beside it are removed, a watchdog removes this one
        # if this process is killed (see datadir.py)
        self.folder = DataDir(self.config.data_dir)
        self.data = self.folder.open()
        self.store = JobStore(self.data, self.config.job_ttl, self.config.max_pixels)
        self.pool = WorkerPool(self.config.workers, self.config.queue_size,
                               warm=self.base if self.config.warm else None)
        log.info("web app ready: %d worker(s), queue %d, uploads in %s", self.config.workers,
                 self.config.queue_size, self.data)

    def stop(self) -> None:
        if self.store is not None:  # first: cancels running jobs, so the workers stop soon
            self.store.close()
        if self.pool is not None:
            self.pool.close()
        if self.folder is not None:
            self.folder.close()

    # ---- one picture

    def anonymize_one(self, worker: Any, upload: Any, kind: Kind, choice: Any) -> OneResult:
        """One picture through the file job (`process_file`), as `faceveil run` and the jobs do
        it: the upload is copied into a folder of its own under the data folder, anonymized
        into a file there (written atomically; a failure leaves nothing), read back and the
        folder removed. A failed file raises its original error (mapped to a status)."""
        import tempfile

        from ..pipeline.job import WriteOptions, process_file

        assert self.data is not None
        suffix = _image_suffix(choice, kind, choice.config.background.mode == "transparent")
        folder = Path(tempfile.mkdtemp(prefix="one-", dir=self.data))
        try:
            src, dst = folder / f"in{kind.suffix}", folder / f"out{suffix}"
            upload.seek(0)
            with open(src, "xb") as f:
                shutil.copyfileobj(upload, f, 1 << 20)
            result = process_file(src, dst, worker.pipeline(choice.config), video=False,
                                  write=WriteOptions(max_pixels=self.config.max_pixels))
            result.raise_for_error()
            return OneResult(dst.read_bytes(), _SUFFIX_MIME[suffix], suffix, result.counts,
                             result.seconds)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # ---- jobs

    def accept(self, uploads: list[UploadFile], choice: Any) -> Job:
        """Copy uploads into a new job folder under names of our own, open zips, check every
        file's type and limits. Raises the first error when nothing usable is left."""
        assert self.store is not None
        job = self.store.new_job(choice)
        taken: set[str] = set()
        errors: list[BaseException] = []
        try:
            for u_index, upload in enumerate(uploads):
                name = display_name(upload.filename, f"file-{u_index + 1}")
                try:
                    self._accept_one(job, upload, u_index, name, taken)
                except (UnsafeArchiveError, ArchiveTooLargeError, TooManyFiles):
                    raise  # a hostile zip or too many files: the whole request is refused
                except FaceveilError as exc:  # this upload only
                    errors.append(exc)
                    job.rejected.append({"name": name, "error": str(exc)})
            if not job.items:
                if len(errors) == 1:
                    raise errors[0]
                first = errors[0] if errors else BadRequest("no files")
                summary = "; ".join(f"{r['name']}: {r['error']}" for r in job.rejected[:10])
                raise type(first)(f"no usable file: {summary}")
            return job
        except OSError as exc:
            shutil.rmtree(job.dir, ignore_errors=True)
            if exc.errno == errno.ENOSPC:
                raise InsufficientStorage("the server's disk is full") from None
            raise
        except BaseException:
            shutil.rmtree(job.dir, ignore_errors=True)
            raise

    def _accept_one(self, job: Job, upload: UploadFile, u_index: int, name: str, taken: set[str]) -> None:
        cfg = self.config
        upload.file.seek(0)
        tmp = job.dir / "in" / f"upload-{u_index:04d}"
        try:
            size, head = copy_limited(upload.file, tmp, cfg.max_upload_bytes)
            if not size:
                raise BadRequest("empty file")
            kind = sniff(head)
            if kind.kind == "zip":
                self._accept_zip(job, tmp, u_index, name, taken)
                return
            self._add(job, tmp, kind, name, name, size, u_index, None, taken)
        finally:
            if tmp.exists():
                tmp.unlink()

    def _accept_zip(self, job: Job, path: Path, u_index: int, zip_name: str, taken: set[str]) -> None:
        cfg = self.config
        limits = ZipLimits(cfg.zip_max_entries, cfg.zip_max_total, cfg.zip_max_ratio)
        found = 0
        budget = cfg.zip_max_total
        with open_zip(path, limits) as (zf, entries, skipped):
            job.skipped += [{"name": f"{zip_name}/{n}", "reason": r} for n, r in skipped]
            for entry in entries:
                label = f"{zip_name}/{entry.name}"
                dst = job.dir / "in" / f"entry-{len(job.items):04d}"
                try:
                    size = extract(zf, entry, dst, budget)
                    budget -= size
                    if not size:
                        job.skipped.append({"name": label, "reason": "empty file"})
                        continue
                    try:
                        kind = sniff(head_of(dst))
                    except UnsupportedMediaError as exc:
                        job.skipped.append({"name": label, "reason": str(exc)})
                        continue
                    if kind.kind == "zip":
                        job.skipped.append({"name": label, "reason": "a zip inside a zip is not opened"})
                        continue
                    try:
                        self._add(job, dst, kind, label, entry.name, size, u_index, entry.position, taken)
                        found += 1
                    except TooManyFiles:
                        raise
                    except (CorruptMediaError, UnsupportedMediaError, MediaTooLargeError) as exc:
                        job.rejected.append({"name": label, "error": str(exc)})
                finally:
                    if dst.exists():
                        dst.unlink()
        if not found:
            raise UnsupportedMediaError(f"the zip holds no pictures or videos faceveil reads "
                                        f"({len(entries)} file(s) looked at)")

    def _add(self, job: Job, src: Path, kind: Kind, name: str, base_name: str, size: int,
             u_index: int, entry: int | None, taken: set[str]) -> None:
        cfg = self.config
        if len(job.items) >= cfg.max_files:
            raise TooManyFiles(f"more than {cfg.max_files} files in one job (this server's limit)")
        index = len(job.items)
        path = job.dir / "in" / f"{index:04d}{kind.suffix}"
        src.rename(path)
        try:
            frames = probe(path, kind, cfg.max_pixels, cfg.max_video_seconds)
        except BaseException:
            path.unlink()
            raise
        if kind.kind == "image":
            suffix = _image_suffix(job.choice, kind, job.choice.config.background.mode == "transparent")
            mime = _SUFFIX_MIME[suffix]
        else:
            suffix, mime = kind.suffix, kind.mime
        out_name = unique(output_name(base_name, suffix), taken)
        job.items.append(Item(index, name, kind.kind, kind.format, path,
                              job.dir / "out" / f"{index:04d}{suffix}", out_name, mime, size,
                              u_index, entry, total=frames))


class InsufficientStorage(WebError):
    status, code = 507, "insufficient_storage"


class TooManyFiles(MediaTooLargeError):
    pass


def _image_suffix(choice: Any, kind: Kind, alpha: bool) -> str:
    suffix = choice.out_suffix or kind.suffix
    if alpha and suffix in (".jpg", ".bmp"):  # cannot hold transparency
        suffix = ".png"
    return suffix


def _attachment(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in base)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(base, safe='')}"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


# ------------------------------------------------------------------------------------- guard


class Guard:
    """Pure ASGI middleware: every check that comes before a route, and the response headers."""

    def __init__(self, app: Any, config: WebConfig) -> None:
        self.app, self.config = app, config
        self.token = config.token or None
        self.throttle = http_guard.Throttle()
        self.limit = config.max_upload_bytes + (1 << 20)  # plus multipart framing and fields

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        started = False

        async def send_with_headers(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers[key] = value
                if path.startswith("/api/") and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        try:
            self._check(scope, Headers(scope=scope), path)
            await self.app(scope, self._limited(receive), send_with_headers)
        except ClientDisconnect:
            return
        except Exception as exc:
            if started:
                log.exception("error after the response started: %s %s", scope.get("method"), path)
                raise
            status, code = status_of(exc)
            if status >= 500 and not isinstance(exc, WebError):
                log.error("internal error on %s %s", scope.get("method"), path, exc_info=exc)
                message = "internal error; the server's log has the details"
            else:
                message = str(exc)
            response = _error(status, code, message, getattr(exc, "headers", None))
            await response(scope, receive, send_with_headers)

    def _check(self, scope: dict, headers: Headers, path: str) -> None:
        host = headers.get("host", "")
        refused = http_guard.host_refusal(host, token=self.token is not None,
                                          extra_hosts=self.config.hosts)
        if refused:
            raise Forbidden(refused)
        public = path in PUBLIC_PATHS or path.startswith("/static/")
        if not public:
            if http_guard.cross_site(headers.get, host):
                raise Forbidden("requests from other sites are refused")
            if self.token is not None:
                self._check_token(scope, headers)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise BadRequest("bad Content-Length")
            if int(length) > self.limit:
                raise BodyTooLarge(f"the request is {int(length) >> 20} MiB, over this server's "
                                   f"limit of {self.config.max_upload_bytes >> 20} MiB")

    def _check_token(self, scope: dict, headers: Headers) -> None:
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.throttle.wait(client)
        if wait > 0:  # the token is not even looked at: guessing gains nothing while refused
            raise TooManyTries(f"too many wrong tokens from {client}; try again in {wait:.0f} s",
                               headers={"Retry-After": str(max(1, round(wait + 0.5)))})
        given = headers.get("x-faceveil-token", "")
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        assert self.token is not None
        if http_guard.token_matches(given, self.token):
            self.throttle.succeeded(client)
            return
        if given:  # a request with no token at all (the page before its #token) is not a guess
            delay = self.throttle.failed(client)
            if delay:
                log.warning("wrong tokens from %s: refused for %.0f s", client, delay)
        raise Unauthorized("this server needs its access token: send 'Authorization: Bearer "
                           "TOKEN' (the page takes it from #token=... in its address)",
                           headers={"WWW-Authenticate": "Bearer"})

    def _limited(self, receive: Any) -> Any:
        """`receive`, counting the body against the size limit and cutting off one that stalls
        for `upload_timeout` s or arrives slower than `upload_min_rate` on average after that."""
        seen = 0
        limit = self.limit
        idle, rate = self.config.upload_timeout, self.config.upload_min_rate
        loop = asyncio.get_running_loop()
        began = loop.time()
        done = False

        async def counted() -> dict:
            nonlocal seen, done
            if done:  # after the body: the app waits for a disconnect, not for data
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), idle)
            except TimeoutError:
                raise UploadTimeout(f"the upload stalled: nothing came for {idle:g} s",
                                    headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(f"the request is over this server's limit of "
                                       f"{self.config.max_upload_bytes >> 20} MiB")
                if not message.get("more_body", False):
                    done = True
                else:
                    elapsed = loop.time() - began
                    if elapsed > idle and seen < rate * elapsed:
                        raise UploadTimeout(
                            f"the upload is too slow ({seen / elapsed / 1024:.1f} KiB/s; this "
                            f"server needs {rate / 1024:g} KiB/s)", headers={"Connection": "close"})
            return message

        return counted


# --------------------------------------------------------------------------------------- app


def create_app(config: WebConfig | None = None) -> FastAPI:
    """The web app. Its workers, queue and private data folder exist while it runs (lifespan)."""
    config = config or WebConfig()
    rt = Runtime(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rt.start()
        try:
            yield
        finally:
            await run_in_threadpool(rt.stop)

    app = FastAPI(
        title="faceveil", version=__version__, lifespan=lifespan,
        description="Hide every face in photos and videos, on this machine. Every request needs "
                    "the server's token when it has one (`Authorization: Bearer TOKEN`). Errors are "
                    "JSON `{\"error\": code, \"message\": text}`.",
        docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
        redirect_slashes=False,  # '/api/jobs/%2F' is a JSON 404, not a redirect elsewhere
    )
    app.state.runtime = rt
    app.add_middleware(Guard, config=config)

    @app.exception_handler(FaceveilError)
    async def faceveil_error(request: Request, exc: FaceveilError) -> JSONResponse:
        status, code = status_of(exc)
        return _error(status, code, str(exc), getattr(exc, "headers", None))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(
            exc.status_code, "error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    def store() -> JobStore:
        assert rt.store is not None
        return rt.store

    def pool() -> WorkerPool:
        assert rt.pool is not None
        return rt.pool

    # ---- the page

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/options", response_model=OptionsBody, summary="The page's options and the limits",
             description="Choices come from faceveil's registries (detectors, effects, masks, "
                         "segmenters) and the server's people gallery.")
    async def get_options() -> JSONResponse:
        described = await run_in_threadpool(web_options.describe, rt.base)
        return JSONResponse({
            "version": __version__, "token_required": config.token is not None, "options": described,
            "limits": {"max_upload_bytes": config.max_upload_bytes, "max_files": config.max_files,
                       "max_pixels": config.max_pixels, "max_video_seconds": config.max_video_seconds,
                       "job_ttl": config.job_ttl},
        })

    @app.get("/api/health", response_model=HealthBody, summary="Workers and queue")
    async def health() -> JSONResponse:
        stats = pool().stats()
        return JSONResponse({"ok": True, **stats, "jobs": len(store())})

    @asynccontextmanager
    async def intake(request: Request, max_files: int):
        """What both upload routes do first and last: multipart only; refused before the body
        is read when the queue is full already; the form read within its limits, as (uploads,
        fields, reserve). `reserve()` takes a worker's place, only once the whole body is here;
        a place not used (an error before the task was submitted) is given back on the way out."""
        _require_multipart(request)
        pool().check()
        slots = []

        def reserve():
            slots.append(pool().reserve())
            return slots[-1]

        try:
            async with _form(request, max_files=max_files) as form:
                yield (*_split(form), reserve)
        finally:
            for slot in slots:
                slot.release()

    # ---- one picture

    @app.post("/api/anonymize", summary="Anonymize one picture (the answer is the picture)",
              response_class=Response, responses={
                  200: {"content": {m: {} for m in _SUFFIX_MIME.values()},
                        "description": "the anonymized picture; X-Faceveil-Faces says how many "
                                       "faces were hidden, X-Faceveil-Counts all the counts "
                                       "(JSON, as a job's file reports them)"}, **_ERRORS},
              openapi_extra=_form_schema("file", many=False))
    async def anonymize(request: Request) -> Response:
        async with intake(request, max_files=2) as (uploads, fields, reserve):
            if len(uploads) != 1:
                raise BadRequest("send exactly one picture in the 'file' field "
                                 "(several files and videos go to /api/jobs)")
            upload = uploads[0]
            head = await upload.read(64)
            if not head:
                raise BadRequest("empty file")
            kind = sniff(head)
            if kind.kind != "image":
                raise UnsupportedMediaError(f"this is a {kind.kind}; /api/anonymize takes one "
                                            "picture (send videos and zips to /api/jobs)")
            choice = web_options.parse(fields, rt.base)
            name = display_name(upload.filename, "picture")
            slot = reserve()
            future: concurrent.futures.Future[OneResult] = concurrent.futures.Future()

            def task(worker: Any) -> None:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(rt.anonymize_one(worker, upload.file, kind, choice))
                except BaseException as exc:
                    future.set_exception(exc)

            slot.submit(task)
            result = await asyncio.wrap_future(future)
        return Response(result.data, media_type=result.mime, headers={
            "Content-Disposition": _attachment(output_name(name, result.suffix)),
            "X-Faceveil-Faces": str(result.counts.faces), "X-Faceveil-Kept": str(result.counts.kept),
            "X-Faceveil-Counts": json.dumps(result.counts.to_dict(), separators=(",", ":")),
            "X-Faceveil-Seconds": f"{result.seconds:.3f}"})

    # ---- jobs

    @app.post("/api/jobs", status_code=202, response_model=JobStatus,
              summary="Start a job: pictures, videos and zips in, a job id out",
              responses=_ERRORS, openapi_extra=_form_schema("files", many=True))
    async def create_job(request: Request) -> JSONResponse:
        from ..media.video import EncodeOptions

        async with intake(request, max_files=config.max_files) as (uploads, fields, reserve):
            if not uploads:
                raise BadRequest("no files: send pictures, videos or zips in the 'files' field")
            choice = web_options.parse(fields, rt.base)
            slot = reserve()
            job = await run_in_threadpool(rt.accept, uploads, choice)
            store().add(job)
            slot.submit(store().runner(job, EncodeOptions()))
        log.info("job %s: %d file(s) queued, %d refused", job.id, len(job.items), len(job.rejected))
        return JSONResponse(job.public(config.job_ttl), status_code=202,
                            headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/jobs/{job_id}", response_model=JobStatus, responses=_JOB_ERRORS,
             summary="A job's progress, per file")
    async def job_status(job_id: str) -> JSONResponse:
        return JSONResponse(store().get(job_id).public(config.job_ttl))

    @app.get("/api/jobs/{job_id}/files/{index}", response_class=FileResponse, responses=_JOB_ERRORS,
             summary="One anonymized file of a job")
    async def job_file(job_id: str, index: int) -> Response:
        download = await run_in_threadpool(store().open_download, job_id, index)
        return DownloadResponse(download)

    @app.get("/api/jobs/{job_id}/result", response_class=FileResponse, responses=_JOB_ERRORS,
             summary="All anonymized files as a zip; the job is deleted once it was sent")
    async def job_result(job_id: str) -> Response:
        download = await run_in_threadpool(store().open_download, job_id, None)
        return DownloadResponse(download)

    @app.delete("/api/jobs/{job_id}", status_code=204, responses=_JOB_ERRORS,
                summary="Cancel a job and delete its files")
    async def job_delete(job_id: str) -> Response:
        if not await run_in_threadpool(store().delete, job_id):
            raise NotFound(f"no job {job_id[:40]!r}")
        return Response(status_code=204)

    return app


class DownloadResponse(Response):
    """Sends an open result file in chunks, then gives it back to the job store, which removes
    the job's files only once no download is using them (two clients fetching one zip at once
    both get all of it; neither sees a 500 or a cut-off body). One byte range (`Range:
    bytes=A-B`, as a video player asks) is answered with 206."""

    CHUNK = 1 << 20

    def __init__(self, download: Download) -> None:
        super().__init__(media_type=download.mime, headers={
            "Content-Disposition": _attachment(download.name), "Accept-Ranges": "bytes"})
        self.download = download

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        sent = False
        size = self.download.size
        try:
            wanted = _byte_range(Headers(scope=scope).get("range"), size)
            if wanted is None:
                start, end, status = 0, size, 200
            elif wanted[0] >= size:
                self.status_code = 416
                self.headers["content-range"] = f"bytes */{size}"
                self.headers["content-length"] = "0"
                await send({"type": "http.response.start", "status": 416, "headers": self.raw_headers})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            else:
                start, end, status = wanted[0], wanted[1], 206
                self.headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
            self.headers["content-length"] = str(end - start)
            await send({"type": "http.response.start", "status": status, "headers": self.raw_headers})
            if start:
                await run_in_threadpool(self.download.handle.seek, start)
            left = end - start
            while left > 0:
                chunk = await run_in_threadpool(self.download.handle.read, min(self.CHUNK, left))
                if not chunk:  # cannot happen while we hold it open; never send a short body
                    raise OSError(f"{self.download.name} ended {left} bytes early")
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            if end == start:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            sent = status == 200
        finally:
            self.download.close(sent)  # synchronous: runs even when the send was cancelled


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) of one `bytes=A-B`, `bytes=A-` or `bytes=-N` range, end exclusive; None to
    send the whole file (no header, several ranges, or one that cannot be read)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[6:].strip().partition("-")
    if not sep or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) \
            or (last and not last.isdigit()):
        return None
    if not first:  # the last N bytes
        n = int(last)
        return (max(0, size - n), size) if n else None
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if last and int(last) < start:
        return None
    return start, max(start, end)


@asynccontextmanager
async def _form(request: Request, max_files: int):
    """The request's form, read while it holds a place among the uploads being received."""
    rt: Runtime = request.app.state.runtime
    assert rt.uploads is not None
    client = request.client.host if request.client else "?"
    with rt.uploads.enter(client):
        form = await request.form(max_files=max_files, max_fields=64, max_part_size=MAX_FIELD)
    try:
        yield form
    finally:
        await form.close()


def _require_multipart(request: Request) -> None:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedMediaError("send multipart/form-data (a form with the file fields)")


def _split(form: Any) -> tuple[list[UploadFile], dict[str, list[str]]]:
    uploads: list[UploadFile] = []
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key not in ("file", "files"):
                raise BadRequest(f"files go in the 'file' or 'files' field, not {key[:40]!r}")
            uploads.append(value)
        else:
            fields.setdefault(key, []).append(value)
    return uploads, fields
