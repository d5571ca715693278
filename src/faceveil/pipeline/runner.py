"""Runs the pipeline over many picture files: reads ahead and writes behind in threads.

`Pipeline.process` stays on the calling thread; decoding the next file and encoding the last
one overlap with detection. One bad file is reported and the run goes on.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import describe_error
from ..media.images import DEFAULT_MAX_PIXELS, Picture, read_image, write_image
from ..sidecar import faces_document, write_sidecar
from ..types import Detections, Frame, Result
from .events import Progress, ProgressCallback
from .pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageJob:
    input: Path
    output: Path | None  # None: detect only (e.g. JSON to stdout)
    sidecar: Path | None = None  # where to write the faces JSON, if anywhere
    faces: Detections | None = None  # hide these (e.g. from a faces file) instead of detecting


@dataclass
class JobResult:
    job: ImageJob
    ok: bool
    faces: int = 0  # hidden
    kept: int = 0  # left visible (--keep/--only people)
    error: str = ""
    seconds: float = 0.0
    document: dict[str, Any] | None = field(default=None, repr=False)  # the faces JSON
    detections: Detections | None = field(default=None, repr=False)  # as hidden/kept in the output


@dataclass(frozen=True)
class WriteOptions:
    image_quality: int | None = None  # None: the input's own JPEG quality, else 90
    keep_metadata: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    want_document: bool = False  # build the faces JSON even when no sidecar is written


def run_images(
    jobs: Sequence[ImageJob],
    pipeline: Pipeline,
    options: WriteOptions | None = None,
    on_progress: ProgressCallback | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    options = options or WriteOptions()
    notify = on_progress or (lambda event: None)
    total = len(jobs)
    notify(Progress("start", 0, total))
    results: list[JobResult] = []
    read_ahead = 2

    def finish(result: JobResult) -> None:
        results.append(result)
        if not result.ok:
            log.debug("%s failed: %s", result.job.input, result.error)
        if on_result:
            on_result(result)
        notify(Progress("file", len(results), total, str(result.job.input), result.ok,
                        result.error))

    with ThreadPoolExecutor(1, "faceveil-read") as reader, \
            ThreadPoolExecutor(1, "faceveil-write") as writer:
        reads: deque[Future[Picture]] = deque()
        writes: deque[tuple[Future[None], JobResult]] = deque()
        next_read = 0

        def drain(keep: int) -> None:
            while len(writes) > keep:
                fut, result = writes.popleft()
                try:
                    fut.result()
                except Exception as exc:
                    result.ok, result.error = False, describe_error(exc)
                finish(result)

        for job in jobs:
            while next_read < total and len(reads) < read_ahead:
                reads.append(reader.submit(read_image, jobs[next_read].input, options.max_pixels))
                next_read += 1
            started = time.perf_counter()
            try:
                picture = reads.popleft().result()
                if picture.extra_frames:
                    log.warning("%s: only the first of %d frames is kept", job.input,
                                picture.extra_frames + 1)
                frame = Frame(picture.rgb, source=str(job.input))
                if job.faces is None:
                    result = pipeline.process(frame)
                else:
                    result = Result(frame, pipeline.render(frame, job.faces), job.faces)
            except Exception as exc:
                drain(0)  # keep results in input order
                finish(JobResult(job, False, error=describe_error(exc),
                                 seconds=time.perf_counter() - started))
                continue
            res = JobResult(job, True, faces=int((~result.detections.keep).sum()),
                            kept=int(result.detections.keep.sum()),
                            seconds=time.perf_counter() - started, detections=result.detections)
            if job.sidecar or options.want_document:
                res.document = _document(job, picture, result.detections, pipeline)
            writes.append((writer.submit(_write, job, picture, result.image, res.document,
                                         options), res))
            drain(1)
        drain(0)
    notify(Progress("done", len(results), total))
    return results


def _document(job: ImageJob, picture: Picture, dets: Detections, pipeline: Pipeline) -> dict:
    h, w = picture.rgb.shape[:2]
    return faces_document(source=str(job.input), output=str(job.output) if job.output else None,
                          width=w, height=h, frames=[(0, None, dets)], config=pipeline.config)


def _write(job: ImageJob, picture: Picture, image, document, options: WriteOptions) -> None:
    if job.output is not None:
        write_image(job.output, image, like=picture, quality=options.image_quality,
                    keep_metadata=options.keep_metadata)
    if job.sidecar is not None and document is not None:
        write_sidecar(job.sidecar, document)
