"""The `faceveil` command. Thin: parses flags, plans paths, calls the library, prints."""

from __future__ import annotations

import argparse
import enum
import json
import logging
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from .._version import __version__
from ..errors import ConfigError, CorruptMediaError, FaceveilError, MissingDependencyError

log = logging.getLogger("faceveil")

SUBCOMMANDS = ("run", "render", "models", "people", "live", "batch", "serve", "gui")


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # some inputs failed, or the run could not start
    USAGE = 2  # bad flags or option values
    NO_INPUT = 3  # nothing to process
    INTERRUPTED = 130


EXAMPLES = """\
examples:
  faceveil photo.jpg                          # -> photo.anonymized.jpg beside it
  faceveil run shots/ -o clean/               # a whole tree, mirrored, recursively
  faceveil run "*.png" --method pixelate --blocks 10
  faceveil run group.jpg --method solid --color "#000000" --shape box --json
  faceveil run shots/ -o - --json             # faces as JSON lines on stdout, no pictures
  faceveil run crowd.jpg --quality thorough --draw-boxes
  faceveil interview.mp4                      # -> interview.anonymized.mp4, with its sound
  faceveil run talks/ -o public/ --method pixelate
  faceveil run clip.mov --json                # per-frame faces and tracks
  faceveil run long.mp4 --detect-every 3 --preset veryfast
  faceveil render clip.mov --faces clip.anonymized.faces.json --method solid
  faceveil run lecture.mp4 --keep alice       # hide everyone but alice (see `faceveil people`)
  faceveil run party/ --keep refs/alice/      # reference photos instead of a gallery name
  faceveil run talk.mp4 --background blur --method none   # face visible, room blurred
  faceveil run me.jpg --background image:beach.jpg
  faceveil run me.png --background transparent           # a PNG cut-out of the people
  faceveil live 0                             # webcam, anonymized in a preview window; q quits
  faceveil live rtsp://camera.local/stream --serve   # MJPEG page on http://127.0.0.1:8765/
  faceveil live 0 --record session.mp4 --fps-overlay
  faceveil live clip.mp4 --serve --no-preview # a file played at its real rate
  faceveil batch archive/ -o clean/ --workers 2   # in parallel, resumable (--resume)
  faceveil batch photos.zip -o photos.anonymized.zip
  faceveil serve                              # web app on http://127.0.0.1:8000: drop files in a browser
  faceveil gui shots/                         # desktop app: review, fix and export
"""


def _choices(registry) -> str:
    return "; ".join(f"{e.name}: {e.help}" for e in registry.entries())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceveil", description="Find every face in pictures and hide it. Fully offline.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceveil {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="anonymize pictures and videos (the default command)", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Anonymize files, folders (recursively) and glob patterns: pictures and videos.",
    )
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or glob patterns")
    run.add_argument("-o", "--output", metavar="PATH",
                     help="output file or folder; '-' writes no pictures, only JSON lines to "
                          "stdout (default: NAME.anonymized.EXT beside each file, FOLDER.anonymized/)")
    _detection_options(run)
    _hiding_options(run)
    _output_options(run, sidecar=True)
    _audit_options(run)
    _common(run)

    render = sub.add_parser(
        "render", help="hide the faces listed in a faces file (no detection)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Re-render a picture or video from its faces JSON (for example one written by "
                    "`faceveil run --json` and edited by hand): every face marked hidden is hidden, "
                    "nothing is detected.",
        epilog="example:\n  faceveil render clip.mov --faces clip.anonymized.faces.json --method solid\n",
    )
    render.add_argument("inputs", nargs=1, metavar="INPUT", help="the original picture or video")
    render.add_argument("--faces", required=True, metavar="FILE.json", help="the faces file")
    render.add_argument("-o", "--output", metavar="PATH",
                        help="output file (default: NAME.anonymized.EXT beside the input)")
    _hiding_options(render)
    _output_options(render, sidecar=False)
    _common(render)

    models = sub.add_parser("models", help="list the models faceveil ships, checked, and where each runs")
    models.add_argument("--json", action="store_true", help="as JSON on stdout")
    models.add_argument("--device", default="cpu", help="the device to report providers for "
                        "(cpu, auto, cuda, ...; default cpu)")
    _common(models)

    from . import batch, gui, live, people, serve

    people.add_parser(sub, _common, _choices)
    live.add_parser(sub, _common, _choices, _hiding_options, _people_options)
    batch.add_parser(sub)
    serve.add_parser(sub, _common, _choices)
    gui.add_parser(sub, _common)
    return parser


