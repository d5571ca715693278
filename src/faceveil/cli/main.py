"""`faceveil`: the entry point, exit codes and how messages reach the terminal."""

from __future__ import annotations

import argparse
import enum
import json
import logging
import sys
import traceback
from collections.abc import Sequence

from ..errors import ConfigError, FaceveilError, MissingDependencyError

log = logging.getLogger("faceveil")

SUBCOMMANDS = ("run", "render", "models", "people", "live", "batch", "serve", "gui")


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # some inputs failed, or the run could not start
    USAGE = 2  # bad flags or option values
    NO_INPUT = 3  # nothing to process
    INTERRUPTED = 130



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
    from .options import build_parser

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
            from .run import render, run

            return render(args) if args.command == "render" else run(args)
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
    from ..config import DetectorConfig
    from ..models import describe

    infos = describe(args.device or DetectorConfig().device)  # None: the pipeline's default
    if args.json:
        print(json.dumps([{"name": m.name, "path": str(m.path), "sha256": m.sha256,
                           "source": m.source, "licence": m.licence, "runtime": m.runtime,
                           "provider": m.provider} for m in infos], indent=1))
    else:
        for m in infos:
            print(f"{m.name:44s} {m.sha256[:16]}  {m.provider:22s} {m.path}")
    return ExitCode.OK


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
