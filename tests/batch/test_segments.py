"""One long video over several workers (faceveil.batch.segments): split, processed, joined.

Real parts: the shared pan clip (real WIDER photos, exact face boxes) re-encoded with key frames
in the middle of pans, the real CenterFace detector in real worker processes and a real local
Ray, real PyAV. The one-worker output (process_video over the whole clip) is the reference: the
joined output must have its frames, timestamps and audio bytes, the same pixels (both written
losslessly, so any difference is a difference in what was hidden), and leak no face it did not.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, require_data
from faceveil.batch import BatchOptions, ItemOptions, read_manifest, run_batch
from faceveil.batch.local import LocalEngine
from faceveil.batch.plan import Item
from faceveil.batch.segments import (
    Segment,
    Splitter,
    VideoIndex,
    context,
    join_segments,
    plan_spans,
    run_segment,
    seam_duplicates,
    splittable,
)
from faceveil.config import PipelineConfig
from faceveil.errors import FaceveilError
from faceveil.media.video import EncodeOptions
from faceveil.types import Counts

CONFIG = PipelineConfig.from_options(method="solid", color="black")
LOSSLESS = ItemOptions(encode=EncodeOptions(crf=0, preset="fast"))  # with B-frames
PHOTOS = ["wider_face_val_subset/12--Group/12_Group_Group_12_Group_Group_12_80.jpg",
          "wider_face_val_subset/3--Riot/3_Riot_Riot_3_415.jpg"]
KEYINT = 40  # key frames every 40 frames: cuts in the middle of a pan, not at its photo changes
SEGMENT = 35  # shortest segment here: 150 frames in 3-4 segments (x264 adds a key frame at 75)


# ---------------------------------------------------------------------------- planning, no media


def _index(n: int, keys: list[int]) -> VideoIndex:
    return VideoIndex([10 * i for i in range(n)], [(k, 10 * k - 20) for k in keys], Fraction(1, 250))


@pytest.mark.parametrize("n, keys, parts, min_frames, cuts", [
    (300, [0, 60, 120, 180, 240], 6, 60, [0, 60, 120, 180, 240]),
    (300, [0, 60, 120, 180, 240], 2, 60, [0, 120]),  # the key frame nearest the half
    (300, [0, 60, 120, 180, 240], 6, 100, [0, 120]),  # 240 would leave 60 frames
    (300, [0], 6, 10, []),  # one key frame: nothing to cut at
    (100, [0, 50], 4, 60, []),  # too short for two segments
])
def test_spans_cut_at_key_frames(n, keys, parts, min_frames, cuts):
    spans = plan_spans(_index(n, keys), parts, min_frames, before=40, after=32, grid=8)
    assert [s.first for s in spans] == cuts
    for a, b in itertools.pairwise(spans):
        assert a.stop == b.first  # every frame is written by exactly one segment
    for s in spans:
        assert s.start <= s.first and s.start % 8 == 0 and s.first - s.start >= min(40, s.first)
        assert s.end == min(n, s.stop + 32)
        assert s.start_pts == 10 * s.start and s.first_pts == 10 * s.first
        if s.start:  # decoding starts at the key frame at or before the first frame read
            key = max(k for k in keys if k <= s.start)
            assert s.seek_dts == 10 * key - 20
        else:
            assert s.seek_dts is None
    if spans:
        assert spans[-1].stop == n


def test_context_comes_from_the_tracker():
    before, after, grid = context(PipelineConfig())  # balanced: scan every 8, detect every 2
    assert (before, after, grid) == (24 + 8 + 8, 24 + 8, 8)
    b2, a2, _ = context(PipelineConfig.from_options(max_gap=50))
    assert b2 > before and a2 > after


def _item(tmp_path: Path, name: str = "v.mp4", **kw) -> Item:
    src = str(tmp_path / "in" / name)
    base = dict(input=src, source=src, member=None, output=str(tmp_path / "out" / name),
                output_name=str(tmp_path / "out" / name), rel=name)
    return Item(**{**base, **kw})


@pytest.mark.parametrize("change, options, config, ok", [
    ({}, ItemOptions(), CONFIG, True),
    ({"rel": "v.avi", "output": "/o/v.avi"}, ItemOptions(), CONFIG, False),  # MPEG-4 in AVI
    ({"member": "a/v.mp4", "source": "/x.zip"}, ItemOptions(), CONFIG, False),  # inside a zip
    ({"expect": "ab" * 32}, ItemOptions(), CONFIG, False),  # --resume: the worker checks bytes
    ({"output": "s3://b/v.mp4"}, ItemOptions(), CONFIG, False),
    ({}, ItemOptions(verify="warn"), CONFIG, False),
    ({}, ItemOptions(encode=EncodeOptions(codec="mpeg4")), CONFIG, False),
    ({}, ItemOptions(), PipelineConfig.from_options(keep=("someone",)), False),
    ({"rel": "p.jpg", "output": "/o/p.jpg"}, ItemOptions(), CONFIG, False),
])
def test_what_is_split(tmp_path, change, options, config, ok):
    assert splittable(_item(tmp_path, **change), config, options) is ok


def _seams(before=(), after=(), counted=()) -> dict:
    """A segment's record with its seams: rows (frame, track, x1, y1, x2, y2)."""
    return {"seams": {"before": [list(r) for r in before], "after": [list(r) for r in after],
                      "counted": list(counted)}}


