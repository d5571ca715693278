"""Jobs and the bounded worker pool that runs them.

A fixed number of worker threads take tasks from one bounded queue: multi-file jobs and
one-picture requests alike. When the queue is full the next request is refused (429) before
its body is read; a request only takes a place once its whole body has arrived, so uploads
that stall (cut off after `upload_timeout`) never hold a place. Threads rather than processes:
ONNX Runtime, OpenCV and FFmpeg release the GIL, so threads run in parallel, share nothing but
the loaded code, and each worker keeps its own models (loaded once per worker, reused for
every request with the same detector settings).

Every job has its own folder inside the server's private data folder. Inputs are deleted as
soon as they are processed; outputs when the job is deleted: on DELETE, after its zip was
downloaded, or `job_ttl` seconds after it was last used.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import secrets
import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from ..errors import FaceveilError
from ..types import Counts
from .errors import Busy, NotFound, NotReady

log = logging.getLogger(__name__)

Task = Callable[["Worker"], None]


class Cancelled(Exception):
    """Raised inside a running job when it was deleted."""


# ------------------------------------------------------------------------------- worker pool


class Worker:
    """One worker thread's models: detectors by their settings, pipelines by the whole config."""

    def __init__(self) -> None:
        self._detectors: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        self._pipelines: collections.OrderedDict[PipelineConfig, Any] = collections.OrderedDict()

    def pipeline(self, config: PipelineConfig):
        from ..pipeline import Pipeline

        if config in self._pipelines:
            self._pipelines.move_to_end(config)
            return self._pipelines[config]
        detector = self._detectors.get(config.detector)
        pipeline = Pipeline(config, detector=detector)
        if detector is None:
            self._detectors[config.detector] = pipeline.detector  # loads the model
            while len(self._detectors) > 3:
                self._detectors.popitem(last=False)
        self._pipelines[config] = pipeline
        while len(self._pipelines) > 6:
            self._pipelines.popitem(last=False)
        return pipeline


class Slot:
    """A reserved place in the queue; `submit` fills it, `release` gives it back."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool, self._open = pool, True

    def submit(self, task: Task) -> None:
        if self._open:
            self._open = False
            self._pool._submit(task)

    def release(self) -> None:
        if self._open:
            self._open = False
            self._pool._release()


class WorkerPool:
    def __init__(self, workers: int, queue_size: int, warm: PipelineConfig | None = None) -> None:
        self.size, self.queue_size, self._warm = workers, queue_size, warm
        self._tasks: collections.deque[Task] = collections.deque()
        self._reserved = 0
        self._busy = 0
        self._ready = 0
        self._closed = False
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._loop, name=f"faceveil-web-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def check(self) -> None:
        """Busy (429) when there is no place now; reserves nothing (a request checks this
        before reading its body, and reserves its place once the body has arrived)."""
        with self._cond:
            self._check_locked()

    def reserve(self) -> Slot:
        """A place in the queue, or Busy (429) when there is none."""
        with self._cond:
            self._check_locked()
            self._reserved += 1
            return Slot(self)

    def _check_locked(self) -> None:
        if self._closed:
            raise Busy("the server is shutting down", headers={"Retry-After": "5"})
        # at most `size` running and `queue_size` waiting (reserved places count as waiting)
        if self._busy + len(self._tasks) + self._reserved >= self.size + self.queue_size:
            raise Busy(f"the server is busy ({len(self._tasks)} waiting, {self._busy} running); "
                       "try again in a few seconds", headers={"Retry-After": "2"})

    def _submit(self, task: Task) -> None:
        with self._cond:
            self._reserved -= 1
            self._tasks.append(task)
            self._cond.notify()

    def _release(self) -> None:
        with self._cond:
            self._reserved -= 1

    def stats(self) -> dict[str, int | bool]:
        with self._cond:
            return {"workers": self.size, "ready": self._ready == self.size, "running": self._busy,
                    "waiting": len(self._tasks), "queue_size": self.queue_size}

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._tasks.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        worker = Worker()
        if self._warm is not None:
            try:
                worker.pipeline(self._warm)
            except Exception as exc:  # reported again, to the client, on the first request
                log.error("loading the default detector failed: %s", exc)
        with self._cond:
            self._ready += 1
        while True:
            with self._cond:
                while not self._tasks and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                task = self._tasks.popleft()
                self._busy += 1
            try:
                task(worker)
            except BaseException:  # a task reports its own errors; this is a bug
                log.exception("a web task failed")
            finally:
                with self._cond:
                    self._busy -= 1


class UploadGate:
    """Bounds the request bodies being received at once: `total` in all, `per_client` from one
    client address. A body takes no place in the worker queue until it has arrived, so this is
    what bounds the memory and connections uploads hold (Starlette keeps up to 1 MiB of each
    file part in memory, the rest on disk); with `upload_timeout` a stalled one ends soon."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self._lock = threading.Lock()
        self._count = 0
        self._clients: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def enter(self, client: str):
        with self._lock:
            if self._clients[client] >= self.per_client:
                raise Busy(f"{self.per_client} uploads from this address are already on their way; "
                           "wait for one to finish", headers={"Retry-After": "2"})
            if self._count >= self.total:
                raise Busy(f"the server is receiving {self.total} uploads already; try again in a "
                           "few seconds", headers={"Retry-After": "2"})
            self._count += 1
            self._clients[client] += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1
                self._clients[client] -= 1
                if not self._clients[client]:
                    del self._clients[client]

    def __len__(self) -> int:
        with self._lock:
            return self._count


