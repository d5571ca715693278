"""`faceveil run` and `faceveil render`: plan the files, process them, report."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from ..errors import ConfigError, CorruptMediaError
from .main import ExitCode, _err, _say, log, one_line


def _config(args: argparse.Namespace):
    from ..config import PipelineConfig

    # --image-quality and every other number's range: argparse checked them (options.range_error)
    config = PipelineConfig.from_toml(args.config) if args.config else PipelineConfig()
    options = {name: getattr(args, name, None) for name in PipelineConfig.option_names()}
    for name in ("keep", "only"):
        if options.get(name) is not None:
            options[name] = tuple(options[name])
    return config.replace(**{k: v for k, v in options.items() if v is not None})


def _plan(args: argparse.Namespace, config):
    """The (input, output) pairs of the command line; what cannot be planned is said on stderr."""
    from ..paths import plan

    work = plan(args.inputs, args.output, suffix=args.suffix, skip_existing=args.skip_existing,
                alpha=config.background.mode == "transparent")
    for what, why in work.errors:
        _err(f"faceveil: error: {what}: {why}")
    return work


def run(args: argparse.Namespace) -> int:
    from ..paths import EMPTY_REASONS
    from ..pipeline import Pipeline
    from ..pipeline.runner import ImageJob
    from ..sidecar import sidecar_path

    config = _config(args)
    work = _plan(args, config)
    if not work.pairs:
        if work.skipped and not work.errors:
            log.warning("nothing to do: %d file(s) skipped", work.skipped)
            return ExitCode.OK
        if not work.errors:
            _err("faceveil: error: no pictures or videos to process")
        # an empty folder or a pattern that matches nothing is "nothing to process" (3); a
        # missing or unreadable input is a failure (1)
        nothing = all(why in EMPTY_REASONS for _, why in work.errors)
        return ExitCode.NO_INPUT if nothing else ExitCode.FAILED
    jobs = [ImageJob(src, dst, sidecar_path(dst) if args.json and dst is not None else None)
            for src, dst in work.pairs]
    pipeline = Pipeline(config)
    _ = pipeline.identifier  # load --keep/--only people now: a bad name is one error, not one per file
    return _execute(args, jobs, pipeline, len(work.errors), work.skipped)


def render(args: argparse.Namespace) -> int:
    from ..pipeline import Pipeline
    from ..pipeline.runner import ImageJob
    from ..sidecar import read_sidecar

    config = _config(args)
    work = _plan(args, config)
    if not work.pairs:
        return ExitCode.FAILED if work.errors else ExitCode.OK
    document, frames = read_sidecar(args.faces)
    ((src, dst),) = work.pairs
    if document.get("source") and Path(document["source"]).name != src.name:
        log.warning("%s lists faces of %s, not of %s", args.faces, document["source"], src)
    from ..media.video import is_video

    if not is_video(src) and len(frames) != 1:  # never fall back to detecting
        raise CorruptMediaError(f"{args.faces}: the faces file has {len(frames)} frames; "
                                f"a picture needs exactly 1")
    job = ImageJob(src, dst, faces=frames[0] if len(frames) == 1 else None)
    return _execute(args, [job], Pipeline(config), 0, work.skipped, video_faces=frames)


def _execute(args: argparse.Namespace, jobs: list, pipeline, failed_before: int, skipped: int,
             video_faces: list | None = None) -> int:
    """Run the file job on the pictures (read ahead) and the videos (one by one); report; give
    the exit code."""
    from ..media.video import EncodeOptions, is_video
    from ..pipeline.job import process_file
    from ..pipeline.runner import WriteOptions, picture_workers, run_images
    from ..types import Counts

    to_stdout = args.output == "-"
    auditor = _auditor(args, pipeline)
    write = WriteOptions(args.image_quality, args.keep_metadata, int(args.max_pixels),
                         want_document=to_stdout)
    encode = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset,
                           keep_audio=not args.no_audio)
    pictures = [j for j in jobs if not is_video(j.input)]
    videos = [j for j in jobs if is_video(j.input)]
    bar = _progress_bar(len(pictures), args)
    results: list = []

    def on_result(result) -> None:
        shown_bar = bar if result.kind == "picture" else None
        if args.traceback and result.exception is not None:
            traceback.print_exception(result.exception)
        if auditor is not None:
            _audit(args, result, shown_bar)
        if result.kind == "video":
            for note in result.warnings:
                _say(None, f"faceveil: warning: {result.input}: {note}")
        if not result.ok:
            _say(shown_bar, f"faceveil: error: {result.input}: {result.error}")
        elif to_stdout and result.document is not None:
            _print_json(result.document)
        if shown_bar is not None:
            shown_bar.update(1)

    started = time.perf_counter()
    try:
        if pictures:
            results += run_images(pictures, pipeline, write, on_result=on_result, auditor=auditor,
                                  workers=picture_workers(pipeline, len(pictures)))
    finally:
        if bar is not None:
            bar.close()
    for job in videos:
        frame_bar = _frame_bar(job.input, args)
        try:
            result = process_file(job.input, job.output, pipeline, write=write, encode=encode,
                                  sidecar=job.sidecar, faces=video_faces, auditor=auditor,
                                  on_progress=frame_bar, video=True)
        finally:
            if frame_bar is not None:
                frame_bar.close()
        result.job = job
        on_result(result)
        results.append(result)

    failed = sum(not r.ok for r in results) + failed_before
    if auditor is not None and auditor.verify:
        checked = [r.audit for r in results
                   if r.audit is not None and r.audit.verified_frames is not None]
        flagged = sum(bool(a.failing) for a in checked)
        _say(None, f"faceveil: verified {len(checked)} file(s): "
                   + (f"{flagged} with findings" if flagged else "no face left visible found"))
    if auditor is not None and args.report:
        from ..audit import write_report

        write_report(args.report, results, auditor.facts())
        _say(None, f"faceveil: report written to {args.report}")
    if not args.quiet:
        total = sum((r.counts for r in results if r.ok), Counts())
        _summary(args, results, total, failed, skipped, time.perf_counter() - started)
    return ExitCode.FAILED if failed else ExitCode.OK


def _auditor(args: argparse.Namespace, pipeline):
    """An Auditor when --report or --verify asks for one; a bad report name fails first."""
    if not (getattr(args, "report", None) or getattr(args, "verify", None)):
        return None
    from ..audit import Auditor

    if args.report and Path(args.report).suffix.lower() not in (".html", ".htm", ".json"):
        raise ConfigError(f"--report {args.report}: name a .html or .json file")
    return Auditor(pipeline.config, args.verify)


def _audit(args, result, bar) -> None:
    """The file job audited (and verified) the file, unless it failed first; say its findings."""
    failing = result.audit.failing if result.audit is not None else []
    shown = 5
    for f in failing[:shown]:
        where = f"{f.time:.2f} s: " if f.time is not None else ""
        _say(bar, f"faceveil: warning: {result.input}: {where}{f.detail} at {f.box}")
    if len(failing) > shown:
        _say(bar, f"faceveil: warning: {result.input}: and {len(failing) - shown} more "
                  "finding(s)" + (f" (see {args.report})" if args.report else ""))


def _print_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _summary(args, results, counts, failed: int, skipped: int, seconds: float) -> None:
    """One line: what was done, with the counts every door shows (faceveil.types.Counts)."""
    to_stdout = args.output == "-"
    ok = [r for r in results if r.ok]
    n_videos = sum(r.kind == "video" for r in ok)
    parts = []
    if len(ok) - n_videos or not n_videos:
        any_video = any(r.kind == "video" for r in results)
        parts.append(f"{len(ok) - n_videos} {'file' if any_video else 'picture'}(s)")
    if n_videos:
        frames = sum(r.counts.frames for r in ok if r.kind == "video")
        parts.append(f"{n_videos} video(s) ({frames} frames)")
    verb = "scanned" if to_stdout else "anonymized"
    where = ""
    if not to_stdout and len(ok) == 1 and len(results) == 1:
        where = f" -> {ok[0].output}"
    elif not to_stdout and args.output and ok:
        where = f" -> {args.output}"
    _err(f"faceveil: {' and '.join(parts)} {verb}, {counts.describe(bool(n_videos))}{where} "
         f"({seconds:.1f} s)"
         + (f"; {failed} failed" if failed else "")
         + (f"; {skipped} skipped" if skipped else ""))


def _frame_bar(path, args: argparse.Namespace):
    """A progress callback drawing a per-video bar with frames/s and ETA, on a terminal only."""
    if args.quiet or args.no_progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = None

    def on_progress(event) -> None:
        nonlocal bar
        if event.stage == "start":
            bar = tqdm(total=event.total, unit="frame", desc=one_line(Path(path).name), file=sys.stderr,
                       dynamic_ncols=True, leave=False)
        elif event.stage == "frame" and bar is not None:
            bar.update(event.done - bar.n)

    on_progress.close = lambda: bar.close() if bar is not None else None  # type: ignore[attr-defined]
    return on_progress


def _progress_bar(total: int, args: argparse.Namespace):
    if total < 2 or args.quiet or args.no_progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True)