def _detection_options(p: argparse.ArgumentParser) -> None:
    """Detection, video tracking and people flags (`run`, `batch`)."""
    from ..config import QUALITIES
    from ..detection import detectors
    from ..models.runtime import DEVICES

    g = p.add_argument_group("detection")
    g.add_argument("--detector", choices=detectors.names(), help=_choices(detectors))
    g.add_argument("--quality", choices=QUALITIES,
                   help="speed against recall: fast, balanced (default), thorough")
    g.add_argument("--threshold", type=float, metavar="0..1",
                   help="detection score threshold (default: set by --quality; lower finds more)")
    g.add_argument("--threads", type=int, metavar="N", help="inference threads (default: all cores)")
    g.add_argument("--device", choices=DEVICES,
                   help="where the ONNX models run: cpu (default), auto (a GPU when ONNX Runtime "
                        "has one), cuda, ... (the GPU build: pip install 'faceveil[gpu]')")
    g = p.add_argument_group("video tracking")
    g.add_argument("--detect-every", type=int, metavar="K",
                   help="detect on every K-th frame (and at scene cuts), track in between (default "
                        "by --quality: fast 3, balanced 2, thorough 1)")
    g.add_argument("--detect-size", type=int, metavar="PX",
                   help="long side of the frame the detector sees (default by --quality: "
                        "fast 480, balanced 640, thorough the full frame)")
    g.add_argument("--scan-every", type=int, metavar="N",
                   help="frames between full scans; a quick pass follows known faces in between "
                        "(default by --quality: fast 12, balanced 8, thorough 1)")
    g.add_argument("--hold", type=int, metavar="N",
                   help="frames a face stays hidden after it was last seen (default 8)")
    g.add_argument("--lead", type=int, metavar="N",
                   help="frames a face is hidden before it was first seen (default 8)")
    _people_options(p)


def _people_options(p: argparse.ArgumentParser, keep_note: str = "") -> None:
    """The people flags, for `run`/`render` and `live` alike."""
    g = p.add_argument_group("people (needs the people extra)")
    g.add_argument("--keep", action="append", metavar="WHO",
                   help="leave this person visible and hide everyone else: a name from `faceveil "
                        "people list`, or reference photos (a file or folder); repeat for several"
                        + keep_note)
    g.add_argument("--only", action="append", metavar="WHO",
                   help="hide only this person (and any face that might be them); repeatable")
    g.add_argument("--keep-distance", type=float, metavar="D",
                   help="--keep: a face stays visible below this embedding distance (default 0.6)")
    g.add_argument("--keep-margin", type=float, metavar="M",
                   help="--keep: ... and only when every other enrolled person is at least M "
                        "farther (default 0.05)")
    g.add_argument("--only-distance", type=float, metavar="D",
                   help="--only: a face is hidden below this embedding distance (default 0.65)")
    g.add_argument("--min-face", type=int, metavar="PX",
                   help="smaller faces are not judged, so hidden (default 32)")
    g.add_argument("--gallery", metavar="FILE", help="people gallery file (default: user data folder)")


def _audit_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("proof")
    g.add_argument("--report", metavar="FILE.html|.json",
                   help="write an audit report: per file what was hidden, risky moments "
                        "(unsure detections, short tracks), thumbnails of the "
                        "hidden regions, settings, versions and model hashes")
    g.add_argument("--verify", nargs="?", const="warn", choices=("warn", "strict"),
                   help="look again at every output with a second detector and, with the people "
                        "extra, measure how recognisable hidden faces still are; warn (default) "
                        "or strict: files with findings fail and the exit code is non-zero")


def _hiding_options(p: argparse.ArgumentParser) -> None:
    from ..anonymization import effects, masks

    g = p.add_argument_group("hiding")
    g.add_argument("--method", choices=effects.names(), help=_choices(effects))
    g.add_argument("--strength", type=float, metavar="X", help="blur strength (default 1.0)")
    g.add_argument("--blocks", type=int, metavar="N",
                   help="pixelate: blocks across a face (default 8)")
    g.add_argument("--color", metavar="COLOUR", help="solid: #rrggbb, r,g,b or a name (default black)")
    g.add_argument("--image", metavar="PATH", help="image: picture put over each face")
    g.add_argument("--shape", choices=masks.names(), help="mask shape (default ellipse)")
    g.add_argument("--mask-scale", type=float, metavar="X",
                   help="mask size relative to the face box (default 1.3)")
    g.add_argument("--feather", type=float, metavar="X", help="soft edge, 0..0.5 (default 0.15)")
    g.add_argument("--draw-boxes", action="store_true", default=None,
                   help="draw detections and scores on the output")
    g.add_argument("--config", metavar="FILE.toml", help="options from a TOML file (flags win)")
    from ..segmentation import segmenters

    g = p.add_argument_group("background (behind people; selfie segmentation on ONNX Runtime)")
    g.add_argument("--background", metavar="MODE",
                   help="blur[:STRENGTH], image:PATH (scaled to cover), color:COLOUR, or transparent "
                        "(pictures: PNG/WebP/TIFF cut-out); default: left as is")
    g.add_argument("--background-strength", type=float, metavar="X",
                   help="background blur strength (default 1.0)")
    g.add_argument("--segmenter", choices=segmenters.names(), help=_choices(segmenters))
    g.add_argument("--background-threshold", type=float, metavar="0..1",
                   help="person confidence where background starts (default 0.5)")
    g.add_argument("--background-feather", type=float, metavar="X",
                   help="soft edge as a fraction of the frame's short side, 0..0.2 (default 0.01)")
    g.add_argument("--background-smooth", type=float, metavar="0..0.99",
                   help="video: damping of small mask changes between frames (default 0.75; 0 off)")


