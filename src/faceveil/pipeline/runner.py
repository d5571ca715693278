"""Runs the file job (.job) over many pictures: reads ahead and writes behind in threads.

The job's first half (`picture_stage`: detect, hide) runs on the calling thread, or with
`workers` > 1 on that many threads at once, each with its own copy of the pipeline
(`Pipeline.replica`) and one inference thread: ONNX Runtime's two threads on one picture keep
~1.75 of two cores busy and hand work back and forth; two pictures side by side, one thread
each, detected the 55 WIDER JPEGs 1.25x as fast with less CPU (bench/README.md). Decoding
the next files and writing the last ones (`picture_finish`: atomic writes, verification)
overlap with it, and the workers go ahead of a slow picture (see `ahead`). Results come in
input order, without their pixels once `on_result` has seen them (a folder runs in the memory
of a few pictures); one bad file is reported and the run goes on.
"""

from __future__ import annotations

import logging
import queue
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .._files import sweep_parts
from ..errors import describe_error
from ..media.images import Picture, read_image
from ..types import Detections
from .events import Progress, ProgressCallback
from .job import FileResult, WriteOptions, picture_finish, picture_stage
from .pipeline import Pipeline

log = logging.getLogger(__name__)

JobResult = FileResult  # the name this module used before the file job existed

__all__ = ["FileResult", "ImageJob", "JobResult", "WriteOptions", "describe_error",
           "picture_workers", "run_images"]


@dataclass(frozen=True)
class ImageJob:
    input: Path
    output: Path | None  # None: detect only (e.g. JSON to stdout)
    sidecar: Path | None = None  # where to write the faces JSON, if anywhere
    faces: Detections | None = None  # hide these (e.g. from a faces file) instead of detecting


def picture_workers(pipeline: Pipeline, pictures: int) -> int:
    """How many pictures to anonymize at once: one per usable core (at most MAX_WORKERS), each
    with one inference thread, where that is what the settings leave to faceveil: a CPU
    detector on ONNX Runtime with the default threads, and no other models to load per copy
    (people to keep, a background). Otherwise 1, as the settings say."""
    from ..models.runtime import usable_cores

    config = pipeline.config
    if (pictures < 2 or config.detector.threads is not None or config.detector.device != "cpu"
            or config.detector.name not in SESSION_DETECTORS or config.identity.active
            or config.background.active or not pipeline.replicable):
        return 1
    return max(1, min(usable_cores(), MAX_WORKERS, pictures))


#: Detectors whose threads belong to their own ONNX Runtime session (OpenCV's are one setting
#: for the whole process, so copies of them would not each get their own).
SESSION_DETECTORS = ("centerface", "blazeface")
MAX_WORKERS = 4  # each copy holds its model sessions and a picture's buffers
EARLY_PIXELS = 24_000_000  # pictures up to this size may be staged ahead of the workers


def run_images(
    jobs: Sequence[ImageJob],
    pipeline: Pipeline,
    options: WriteOptions | None = None,
    on_progress: ProgressCallback | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    auditor=None,
    workers: int = 1,
) -> list[FileResult]:
    """The file job for each picture, in order: the next ones are read ahead and the last one
    is written (and verified) behind, both in threads, while this thread (or `workers` threads,
    see `picture_workers`) detects and hides. Each result's `job` is its ImageJob; `on_result`
    is called on this thread, in input order, and is the only one to see a result's `image`
    (the anonymized pixels), which is dropped afterwards."""
    options = options or WriteOptions()
    notify = on_progress or (lambda event: None)
    total = len(jobs)
    notify(Progress("start", 0, total))
    results: list[FileResult] = []
    copies = [pipeline.replica(1) for _ in range(workers)] if workers > 1 else []
    if not all(copies):
        copies = []
    free: queue.SimpleQueue[Pipeline] = queue.SimpleQueue()
    for copy in copies:
        free.put(copy)
    workers = max(1, len(copies))
    # Pictures staged at once: twice the workers, so that a slow one (a crowd) does not hold
    # the others back while its result waits to be written in order. Each staged picture keeps
    # its pixels until then, so the extra ones are staged only while the pictures read are of
    # a common camera's size (EARLY_PIXELS); bigger ones go `workers` at a time. One worker:
    # the next picture is read while this one runs.
    ahead = 2 * workers if copies else 1
    small = [True]  # whether the last picture read had at most EARLY_PIXELS

    def load(path: Path) -> Picture:
        picture = read_image(path, options.max_pixels)
        small[0] = picture.rgb.shape[0] * picture.rgb.shape[1] <= EARLY_PIXELS
        return picture

    def stage(job: ImageJob, read: Future[Picture]):
        picture = read.result()  # a file that cannot be read raises here: see below
        mine = free.get() if copies else pipeline
        try:
            return picture_stage(job.input, job.output, mine, write=options, sidecar=job.sidecar,
                                 faces=job.faces, picture=picture, sweep=False)
        finally:
            if copies:
                free.put(mine)

    def finish(result: FileResult, job: ImageJob) -> None:
        result.job = job
        results.append(result)
        if not result.ok:
            log.debug("%s failed: %s", job.input, result.error)
        if on_result:
            on_result(result)
        # the pixels are in the output file now: a folder of thousands of photos must not be
        # held in memory (a 12 Mpx photo is 36 MB); nor those of the files that failed (a full
        # disk fails every one), which their exception's frames hold (it still prints)
        result.image = None
        if result.exception is not None:
            traceback.clear_frames(result.exception.__traceback__)
        notify(Progress("file", len(results), total, str(job.input), result.ok, result.error))

    sweep_parts(p for job in jobs for p in (job.output, job.sidecar) if p is not None)
    with ThreadPoolExecutor(1, "faceveil-read") as reader, \
            ThreadPoolExecutor(workers, "faceveil-detect") as detect, \
            ThreadPoolExecutor(1, "faceveil-write") as writer:
        reads: deque[Future[Picture]] = deque()
        stages: deque[Future] = deque()
        writes: deque[tuple[Future[FileResult], ImageJob]] = deque()
        next_read = next_stage = 0
        if copies:  # the first picture's size sets the first window
            reads.append(reader.submit(load, jobs[0].input))
            next_read = 1
            wait(reads)

        def drain(keep: int) -> None:
            while len(writes) > keep:
                fut, job = writes.popleft()
                finish(fut.result(), job)

        for index, job in enumerate(jobs):
            window = ahead if small[0] else workers
            while next_read < total and next_read < index + window + 1:
                reads.append(reader.submit(load, jobs[next_read].input))
                next_read += 1
            if copies:  # `workers` pictures detected at once on the detect threads, more queued
                while next_stage < total and next_stage < index + window:
                    stages.append(detect.submit(stage, jobs[next_stage], reads.popleft()))
                    next_stage += 1
                pending = stages.popleft()
            else:  # on this thread
                pending = Future()
                try:
                    pending.set_result(stage(job, reads.popleft()))
                except Exception as exc:
                    pending.set_exception(exc)
            try:
                staged = pending.result()
            except Exception as exc:
                drain(0)  # keep results in input order
                finish(FileResult(Path(job.input), job.output, "picture",
                                  error=describe_error(exc), exception=exc), job)
                continue
            writes.append((writer.submit(picture_finish, staged, auditor=auditor), job))
            drain(1)
        drain(0)
    notify(Progress("done", len(results), total))
    return results