FACE, FACE_MOVED, OTHER = (100, 50, 140, 100), (104, 52, 144, 102), (300, 50, 340, 100)


@pytest.mark.parametrize("records, twice", [
    # one face across the cut: a track in each segment, the same box on a frame both ran
    ([_seams(after=[(40, 3, *FACE)], counted=[3]),
      _seams(before=[(40, 0, *FACE_MOVED)], counted=[0])], 1),
    # the same boxes on different frames, or different faces on the same frame: two faces
    ([_seams(after=[(40, 3, *FACE)], counted=[3]), _seams(before=[(41, 0, *FACE)], counted=[0])], 0),
    ([_seams(after=[(40, 3, *FACE)], counted=[3]), _seams(before=[(40, 0, *OTHER)], counted=[0])], 0),
    # the later segment saw it only in its context (it did not count it)
    ([_seams(after=[(40, 3, *FACE)], counted=[3]), _seams(before=[(40, 0, *FACE)])], 0),
    # across two cuts: three segments, one face
    ([_seams(after=[(40, 3, *FACE)], counted=[3]),
      _seams(before=[(40, 0, *FACE)], after=[(80, 0, *OTHER)], counted=[0]),
      _seams(before=[(80, 5, *OTHER)], counted=[5])], 2),
    # a segment that tells two faces apart where its neighbour saw one: still two
    ([_seams(after=[(40, 3, *FACE), (44, 4, *FACE)], counted=[3, 4]),
      _seams(before=[(40, 0, *FACE), (44, 0, *FACE)], counted=[0])], 1),
    # one to one on a frame: the best overlap links, the other box of the same place does not
    ([_seams(after=[(40, 3, *FACE), (40, 4, *FACE_MOVED)], counted=[3, 4]),
      _seams(before=[(40, 0, *FACE)], counted=[0])], 1),
    ([{}, {}], 0),  # records without seams (nothing found)
])
def test_a_face_seen_on_both_sides_of_a_cut_is_one(records, twice):
    assert seam_duplicates(records) == twice


# ------------------------------------------------------------------------------ real media