# -------------------------------------------------------------------------------------- jobs


@dataclass
class Item:
    index: int
    name: str  # cleaned client name (a path inside a zip: "zipname/folder/file.jpg")
    kind: str  # image | video
    format: str
    input: Path | None  # our own name in the job folder; None once deleted
    output: Path
    out_name: str  # download name (unique within the job)
    mime: str  # of the output
    size: int
    upload: int  # which uploaded file (0-based) it came from
    entry: int | None = None  # its position in that zip, for zip entries
    state: str = "queued"  # queued | working | done | failed | cancelled
    done: int = 0  # frames, for videos
    total: int | None = None
    counts: Counts = field(default_factory=Counts)  # faces, face-frames, boxes: types.Counts
    error: str = ""
    seconds: float = 0.0

    @property
    def progress(self) -> float:
        if self.state in ("done", "failed", "cancelled"):
            return 1.0
        if self.state == "working" and self.kind == "video" and self.total:
            return min(0.99, self.done / self.total)
        return 0.0

    def public(self, job_id: str) -> dict[str, Any]:
        ready = self.state == "done"
        return {
            "index": self.index, "name": self.name, "kind": self.kind, "state": self.state,
            "progress": round(self.progress, 4), "frames_done": self.done if self.kind == "video" else None,
            "frames_total": self.total if self.kind == "video" else None, "faces": self.counts.faces,
            "kept": self.counts.kept, "counts": self.counts.to_dict(),  # faces, kept: documented keys
            "summary": self.counts.describe(self.kind == "video") if self.state == "done" else None,
            "error": self.error or None, "size": self.size, "upload": self.upload,
            "entry": self.entry, "seconds": round(self.seconds, 3),
            "result_url": f"/api/jobs/{job_id}/files/{self.index}" if ready else None,
            "result_name": self.out_name, "result_type": self.mime,
        }


@dataclass
class Job:
    id: str
    dir: Path
    choice: Any  # options.Choice
    items: list[Item] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)  # uploads refused: name, error
    skipped: list[dict[str, str]] = field(default_factory=list)  # zip entries left out
    state: str = "queued"  # queued | running | done | failed | cancelled
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    last_used: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    deleted: bool = False
    readers: int = 0  # downloads being sent now; the folder is removed only once they are done
    downloaded: bool = False  # its zip was sent whole: deleted when the last download ends
    zip_path: Path | None = None  # made once, shared by downloads that overlap
    zip_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def public(self, ttl: float) -> dict[str, Any]:
        items = [i.public(self.id) for i in self.items]
        counts = sum((i.counts for i in self.items), Counts())
        progress = sum(i.progress for i in self.items) / len(self.items) if self.items else 1.0
        expires = None if self.active else max(0.0, ttl - (time.monotonic() - self.last_used))
        return {
            "id": self.id, "state": self.state, "progress": round(progress, 4),
            "created": self.created, "started": self.started, "finished": self.finished,
            "expires_in": None if expires is None else round(expires, 1),
            "files_done": sum(i.state in ("done", "failed", "cancelled") for i in self.items),
            "files_total": len(self.items), "faces": counts.faces, "counts": counts.to_dict(),
            "summary": counts.describe(any(i.kind == "video" for i in self.items)),
            "files": items, "rejected": self.rejected, "skipped": self.skipped,
            "result_url": f"/api/jobs/{self.id}/result" if self.state == "done" else None,
        }


