"""One long video over many workers: split at key frames, segments in parallel, joined seamlessly.

A batch that holds a long video would otherwise keep one worker busy with it while the others
idle. `Splitter.split` turns such a video into `Segment` tasks, cut at key frames of the source,
which any worker runs (`run_segment`) like an item; when the last segment of a file is in,
`Splitter` joins them (in the calling process) and hands on one record for the file, as if one
worker had done it.

- **Context**: each segment goes through the frame step with extra frames before and after it
  (`context`: the tracker's look-ahead window, its hold and a full-scan interval), so tracks
  continue across the cut: a face found just after the cut is hidden `lead` frames before it, a
  detection gap over the cut is interpolated, a face seen just before it is held. The context
  frames are decoded and detected, never written; the first context frame is placed on the full
  scans' grid (a multiple of `scan_every` and `detect_every`), so the scans fall on the frames
  a single worker scans (a scene cut adds a scan and moves none).
- **Size**: a segment is worth it when its context costs little against its own frames: at
  least 1 / `CONTEXT_SHARE` times the context frames (288 frames, 11.5 s at 25 fps, with the
  balanced preset; its context then adds at most a quarter to what its worker decodes and detects,
  nothing to what it encodes). A video gets `PER_WORKER` segments per worker (so segments that
  take longer, such as crowded scenes, even out: a 10-minute video on 2 workers gets 6 segments
  of 100 s, whose context adds ~3%), fewer when it is too short for that, and one shorter than two
  segments is not split. Cuts go to the key frames nearest to equal shares. All of this follows
  from the tracker's settings and the number of workers, not from timing one clip.
- **Join**: the segments' video packets are copied one after the other (each starts with a key
  frame; their timestamps are the source's), the source's audio and subtitle packets are copied
  once, as `process_video` does, into a temporary name that becomes the output only when all of
  it is written. A failed segment fails the file: no output, its segments removed. The counts
  add up but for faces: a face seen across a cut is one face, told by its tracks in the two
  segments matching on the frames both run (`Seams`, `seam_duplicates`).
- **What is not split**: zip members and remote files or outputs, outputs other than MP4, MOV,
  M4V and MKV with the H.264/H.265 encoder, runs with `--keep`/`--only` people (one keep/hide
  decision per track needs the whole track) or `--verify` (it checks the whole output against
  the whole run), `--resume` items done before (the worker checks their bytes), videos with
  packets that do not say their time, and videos too short. Those go to one worker whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import glob
import heapq
import itertools
import logging
import math
import re
import secrets
import shutil
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import atomic_path, sha256_file
from ..config import PipelineConfig
from ..errors import CorruptMediaError, FaceveilError
from ..types import Counts, Detections
from . import storage
from .plan import Item
from .work import ItemOptions

if TYPE_CHECKING:
    from ..pipeline.video import Span

log = logging.getLogger(__name__)

CONTEXT_SHARE = 0.25  # context frames (read, not written) at most this share of a segment's own
PER_WORKER = 3  # segments per worker for one video
SPLIT_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv"})
SPLIT_CODECS = (None, "libx264", "libx265")
_SEGMENTS = re.compile(r"\.[0-9a-f]{8}\.segments")  # after the stem: where segments are written
RecordCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Segment:
    """One segment of a video item: a task for a worker. Plain values: it travels to worker
    processes and Ray actors."""

    input: str  # the item's (a local file)
    source: str
    output_name: str  # the item's; the manifest gets one record for the whole file
    part: str  # where the worker writes this segment (video only)
    index: int  # 0-based
    count: int  # segments of the file
    start: int
    first: int
    stop: int
    end: int
    seek_dts: int | None
    start_pts: int
    first_pts: int
    seam_before: int  # frames start..seam_before the previous segment also runs (its end)
    seam_after: int  # frames seam_after..end the next segment also runs (its start)

    # what the engines read of a task
    @property
    def video(self) -> bool:
        return True

    @property
    def span(self) -> Span:
        from ..pipeline.video import Span

        return Span(self.start, self.first, self.stop, self.end, self.seek_dts, self.start_pts,
                    self.first_pts)

    def tag(self) -> dict[str, Any]:
        """What a record for this segment carries to find its file (also when the worker died)."""
        return {"segment": self.index, "segments": self.count, "part": self.part}

    def to_dict(self) -> dict[str, Any]:
        return {"task": "segment", **asdict(self)}


def task_from_dict(data: dict[str, Any]) -> Item | Segment:
    """An item or segment from its plain form (Ray rows)."""
    data = dict(data)
    if data.pop("task", None) == "segment":
        return Segment(**data)
    return Item(**data)


def task_to_dict(task: Item | Segment) -> dict[str, Any]:
    return task.to_dict() if isinstance(task, Segment) else asdict(task)


# ------------------------------------------------------------------------ planning (the parent)


@dataclass(frozen=True)
class VideoIndex:
    """Where a video's frames and key frames are, from its packets (nothing decoded)."""

    pts: list[int]  # of every frame, in presentation order
    keys: list[tuple[int, int]]  # (frame index, dts) of the key frames, in order
    time_base: Fraction


