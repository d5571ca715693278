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


def add_parser(sub, common, choices, hiding, people) -> None:
    from ..config import QUALITIES, LiveConfig
    from ..detection import detectors
    from ..models.runtime import DEVICES
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
    live.add_argument("source", metavar="SOURCE",
                      help="a camera number (0), a device (/dev/video0), a stream URL (rtsp://, "
                           "http://, tcp://, udp://, rtmp://, srt://) or a video file")
    g = live.add_argument_group("outputs (any number at once)")
    g.add_argument("--no-preview", action="store_true",
                   help="no preview window (default: one where a display is available)")
    g.add_argument("--serve", nargs="?", const="", metavar="[HOST:]PORT",
                   help="serve an MJPEG stream and a page showing it (default 127.0.0.1:8765; "
                        "port 0 picks a free one); open it in a browser, VLC or OBS")
    g.add_argument("--allow-remote", action="store_true",
                   help="let --serve use an address other than loopback; without --token one is "
                        "made and printed (in the address to open)")
    g.add_argument("--token", metavar="T",
                   help="--serve: access token every viewer needs (default: $FACEVEIL_TOKEN; "
                        "needed off loopback); also the password a browser or VLC asks for")
    g.add_argument("--image-quality", type=int, default=80, metavar="1..100",
                   help="JPEG quality of the served frames (default 80)")
    g.add_argument("--record", metavar="FILE",
                   help="record the anonymized stream (.mp4, .mkv, .mov, .webm, .avi) at the pace "
                        "it was seen; written under a temporary name and renamed at the end")
    g.add_argument("--crf", type=int, default=23, metavar="N",
                   help="--record: constant quality, lower is better and bigger (default 23)")
    g.add_argument("--no-audio", action="store_true",
                   help="--record: leave the source's sound out (default: copied when it has one)")
    g.add_argument("--preset", default="ultrafast", metavar="NAME",
                   help="--record: x264 speed preset (default ultrafast: the least CPU, taken from "
                        "detection; veryfast makes ~2x smaller files for ~2x the CPU)")
    g.add_argument("--fps-overlay", action="store_true",
                   help="draw output fps, latency and dropped frames on the frames")
    g.add_argument("--json", action="store_true", help="print the end summary as JSON on stdout")
    g = live.add_argument_group("source")
    g.add_argument("--timeout", type=float, metavar="S",
                   help=f"seconds to wait for the source, to open it or for data, before it counts "
                        f"as lost (default {d.open_timeout:g} to open, {d.read_timeout:g} for data)")
    g.add_argument("--reconnect", type=int, default=d.reconnects, metavar="N",
                   help=f"attempts to reconnect a stream or camera that dropped, waiting "
                        f"{d.backoff:g} s, then twice as long each time, up to {d.backoff_max:g} s "
                        f"(default {d.reconnects}; 0: stop at once)")
    g = live.add_argument_group("detection and tracking")
    g.add_argument("--detector", choices=detectors.names(), help=choices(detectors))
    g.add_argument("--quality", choices=QUALITIES, help="speed against recall (default balanced)")
    g.add_argument("--threshold", type=float, metavar="0..1",
                   help="detection score threshold (default: set by --quality)")
    g.add_argument("--threads", type=int, metavar="N", help="inference threads (default: all cores)")
    g.add_argument("--device", choices=DEVICES,
                   help="where the ONNX models run: cpu (default), auto, cuda, ... (as for run)")
    g.add_argument("--detect-every", type=int, metavar="K",
                   help="the detector runs beside the stream on the newest frame whenever it is "
                        "free, but at most every K-th frame (a full scan or a quick pass, as for "
                        "files); the frames in between wait for it and are interpolated "
                        f"(default by --quality: {presets})")
    g.add_argument("--detect-size", type=int, metavar="PX",
                   help="long side of the picture the detector sees (default by --quality)")
    g.add_argument("--scan-every", type=int, metavar="N",
                   help="frames between full scans; quick passes in between (default by "
                        "--quality, as for files: " + ", ".join(
                            f"{q} {p.scan_every}" for q, p in PRESETS.items()) + ")")
    g.add_argument("--hold", type=int, metavar="N",
                   help="frames a face stays hidden after it was last seen (default 8)")
    people(live, keep_note=". A face stays hidden until it is judged; judging takes ~80 ms a face, "
                           "which the stream waits for (expect dropped frames)")
    hiding(live)
    common(live)


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
    parts.append(f"{r.faces} face boxes hidden")
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
