"""The file job: one picture or one video in, its anonymized file (and faces file) out.

Every door that turns "a file" into "a result" calls `process_file`: the CLI's `run` and
`render`, the batch worker (local and Ray), the web jobs and `/api/anonymize`, the GUI's export
and the Python API.
What lives here, once:

- leftover part files of a killed run beside the outputs are swept first;
- outputs are written atomically (the media writers' `atomic_path`); when the job fails after
  one of its outputs was written (a faces file that cannot be written, a verification that
  finds a face or cannot run under strict), the outputs it wrote are removed again, so nothing
  is left half-done under any name;
- strict verification (`faceveil.audit.Auditor`): findings fail the file and remove its output;
- the counts (`faceveil.types.Counts`), the same for every door.

A bad file never raises: the error is in the `FileResult` (and `raise_for_error()` gives the
original exception to callers that want it; a MemoryError is such an error too). Exceptions
of the types in `passthrough` (a door's "cancelled"), KeyboardInterrupt and SystemExit go
through.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import sweep_parts
from ..errors import describe_error
from ..media.images import DEFAULT_MAX_PIXELS, Picture, read_image, write_image
from ..media.video import EncodeOptions, is_video
from ..sidecar import faces_document, write_sidecar
from ..types import Counts, Detections, Frame
from .events import ProgressCallback
from .pipeline import Pipeline

if TYPE_CHECKING:
    from ..audit import Auditor, FileAudit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteOptions:
    image_quality: int | None = None  # None: the input's own JPEG quality, else 90
    keep_metadata: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    want_document: bool = False  # build the faces JSON even when no sidecar is written


@dataclass
class FileResult:
    """What became of one file."""

    input: Path
    output: Path | None
    kind: str  # "picture" | "video"
    ok: bool = False
    error: str = ""
    counts: Counts = field(default_factory=Counts)
    width: int = 0  # of the (upright) picture or video frame
    height: int = 0
    seconds: float = 0.0
    sidecar: Path | None = None  # the faces file written, if any
    warnings: list[str] = field(default_factory=list)  # an "ok" that needs a look
    damage: list[float] = field(default_factory=list)  # times (s) where a video was damaged
    tracks: int = 0
    document: dict[str, Any] | None = field(default=None, repr=False)  # the faces JSON
    detections: Detections | None = field(default=None, repr=False)  # a picture's, as hidden/kept
    frames: list | None = field(default=None, repr=False)  # a video's (index, pts, Detections)
    image: np.ndarray | None = field(default=None, repr=False)  # a picture's anonymized pixels
    audit: FileAudit | None = field(default=None, repr=False)
    report: Any = field(default=None, repr=False)  # a video's VideoReport
    exception: BaseException | None = field(default=None, repr=False)
    job: Any = field(default=None, repr=False)  # the caller's own handle (e.g. an ImageJob)

    def raise_for_error(self) -> FileResult:
        """The original exception of a failed file (a FaceveilError for findings); self if ok."""
        if self.ok:
            return self
        if self.exception is not None:
            raise self.exception
        from ..errors import FaceveilError

        raise FaceveilError(self.error)


def process_file(
    src: str | Path,
    dst: str | Path | None,
    pipeline: Pipeline,
    *,
    write: WriteOptions | None = None,
    encode: EncodeOptions | None = None,
    sidecar: str | Path | None = None,
    faces: Detections | Sequence[Detections] | None = None,
    auditor: Auditor | None = None,
    on_progress: ProgressCallback | None = None,
    picture: Picture | None = None,
    pixels: np.ndarray | None = None,
    video: bool | None = None,
    passthrough: tuple[type[BaseException], ...] = (),
) -> FileResult:
    """Anonymize one picture or video `src` into `dst` (None: detect only).

    `sidecar`: where to write the faces file. `faces`: hide these (a picture's Detections, or a
    video's per-frame list, e.g. from a faces file or a review) instead of detecting.
    `auditor`: audit (and verify) the output; under strict, findings fail the file.
    `picture`: `src` already read (a read-ahead thread); `pixels`: RGB pixels given directly
    (the API's arrays; `src` then only names them). `video`: the kind, when `src`'s name does
    not tell it (a web upload's content was sniffed).
    """
    src = Path(src)
    if not (is_video(src) if video is None else video):
        stage = picture_stage(src, dst, pipeline, write=write, sidecar=sidecar, faces=faces,
                              picture=picture, pixels=pixels, passthrough=passthrough)
        return picture_finish(stage, auditor=auditor, passthrough=passthrough)
    result = FileResult(src, Path(dst) if dst is not None else None, "video",
                        sidecar=Path(sidecar) if sidecar is not None else None)
    started = time.perf_counter()
    written: list[Path] = []
    with _attempt(result, written, passthrough):
        _sweep(result)
        _video(result, pipeline, write or WriteOptions(), encode or EncodeOptions(), faces,
               auditor, on_progress, written)
        result.ok = True
    _end(result, auditor, written, started)
    return result


@dataclass
class PictureStage:
    """A picture anonymized in memory, not written yet: `picture_finish` writes it. Two halves,
    so a runner can write one picture (a slow PNG) while the next one is detected."""

    result: FileResult
    write: WriteOptions
    started: float
    picture: Picture | None = None


def picture_stage(src: str | Path, dst: str | Path | None, pipeline: Pipeline, *,
                  write: WriteOptions | None = None, sidecar: str | Path | None = None,
                  faces: Detections | Sequence[Detections] | None = None,
                  picture: Picture | None = None, pixels: np.ndarray | None = None,
                  passthrough: tuple[type[BaseException], ...] = (),
                  sweep: bool = True) -> PictureStage:
    """The first half of a picture's file job: read, detect (or take `faces`), hide, count.
    `sweep` False: the caller swept its outputs' folders for a killed run's leftovers already
    (`sweep_parts` over all its files at once: one listing of a folder, not one per file)."""
    result = FileResult(Path(src), Path(dst) if dst is not None else None, "picture",
                        sidecar=Path(sidecar) if sidecar is not None else None)
    stage = PictureStage(result, write or WriteOptions(), time.perf_counter(), picture)
    with _attempt(result, [], passthrough):  # nothing written yet
        if sweep:
            _sweep(result)
        _picture(stage, pipeline, faces, pixels)
    return stage


def picture_finish(stage: PictureStage, *, auditor: Auditor | None = None,
                   passthrough: tuple[type[BaseException], ...] = ()) -> FileResult:
    """The second half: write the picture and its faces file (atomically), verify; a failure
    removes what this job wrote."""
    result, write = stage.result, stage.write
    written: list[Path] = []
    if result.exception is None:
        with _attempt(result, written, passthrough):
            if result.output is not None:
                assert result.image is not None
                write_image(result.output, result.image, like=stage.picture,
                            quality=write.image_quality, keep_metadata=write.keep_metadata)
                written.append(result.output)
            if result.sidecar is not None:
                write_sidecar(result.sidecar, result.document)
                written.append(result.sidecar)
            result.ok = True
    _end(result, auditor, written, stage.started)
    return result


@contextlib.contextmanager
def _attempt(result: FileResult, written: list[Path],
             passthrough: tuple[type[BaseException], ...]) -> Iterator[None]:
    """A step of the job: an exception of a `passthrough` type (a door's "cancelled") removes
    what the job wrote and goes through; any other Exception fails the file (`_failed`);
    KeyboardInterrupt and SystemExit go through as they are."""
    try:
        yield
    except passthrough:
        _remove(written)
        raise
    except Exception as exc:
        _failed(result, exc)


def _sweep(result: FileResult) -> None:
    sweep_parts(p for p in (result.output, result.sidecar) if p is not None)  # a killed run's


def _failed(result: FileResult, exc: Exception) -> None:
    result.ok, result.error, result.exception = False, describe_error(exc), exc
    log.debug("%s failed", result.input, exc_info=True)


def _end(result: FileResult, auditor: Auditor | None, written: list[Path], started: float) -> None:
    if result.ok and auditor is not None:
        _verify(result, auditor, written)
    if not result.ok:
        _remove(written)
    result.seconds = time.perf_counter() - started


def _picture(stage: PictureStage, pipeline: Pipeline, faces: Any,
             pixels: np.ndarray | None) -> None:
    result, write = stage.result, stage.write
    if pixels is None and stage.picture is None:
        stage.picture = read_image(result.input, write.max_pixels)
    picture = stage.picture
    if picture is not None:
        pixels = picture.rgb
        if picture.extra_frames:
            note = f"only the first of {picture.extra_frames + 1} frames is kept"
            log.warning("%s: %s", result.input, note)
            result.warnings.append(note)
    assert pixels is not None
    frame = Frame(pixels, source=str(result.input))
    if faces is not None and not isinstance(faces, Detections):
        if len(faces) != 1:
            from ..errors import CorruptMediaError

            raise CorruptMediaError(f"the faces file has {len(faces)} frames; a picture needs "
                                    "exactly 1")
        faces = faces[0]
    if faces is None:
        out = pipeline.process(frame)
        dets, image = out.detections, out.image
    else:
        dets, image = faces, pipeline.render(frame, faces, still=True)
    result.height, result.width = pixels.shape[:2]
    result.detections, result.image = dets, image
    result.counts = Counts.of([dets])
    if result.sidecar is not None or write.want_document:
        result.document = faces_document(
            source=str(result.input), output=str(result.output) if result.output else None,
            width=result.width, height=result.height, frames=[(0, None, dets)],
            config=pipeline.config, counts=result.counts.to_dict())


def _video(result: FileResult, pipeline: Pipeline, write: WriteOptions, encode: EncodeOptions,
           faces: Any, auditor: Auditor | None, on_progress: ProgressCallback | None,
           written: list[Path]) -> None:
    from .video import process_video

    if isinstance(faces, Detections):
        faces = [faces]
    frames: list | None = [] if (auditor is not None or write.want_document) else None
    report = process_video(
        result.input, result.output, pipeline, encode=encode, sidecar=result.sidecar,
        faces=faces, max_pixels=write.max_pixels, on_progress=on_progress,
        on_frame=(lambda *rec: frames.append(rec)) if frames is not None else None)
    written += [p for p in (result.output, result.sidecar) if p is not None]
    result.report, result.frames = report, frames
    result.counts, result.tracks = report.counts, report.tracks
    result.width, result.height, result.damage = report.width, report.height, report.damage
    if report.damage:  # an output is there, but never a plain "ok"
        result.warnings.append(f"damaged, processed as far as it decodes ({report.frames} frames)")
    if write.want_document:
        result.document = faces_document(
            source=str(result.input), output=str(result.output) if result.output else None,
            width=report.width, height=report.height, frames=frames or [],
            config=pipeline.config, counts=result.counts.to_dict())


def _verify(result: FileResult, auditor: Auditor, written: list[Path]) -> None:
    """Audit (and verify) the written file; under strict, findings fail it (its outputs go)."""
    try:
        if result.kind == "video":
            audit = auditor.video(result.input, result.output, result.report, result.frames or [])
        else:
            audit = auditor.picture(result.input, result.output, result.detections)
    except Exception as exc:  # a verification that cannot run must not pass silently
        result.ok, result.exception = False, exc
        result.error = f"could not be verified: {describe_error(exc)}"
        if auditor.verify != "strict":
            written.clear()  # warn: the output stays; the file is reported failed
        return
    result.audit = audit
    if auditor.fails(audit):  # strict: an output that may show a face is not left behind
        result.ok = False
        result.error = (f"verification found {len(audit.failing)} problem(s): "
                                      f"{audit.failing[0].detail}; output removed")


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()