def index_video(path: str | Path) -> VideoIndex | None:
    """The frame index of a video, or None (logged) when its packets do not allow a split."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            pts, keyed = [], []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream packet
                if packet.pts is None or packet.dts is None or packet.is_discard or \
                        packet.is_corrupt:
                    log.debug("%s: a packet without times (or marked to drop): not split", path)
                    return None
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keyed.append((packet.pts, packet.dts))
            time_base = stream.time_base
    except (av.error.FFmpegError, OSError) as exc:
        log.debug("%s: cannot index (%s): not split", path, exc)
        return None
    order = sorted(pts)
    if len(set(order)) != len(order) or not time_base:
        log.debug("%s: frames share a time: not split", path)
        return None
    where = {p: i for i, p in enumerate(order)}
    return VideoIndex(order, sorted((where[p], d) for p, d in keyed), Fraction(time_base))


def context(config: PipelineConfig) -> tuple[int, int, int]:
    """(frames before, frames after, grid): the context a segment reads around its own frames,
    and the grid of full scans its first context frame is placed on."""
    from ..pipeline.step import video_settings
    from ..tracking import Tracker

    video = video_settings(config)
    tracker = Tracker(video)  # its window, hold and gap, with the preset's intervals resolved
    every, scan = video.detect_every or 1, video.scan_every or 1
    before = tracker.max_gap + tracker.hold + scan  # a track seen before the cut is bridged/held
    after = tracker.window + scan  # a face found after the cut gets its lead, gaps are bridged
    return before, after, math.lcm(every, scan)


def plan_spans(index: VideoIndex, parts: int, min_frames: int, before: int, after: int,
               grid: int) -> list[Span]:
    """Up to `parts` segments of at least `min_frames` frames, cut at key frames."""
    from ..pipeline.video import Span

    n = len(index.pts)
    keys = [i for i, _ in index.keys if 0 < i < n]
    cuts = [0]
    for k in range(1, parts):
        want = n * k / parts
        fit = [i for i in keys if i - cuts[-1] >= min_frames and n - i >= min_frames]
        if fit:
            best = min(fit, key=lambda i: abs(i - want))
            if best < n * (k + 1) / parts:  # else the next cut's turn
                cuts.append(best)
    if len(cuts) < 2:
        return []
    bounds = [*cuts, n]
    dts_at = dict(index.keys)
    key_frames = [i for i, _ in index.keys]
    spans = []
    for first, stop in itertools.pairwise(bounds):
        start = max(0, (first - before) // grid * grid)
        end = min(n, stop + after)
        seek = None
        if start > 0:
            at = [i for i in key_frames if i <= start]
            if not at:
                return []
            seek = dts_at[at[-1]]
        spans.append(Span(start, first, stop, end, seek, index.pts[start], index.pts[first]))
    return spans


def splittable(item: Item, config: PipelineConfig, options: ItemOptions) -> bool:
    if not item.video or item.member is not None or item.expect is not None:
        return False
    if storage.is_uri(item.source) or storage.is_uri(item.output):
        return False
    if Path(item.output).suffix.lower() not in SPLIT_SUFFIXES:
        return False
    if options.encode.codec not in SPLIT_CODECS or options.verify:
        return False
    return not config.identity.active


class Splitter:
    """Splits long videos into segment tasks and joins them back as their records come in."""

    def __init__(self, config: PipelineConfig, options: ItemOptions, *, run: str = "",
                 engine: str = "local", min_frames: int | None = None) -> None:
        self.config, self.options, self.run, self.engine = config, options, run, engine
        self.before, self.after, self.grid = context(config)
        self.min_frames = min_frames or math.ceil((self.before + self.after) / CONTEXT_SHARE)
        self._files: dict[str, _File] = {}  # output name -> a split file in progress

    @property
    def active(self) -> bool:
        return bool(self._files)

    def split(self, items: Sequence[Item], workers: int) -> list[Item | Segment]:
        """The tasks for `items` on `workers`: long videos as segments, longest work first."""
        tasks: list[tuple[float, int, Item | Segment]] = []
        for order, item in enumerate(items):
            segments = self._segments(item, workers) if workers > 1 else None
            if not segments:
                weight = 1.0 if item.video else 0.0  # videos whole before pictures
                tasks.append((weight, order, item))
                continue
            for s in segments:
                tasks.append((2.0 + (s.stop - s.first) / 1e9, order, s))
        tasks.sort(key=lambda t: (-t[0], t[1]))
        return [t for *_, t in tasks]

    def _segments(self, item: Item, workers: int) -> list[Segment] | None:
        if not splittable(item, self.config, self.options):
            return None
        index = index_video(storage.local_path(item.source))
        if index is None or len(index.pts) < 2 * self.min_frames:
            return None
        spans = plan_spans(index, PER_WORKER * workers, self.min_frames, self.before,
                           self.after, self.grid)
        if len(spans) < 2:
            return None
        out = Path(item.output)
        stem = out.name  # whole: clip.mp4 and clip.mov in one folder are different outputs
        # a killed run's segments of this output (the manifest's lock keeps a second run out)
        ours = {f.folder for f in self._files.values()}
        for old in out.parent.glob(f".{glob.escape(stem)}.*.segments"):
            if _SEGMENTS.fullmatch(old.name[len(stem) + 1:]) and old not in ours:
                shutil.rmtree(old, ignore_errors=True)
        folder = out.parent / f".{stem}.{secrets.token_hex(4)}.segments"
        folder.mkdir(parents=True, exist_ok=True)
        segments = [Segment(item.input, item.source, item.output_name,
                            str(folder / f"{k:04d}{out.suffix}"), k, len(spans), s.start,
                            s.first, s.stop, s.end, s.seek_dts, s.start_pts, s.first_pts,
                            spans[k - 1].end if k else s.start,
                            spans[k + 1].start if k + 1 < len(spans) else s.end)
                    for k, s in enumerate(spans)]
        self._files[item.output_name] = _File(item, folder, segments)
        log.info("%s: %d frames in %d segments for %d workers (context %d + %d frames)",
                 item.input, len(index.pts), len(spans), workers, self.before, self.after)
        return segments

    def on_record(self, record: dict[str, Any], on_record: RecordCallback) -> None:
        """A record from a worker: a file's (handed on) or a segment's (kept; when it was the
        file's last, the file is joined and its record handed on)."""
        if "segment" not in record:
            on_record(record)
            return
        file = self._files.get(record.get("output", ""))
        if file is None:
            log.debug("a record of an unknown segment: %s", record)
            return
        file.records[record["segment"]] = record
        if record.get("status") != "ok" and file.failed is None:
            file.failed = f"segment {record['segment'] + 1} of {record['segments']}: " \
                          f"{record.get('error') or 'failed'}"
            file.remove_parts()  # the others may still be running; their parts go at the end
        if len(file.records) < len(file.segments):
            return
        del self._files[file.item.output_name]
        on_record(self._finish(file))

    def _finish(self, file: _File) -> dict[str, Any]:
        item, records = file.item, [file.records[k] for k in range(len(file.segments))]
        record: dict[str, Any] = {
            "input": item.input, "size": None, "sha256": None, "output": item.output_name,
            "kind": "video", "faces": 0, "kept": 0, "status": "error", "error": "",
        }
        try:
            record["size"], record["sha256"] = file.digest()
            if file.failed is not None:
                raise FaceveilError(file.failed)
            join_segments(storage.local_path(item.source), [Path(s.part) for s in file.segments],
                          Path(item.output), keep_audio=self.options.encode.keep_audio,
                          starts=[s.first_pts for s in file.segments])
            # face-frames, boxes and frames add up exactly; a face whose tracks in two segments
            # match on the frames both run counts once
            twice = seam_duplicates(records)
            counts = sum((Counts.from_dict(r) for r in records), Counts())
            record.update(dataclasses.replace(counts, faces=counts.faces - twice).to_dict(),
                          tracks=sum(int(r.get("tracks") or 0) for r in records) - twice)
            record["status"] = "ok"
        except Exception as exc:
            from ..errors import describe_error

            record["error"] = describe_error(exc)
            log.debug("%s: joining failed", item.input, exc_info=True)
        finally:
            shutil.rmtree(file.folder, ignore_errors=True)
        workers = sorted({str(r.get("worker")) for r in records if r.get("worker")})
        record.update(
            seconds=round(time.perf_counter() - file.started, 3), engine=self.engine,
            worker=", ".join(workers), peak_rss_mb=max((r.get("peak_rss_mb") or 0) for r in records),
            settings=next((r["settings"] for r in records if r.get("settings")), None),
            run=self.run, segments=len(records),
            finished=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
        return record

    def abort(self) -> None:
        """Stopped: remove the segments of every file not joined yet."""
        for file in self._files.values():
            shutil.rmtree(file.folder, ignore_errors=True)
        self._files.clear()


class _File:
    """A split file in progress (in the parent)."""

    def __init__(self, item: Item, folder: Path, segments: list[Segment]) -> None:
        self.item, self.folder, self.segments = item, folder, segments
        self.records: dict[int, dict[str, Any]] = {}
        self.failed: str | None = None
        self.started = time.perf_counter()
        self._digest: tuple[int, str] | BaseException | None = None
        # the input's sha256 (for --resume), while the workers run
        self._thread = threading.Thread(target=self._hash, daemon=True,
                                        name="faceveil-segments-sha256")
        self._thread.start()

    def _hash(self) -> None:
        try:
            path = storage.local_path(self.item.source)
            self._digest = (path.stat().st_size, sha256_file(path))
        except BaseException as exc:
            self._digest = exc

    def digest(self) -> tuple[int, str]:
        self._thread.join()
        if isinstance(self._digest, BaseException):
            raise self._digest
        assert self._digest is not None
        return self._digest

    def remove_parts(self) -> None:
        for s in self.segments:
            if s.index not in self.records or self.records[s.index].get("status") != "ok":
                continue
            Path(s.part).unlink(missing_ok=True)


# --------------------------------------------------------------------------- the worker side


def run_segment(worker: Any, segment: Segment, run: str = "") -> dict[str, Any]:
    """Process one segment with an `ItemWorker`'s loaded pipeline; never raises for a bad input.
    The record goes to `Splitter.on_record` in the parent."""
    from ..errors import describe_error
    from ..pipeline.video import process_video

    started = time.perf_counter()
    seams = Seams(segment)
    record: dict[str, Any] = {"input": segment.input, "output": segment.output_name,
                              "kind": "video", "status": "error", "error": "", **segment.tag()}
    try:
        report = process_video(storage.local_path(segment.source), segment.part, worker.pipeline,
                               encode=worker.options.encode,
                               max_pixels=worker.options.write.max_pixels, span=segment.span,
                               on_frame=seams.add)
        if report.damage:
            raise CorruptMediaError(f"damaged at {report.damage[0]:.2f} s")
        record.update(report.counts.to_dict(), tracks=report.tracks, seams=seams.to_dict(),
                      status="ok")
    except Exception as exc:
        record["error"] = describe_error(exc)
        log.debug("%s: segment %d failed", segment.input, segment.index, exc_info=True)
    finally:
        from .work import peak_rss_mb

        record.update(seconds=round(time.perf_counter() - started, 3), engine=worker.engine,
                      worker=worker.name, peak_rss_mb=peak_rss_mb(), settings=worker.settings,
                      run=run)
    return record


def run_task(worker: Any, task: Item | Segment, run: str = "") -> dict[str, Any]:
    """What an engine's worker does with a task: a whole item, or one segment of one."""
    if isinstance(task, Segment):
        return run_segment(worker, task, run)
    return worker.process(task, run)


# ---------------------------------------------------------------------------------- joining


class Seams:
    """What a segment's record carries so that the join counts a face seen across a cut once.

    Two neighbouring segments both run the frame step over the frames around their cut (the
    earlier one's last own frames and after-context, the later one's before-context and first
    own frames). There both run the same detector on the same frames (the context starts on the
    full scans' grid), so a face both see gets the same box on the same frame, and a face that
    crosses the cut is detected there: a tracker drops a face unseen for `max_gap` frames, and
    the frames both run are more than that. So on those frames each segment gives the boxes its
    detector found with their track ids, and which of those tracks it counts (hidden on its own
    frames). Detected boxes only: where a held or interpolated box goes depends on the track's
    past, which the later segment saw less of.

    Plain form (`to_dict`): {"before": [[frame, track, x1, y1, x2, y2], ...] on the frames the
    previous segment also runs, "after": [...] on those the next one runs, "counted": [track]}.
    """

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self.before: list[list[float]] = []
        self.after: list[list[float]] = []
        self._counted: set[int] = set()

    def add(self, index: int, pts: float | None, dets: Detections) -> None:
        """`process_video`'s on_frame: every frame the segment runs, context included."""
        s = self.segment
        ids = dets.track_ids if dets.track_ids is not None else np.full(len(dets), -1)
        hidden = ~dets.keep & (ids >= 0)
        if s.first <= index < s.stop:
            self._counted.update(ids[hidden].tolist())
        found = hidden & ~dets.filled
        if not found.any() or s.seam_before <= index < s.seam_after:
            return
        rows = [[index, int(t), *(round(float(v), 2) for v in box)]
                for t, box in zip(ids[found], dets.xyxy[found], strict=True)]
        if index < s.seam_before:
            self.before += rows
        if index >= s.seam_after:
            self.after += rows

    def to_dict(self) -> dict[str, list]:
        seen = {int(row[1]) for row in self.before + self.after}
        return {"before": self.before, "after": self.after,
                "counted": sorted(self._counted & seen)}


SEAM_IOU = 0.5  # boxes of two segments on one frame overlapping this much: the same face


def seam_duplicates(records: Sequence[dict[str, Any]]) -> int:
    """How many more faces the segments' records (in order) count than the file has: the tracks
    of neighbouring segments whose detected boxes match on a frame both ran (`Seams`; one to one
    per frame, best overlap first, at least SEAM_IOU) are one face. A group of tracks so linked
    (across any number of cuts) is as many faces as the most tracks one segment counts in it:
    the join never tells apart faces a segment's own tracker saw as one, nor merges faces it
    told apart."""
    from ..geometry import iou_matrix

    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def root(node: tuple[int, int]) -> tuple[int, int]:
        while parent.setdefault(node, node) != node:
            parent[node] = node = parent[parent[node]]
        return node

    for k, (a, b) in enumerate(itertools.pairwise(records)):
        mine, theirs = defaultdict(list), defaultdict(list)
        for row in (a.get("seams") or {}).get("after", ()):
            mine[int(row[0])].append(row)
        for row in (b.get("seams") or {}).get("before", ()):
            theirs[int(row[0])].append(row)
        for frame in mine.keys() & theirs.keys():
            x, y = mine[frame], theirs[frame]
            iou = iou_matrix(np.array([r[2:] for r in x], np.float32),
                             np.array([r[2:] for r in y], np.float32))
            used_x, used_y = set(), set()
            for flat in np.argsort(-iou, axis=None):
                i, j = np.unravel_index(flat, iou.shape)
                if iou[i, j] < SEAM_IOU:
                    break
                if i in used_x or j in used_y:
                    continue
                used_x.add(i)
                used_y.add(j)
                parent[root((k, int(x[i][1])))] = root((k + 1, int(y[j][1])))
    groups: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
    for k, r in enumerate(records):
        for track in (r.get("seams") or {}).get("counted", ()):
            groups[root((k, int(track)))][k] += 1
    return sum(sum(c.values()) - max(c.values()) for c in groups.values())


def join_segments(src: Path, parts: Sequence[Path], dst: Path, *, keep_audio: bool = True,
                  starts: Sequence[int] | None = None) -> None:
    """Copy the video packets of `parts` (in order) and the audio and subtitle packets of `src`
    into `dst`, atomically.

    `starts`: the pts (source video ticks) of each part's first frame. A part's timestamps are
    moved to start there exactly: a muxer may shift a file's start (an MP4 edit list keeps it in
    milliseconds; formats without negative times move the first B-frame delay).
    """
    import av

    from ..media.video import _FORMATS, _copy_language

    fmt = _FORMATS[dst.suffix.lower()]
    with contextlib.ExitStack() as stack:
        inputs = [stack.enter_context(av.open(str(p), metadata_errors="ignore")) for p in parts]
        source = stack.enter_context(av.open(str(src), metadata_errors="ignore"))
        tmp = stack.enter_context(atomic_path(dst))
        out = stack.enter_context(av.open(str(tmp), "w", format=fmt))
        first = inputs[0].streams.video[0]
        video = out.add_stream_from_template(first)
        video.time_base = first.time_base
        rotation = _rotation(src)
        if rotation:  # as process_video sets it: from the source's first frame
            video.set_display_rotation(rotation)
        _copy_language(source.streams.video[0], video)
        for inp in inputs[1:]:
            if bytes(inp.streams.video[0].codec_context.extradata or b"") != \
                    bytes(first.codec_context.extradata or b""):
                raise FaceveilError("the segments' encoder headers differ; cannot join them")
        copied = {}
        if keep_audio:
            for s in source.streams:
                if s.type not in ("audio", "subtitle"):
                    continue
                try:
                    copied[s.index] = out.add_stream_from_template(s)
                except (ValueError, av.error.FFmpegError) as exc:
                    log.warning("%s: %s stream %d cannot go into a %s file and is left out: %s",
                                src, s.type, s.index, dst.suffix, exc)
                    continue
                _copy_language(s, copied[s.index])
        streams = [source.streams[i] for i in copied]

        source_tb = source.streams.video[0].time_base

        def videos() -> Iterator[tuple[float, int, Any]]:
            for k, inp in enumerate(inputs):
                stream = inp.streams.video[0]
                shift: int | None = None
                for packet in inp.demux(stream):
                    if not packet.size:
                        continue
                    if packet.dts is None or packet.pts is None:
                        raise FaceveilError(f"segment {k + 1}: a packet without times")
                    if shift is None:  # a segment starts with a key frame: its first frame
                        shift = 0 if starts is None else \
                            round(starts[k] * source_tb / packet.time_base) - packet.pts
                    packet.pts += shift
                    packet.dts += shift
                    yield float(packet.dts * packet.time_base), 0, packet

        def others() -> Iterator[tuple[float, int, Any]]:
            if not streams:
                return
            for packet in source.demux(*streams):
                if packet.size and packet.dts is not None:
                    yield float(packet.dts * packet.time_base), 1, packet

        for _, kind, packet in heapq.merge(videos(), others(), key=lambda t: (t[0], t[1])):
            packet.stream = video if kind == 0 else copied[packet.stream.index]
            out.mux(packet)


def _rotation(src: Path) -> int:
    """The display rotation of the video's first frame (what process_video gives its output)."""
    import av

    with av.open(str(src), metadata_errors="ignore") as c:
        for frame in c.decode(video=0):
            return int(frame.rotation or 0)
    return 0
