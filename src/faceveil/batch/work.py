"""The per-item function both engines run: one input -> one output -> one manifest record.

An `ItemWorker` loads the models once (in its worker process or Ray actor) and then processes
items one at a time. It never raises for a bad input: the error goes into the record and the
next item follows. Inputs inside zips or on remote filesystems are copied to a local temporary
file first (hashed on the way); remote outputs are written locally and uploaded at the end. Local
outputs are written atomically by the media writers, so an output name holds a whole file or
nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import resource
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import sha256_file
from ..config import PipelineConfig
from ..errors import UnsupportedMediaError
from ..media.video import EncodeOptions
from ..pipeline.job import WriteOptions
from . import storage
from .plan import Item

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemOptions:
    """How outputs are written; sent to every worker with the pipeline configuration."""

    write: WriteOptions = field(default_factory=WriteOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    verify: str | None = None  # "warn" | "strict": check each output (faceveil.audit)


def settings_fingerprint(config: PipelineConfig, options: ItemOptions) -> str:
    """Short hash of everything that changes the output pixels; --resume only skips items done
    with the same settings. Threads and size limits change nothing in the output."""
    import hashlib
    import json

    cfg = config.to_dict()
    cfg["detector"].pop("threads", None)
    write = dataclasses.asdict(options.write)
    for name in ("max_pixels", "want_document"):
        write.pop(name, None)
    encode = dataclasses.asdict(options.encode)
    encode.pop("threads", None)
    blob = json.dumps({"config": cfg, "write": write, "encode": encode,
                       **({"verify": options.verify} if options.verify else {})},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB. On Linux from /proc (VmHWM): a spawned
    worker's ru_maxrss keeps the peak of the parent it was forked from, however small it is."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if os.uname().sysname == "Darwin" else 1024), 1)


class ItemWorker:
    """Holds one loaded pipeline; `process(item)` -> record (a dict for the manifest)."""

    def __init__(self, config: PipelineConfig, options: ItemOptions | None = None, *,
                 engine: str = "local", name: str = "") -> None:
        from ..pipeline import Pipeline

        threads = config.detector.threads
        self.options = options or ItemOptions()
        if threads:  # OpenCV's resizes and blurs and the encoder keep to detection's share too
            import cv2

            cv2.setNumThreads(threads)
            self.options = dataclasses.replace(
                self.options, encode=dataclasses.replace(self.options.encode, threads=threads))
        self.engine, self.name = engine, name or f"pid {os.getpid()}"
        self.settings = settings_fingerprint(config, self.options)
        self.pipeline = Pipeline(config)
        _ = self.pipeline.detector  # load the models now, once, not inside the first item
        _ = self.pipeline.identifier
        if self.pipeline.backdrop is not None:
            self.pipeline.person_masker()
        self.auditor = None
        if self.options.verify:
            from ..audit import Auditor

            self.auditor = Auditor(config, self.options.verify)
        self._tmp = Path(tempfile.mkdtemp(prefix="faceveil-batch-"))
        self._archives = contextlib.ExitStack()
        self._archive: tuple[str, zipfile.ZipFile] | None = None  # the zip items come from

    def close(self) -> None:
        self._archives.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _zip(self, source: str) -> zipfile.ZipFile:
        """The open archive: members of one zip come one after the other, and reading its
        directory again for each of (maybe) thousands of members would cost more than the work."""
        if self._archive is None or self._archive[0] != source:
            self._archives.close()
            self._archives = contextlib.ExitStack()
            raw = self._archives.enter_context(storage.open_binary(source, seekable=True))
            self._archive = (source, self._archives.enter_context(zipfile.ZipFile(raw)))
        return self._archive[1]

    def process(self, item: Item, run: str = "") -> dict[str, Any]:
        from ..errors import describe_error

        started = time.perf_counter()
        record: dict[str, Any] = {
            "input": item.input, "size": None, "sha256": None, "output": item.output_name,
            "kind": "video" if item.video else "picture", "faces": 0, "kept": 0,
            "status": "error", "error": "",
        }
        try:
            with contextlib.ExitStack() as stack:
                work = Path(tempfile.mkdtemp(dir=self._tmp))
                stack.callback(shutil.rmtree, work, True)
                local_in = self._materialize(item, work, record)
                if item.expect is not None and record["sha256"] == item.expect:
                    record["status"] = "skipped"  # --resume: this input's output is there already
                    return record
                remote_out = storage.is_uri(item.output)
                local_out = work / "out" / Path(item.rel).name if remote_out else Path(item.output)
                self._job(item, local_in, local_out, record)
                if remote_out:
                    storage.upload(local_out, item.output)
            record["status"] = "ok"
        except Exception as exc:  # a bad file is recorded; the batch goes on
            record["error"] = describe_error(exc)
            log.debug("%s failed", item.input, exc_info=True)
        finally:
            record.update(seconds=round(time.perf_counter() - started, 3), engine=self.engine,
                          worker=self.name, peak_rss_mb=peak_rss_mb(), settings=self.settings,
                          run=run, finished=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
        return record

    def _materialize(self, item: Item, work: Path, record: dict[str, Any]) -> Path:
        """A local file with the input's bytes; its size and sha256 go into the record."""
        suffix = Path(item.rel).suffix
        if item.member is None and not storage.is_uri(item.source):
            path = storage.local_path(item.source)
            record["size"] = path.stat().st_size
            record["sha256"] = sha256_file(path)
            return path
        target = work / f"input{suffix}"
        with open(target, "wb") as dst:
            if item.member is None:
                with storage.open_binary(item.source) as src:
                    size, digest = storage.copy_hashed(src, dst)
            else:
                try:
                    zf = self._zip(item.source)
                    info = zf.getinfo(item.member)
                except BaseException:
                    self._archive = None  # opened afresh for the next member
                    raise
                if info.flag_bits & 0x1:
                    raise UnsupportedMediaError("encrypted zip member (passwords are not supported)")
                with zf.open(info) as src:
                    size, digest = storage.copy_hashed(src, dst, limit=info.file_size)
        record["size"], record["sha256"] = size, digest
        return target

    def _job(self, item: Item, src: Path, dst: Path, record: dict[str, Any]) -> None:
        """The file job (faceveil.pipeline.job) on the local copy; its result into the record."""
        from ..pipeline.job import process_file

        result = process_file(src, dst, self.pipeline, write=self.options.write,
                              encode=self.options.encode, auditor=self.auditor,
                              video=item.video)
        record.update(result.counts.to_dict())
        if item.video:
            record["tracks"] = result.tracks
        if result.damage:
            record["damage"] = [round(t, 3) for t in result.damage[:20]]
        if result.audit is not None and result.audit.verified_frames is not None:
            record["verified"] = True
            failing = result.audit.failing
            if failing:
                record["findings"] = [f.to_dict() for f in failing[:20]]
                result.warnings.append(f"verification: {failing[0].detail}" + (
                    f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""))
        if result.warnings:  # an "ok" that needs a look (never a plain one)
            record["warning"] = "; ".join(result.warnings)
        result.raise_for_error()
