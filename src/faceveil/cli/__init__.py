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

from .._version import __version__
from ..errors import ConfigError, FaceveilError, MissingDependencyError

log = logging.getLogger("faceveil")

SUBCOMMANDS = ("run", "models")


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
"""


def _choices(registry) -> str:
    return "; ".join(f"{e.name}: {e.help}" for e in registry.entries())


def build_parser() -> argparse.ArgumentParser:
    from ..anonymization import effects, masks
    from ..config import QUALITIES
    from ..detection import detectors

    parser = argparse.ArgumentParser(
        prog="faceveil", description="Find every face in pictures and hide it. Fully offline.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceveil {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="anonymize pictures (the default command)", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Anonymize files, folders (recursively) and glob patterns.",
    )
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or glob patterns")
    run.add_argument("-o", "--output", metavar="PATH",
                     help="output file or folder; '-' writes no pictures, only JSON lines to "
                          "stdout (default: NAME.anonymized.EXT beside each file, FOLDER.anonymized/)")
    g = run.add_argument_group("detection")
    g.add_argument("--detector", choices=detectors.names(), help=_choices(detectors))
    g.add_argument("--quality", choices=QUALITIES,
                   help="speed against recall: fast, balanced (default), thorough")
    g.add_argument("--threshold", type=float, metavar="0..1",
                   help="detection score threshold (default: set by --quality; lower finds more)")
    g.add_argument("--threads", type=int, metavar="N", help="inference threads (default: all cores)")
    g = run.add_argument_group("hiding")
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
    g = run.add_argument_group("output")
    g.add_argument("--json", action="store_true",
                   help="also write NAME.anonymized.faces.json beside each output")
    g.add_argument("--image-quality", type=int, default=95, metavar="1..100",
                   help="JPEG/WebP quality of written pictures (default 95)")
    g.add_argument("--keep-metadata", action="store_true",
                   help="keep EXIF (GPS is still removed); default strips all metadata")
    g.add_argument("--suffix", default=".anonymized", help="added to output names (default %(default)s)")
    g.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist")
    g.add_argument("--max-pixels", type=float, default=150e6, metavar="N",
                   help="refuse pictures with more pixels (default 150e6)")
    _common(run)

    models = sub.add_parser("models", help="list the models faceveil uses, preparing them if needed")
    models.add_argument("--json", action="store_true", help="as JSON on stdout")
    _common(models)
    return parser


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
    handler.setFormatter(logging.Formatter("faceveil: %(message)s"))
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
        return _run(args)
    except KeyboardInterrupt:
        print("faceveil: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # e.g. `faceveil ... -o - | head`: the reader left; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.FAILED
    except Exception as exc:  # the one place errors become messages
        if args.traceback:
            traceback.print_exc()
        if isinstance(exc, ConfigError):
            print(f"faceveil: error: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        if isinstance(exc, (FaceveilError, MissingDependencyError, OSError)):
            print(f"faceveil: error: {exc}", file=sys.stderr)
        else:
            print(f"faceveil: internal error: {type(exc).__name__}: {exc} "
                  "(run again with --traceback for details)", file=sys.stderr)
        return ExitCode.FAILED


def _models(args: argparse.Namespace) -> int:
    from ..models import describe

    infos = describe()
    if args.json:
        print(json.dumps([{"name": m.name, "path": str(m.path), "sha256": m.sha256,
                           "source": m.source} for m in infos], indent=1))
    else:
        for m in infos:
            print(f"{m.name:44s} {m.sha256[:16]}  {m.path}")
    return ExitCode.OK


def _run(args: argparse.Namespace) -> int:
    from ..config import PipelineConfig
    from ..pipeline import Pipeline
    from ..pipeline.runner import ImageJob, WriteOptions, run_images
    from ..sidecar import sidecar_path
    from .paths import plan

    if not 1 <= args.image_quality <= 100:
        raise ConfigError(f"--image-quality must be 1..100, got {args.image_quality}")
    config = PipelineConfig.from_toml(args.config) if args.config else PipelineConfig()
    options = {name: getattr(args, name, None) for name in PipelineConfig.option_names()}
    config = config.replace(**{k: v for k, v in options.items() if v is not None})

    to_stdout = args.output == "-"
    work = plan(args.inputs, args.output, suffix=args.suffix, skip_existing=args.skip_existing)
    for what, why in work.errors:
        print(f"faceveil: error: {what}: {why}", file=sys.stderr)
    if not work.pairs:
        if work.skipped and not work.errors:
            log.warning("nothing to do: %d file(s) skipped", work.skipped)
            return ExitCode.OK
        if not work.errors:
            print("faceveil: error: no pictures to process", file=sys.stderr)
        return ExitCode.NO_INPUT if not work.errors else ExitCode.FAILED

    jobs = [ImageJob(src, dst, sidecar_path(dst) if args.json and dst is not None else None)
            for src, dst in work.pairs]
    pipeline = Pipeline(config)
    write = WriteOptions(args.image_quality, args.keep_metadata, int(args.max_pixels),
                         want_document=to_stdout)
    bar = _progress_bar(len(jobs), args)

    def on_result(result) -> None:
        if not result.ok:
            _say(bar, f"faceveil: error: {result.job.input}: {result.error}")
        elif to_stdout and result.document is not None:
            sys.stdout.write(json.dumps(result.document, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        if bar is not None:
            bar.update(1)

    started = time.perf_counter()
    try:
        results = run_images(jobs, pipeline, write, on_result=on_result)
    finally:
        if bar is not None:
            bar.close()
    failed = sum(not r.ok for r in results) + len(work.errors)
    done = sum(r.ok for r in results)
    faces = sum(r.faces for r in results if r.ok)
    if not args.quiet:
        verb = "scanned" if to_stdout else "anonymized"
        where = ""
        if not to_stdout and done == 1 and len(results) == 1:
            where = f" -> {results[0].job.output}"
        elif not to_stdout and args.output:
            where = f" -> {args.output}"
        print(f"faceveil: {done} picture(s) {verb}, {faces} face(s) hidden{where} "
              f"({time.perf_counter() - started:.1f} s)"
              + (f"; {failed} failed" if failed else "")
              + (f"; {work.skipped} skipped" if work.skipped else ""), file=sys.stderr)
    return ExitCode.FAILED if failed else ExitCode.OK


def _progress_bar(total: int, args: argparse.Namespace):
    if total < 2 or args.quiet or args.no_progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True)


def _say(bar, message: str) -> None:
    if bar is not None:
        bar.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)
