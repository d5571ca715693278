"""`faceveil batch INPUT... -o OUT`: whole archives, in parallel, resumable, locally or on Ray."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

EXAMPLES = """\
examples:
  faceveil batch archive/ -o clean/ --workers 2        # 2 processes, each with its own models
  faceveil batch archive/ -o clean/ --resume           # after a stop: skips what is done
  faceveil batch photos.zip -o photos.anonymized.zip   # zip in, zip out
  faceveil batch footage/ more.zip -o clean/ --method pixelate
  faceveil batch archive/ -o clean/ --engine ray       # a local Ray (needs faceveil[cluster])
  faceveil batch s3://bucket/raw -o s3://bucket/clean --engine ray --address auto
  faceveil batch archive/ -o clean/ --verify strict    # items with faces still found fail

Every finished item is one line in the manifest (JSON lines: input, size, sha256, output, faces,
status, error, seconds, worker), written as it finishes; --resume skips the items whose input
bytes and settings match an "ok" line whose output is still there. Exit code 1 when any item
failed (the others are done), 130 when stopped (Ctrl-C or SIGTERM; run again with --resume).
"""


def add_parser(sub) -> None:
    from ..options import add_arguments

    p = sub.add_parser(
        "batch", help="anonymize whole archives: folders, zips, URIs; parallel and resumable",
        description="Anonymize every picture and video of folders (recursively), zip files and glob "
                    "patterns into a mirrored output folder or zip, with several worker processes "
                    "or on a Ray cluster. A bad file is recorded and the rest goes on; a stopped "
                    "run is continued with --resume.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, "batch")


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM (a scheduler, `kill`) stops the run like Ctrl-C: cleanly, manifest kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(args: argparse.Namespace) -> int:
    from ..batch import BatchOptions, ItemOptions, run_batch
    from ..batch.plan import default_manifest
    from ..media.video import EncodeOptions
    from ..paths import EMPTY_REASONS
    from ..pipeline.runner import WriteOptions
    from .main import ExitCode, _err, _say
    from .run import _config

    config = _config(args)
    item = ItemOptions(
        WriteOptions(args.image_quality, args.keep_metadata, int(args.max_pixels)),
        EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset, keep_audio=not args.no_audio),
        verify=args.verify)
    options = BatchOptions(workers=args.workers, engine=args.engine, address=args.address,
                           resume=args.resume, manifest=args.manifest, item=item,
                           split=not args.no_split)
    manifest = str(Path(args.manifest).absolute()) if args.manifest else default_manifest(args.output)
    show_bar = not (args.quiet or args.no_progress) and sys.stderr.isatty()
    state: dict = {"bar": None, "done": 0}

    def on_progress(event) -> None:
        if event.stage == "start" and show_bar and event.total and event.total > 1:
            from tqdm import tqdm

            state["bar"] = tqdm(total=event.total, unit="file", file=sys.stderr, dynamic_ncols=True)
        elif event.stage == "file" and state["bar"] is not None:
            state["bar"].update(1)

    def on_record(record: dict) -> None:
        if record.get("status") == "error":
            _say(state["bar"], f"faceveil: error: {record.get('input')}: {record.get('error')}")
        elif record.get("status") == "ok":
            state["done"] += 1
            if record.get("warning"):
                _say(state["bar"], f"faceveil: warning: {record.get('input')}: {record['warning']}")

    try:
        with _sigterm_stops():
            report = run_batch(args.inputs, args.output, config, options, on_progress=on_progress,
                               on_record=on_record)
    except KeyboardInterrupt:
        if state["bar"] is not None:
            state["bar"].close()
        _err(f"faceveil: stopped; {state['done']} item(s) finished in this run are recorded in "
             f"{manifest}; run the same command with --resume to go on")
        return ExitCode.INTERRUPTED
    finally:
        if state["bar"] is not None:
            state["bar"].close()
    if args.json:
        sys.stdout.write(json.dumps(dataclasses.asdict(report)) + "\n")
    if not report.planned:
        if not report.errors:
            _err("faceveil: error: no pictures or videos to process")
            return ExitCode.NO_INPUT
        for what, why in report.errors:
            _err(f"faceveil: error: {what}: {why}")
        # an empty folder or a pattern that matches nothing is "nothing to process" (3), as in run
        nothing = all(why in EMPTY_REASONS for _, why in report.errors)
        return ExitCode.NO_INPUT if nothing else ExitCode.FAILED
    if not args.quiet:
        _summary(report)
    return ExitCode.FAILED if report.failed else ExitCode.OK


def _summary(report) -> None:
    parts = [f"{report.pictures} picture(s)"]
    if report.videos:
        parts.append(f"{report.videos} video(s) ({report.frames} frames)")
    how = (f"{report.workers} worker(s) x {report.threads} thread(s)" if report.workers
           else f"Ray actors x {report.threads} thread(s)")
    line = (f"faceveil: {' and '.join(parts)} anonymized, {report.counts.describe(bool(report.videos))} -> "
            f"{report.output} ({report.seconds:.1f} s, {report.engine}: {how})")
    if report.failed:
        line += f"; {report.failed} failed"
    if report.skipped:
        line += f"; {report.skipped} skipped (done before)"
    if report.redone:
        line += f"; {report.redone} done again (settings changed)"
    from .main import _err

    _err(line + f"; manifest {report.manifest}")
