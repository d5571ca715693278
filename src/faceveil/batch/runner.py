"""run_batch: plan -> skip what is done (--resume) -> an engine runs the items -> manifest -> zip.

The manifest gets one line per finished item, as it finishes, so a run that is stopped (Ctrl-C,
SIGTERM, a kill, a power cut) keeps what it did; `resume=True` then skips every item whose input
bytes (sha256) and settings match a finished entry whose output is still there. A bad file is
recorded and the run goes on. A zip output is assembled at the end from the staging folder
beside it (and, when resuming, from the entries of the earlier zip), under a temporary name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import secrets
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import sweep_parts
from ..config import PipelineConfig
from ..errors import ConfigError
from ..pipeline.events import Progress, ProgressCallback
from ..types import Counts
from . import storage
from .manifest import ManifestWriter, read_manifest
from .plan import BatchPlan, Item, plan_batch
from .segments import Splitter
from .work import ItemOptions, settings_fingerprint
from .zips import ZipLimits, write_zip

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
RecordCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class BatchOptions:
    # local: processes (default: one per core); ray: actors (default: the cluster's CPUs / threads)
    workers: int | None = None
    engine: str = "local"  # local | ray
    address: str | None = None  # ray: an existing cluster ("auto", "ray://host:10001"); None: start one
    resume: bool = False  # skip items already done (same input bytes, same settings, output there)
    split: bool = True  # long videos in segments over several workers (faceveil.batch.segments)
    segment_frames: int | None = None  # shortest segment; None: from the tracker's context
    manifest: str | None = None  # default: OUT/.faceveil-manifest.jsonl, beside an output zip
    item: ItemOptions = field(default_factory=ItemOptions)
    zip_limits: ZipLimits = field(default_factory=ZipLimits)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if self.segment_frames is not None and self.segment_frames < 1:
            raise ConfigError(f"segment frames must be at least 1, got {self.segment_frames}")
        if self.address and self.engine != "ray":
            raise ConfigError("an address is for the ray engine (engine='ray' / --engine ray)")


@dataclass
class BatchReport:
    output: str = ""
    manifest: str = ""
    engine: str = "local"
    workers: int | None = None
    threads: int = 1
    planned: int = 0  # items found
    ok: int = 0
    failed: int = 0  # items and inputs that failed (planning errors included)
    skipped: int = 0  # --resume: already done
    redone: int = 0  # --resume: done before, but with other settings: done again
    pictures: int = 0  # done in this run
    videos: int = 0
    frames: int = 0
    counts: Counts = field(default_factory=Counts)  # summed over the items done: types.Counts
    zip_members: int | None = None
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (input, why)


def run_batch(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    config: PipelineConfig | None = None,
    options: BatchOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    on_record: RecordCallback | None = None,
) -> BatchReport:
    """Anonymize every picture and video of `inputs` (files, folders, globs, zips, URIs) into
    `output` (a folder, a .zip or a URI). Raises KeyboardInterrupt when stopped; the manifest
    then holds every item that finished."""
    started = time.perf_counter()
    config = config or PipelineConfig()
    options = options or BatchOptions()
    notify = on_progress or (lambda event: None)
    plan = plan_batch([os.fspath(i) for i in inputs], os.fspath(output),
                      alpha=config.background.mode == "transparent", limits=options.zip_limits)
    report = BatchReport(output=plan.output, engine=options.engine, planned=len(plan.items),
                         manifest=os.path.abspath(options.manifest) if options.manifest
                         else plan.manifest)
    run_id = dt.datetime.now().strftime("%Y%m%dT%H%M%S-") + secrets.token_hex(2)
    if not plan.items:
        _engine(config, options, report, run_id, 0)
        report.failed, report.errors = len(plan.errors), list(plan.errors)
        report.seconds = time.perf_counter() - started
        return report

    settings = settings_fingerprint(config, options.item)
    statuses: dict[str, str] = {}  # output name -> ok | skipped | error
    with ManifestWriter(report.manifest) as manifest:
        for name, why in plan.errors:
            report.failed += 1
            report.errors.append((name, why))
            record = {"input": name, "status": "error", "error": why, "engine": options.engine,
                      "run": run_id, "settings": settings,
                      "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
            manifest.append(record)
            if on_record:
                on_record(record)
        if plan.staging is not None:
            if not options.resume:
                shutil.rmtree(plan.staging, ignore_errors=True)  # leftovers of a stopped run
            plan.staging.mkdir(parents=True, exist_ok=True)
        old_zip = _old_zip_names(plan) if options.resume else set()
        items = (_mark_done(plan, read_manifest(report.manifest), settings, old_zip, report)
                 if options.resume else plan.items)
        _sweep_parts([i for i in items if i.expect is None])
        splitter = Splitter(config, options.item, run=run_id, engine=options.engine,
                            min_frames=options.segment_frames)
        tasks = splitter.split(items, _wanted_workers(options)) if options.split else list(items)
        engine, config = _engine(config, options, report, run_id, len(tasks))
        total = len(items)
        notify(Progress("start", 0, total))
        done = 0

        def on_item(record: dict[str, Any]) -> None:
            nonlocal done
            done += 1
            status = record.get("status")
            statuses[record.get("output", "")] = status
            if status == "skipped":
                report.skipped += 1
            else:
                manifest.append(record)
                _count(report, record)
            if on_record:
                on_record(record)
            notify(Progress("file", done, total, record.get("input", ""), status != "error",
                            record.get("error", "")))

        try:
            engine.run(tasks, lambda record: splitter.on_record(record, on_item))
        except BaseException:
            # Actors killed hard (Ray) cannot remove their temporary files: do it for them.
            _sweep_parts([i for i in items if i.output_name not in statuses])
            splitter.abort()
            raise
        notify(Progress("done", done, total))

    if plan.zip_out is not None:
        report.zip_members = _assemble_zip(plan, statuses, old_zip)
    report.seconds = time.perf_counter() - started
    return report


def _wanted_workers(options: BatchOptions) -> int:
    """How many workers the engine would start for plenty of work (what segments are cut for)."""
    from .local import usable_cores

    if options.workers:
        return options.workers
    if options.engine == "ray":
        return max(1, usable_cores()) if not options.address else 2
    return usable_cores()


def _engine(config: PipelineConfig, options: BatchOptions, report: BatchReport, run_id: str,
            items: int):
    """The engine, and the configuration with the inference threads each worker gets: no more
    workers than items, and the cores shared out among them unless threads were given."""
    from .local import LocalEngine, threads_per_worker, usable_cores

    if options.engine == "ray":
        from .ray_engine import RayEngine

        threads = config.detector.threads or 1
        report.workers, report.threads = options.workers, threads
        config = config.replace(threads=threads)
        return RayEngine(config, options.item, workers=options.workers, threads=threads,
                         address=options.address, run=run_id), config
    workers = max(1, min(options.workers or usable_cores(), items))
    threads = threads_per_worker(workers, config.detector.threads)
    report.workers, report.threads = workers, threads
    config = config.replace(threads=threads)
    return LocalEngine(config, options.item, workers=workers, run=run_id), config


def _count(report: BatchReport, record: dict[str, Any]) -> None:
    if record.get("status") != "ok":
        report.failed += 1
        report.errors.append((record.get("input", "?"), record.get("error", "")))
        return
    report.ok += 1
    if record.get("kind") == "video":
        report.videos += 1
        report.frames += int(record.get("frames") or 0)
    else:
        report.pictures += 1
    report.counts += Counts.from_dict(record)


def _old_zip_names(plan: BatchPlan) -> set[str]:
    if plan.zip_out is None or not plan.zip_out.is_file():
        return set()
    try:
        with zipfile.ZipFile(plan.zip_out) as zf:
            return set(zf.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        log.warning("%s: cannot read the earlier output zip (%s); its items are done again",
                    plan.zip_out, exc)
        return set()


def _mark_done(plan: BatchPlan, records: list[dict[str, Any]], settings: str, old_zip: set[str],
               report: BatchReport) -> list[Item]:
    """Items with `expect` set where a finished entry made their output from some input bytes
    with the same settings and the output is still there; the worker skips them when the input's
    sha256 still matches."""
    finished: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("status") == "ok" and record.get("output") and record.get("sha256"):
            finished[record["output"]] = record
    present = _remote_outputs(plan) if plan.remote else None
    out = []
    for item in plan.items:
        record = finished.get(item.output_name)
        if record is None:
            out.append(item)
            continue
        if plan.zip_out is not None:
            there = Path(item.output).is_file() or item.rel in old_zip
        elif present is not None:
            there = item.output in present
        else:
            there = Path(item.output).is_file()
        if not there:
            out.append(item)
        elif record.get("settings") != settings:
            report.redone += 1
            out.append(item)
        else:
            out.append(dataclasses.replace(item, expect=record["sha256"]))
    if report.redone:
        log.warning("%d item(s) were done before with other settings; doing them again",
                    report.redone)
    return out


def _remote_outputs(plan: BatchPlan) -> set[str]:
    try:
        listed = storage.list_files(storage.resolve(plan.output))
    except FileNotFoundError:
        return set()
    return {storage.join(plan.output, rel) for rel in listed or ()}


def _sweep_parts(items: Sequence[Item]) -> None:
    """Remove temporary files a killed writer left beside these items' (local) outputs."""
    sweep_parts(item.output for item in items if not storage.is_uri(item.output))


def _assemble_zip(plan: BatchPlan, statuses: dict[str, str], old_zip: set[str]) -> int:
    assert plan.zip_out is not None and plan.staging is not None
    members: list[tuple[str, Path | tuple[Path, str]]] = []
    carried = 0
    for item in plan.items:
        if statuses.get(item.output_name) not in ("ok", "skipped"):
            continue
        staged = Path(item.output)
        if staged.is_file():
            members.append((item.rel, staged))
        elif item.rel in old_zip:
            members.append((item.rel, (plan.zip_out, item.rel)))
            carried += 1
    if not members:
        log.warning("nothing to put into %s: no item succeeded", plan.zip_out)
    elif carried == len(members) == len(old_zip):
        log.info("%s is up to date", plan.zip_out)
    else:
        write_zip(plan.zip_out, members)
    shutil.rmtree(plan.staging, ignore_errors=True)
    return len(members)
