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

    if args.image_quality is not None and not 1 <= args.image_quality <= 100:
        raise ConfigError(f"--image-quality must be 1..100, got {args.image_quality}")
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
    """Run picture jobs (all at once) and video jobs (one by one); report; give the exit code."""
    from .._files import sweep_parts
    from ..media.video import EncodeOptions, is_video
    from ..pipeline.runner import JobResult, WriteOptions, describe_error, run_images
    from ..pipeline.video import process_video

    to_stdout = args.output == "-"
    auditor = _auditor(args, pipeline)
    audits: list = []
    write = WriteOptions(args.image_quality, args.keep_metadata, int(args.max_pixels),
                         want_document=to_stdout)
    encode = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset,
                           keep_audio=not args.no_audio)
    pictures = [j for j in jobs if not is_video(j.input)]
    videos = [j for j in jobs if is_video(j.input)]
    sweep_parts(p for j in jobs for p in (j.output, j.sidecar) if p is not None)
    bar = _progress_bar(len(pictures), args)
    results: list[JobResult] = []

    def on_result(result: JobResult) -> None:
        if auditor is not None:
            _audit(args, auditor, audits, result, bar)
        if not result.ok:
            _say(bar, f"faceveil: error: {result.job.input}: {result.error}")
        elif to_stdout and result.document is not None:
            _print_json(result.document)
        if bar is not None:
            bar.update(1)

    started = time.perf_counter()
    try:
        if pictures:
            results += run_images(pictures, pipeline, write, on_result=on_result)
    finally:
        if bar is not None:
            bar.close()
    video_frames = 0
    for job in videos:
        frames: list = []
        bar = _frame_bar(job.input, args)
        try:
            report = process_video(
                job.input, job.output, pipeline, encode=encode, sidecar=job.sidecar,
                faces=video_faces, max_pixels=int(args.max_pixels),
                on_frame=((lambda *rec, _frames=frames: _frames.append(rec))
                          if to_stdout or auditor is not None else None),
                on_progress=bar)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            if args.traceback:
                traceback.print_exc()
            result = JobResult(job, False, error=describe_error(exc))
        else:
            video_frames += report.frames
            result = JobResult(job, True, faces=report.faces, kept=report.kept,
                               seconds=report.seconds)
            if report.damage:
                _say(None, f"faceveil: warning: {job.input}: damaged, processed as far as it "
                           f"decodes ({report.frames} frames)")
            if to_stdout:
                _print_json(_video_document(job, report, frames, pipeline))
        finally:
            if bar is not None:
                bar.close()
        if auditor is not None:
            _audit(args, auditor, audits, result, None, report if result.ok else None, frames)
        results.append(result)
        if not result.ok:
            _say(None, f"faceveil: error: {job.input}: {result.error}")

    failed = sum(not r.ok for r in results) + failed_before
    if auditor is not None and auditor.verify:
        checked = [a for a in audits if a.verified_frames is not None]
        flagged = sum(bool(a.failing) for a in checked)
        _say(None, f"faceveil: verified {len(checked)} file(s): "
                   + (f"{flagged} with findings" if flagged else "no face left visible found"))
    if auditor is not None and args.report:
        from ..audit import write_report

        write_report(args.report, audits, auditor.facts())
        _say(None, f"faceveil: report written to {args.report}")
    if not args.quiet:
        _summary(args, results, failed, skipped, video_frames, time.perf_counter() - started)
    return ExitCode.FAILED if failed else ExitCode.OK


def _auditor(args: argparse.Namespace, pipeline):
    """An Auditor when --report or --verify asks for one; a bad report name fails first."""
    if not (getattr(args, "report", None) or getattr(args, "verify", None)):
        return None
    from ..audit import Auditor

    if args.report and Path(args.report).suffix.lower() not in (".html", ".htm", ".json"):
        raise ConfigError(f"--report {args.report}: name a .html or .json file")
    return Auditor(pipeline.config, args.verify)


def _audit(args, auditor, audits: list, result, bar, report=None, frames=()) -> None:
    """Audit (and verify) one finished file; under strict, findings fail it."""
    from ..errors import describe_error
    from ..media.video import is_video

    job = result.job
    kind = "video" if is_video(job.input) else "picture"
    if not result.ok:
        audits.append(auditor.failed(job.input, result.error, kind))
        return
    try:
        if kind == "video":
            audit = auditor.video(job.input, job.output, report, frames)
        else:
            audit = auditor.picture(job.input, job.output, result.detections)
    except Exception as exc:  # a verification that cannot run must not pass silently
        audit = auditor.failed(job.input, f"could not be verified: {describe_error(exc)}", kind)
        result.ok, result.error = False, audit.error
        audits.append(audit)
        return
    audits.append(audit)
    shown = 5
    for f in audit.failing[:shown]:
        where = f"{f.time:.2f} s: " if f.time is not None else ""
        _say(bar, f"faceveil: warning: {job.input}: {where}{f.detail} at {f.box}")
    if len(audit.failing) > shown:
        _say(bar, f"faceveil: warning: {job.input}: and {len(audit.failing) - shown} more finding(s)"
                  + (f" (see {args.report})" if args.report else ""))
    if auditor.fails(audit):  # strict: an output that may show a face is not left behind
        Path(job.output).unlink(missing_ok=True)
        result.ok = audit.ok = False
        result.error = audit.error = (f"verification found {len(audit.failing)} problem(s); "
                                      "output removed")


def _video_document(job, report, frames, pipeline) -> dict:
    from ..sidecar import faces_document

    return faces_document(source=str(job.input), output=None, width=report.width,
                          height=report.height, frames=frames, config=pipeline.config)


def _print_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _summary(args, results, failed: int, skipped: int, video_frames: int, seconds: float) -> None:
    from ..media.video import is_video

    to_stdout = args.output == "-"
    ok = [r for r in results if r.ok]
    n_videos = sum(is_video(r.job.input) for r in ok)
    faces = sum(r.faces for r in ok)
    parts = []
    if len(ok) - n_videos or not n_videos:
        any_video = any(is_video(r.job.input) for r in results)
        parts.append(f"{len(ok) - n_videos} {'file' if any_video else 'picture'}(s)")
    if n_videos:
        parts.append(f"{n_videos} video(s) ({video_frames} frames)")
    verb = "scanned" if to_stdout else "anonymized"
    where = ""
    if not to_stdout and len(ok) == 1 and len(results) == 1:
        where = f" -> {ok[0].job.output}"
    elif not to_stdout and args.output and ok:
        where = f" -> {args.output}"
    hidden = "face(s) hidden" if not n_videos else "face boxes hidden"
    if kept := sum(r.kept for r in ok):
        hidden += f", {kept} kept visible"
    _err(f"faceveil: {' and '.join(parts)} {verb}, {faces} {hidden}{where} ({seconds:.1f} s)"
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
