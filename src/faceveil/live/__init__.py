"""Live: webcams and network streams anonymized in real time (`faceveil live`).

`run_live(source, pipeline, sinks)` reads a camera, a network stream or a file played at its
real rate, finds and follows the faces with the same frame step as files
(`faceveil.pipeline.step`), and hands the frames to the sinks (`PreviewWindow`, `MjpegServer`,
`Recorder`, which keeps the source's sound). A frame is shown only anonymized and only once a
detection on it or on a later frame is done; frames that would wait too long are dropped
(counted) rather than shown unchecked or piling up.
"""

from .runner import LIVE_PRESETS, Grabber, LiveError, LiveReport, LiveStatus, backoff_delays, run_live
from .sinks import MjpegServer, OutputError, PreviewWindow, Recorder, Sink, preview_unavailable
from .sources import Captured, Source, SourceError, open_source

__all__ = [
    "LIVE_PRESETS", "Captured", "Grabber", "LiveError", "LiveReport", "LiveStatus", "MjpegServer",
    "OutputError", "PreviewWindow", "Recorder", "Sink", "Source", "SourceError", "backoff_delays",
    "open_source", "preview_unavailable", "run_live",
]
