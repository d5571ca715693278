"""Live: webcams and network streams anonymized in real time (`faceveil live`).

`run_live(source, pipeline, sinks)` reads a camera, a network stream or a file played at its
real rate, hides the faces with a causal tracker between detections, and hands every frame to
the sinks (`PreviewWindow`, `MjpegServer`, `Recorder`). It never shows a frame that was not
anonymized and drops frames (counted) rather than fall behind.
"""

from .runner import LIVE_PRESETS, Grabber, LiveError, LiveReport, LiveStatus, backoff_delays, run_live
from .sinks import MjpegServer, OutputError, PreviewWindow, Recorder, Sink, preview_unavailable
from .sources import Captured, Source, SourceError, open_source

__all__ = [
    "LIVE_PRESETS", "Captured", "Grabber", "LiveError", "LiveReport", "LiveStatus", "MjpegServer",
    "OutputError", "PreviewWindow", "Recorder", "Sink", "Source", "SourceError", "backoff_delays",
    "open_source", "preview_unavailable", "run_live",
]