def _output_options(p: argparse.ArgumentParser, *, sidecar: bool, naming: bool = True) -> None:
    g = p.add_argument_group("output")
    if sidecar:
        g.add_argument("--json", action="store_true",
                       help="also write NAME.anonymized.faces.json beside each output (for videos: "
                            "per frame, with track ids and which boxes were filled in)")
    g.add_argument("--image-quality", type=int, default=None, metavar="1..100",
                   help="JPEG/WebP quality of written pictures (default: a JPEG input's own "
                        "quality, estimated from its tables, else 90)")
    g.add_argument("--keep-metadata", action="store_true",
                   help="keep picture EXIF (GPS is still removed); default strips all metadata")
    if naming:
        g.add_argument("--suffix", default=".anonymized", help="added to output names (default %(default)s)")
        g.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist")
    g.add_argument("--max-pixels", type=float, default=150e6, metavar="N",
                   help="refuse pictures and video frames with more pixels (default 150e6)")
    g = p.add_argument_group("video output")
    g.add_argument("--codec", metavar="NAME",
                   help="video encoder (default libx264; libvpx-vp9 for .webm, mpeg4 for .avi)")
    g.add_argument("--crf", type=int, default=20, metavar="N",
                   help="constant quality, lower is better and bigger (default 20)")
    g.add_argument("--preset", default="medium", metavar="NAME",
                   help="x264 speed preset: ultrafast .. veryslow (default medium)")
    g.add_argument("--no-audio", action="store_true",
                   help="drop audio and subtitle streams (default: copied unchanged)")


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("messages")
    g.add_argument("-q", "--quiet", action="store_true", help="only errors")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more messages (-vv: debug)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--traceback", action="store_true", help="show the full error on failure")


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][
        min(args.verbose, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("faceveil: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "run")  # `faceveil INPUT` does the obvious thing
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the message
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    _setup_logging(args)
    try:
        if args.command == "models":
            return _models(args)
        if args.command == "people":
            from . import people

            return people.run(args)
        if args.command == "live":
            from . import live

            return live.run(args)
        if args.command == "batch":
            from . import batch

            return batch.run(args)
        if args.command == "serve":
            from . import serve

            return serve.run(args)
        if args.command == "gui":
            from . import gui

            return gui.run(args)
        from .batch import _sigterm_stops

        with _sigterm_stops():  # SIGTERM stops like Ctrl-C: temporary files removed
            return _render(args) if args.command == "render" else _run(args)
    except KeyboardInterrupt:
        _err("faceveil: interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # e.g. `faceveil ... -o - | head`: the reader left; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.FAILED
    except Exception as exc:  # the one place errors become messages
        if args.traceback:
            traceback.print_exc()
        if isinstance(exc, ConfigError):
            _err(f"faceveil: error: {exc}")
            return ExitCode.USAGE
        if isinstance(exc, (FaceveilError, MissingDependencyError, OSError)):
            _err(f"faceveil: error: {exc}")
        else:
            _err(f"faceveil: internal error: {type(exc).__name__}: {exc} "
                 "(run again with --traceback for details)")
        return ExitCode.FAILED


def _models(args: argparse.Namespace) -> int:
    from ..models import describe

    infos = describe(args.device)
    if args.json:
        print(json.dumps([{"name": m.name, "path": str(m.path), "sha256": m.sha256,
                           "source": m.source, "licence": m.licence, "runtime": m.runtime,
                           "provider": m.provider} for m in infos], indent=1))
    else:
        for m in infos:
            print(f"{m.name:44s} {m.sha256[:16]}  {m.provider:22s} {m.path}")
    return ExitCode.OK


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


def _run(args: argparse.Namespace) -> int:
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


def _render(args: argparse.Namespace) -> int:
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


def one_line(text: str) -> str:
    """`text` safe for one line of a terminal: control characters (a newline in a file name)
    and the bytes of names that are not UTF-8 are shown escaped: a\\nb.jpg, caf\\xe9.jpg."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))


def _err(message: str) -> None:
    print(one_line(message), file=sys.stderr)


def _say(bar, message: str) -> None:
    message = one_line(message)
    if bar is not None:
        bar.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)