def _reencode(src: Path, dst: Path) -> None:
    """The clip with a key frame every KEYINT frames (none at scene changes); audio copied."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs, a = inp.streams.video[0], inp.streams.audio[0]
        ov = out.add_stream("libx264", rate=vs.average_rate)
        ov.width, ov.height, ov.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        ov.options = {"crf": "12", "preset": "veryfast",
                      "x264-params": f"keyint={KEYINT}:min-keyint={KEYINT}:scenecut=0"}
        oa = out.add_stream_from_template(a)
        for packet in inp.demux(vs, a):
            if packet.stream is a:
                if packet.dts is not None and packet.size:
                    packet.stream = oa
                    out.mux(packet)
                continue
            for frame in packet.decode():
                out.mux(ov.encode(frame))
        out.mux(ov.encode(None))


@pytest.fixture(scope="module")
def pan(tmp_path_factory):
    """(clip, boxes): 150 frames of the shared pan clip over two crowded photos, with audio."""
    tool = DATA.parent / "tools" / "make_pan_clip.py"
    require_data("images", PHOTOS[0])
    if not tool.exists():
        pytest.skip(f"needs the shared measuring tools at {tool.parent}")
    root = tmp_path_factory.mktemp("pan")
    raw, boxes = root / "raw.mp4", root / "pan.json"
    subprocess.run([sys.executable, str(tool), str(raw), str(boxes), *PHOTOS], check=True,
                   capture_output=True)
    clip = root / "in" / "pan.mp4"
    clip.parent.mkdir()
    _reencode(raw, clip)
    return clip, boxes


@pytest.fixture(scope="module")
def one_worker(pan, tmp_path_factory):
    """The reference: the whole clip in one worker, one thread, as process_video does it."""
    from faceveil.pipeline import Pipeline
    from faceveil.pipeline.video import process_video

    out = tmp_path_factory.mktemp("one") / "pan.mp4"
    process_video(pan[0], out, Pipeline(CONFIG.replace(threads=1)), encode=LOSSLESS.encode)
    return out


def _streams(path: Path) -> tuple[list[int], list[float], list[bytes], list[np.ndarray]]:
    """(video packet dts, frame times in s, audio packet bytes, frames) of a file."""
    import av

    with av.open(str(path)) as c:
        dts = [p.dts for p in c.demux(c.streams.video[0]) if p.size]
    with av.open(str(path)) as c:
        audio = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
    with av.open(str(path)) as c:
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24"))
                  for f in c.decode(video=0)]
    return dts, [t for t, _ in frames], audio, [f for _, f in frames]


def _leaks(clip: Path, out: Path, boxes: Path) -> dict:
    tool = DATA.parent / "tools" / "video_leaks.py"
    done = subprocess.run([sys.executable, str(tool), str(clip), str(out), str(boxes)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def _check_joined(joined: Path, pan, one_worker: Path) -> None:
    dts, times, audio, frames = _streams(joined)
    _, ref_times, ref_audio, ref_frames = _streams(one_worker)
    assert len(frames) == len(ref_frames) == 150
    assert times == ref_times  # every timestamp kept
    assert all(b > a for a, b in itertools.pairwise(dts))
    assert audio == ref_audio and len(audio) > 100  # the source's audio, copied once, byte for byte
    for i, (a, b) in enumerate(zip(frames, ref_frames, strict=True)):
        differ = (np.abs(a.astype(np.int16) - b).max(axis=2) > 8).mean()
        # lossless both: a difference is a box placed differently (detection on 1 or 2 threads)
        assert differ < 0.005, f"frame {i}: {differ:.2%} of the pixels differ"
    mine, ref = _leaks(pan[0], joined, pan[1]), _leaks(pan[0], one_worker, pan[1])
    assert mine["face_frames"] == ref["face_frames"] > 1000
    assert set(mine["leaked_frames"]) <= set(ref["leaked_frames"]), (mine, ref)
    assert mine["leaks"] <= ref["leaks"]


def _split_and_join(src: Path, tmp_path: Path, min_frames: int) -> tuple[dict, list[dict]]:
    """(the file's joined record, its segments' records): the video split, every segment run
    in this process by a real worker, joined by the Splitter as a batch does."""
    from faceveil.batch.work import ItemWorker

    item = _item(tmp_path, src.name, input=str(src), source=str(src))
    splitter = Splitter(CONFIG, LOSSLESS, min_frames=min_frames)
    segments = splitter.split([item], workers=2)
    assert len(segments) >= 3 and all(isinstance(s, Segment) for s in segments)
    worker = ItemWorker(CONFIG.replace(threads=1), LOSSLESS)
    parts, joined = [], []
    for s in segments:
        parts.append(run_segment(worker, s))
        splitter.on_record(parts[-1], joined.append)
    assert len(joined) == 1 and joined[0]["status"] == "ok", joined
    assert Path(item.output).exists()
    return joined[0], parts


def _whole(src: Path) -> Counts:
    from faceveil.pipeline import Pipeline
    from faceveil.pipeline.video import process_video

    return process_video(src, None, Pipeline(CONFIG.replace(threads=1))).counts


@pytest.fixture(scope="module")
def walker(tmp_path_factory, astronaut):
    """A small clip of one real face walking across the frame for all its 120 frames (a key frame
    every 20): it crosses every cut."""
    import av
    import cv2

    src = tmp_path_factory.mktemp("walker") / "walker.mp4"
    face = cv2.resize(astronaut[:260, 120:380], (120, 120), interpolation=cv2.INTER_AREA)
    with av.open(str(src), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 320, 192, "yuv420p"
        vs.options = {"g": "20", "keyint_min": "20", "sc_threshold": "0", "preset": "ultrafast"}
        for k in range(120):
            img = np.full((192, 320, 3), 90, np.uint8)
            x = 10 + k * 3 // 2
            img[36:156, x:x + 120] = face
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, 25)
            c.mux(vs.encode(frame))
        c.mux(vs.encode(None))
    return src


def test_a_face_across_the_cuts_counts_once(walker, tmp_path):
    record, parts = _split_and_join(walker, tmp_path, min_frames=30)
    whole = _whole(walker)
    assert whole.faces == 1 and whole.face_frames == whole.frames == 120  # seen all along
    assert all(p["faces"] == 1 for p in parts)  # every segment sees it: summed, 3 or more
    assert Counts.from_dict(record) == whole  # joined: one face, every count as whole


@pytest.mark.parametrize("clip", [
    "pan",  # crowds panned across, cuts in the middle of pans
    pytest.param("hamilton_short_clip.mp4", marks=pytest.mark.slow),  # a real clip, scene cuts
])
def test_split_and_whole_count_the_same(clip, request, tmp_path):
    """Faces, face-frames, boxes and frames of a video split in segments are the whole run's.
    A segment's context starts on the whole run's full-scan grid and more than `max_gap` frames
    before its cut, so its tracker finds and follows a face crossing the cut as the whole run
    does, and the join tells such faces by their matching boxes. Equal here, not by proof: a
    segment knows nothing of the tracks before its context (their motion, their order when two
    match a box equally) and its first quick passes are sized for fewer known faces; what
    outlasts the context would show here as a difference."""
    src = request.getfixturevalue("pan")[0] if clip == "pan" else require_data("videos", clip)
    record, parts = _split_and_join(src, tmp_path, min_frames=SEGMENT)
    whole = _whole(src)
    assert whole.faces > 10 and whole.frames > 100
    assert sum(p["faces"] for p in parts) > whole.faces  # what summing the segments counted
    assert Counts.from_dict(record) == whole
    assert record["tracks"] == whole.faces  # no keep/hide: every track is a face hidden


@pytest.mark.slow
def test_a_long_video_over_two_workers_joins_without_a_seam(pan, one_worker, tmp_path):
    clip, _ = pan
    out = tmp_path / "out"
    records: list[dict] = []
    report = run_batch([clip.parent], out, CONFIG,
                       BatchOptions(workers=2, segment_frames=SEGMENT, item=LOSSLESS),
                       on_record=records.append)
    assert report.ok == 1 and report.videos == 1 and report.frames == 150 and report.workers == 2
    assert len(records) == 1  # one record for the file, not one per segment
    record = records[0]
    assert record["status"] == "ok" and record["segments"] >= 3 and record["frames"] == 150
    assert len(record["worker"].split(", ")) == 2  # both workers took segments
    assert [p.name for p in out.iterdir() if not p.name.startswith(".faceveil-manifest")] == \
        ["pan.mp4"]  # segments removed, nothing half-written left
    _check_joined(out / "pan.mp4", pan, one_worker)
    # the joined counts are the whole run's, in the record, the manifest and the run's report
    whole = _whole(clip)
    assert Counts.from_dict(record) == Counts.from_dict(read_manifest(report.manifest)[0]) == \
        report.counts == whole

    # --resume works at file level: the file is done, its input unchanged
    again = run_batch([clip.parent], out, CONFIG,
                      BatchOptions(workers=2, segment_frames=SEGMENT, item=LOSSLESS, resume=True))
    assert again.skipped == 1 and again.ok == 0
    assert len(read_manifest(report.manifest)) == 1


@pytest.mark.slow
def test_ray_engine_splits_and_joins_the_same(pan, one_worker, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray engine needs the cluster extra")
    pytest.importorskip("ray.data")
    clip, _ = pan
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        records: list[dict] = []
        report = run_batch([clip], tmp_path / "out", CONFIG,
                           BatchOptions(engine="ray", workers=2, segment_frames=SEGMENT,
                                        item=LOSSLESS), on_record=records.append)
    finally:
        ray.shutdown()
    assert report.ok == 1 and records[0]["segments"] >= 3 and records[0]["engine"] == "ray"
    _check_joined(tmp_path / "out" / "pan.mp4", pan, one_worker)
    assert Counts.from_dict(records[0]) == _whole(clip)  # the seams travelled in Ray rows


@pytest.mark.slow
def test_a_failed_segment_fails_the_file(pan, tmp_path):
    """A segment whose frames do not decode where the index says fails in its real worker; the
    file gets one failed record, no output, and its other segments are removed."""
    clip, _ = pan
    item = _item(tmp_path, "pan.mp4", input=str(clip), source=str(clip))
    stale = tmp_path / "out" / ".pan.mp4.0badcafe.segments"  # a killed run's
    stale.mkdir(parents=True)
    (stale / "0000.nut").write_bytes(b"old")
    splitter = Splitter(CONFIG, LOSSLESS, min_frames=SEGMENT)
    tasks = splitter.split([item], workers=2)
    assert not stale.exists()
    assert len(tasks) >= 3 and all(isinstance(t, Segment) for t in tasks)
    assert 40 in {t.first for t in tasks}  # a cut in the middle of a pan
    at = next(i for i, t in enumerate(tasks) if t.index == 1)
    bad = tasks[at]
    tasks[at] = Segment(**{**bad.__dict__, "first_pts": bad.first_pts + 1})
    folder = Path(tasks[0].part).parent
    records: list[dict] = []
    LocalEngine(CONFIG.replace(threads=1), LOSSLESS, workers=2).run(
        tasks, lambda r: splitter.on_record(r, records.append))
    assert len(records) == 1
    assert records[0]["status"] == "error" and f"segment 2 of {len(tasks)}" in records[0]["error"]
    assert "does not decode where its index says" in records[0]["error"]
    assert records[0]["sha256"]  # the input was hashed all the same
    assert list(Path(item.output).parent.iterdir()) == []  # no output, no segments
    assert not folder.exists()


def test_joining_is_atomic(pan, tmp_path):
    """A segment that is not a video: the join fails and leaves nothing under any name."""
    clip, _ = pan
    bad = tmp_path / "0000.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    out = tmp_path / "out" / "pan.mp4"
    out.parent.mkdir()
    with pytest.raises(Exception):  # noqa: B017 - FFmpeg's own error, whichever it is
        join_segments(clip, [clip, bad], out)
    assert list(out.parent.iterdir()) == []


def test_segments_with_other_encoder_headers_are_not_joined(pan, tmp_path):
    import av

    clip, _ = pan
    other = tmp_path / "other.mp4"
    with av.open(str(clip)) as inp, av.open(str(other), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        for i, frame in enumerate(inp.decode(video=0)):
            if i == 5:
                break
            small = frame.reformat(320, 180, format="yuv420p")
            small.pts, small.time_base = i, Fraction(1, 25)
            out.mux(s.encode(small))
        out.mux(s.encode(None))
    dst = tmp_path / "out" / "joined.mp4"
    with pytest.raises(FaceveilError, match="encoder headers differ"):
        join_segments(clip, [clip, other], dst)
    assert not dst.exists() and list(dst.parent.iterdir()) == []


def test_rotation_and_frame_times_survive_the_join(tmp_path):
    """A small synthetic phone video (rotation tag, 30000/1001 fps, audio): split in three and
    joined, it keeps its rotation, frame count, times and audio, as the whole run does."""
    import av

    from faceveil.pipeline import Pipeline
    from faceveil.pipeline.video import process_video

    src = tmp_path / "phone.mp4"
    rate = Fraction(30000, 1001)
    with av.open(str(src), "w") as c:
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        vs.options = {"g": "20", "preset": "ultrafast"}
        vs.set_display_rotation(90)
        a_s = c.add_stream("aac", rate=8000)
        a_s.layout = "mono"
        for k in range(120):
            img = np.full((64, 96, 3), (k * 2) % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = k, 1 / rate
            c.mux(vs.encode(frame))
        c.mux(vs.encode(None))
        tone = (0.1 * np.sin(np.arange(8000 * 4) / 3)).astype(np.float32)
        for i in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 8000, i, Fraction(1, 8000)
            c.mux(a_s.encode(af))
        c.mux(a_s.encode(None))
    item = _item(tmp_path, "phone.mp4", input=str(src), source=str(src))
    splitter = Splitter(CONFIG, LOSSLESS, min_frames=30)
    segments = sorted(splitter.split([item], workers=2), key=lambda s: s.index)
    assert len(segments) >= 3
    pipeline = Pipeline(CONFIG.replace(threads=1))
    for s in segments:
        process_video(src, s.part, pipeline, encode=LOSSLESS.encode, span=s.span)
    joined = tmp_path / "joined.mp4"
    join_segments(src, [Path(s.part) for s in segments], joined,
                  starts=[s.first_pts for s in segments])
    whole = tmp_path / "whole.mp4"
    process_video(src, whole, pipeline, encode=LOSSLESS.encode)
    got, want = _streams(joined), _streams(whole)
    assert got[1] == want[1] and len(got[1]) == 120
    assert got[2] == want[2]
    with av.open(str(joined)) as a, av.open(str(whole)) as b:
        fa, fb = next(a.decode(video=0)), next(b.decode(video=0))
        assert fa.rotation == fb.rotation != 0
        assert a.streams.video[0].average_rate == b.streams.video[0].average_rate
