"""`faceveil live SOURCE`: a camera, network stream or file anonymized in real time."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

from ..errors import ConfigError

log = logging.getLogger("faceveil")

EXAMPLES = """\
examples:
  faceveil live 0                                    # webcam 0 in a preview window; q to quit
  faceveil live rtsp://camera.local/stream --serve   # MJPEG page on http://127.0.0.1:8765/
  faceveil live 0 --record session.mp4 --fps-overlay
  faceveil live clip.mp4 --serve 8080 --no-preview   # a file, played at its real rate
  faceveil live tcp://127.0.0.1:5000 --record out.mkv --reconnect 10
  faceveil live 0 --background blur --method none    # face visible, room blurred
  faceveil live 0 --serve 0.0.0.0:8765 --allow-remote   # on the network: a token is made and printed
"""


def add_parser(sub) -> None:
    from ..config import LiveConfig
    from ..options import add_arguments
    from ..pipeline.step import PRESETS

    d = LiveConfig()
    presets = ", ".join(f"{q} {p.detect_size or 'full'} px every {p.detect_every}"
                        for q, p in PRESETS.items())
    live = sub.add_parser(
        "live", help="anonymize a webcam or network stream in real time",
        description="Hide every face of a camera, a network stream (RTSP, HTTP, TCP, UDP, ...) or\n"
                    "a video file played at its real rate, live: in a preview window, as an MJPEG\n"
                    "stream (--serve) and/or into a file (--record), with its sound. Faces are\n"
                    "found and followed as in a file (the same presets and tracker); a frame is\n"
                    "only shown once a detection on it or on a later frame is done, so it waits\n"
                    "about one detection; frames that would wait over 0.15 s are dropped (and\n"
                    "counted), never shown unchecked. Stop with q in the preview, Ctrl-C or SIGTERM.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    # a live run's outputs and source first, then the settings it shares with files
    groups = {s: live.add_argument_group(s) for s in ("outputs (any number at once)", "source")}
    add_arguments(live, "live", groups=groups, format_help={
        "presets": presets, "scans": ", ".join(f"{q} {p.scan_every}" for q, p in PRESETS.items()),
        "open": f"{d.open_timeout:g}", "read": f"{d.read_timeout:g}", "backoff": f"{d.backoff:g}",
        "backoff_max": f"{d.backoff_max:g}", "reconnects": d.reconnects})
    live.set_defaults(reconnect=d.reconnects)  # the default is LiveConfig's


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM end the run cleanly (outputs finished); a second Ctrl-C interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
    previous = {sig: signal.getsignal(sig) for sig in names}

    def handler(signum, frame) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        log.info("%s: stopping", names.get(signum, signum))

    for sig in names:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _status_line(args: argparse.Namespace):
    if args.quiet or args.no_progress or not sys.stderr.isatty():
        return None

    def show(s) -> None:
        sys.stderr.write(f"\rfaceveil: live: {s.fps:4.1f} fps, {s.latency * 1000:3.0f} ms, "
                         f"{s.frames_out} out, {s.dropped} dropped\033[K")
        sys.stderr.flush()

    return show


def run(args: argparse.Namespace) -> int:
    from ..config import LiveConfig
    from ..live import MjpegServer, OutputError, PreviewWindow, Recorder, open_source, run_live
    from ..live.sinks import parse_address, preview_unavailable
    from ..pipeline.pipeline import Pipeline
    from .run import _config

    timeouts = {} if args.timeout is None else {"open_timeout": args.timeout,
                                                  "read_timeout": args.timeout}
    live_config = LiveConfig(reconnects=args.reconnect, overlay=args.fps_overlay, **timeouts)
    config = _config(args)
    source = open_source(args.source, live_config)  # a missing file fails here, before loading
    address = parse_address(args.serve) if args.serve is not None else None
    pipeline = Pipeline(config)
    _ = pipeline.identifier  # load --keep/--only people now: a bad name is one clear error
    stop = threading.Event()
    status = _status_line(args)
    with contextlib.ExitStack() as outputs:
        sinks: list = []
        no_preview = None
        if not args.no_preview:
            no_preview = preview_unavailable()
            if no_preview is None:
                sinks.append(PreviewWindow())
                outputs.callback(sinks[-1].close)
        if address is not None:
            token = args.token or os.environ.get("FACEVEIL_TOKEN") or None
            server = MjpegServer(*address, quality=args.image_quality, allow_remote=args.allow_remote,
                                 token=token)
            outputs.callback(server.close)
            sinks.append(server)
            print(f"faceveil: serving {server.url} (MJPEG: {server.stream_url})", file=sys.stderr,
                  flush=True)
        recorder = None
        if args.record:
            recorder = Recorder(args.record, crf=args.crf, preset=args.preset)
            if not args.no_audio:
                recorder.keep_audio_of(source)
            sinks.append(recorder)
        if no_preview is not None:
            if not sinks:
                raise OutputError(f"no output: no preview window here ({no_preview}); "
                                  "use --serve and/or --record")
            log.warning("no preview window: %s; going on with the other output(s)", no_preview)
        if not sinks:
            raise ConfigError("no output: drop --no-preview, or use --serve and/or --record")
        record_error = None
        report = None
        try:
            with _stop_on_signals(stop):
                report = run_live(source, pipeline, sinks, live_config, stop=stop, on_status=status)
        finally:
            if status is not None:
                sys.stderr.write("\r\033[K")
            if recorder is not None and report is None:  # it never started
                recorder.abort()
            elif recorder is not None:  # finished even when the run failed: what was seen is kept
                try:
                    recorder.close()
                except OutputError as exc:
                    record_error = str(exc)
    if record_error:
        print(f"faceveil: error: {record_error}", file=sys.stderr)
    if args.json:
        doc = report.to_dict()
        doc["recording"] = None if recorder is None else {
            "path": str(recorder.path), "frames": recorder.frames, "dropped": recorder.dropped,
            "audio": recorder.audio,
            "ok": record_error is None and recorder.frames > 0}
        print(json.dumps(doc), flush=True)
    if not args.quiet:
        print(_summary(report, recorder), file=sys.stderr)
    elif report.failed:
        print(f"faceveil: error: {report.ended}", file=sys.stderr)
    return 1 if report.failed or record_error else 0


def _summary(r, recorder) -> str:
    parts = [f"{r.frames_in} frames in", f"{r.frames_out} out",
             f"{r.dropped} dropped ({r.drop_rate:.1%})"]
    if r.withheld:
        parts.append(f"{r.withheld} withheld (detection failed)")
    parts.append(r.counts.describe(True))
    parts.append(f"{r.fps:.1f} fps")
    parts.append(f"latency {r.latency_mean * 1000:.0f} ms mean, {r.latency_p95 * 1000:.0f} ms p95")
    parts.append(f"{r.detections} detections ({r.detect_mean * 1000:.0f} ms each; a frame waited "
                 f"for the one {r.detect_lag:.1f} frames later on average)")
    if r.reconnects:
        parts.append(f"{r.reconnects} reconnect(s)")
    line = f"faceveil: live {r.source}: " + ", ".join(parts) + f"; {r.ended}"
    if recorder is not None and recorder.frames:
        line += f"; recorded {recorder.frames} frames -> {recorder.path}"
        if recorder.dropped:
            line += f" ({recorder.dropped} left out: the encoder was behind)"
    return line
