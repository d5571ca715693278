"""Runs the file job (.job) over many pictures: reads ahead and writes behind in threads.

Detection stays on the calling thread (the job's first half, `picture_stage`); decoding the
next files and writing the last one (`picture_finish`: atomic writes, verification) overlap
with it. One bad file is reported and the run goes on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

__all__ = ["FileResult", "ImageJob", "JobResult", "WriteOptions", "describe_error", "run_images"]


@dataclass(frozen=True)
class ImageJob:
    input: Path
    output: Path | None  # None: detect only (e.g. JSON to stdout)
    sidecar: Path | None = None  # where to write the faces JSON, if anywhere
    faces: Detections | None = None  # hide these (e.g. from a faces file) instead of detecting


def run_images(
    jobs: Sequence[ImageJob],
    pipeline: Pipeline,
    options: WriteOptions | None = None,
    on_progress: ProgressCallback | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    auditor=None,
) -> list[FileResult]:
    """The file job for each picture, in order: the next ones are read ahead and the last one
    is written (and verified) behind, both in threads, while this thread detects. Each
    result's `job` is its ImageJob; `on_result` is called on this thread, in input order."""
    options = options or WriteOptions()
    notify = on_progress or (lambda event: None)
    total = len(jobs)
    notify(Progress("start", 0, total))
    results: list[FileResult] = []
    read_ahead = 2

    def finish(result: FileResult, job: ImageJob) -> None:
        result.job = job
        results.append(result)
        if not result.ok:
            log.debug("%s failed: %s", job.input, result.error)
        if on_result:
            on_result(result)
        notify(Progress("file", len(results), total, str(job.input), result.ok, result.error))

    sweep_parts(p for job in jobs for p in (job.output, job.sidecar) if p is not None)  # once
    with ThreadPoolExecutor(1, "faceveil-read") as reader, \
            ThreadPoolExecutor(1, "faceveil-write") as writer:
        reads: deque[Future[Picture]] = deque()
        writes: deque[tuple[Future[FileResult], ImageJob]] = deque()
        next_read = 0

        def drain(keep: int) -> None:
            while len(writes) > keep:
                fut, job = writes.popleft()
                finish(fut.result(), job)

        for job in jobs:
            while next_read < total and len(reads) < read_ahead:
                reads.append(reader.submit(read_image, jobs[next_read].input, options.max_pixels))
                next_read += 1
            try:
                picture = reads.popleft().result()
            except Exception as exc:
                drain(0)  # keep results in input order
                finish(FileResult(Path(job.input), job.output, "picture",
                                  error=describe_error(exc), exception=exc), job)
                continue
            stage = picture_stage(job.input, job.output, pipeline, write=options,
                                  sidecar=job.sidecar, faces=job.faces, picture=picture, sweep=False)
            writes.append((writer.submit(picture_finish, stage, auditor=auditor), job))
            drain(1)
        drain(0)
    notify(Progress("done", len(results), total))
    return results