class JobStore:
    """Jobs by id; deletes their folders on request, after the zip download, or when stale."""

    def __init__(self, root: Path, ttl: float, max_pixels: int) -> None:
        self.root, self.ttl, self.max_pixels = root, ttl, max_pixels
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="faceveil-web-reaper", daemon=True)
        self._reaper.start()

    def new_job(self, choice: Any) -> Job:
        job_id = secrets.token_hex(16)
        folder = self.root / job_id
        folder.mkdir(mode=0o700)
        (folder / "in").mkdir(mode=0o700)
        (folder / "out").mkdir(mode=0o700)
        return Job(job_id, folder, choice)

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str) -> Job:
        self.sweep()
        with self._lock:
            return self._touch(job_id)

    def _touch(self, job_id: str) -> Job:
        """The job, marked used now (under the lock); NotFound when there is none."""
        job = self._jobs.get(job_id)
        if job is None:
            raise self._missing(job_id)
        job.last_used = time.monotonic()
        return job

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def delete(self, job_id: str) -> bool:
        """Forget a job and delete its files; a running job is cancelled and its worker deletes
        the folder when it stops."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is None:
                return False
            job.deleted = True
            job.cancel.set()
            busy = job.state == "running" or job.readers > 0  # whoever finishes last removes it
        if not busy:
            shutil.rmtree(job.dir, ignore_errors=True)
        log.info("job %s deleted", job.id)
        return True

    def sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [j.id for j in self._jobs.values()
                     if not j.active and not j.readers and now - j.last_used > self.ttl]
        for job_id in stale:
            log.info("job %s expired", job_id)
            self.delete(job_id)

    def _reap(self) -> None:
        while not self._stop.wait(min(30.0, max(0.2, self.ttl / 4))):
            try:
                self.sweep()
            except Exception:
                log.exception("deleting expired jobs failed")

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            ids = list(self._jobs)
        for job_id in ids:
            self.delete(job_id)

    # ---- running

    def runner(self, job: Job, encode: Any = None) -> Task:
        def task(worker: Worker) -> None:
            self._run(job, worker, encode)

        return task

    def _run(self, job: Job, worker: Worker, encode: Any) -> None:
        with self._lock:
            if job.deleted:
                shutil.rmtree(job.dir, ignore_errors=True)
                return
            job.state, job.started = "running", time.time()
        try:
            pipeline = worker.pipeline(job.choice.config)
            images = [i for i in job.items if i.kind == "image"]
            videos = [i for i in job.items if i.kind == "video"]
            if images:
                self._images(job, images, pipeline)
            for item in videos:
                self._video(job, item, pipeline, encode)
        except Cancelled:
            pass
        except Exception as exc:  # the pipeline could not even be built (e.g. a model is missing)
            from ..errors import describe_error

            if not isinstance(exc, FaceveilError):
                log.exception("job %s failed", job.id)
            for item in job.items:
                if item.state in ("queued", "working"):
                    item.state, item.error = "failed", describe_error(exc)
        finally:
            for item in job.items:
                if item.state in ("queued", "working"):
                    item.state = "cancelled"
                _discard_input(item)
            with self._lock:
                job.finished = time.time()
                job.last_used = time.monotonic()
                states = {i.state for i in job.items}
                job.state = ("cancelled" if job.cancel.is_set() else
                             "done" if "done" in states else "failed")
                deleted = job.deleted and not job.readers  # else the last download removes it
            if deleted:
                shutil.rmtree(job.dir, ignore_errors=True)
            log.info("job %s %s: %d file(s), %s", job.id, job.state, len(job.items),
                     sum((i.counts for i in job.items), Counts()).describe())

    def _images(self, job: Job, items: list[Item], pipeline: Any) -> None:
        from ..pipeline.runner import ImageJob, WriteOptions, run_images

        by_input = {}
        for item in items:
            assert item.input is not None
            by_input[item.input] = item
        items[0].state = "working"

        def on_result(result: Any) -> None:
            item = by_input[result.job.input]
            item.seconds = result.seconds
            if result.ok:
                item.state, item.counts = "done", result.counts
            else:
                item.state, item.error = "failed", result.error
            _discard_input(item)
            following = items.index(item) + 1
            if following < len(items) and items[following].state == "queued":
                items[following].state = "working"
            if job.cancel.is_set():
                raise Cancelled

        jobs = [ImageJob(i.input, i.output) for i in items if i.input is not None]
        run_images(jobs, pipeline, WriteOptions(max_pixels=self.max_pixels), on_result=on_result)

    def _video(self, job: Job, item: Item, pipeline: Any, encode: Any) -> None:
        from ..pipeline.job import WriteOptions, process_file

        if job.cancel.is_set():
            raise Cancelled
        item.state = "working"

        def on_progress(event: Any) -> None:
            if event.stage in ("start", "frame"):
                item.done = event.done
                if event.total:
                    item.total = event.total
            if job.cancel.is_set():
                raise Cancelled

        try:
            assert item.input is not None
            result = process_file(item.input, item.output, pipeline, encode=encode,
                                  write=WriteOptions(max_pixels=self.max_pixels),
                                  on_progress=on_progress, video=True, passthrough=(Cancelled,))
        except Cancelled:
            item.state = "cancelled"
            raise
        finally:
            _discard_input(item)
        item.seconds = result.seconds
        if not result.ok:
            if result.exception is not None and not isinstance(result.exception,
                                                                (FaceveilError, OSError)):
                log.error("job %s: a video failed", job.id, exc_info=result.exception)
            item.state, item.error = "failed", result.error
            return
        item.state, item.counts = "done", result.counts
        item.total = item.done = result.counts.frames
        if result.warnings:
            item.error = "; ".join(result.warnings)

    # ---- results

    def open_download(self, job_id: str, index: int | None) -> Download:
        """An open file to send: output `index` of a job, or (None) the zip of all its outputs.

        Downloads are counted: while one is being sent, neither a second download, DELETE nor
        expiry removes the files under it; the folder goes when the last one ends. A zip that
        was sent whole deletes the job; one that is fetched twice at once is sent to both.
        """
        with self._lock:
            job = self._touch(job_id)
            job.readers += 1
        try:
            if index is None:
                with job.zip_lock:
                    if job.zip_path is None:
                        job.zip_path = self._result_zip(job)
                    path, name, mime = job.zip_path, f"faceveil-{job.id[:8]}.zip", "application/zip"
            else:
                item = self.output(job, index)
                path, name, mime = item.output, item.out_name, item.mime
            handle = open(path, "rb")  # noqa: SIM115 - closed by Download.close
        except BaseException:
            self._release(job, whole_zip=False)
            raise
        size = os.fstat(handle.fileno()).st_size
        return Download(handle, size, name, mime, lambda sent: self._release(job, index is None and sent))

    def _release(self, job: Job, whole_zip: bool) -> None:
        with self._lock:
            job.readers -= 1
            job.downloaded = job.downloaded or whole_zip
            last = job.readers == 0
            if last and job.downloaded and not job.deleted:
                self._jobs.pop(job.id, None)
                job.deleted = True
                log.info("job %s deleted after its zip was downloaded", job.id)
            remove = last and job.deleted and job.state != "running"
        if remove:
            shutil.rmtree(job.dir, ignore_errors=True)

    def _missing(self, job_id: str) -> NotFound:
        return NotFound(f"no job {job_id[:40]!r} (finished jobs are deleted after their zip "
                        f"was downloaded, or {self.ttl:.0f} s after they were last used)")

    def _result_zip(self, job: Job) -> Path:
        """All outputs of a finished job in one zip (stored, not compressed: media is already)."""
        if job.active:
            done = sum(i.state != "queued" and i.state != "working" for i in job.items)
            raise NotReady(f"the job is still working ({done} of {len(job.items)} files done)")
        outputs = [i for i in job.items if i.state == "done" and i.output.exists()]
        if not outputs:
            raise NotReady("the job has no anonymized files to download (see each file's error)")
        path = job.dir / f"result-{secrets.token_hex(4)}.zip"
        try:
            with zipfile.ZipFile(path, "x", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for item in outputs:
                    zf.write(item.output, item.out_name)
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        return path

    def output(self, job: Job, index: int) -> Item:
        if not 0 <= index < len(job.items):
            raise NotFound(f"the job has no file {index} (it has {len(job.items)})")
        item = job.items[index]
        if item.state in ("queued", "working"):
            raise NotReady(f"file {index} is not anonymized yet ({item.state})")
        if item.state != "done" or not item.output.exists():
            raise NotFound(f"file {index} has no result: {item.error or item.state}")
        return item


@dataclass
class Download:
    """An open result file; `close(sent)` must be called once, whether it was sent whole or not."""

    handle: Any
    size: int
    name: str
    mime: str
    _release: Callable[[bool], None]
    _closed: bool = False

    def close(self, sent: bool) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.handle.close()
        self._release(sent)


def _discard_input(item: Item) -> None:
    if item.input is not None:
        with contextlib.suppress(OSError):
            item.input.unlink()
        item.input = None
