"""Batch runs: planning, zip safety, the manifest, the local engine, resuming, and Ray.

Real parts throughout: WIDER FACE photos and a cut of a real clip from ../shared/data, the real
CenterFace detector in real worker processes, real PyAV, a real local Ray. Outputs are checked
with the coverage metric (a face is hidden when 80% of its central 60% x 60% changed) on PNG
pictures, so the changed pixels are exactly what faceveil changed.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import require_data
from faceveil.batch import BatchOptions, ZipLimits, plan_batch, read_manifest, run_batch
from faceveil.batch.manifest import ManifestBusyError, ManifestWriter
from faceveil.batch.zips import UnsafeArchiveError, safe_name
from faceveil.cli import ExitCode, main
from faceveil.config import PipelineConfig
from faceveil.evaluation import changed_pixels, face_covered
from faceveil.media.images import read_image
from faceveil.types import Counts

MAGENTA = (255, 0, 255)
CONFIG = PipelineConfig.from_options(method="solid", color=MAGENTA)  # hidden faces are easy to find in video
# Real photos (WIDER FACE validation) whose counted faces are all 60 px or taller.
PICKS = {
    "archive/handshake.png": "1_Handshaking_Handshaking_1_453.jpg",
    "archive/sub/meeting.png": "11_Meeting_Meeting_11_Meeting_Meeting_11_102.jpg",
    "zip:family/couple.png": "19_Couple_Couple_19_881.jpg",
    "zip:family/deeper/group.png": "20_Family_Group_Family_Group_20_387.jpg",
}
CLIP_FRAMES = 45


# ------------------------------------------------------------------------------------ helpers


@dataclass
class Corpus:
    root: Path
    archive: Path  # a folder: pictures (nested), a video, a corrupt file, a text file
    zip: Path  # photos.zip with nested pictures
    truth: dict[str, list] = field(default_factory=dict)  # rel path of the output -> face boxes
    originals: dict[str, Path] = field(default_factory=dict)  # rel path -> a copy of the input


def _png_of(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).convert("RGB").save(dst)


def cut_clip(src: Path, dst: Path, frames: int) -> Path:
    """The first `frames` frames of a real clip, re-encoded (video only) with PyAV."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.codec_context.options = {"preset": "ultrafast", "crf": "18"}
        for i, frame in enumerate(inp.decode(video=0)):
            if i == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, 1 / Fraction(vin.average_rate)
            out.mux(vout.encode(frame))
        out.mux(vout.encode(None))
    return dst


def decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer could leave: atomic_path's .NAME.xxxxxxxx.partEXT names."""
    return [str(p) for p in folder.rglob("*") if ".part" in p.name]


def by_input(records: list[dict]) -> dict[str, dict]:
    return {r["input"]: r for r in records}


def covered(before: np.ndarray, after_path: Path, boxes) -> list[bool]:
    changed = changed_pixels(before, read_image(after_path).rgb)
    return [face_covered(changed, box) for box in boxes]


def magenta_share(img: np.ndarray, box, centre: float = 0.6) -> float:
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * (1 - centre) / 2, (y2 - y1) * (1 - centre) / 2
    region = img[int(y1 + my):int(y2 - my), int(x1 + mx):int(x2 - mx)].astype(int)
    return float((np.abs(region - MAGENTA).sum(axis=2) < 60).mean()) if region.size else 0.0


def make_zip(path: Path, members: dict[str, bytes], *, links: tuple[str, ...] = (),
             compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if name in links:
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return path


def png_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    rgb = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    images = require_data("images")
    clip = require_data("videos", "hamilton_short_clip.mp4")
    meta = {Path(e["file"]).name: e for e in
            json.loads((images / "wider_face_val_subset.json").read_text())["images"]}
    root = tmp_path_factory.mktemp("corpus")
    c = Corpus(root, root / "archive", root / "photos.zip")
    zip_members = {}
    for key, name in PICKS.items():
        entry = meta[name]
        boxes = [b for b, ign in zip(entry["boxes"], entry.get("ignore") or [False] * len(entry["boxes"]),
                                     strict=True) if not ign]
        if key.startswith("zip:"):
            rel = key[4:]
            dst = root / "zipped" / rel
            _png_of(images / entry["file"], dst)
            zip_members[rel] = dst
        else:
            rel = key[len("archive/"):]
            dst = c.archive / rel
            _png_of(images / entry["file"], dst)
        c.truth[rel], c.originals[rel] = boxes, dst
    cut_clip(clip, c.archive / "sub" / "clip.mp4", CLIP_FRAMES)
    c.originals["sub/clip.mp4"] = c.archive / "sub" / "clip.mp4"
    (c.archive / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a picture")
    (c.archive / "notes.txt").write_text("not media: left out")
    (c.archive / ".hidden.png").write_bytes(png_bytes())  # hidden files are left out
    with zipfile.ZipFile(c.zip, "w") as zf:
        for rel, path in zip_members.items():
            zf.write(path, rel)
        zf.writestr("family/readme.txt", "left out")
        zf.writestr("__MACOSX/family/._couple.png", b"resource fork, left out")
    return c


@pytest.fixture(scope="module")
def local_run(corpus, tmp_path_factory):
    """The folder and the zip through the local engine with 2 workers, once per module."""
    out = tmp_path_factory.mktemp("local") / "out"
    records: list[dict] = []
    report = run_batch([corpus.archive, corpus.zip], out, CONFIG, BatchOptions(workers=2),
                       on_record=records.append)
    return out, report, records


# ------------------------------------------------------------------------- planning (fast)


def test_plan_mirrors_folders_zips_and_files(tmp_path):
    (tmp_path / "in" / "a" / "b").mkdir(parents=True)
    for rel in ("x.jpg", "a/y.png", "a/b/z.mp4", "a/notes.txt", ".secret.jpg"):
        (tmp_path / "in" / rel).write_bytes(b"x")
    make_zip(tmp_path / "more.zip", {"p/q.jpg": b"x", "p/r.txt": b"x", "p/": b""})
    (tmp_path / "single.webp").write_bytes(b"x")
    plan = plan_batch([str(tmp_path / "in"), str(tmp_path / "more.zip"), str(tmp_path / "single.webp")],
                      str(tmp_path / "out"))
    assert not plan.errors
    rels = {i.rel: i for i in plan.items}
    assert set(rels) == {"x.jpg", "a/y.png", "a/b/z.mp4", "p/q.jpg", "single.webp"}
    assert rels["a/b/z.mp4"].video and not rels["x.jpg"].video
    assert rels["p/q.jpg"].member == "p/q.jpg" and rels["p/q.jpg"].input.endswith("more.zip!/p/q.jpg")
    assert rels["a/y.png"].output == str(tmp_path / "out" / "a" / "y.png")
    assert plan.manifest == str(tmp_path / "out" / ".faceveil-manifest.jsonl")


def test_two_zips_with_the_same_inner_paths_go_under_their_own_names(tmp_path):
    inner = {"DCIM/001.jpg": b"x", "DCIM/002.jpg": b"x"}
    for name in ("monday.zip", "tuesday.zip"):
        make_zip(tmp_path / name, inner)
    (tmp_path / "other").mkdir()
    make_zip(tmp_path / "other" / "monday.zip", inner)  # a third zip with the same file name
    plan = plan_batch([str(tmp_path / "monday.zip"), str(tmp_path / "tuesday.zip"),
                       str(tmp_path / "other" / "monday.zip")], str(tmp_path / "out"))
    assert not plan.errors
    assert sorted(i.rel for i in plan.items) == [
        "monday-2/DCIM/001.jpg", "monday-2/DCIM/002.jpg", "monday/DCIM/001.jpg",
        "monday/DCIM/002.jpg", "tuesday/DCIM/001.jpg", "tuesday/DCIM/002.jpg"]
    # one zip alone keeps its inner paths as they are
    alone = plan_batch([str(tmp_path / "monday.zip")], str(tmp_path / "out"))
    assert sorted(i.rel for i in alone.items) == ["DCIM/001.jpg", "DCIM/002.jpg"]


def test_plan_zip_output_stages_beside_it(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jpg").write_bytes(b"x")
    plan = plan_batch([str(tmp_path / "in")], str(tmp_path / "clean.zip"))
    (item,) = plan.items
    assert plan.zip_out == tmp_path / "clean.zip"
    assert Path(item.output).parent == tmp_path / ".clean.zip.parts"
    assert item.output_name == f"{tmp_path / 'clean.zip'}!/x.jpg"
    assert plan.manifest == str(tmp_path / "clean.zip.faceveil-manifest.jsonl")


@pytest.mark.parametrize(("output", "message"), [
    ("clean.jpg", "not into"),
    ("s3://bucket/clean.zip", "zip outputs are written to a local path"),
    ("", "say where"),
])
def test_plan_refuses_bad_outputs(tmp_path, output, message):
    from faceveil.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        plan_batch([str(tmp_path)], output)


def test_plan_refuses_to_overwrite_inputs_and_reports_missing(tmp_path):
    make_zip(tmp_path / "a.zip", {"x.jpg": b"x"})
    plan = plan_batch([str(tmp_path / "a.zip"), str(tmp_path / "nope")], str(tmp_path / "a.zip"))
    assert not plan.items
    assert [why for _, why in plan.errors] == ["is the output; refusing to overwrite it", "no such file"]
    (tmp_path / "d" / "s").mkdir(parents=True)
    (tmp_path / "d" / "x.jpg").write_bytes(b"x")
    (tmp_path / "d" / "s" / "x.jpg").write_bytes(b"x")
    plan = plan_batch([str(tmp_path / "d"), str(tmp_path / "d" / "s")], str(tmp_path / "o"))
    assert len(plan.items) == 2  # d/x.jpg, d/s/x.jpg; then s/x.jpg -> x.jpg collides
    assert "would also be written" in plan.errors[0][1]


@pytest.mark.parametrize(("name", "why"), [
    ("../evil.jpg", "zip-slip"),
    ("a/../../evil.jpg", "zip-slip"),
    ("..\\evil.jpg", "zip-slip"),
    ("/etc/evil.jpg", "absolute path"),
    ("\\evil.jpg", "absolute path"),
    ("C:/evil.jpg", "absolute path"),
    ("bad\x00.jpg", "NUL"),
])
def test_zip_slip_names_refused(name, why):
    with pytest.raises(UnsafeArchiveError, match=why):
        safe_name(name)


@pytest.mark.parametrize(("name", "clean"), [("a/b.jpg", "a/b.jpg"), ("./a//b.jpg", "a/b.jpg"),
                                             ("a\\b.jpg", "a/b.jpg")])
def test_zip_safe_names_kept(name, clean):
    assert safe_name(name) == clean


@pytest.mark.parametrize("case", ["slip", "absolute", "link", "entries", "total", "ratio"])
def test_unsafe_zip_refused_as_a_whole(tmp_path, case):
    limits = ZipLimits()
    members = {"ok.png": png_bytes()}
    links: tuple[str, ...] = ()
    compression = zipfile.ZIP_STORED
    if case == "slip":
        members["../../escaped.png"] = png_bytes(1)
    elif case == "absolute":
        members["/tmp/escaped.png"] = png_bytes(1)
    elif case == "link":
        members["link.png"] = b"/etc/passwd"
        links = ("link.png",)
    elif case == "entries":
        members.update({f"m{i}.png": b"x" for i in range(10)})
        limits = ZipLimits(max_entries=5)
    elif case == "total":
        members["big.png"] = b"\x00" * 5000
        limits = ZipLimits(max_total=4000)
    else:  # 20 MiB of zeros deflate to about 20 KiB: a zip bomb's shape
        members["bomb.png"] = b"\x00" * (20 << 20)
        compression = zipfile.ZIP_DEFLATED
    bad = make_zip(tmp_path / "bad.zip", members, links=links, compression=compression)
    plan = plan_batch([str(bad)], str(tmp_path / "out"), limits=limits)
    assert not plan.items
    ((what, why),) = plan.errors
    assert what == str(bad) and why.startswith("refused: ")
    expected = {"slip": "zip-slip", "absolute": "absolute path", "link": "symbolic link",
                "entries": "over the limit of 5", "total": "possible zip bomb",
                "ratio": "possible zip bomb"}[case]
    assert expected in why
    assert not (tmp_path / "escaped.png").exists() and not Path("/tmp/escaped.png").exists()


def test_unsafe_zip_through_the_cli_is_one_clear_line(tmp_path, capsys):
    bad = make_zip(tmp_path / "bad.zip", {"../evil.png": png_bytes()})
    assert main(["batch", str(bad), "-o", str(tmp_path / "out")]) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert f"faceveil: error: {bad}: refused: member '../evil.png' climbs out with '..' (zip-slip)" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--engine", "local", "--address", "auto"], ExitCode.USAGE, "address is for the ray engine"),
    (["--workers", "0"], ExitCode.USAGE, "argument --workers: must be between 1 and 4096, got 0"),
    (["-o", "x.png"], ExitCode.USAGE, "not into 'x.png'"),
])
def test_cli_usage_errors(tmp_path, capsys, argv, code, message):
    (tmp_path / "in").mkdir()
    args = ["batch", str(tmp_path / "in"), *(["-o", str(tmp_path / "out")] if "-o" not in argv else []),
            *argv]
    assert main(args) == code
    assert message in capsys.readouterr().err


def test_cli_nothing_to_do(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("x")
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == ExitCode.NO_INPUT
    assert "no pictures or videos found in this folder" in capsys.readouterr().err
    # a pattern that matches nothing is "nothing to process" too; a missing file is a failure
    assert main(["batch", str(tmp_path / "in" / "*.jpg"), "-o", str(tmp_path / "out")]) == ExitCode.NO_INPUT
    assert main(["batch", str(tmp_path / "gone.jpg"), "-o", str(tmp_path / "out")]) == ExitCode.FAILED


def test_help_lists_batch(capsys):
    assert main(["batch", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--workers", "--resume", "--manifest", "--engine", "--address", "--method",
                 "--quality", "--threads", "--detect-every", "--crf"):
        assert flag in out
    assert "--suffix" not in out  # outputs are mirrored, not renamed


# --------------------------------------------------------------------------- manifest (fast)


def test_manifest_survives_a_line_cut_short(tmp_path, caplog):
    path = tmp_path / "m.jsonl"
    path.write_text('{"input": "a", "status": "ok"}\n{"input": "b", "sta')  # killed mid-line
    assert [r["input"] for r in read_manifest(path)] == ["a"]
    with ManifestWriter(path) as m:
        m.append({"input": "c", "status": "ok"})
    assert [r["input"] for r in read_manifest(path)] == ["a", "c"]
    assert "damaged line" in caplog.text


def test_manifest_is_locked_while_a_run_writes(tmp_path):
    path = tmp_path / "m.jsonl"
    with ManifestWriter(path), pytest.raises(ManifestBusyError, match="in use by another"), \
            ManifestWriter(path):
        pass


@pytest.mark.cluster
def test_remote_paths_through_fsspec(tmp_path):
    """The per-item function on a filesystem only fsspec knows (memory://), in this process:
    listing, download with hashing, upload."""
    pytest.importorskip("pyarrow")
    fsspec = pytest.importorskip("fsspec")
    from faceveil.batch.work import ItemWorker

    fs = fsspec.filesystem("memory")
    data = (require_data("images") / "wider_face_val_subset" / "1--Handshaking"
            / "1_Handshaking_Handshaking_1_453.jpg").read_bytes()
    fs.pipe("/faceveil-test/raw/a/photo.jpg", data)
    fs.pipe("/faceveil-test/raw/notes.txt", b"x")
    plan = plan_batch(["memory://faceveil-test/raw"], "memory://faceveil-test/clean")
    assert not plan.errors and [i.rel for i in plan.items] == ["a/photo.jpg"]
    (item,) = plan.items
    assert item.output == "memory://faceveil-test/clean/a/photo.jpg"
    worker = ItemWorker(CONFIG.replace(threads=1), engine="test")
    try:
        record = worker.process(item)
    finally:
        worker.close()
    assert record["status"] == "ok", record
    import hashlib

    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["size"] == len(data)
    assert record["faces"] >= 2
    out = fs.cat("/faceveil-test/clean/a/photo.jpg")
    assert read_image(out).rgb.shape == read_image(data).rgb.shape


# ------------------------------------------------------------------ the local engine (slow)


@pytest.mark.slow
def test_folder_video_corrupt_file_and_zip(corpus, local_run):
    out, report, records = local_run
    assert report.planned == 6 and report.ok == 5 and report.failed == 1
    assert report.pictures == 4 and report.videos == 1 and report.frames == CLIP_FRAMES
    # one record per item, in the manifest as well as through the callback
    manifest = read_manifest(out / ".faceveil-manifest.jsonl")
    assert sorted(map(json.dumps, manifest)) == sorted(map(json.dumps, records))
    recs = by_input(records)
    assert len(recs) == len(records) == 6
    broken = recs[str(corpus.archive / "broken.jpg")]
    assert broken["status"] == "error" and "truncated or damaged picture" in broken["error"]
    assert not (out / "broken.jpg").exists()
    for r in records:
        assert r["engine"] == "local" and r["worker"].startswith("local-")
        assert r["seconds"] >= 0 and r["peak_rss_mb"] > 0 and r["settings"]
    assert {r["worker"].split()[0] for r in records} == {"local-0", "local-1"}
    # mirrored tree: folder below OUT, zip members by their path in the archive
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [".faceveil-manifest.jsonl", "family/couple.png", "family/deeper/group.png",
                     "handshake.png", "sub/clip.mp4", "sub/meeting.png"]
    assert not leftovers(out)
    # every counted face hidden, measured on the pixels
    for rel, boxes in corpus.truth.items():
        rec = next(r for r in records if r["output"] == str(out / rel))
        assert rec["status"] == "ok" and rec["kind"] == "picture"
        assert rec["sha256"] and rec["size"] == corpus.originals[rel].stat().st_size
        assert all(covered(read_image(corpus.originals[rel]).rgb, out / rel, boxes)), rel
        assert rec["faces"] >= len(boxes)
    zipped = next(r for r in records if r["output"] == str(out / "family/couple.png"))
    assert zipped["input"] == f"{corpus.zip}!/family/couple.png"


@pytest.mark.slow
def test_video_faces_hidden(corpus, local_run, centerface):
    from faceveil.types import Frame

    out, _, records = local_run
    rec = next(r for r in records if r["output"] == str(out / "sub/clip.mp4"))
    assert rec["status"] == "ok" and rec["kind"] == "video" and rec["frames"] == CLIP_FRAMES
    assert rec["face_frames"] >= CLIP_FRAMES  # the singer is in every frame
    assert 1 <= rec["faces"] <= CLIP_FRAMES // 4  # a tracked face is counted once
    before, after = decode(corpus.originals["sub/clip.mp4"]), decode(out / "sub/clip.mp4")
    assert len(after) == len(before) == CLIP_FRAMES
    checked = 0
    for k in (0, 20, 40):
        dets = centerface.detect(Frame(before[k]))
        for box, score in zip(dets.xyxy, dets.scores, strict=True):
            if score > 0.6 and box[3] - box[1] >= 40:
                assert magenta_share(after[k], box) > 0.8, (k, box)
                checked += 1
    assert checked >= 3


@pytest.mark.slow
def test_zip_in_zip_out(corpus, tmp_path, capsys):
    out = tmp_path / "photos.anonymized.zip"
    assert main(["batch", str(corpus.zip), "-o", str(out), "--workers", "2", "--method", "solid",
                 "--color", "#ff00ff", "--json"]) == ExitCode.OK
    captured = capsys.readouterr()
    assert "2 picture(s) anonymized" in captured.err and str(out) in captured.err
    summary = json.loads(captured.out)
    assert (summary["ok"], summary["failed"], summary["zip_members"]) == (2, 0, 2)
    assert (summary["workers"], summary["threads"]) == (2, 1)
    # the counts once (types.Counts), the sum of the manifest's records; no second copy of them
    assert "faces" not in summary and "kept" not in summary
    records = read_manifest(tmp_path / "photos.anonymized.zip.faceveil-manifest.jsonl")
    assert summary["counts"] == sum((Counts.from_dict(r) for r in records), Counts()).to_dict()
    assert summary["counts"]["faces"] >= 2
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["family/couple.png", "family/deeper/group.png"]
        for rel in zf.namelist():
            boxes = corpus.truth[rel]
            after = read_image(zf.read(rel)).rgb
            changed = changed_pixels(read_image(corpus.originals[rel]).rgb, after)
            assert all(face_covered(changed, b) for b in boxes), rel
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "photos.anonymized.zip", "photos.anonymized.zip.faceveil-manifest.jsonl"]  # staging gone
    records = read_manifest(tmp_path / "photos.anonymized.zip.faceveil-manifest.jsonl")
    assert {r["output"] for r in records} == {f"{out}!/family/couple.png",
                                              f"{out}!/family/deeper/group.png"}
    # resumed: nothing to do, the zip is left as it is
    mtime = out.stat().st_mtime_ns
    assert main(["batch", str(corpus.zip), "-o", str(out), "--resume", "--method", "solid",
                 "--color", "#ff00ff"]) == ExitCode.OK
    assert "2 skipped" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == mtime
    assert len(read_manifest(tmp_path / "photos.anonymized.zip.faceveil-manifest.jsonl")) == 2


def wider_inputs(tmp_path: Path, n: int) -> Path:
    """tmp_path/in holding copies of the first `n` WIDER FACE photos, under their own names."""
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted((require_data("images") / "wider_face_val_subset").glob("*/*.jpg"))[:n]:
        (src / p.name).write_bytes(p.read_bytes())
    return src


@pytest.mark.slow
def test_stopped_run_resumes_without_redoing_or_losing_items(tmp_path):
    """A deterministic stop: the progress callback raises KeyboardInterrupt (what Ctrl-C does)
    after the second record; the rerun with resume skips exactly what was done."""
    src = wider_inputs(tmp_path, 10)
    out = tmp_path / "out"
    seen: list[dict] = []

    def stop_after_two(record: dict) -> None:
        seen.append(record)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch([src], out, options=BatchOptions(workers=2), on_record=stop_after_two)
    first = read_manifest(out / ".faceveil-manifest.jsonl")
    assert len(first) >= 2 and all(r["status"] == "ok" for r in first)
    assert not leftovers(out)
    done_first = {r["input"] for r in first}
    report = run_batch([src], out, options=BatchOptions(workers=2, resume=True))
    assert report.failed == 0 and report.skipped == len(done_first)
    assert report.ok == 10 - len(done_first)
    records = read_manifest(out / ".faceveil-manifest.jsonl")
    counts = Counter(r["input"] for r in records if r["status"] == "ok")
    assert set(counts) == {str(p) for p in src.iterdir()} and max(counts.values()) == 1
    assert all(read_image(out / p.name).rgb.shape == read_image(p).rgb.shape for p in src.iterdir())


@pytest.mark.slow
def test_ctrl_c_on_the_real_command_then_resume(tmp_path):
    """The CLI as a subprocess, interrupted with SIGINT once the manifest has entries."""
    src = wider_inputs(tmp_path, 24)
    out = tmp_path / "out"
    manifest = out / ".faceveil-manifest.jsonl"
    cmd = [sys.executable, "-m", "faceveil", "batch", str(src), "-o", str(out), "--workers", "2"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # SIG_DFL: a shell without job control starts background commands with SIGINT ignored, and
    # a Python started so never raises KeyboardInterrupt; a terminal's Ctrl-C is what we test.
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.is_file() and manifest.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "run the same command with --resume" in err and "Traceback" not in err
    first = read_manifest(manifest)
    assert manifest.read_text().endswith("\n")  # whole lines only
    assert 2 <= len(first) < 24 and all(r["status"] == "ok" for r in first)
    assert not leftovers(out)
    for r in first:  # what the manifest says is done is there, whole
        assert read_image(r["output"]).rgb.shape == read_image(r["input"]).rgb.shape
    proc = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(first)} skipped (done before)" in proc.stderr
    records = read_manifest(manifest)
    counts = Counter(r["input"] for r in records if r["status"] == "ok")
    assert len(counts) == 24 and max(counts.values()) == 1  # nothing lost, nothing done twice
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".jpg") == sorted(
        p.name for p in src.iterdir())


@pytest.mark.slow
def test_changed_input_or_settings_are_done_again(tmp_path):
    src = wider_inputs(tmp_path, 2)
    a, b = sorted(src.iterdir())
    out = tmp_path / "out"
    run_batch([src], out, options=BatchOptions(workers=1))
    b.write_bytes(a.read_bytes())  # new bytes under the same name
    report = run_batch([src], out, options=BatchOptions(workers=1, resume=True))
    assert (report.skipped, report.ok) == (1, 1)
    (out / a.name).unlink()  # an output that went missing is made again
    report = run_batch([src], out, options=BatchOptions(workers=1, resume=True))
    assert (report.skipped, report.ok) == (1, 1)
    report = run_batch([src], out, PipelineConfig.from_options(method="pixelate"),
                       BatchOptions(workers=1, resume=True))
    assert (report.skipped, report.ok, report.redone) == (0, 2, 2)


@pytest.mark.slow
def test_a_worker_that_dies_costs_at_most_its_item(tmp_path):
    """A worker killed outright (as by a crash or the OOM killer) is replaced; the run finishes."""
    src = wider_inputs(tmp_path, 8)
    seen: set[str] = set()
    killed: list[int] = []

    def kill_the_other(record: dict) -> None:
        seen.add(record["worker"])
        if not killed and len(seen) == 2:  # both workers are up; the other one is at work
            other = next(w for w in seen if w != record["worker"])
            killed.append(int(other.rsplit(" ", 1)[1]))
            os.kill(killed[0], signal.SIGKILL)

    report = run_batch([src], tmp_path / "out", options=BatchOptions(workers=2),
                       on_record=kill_the_other)
    assert killed
    records = read_manifest(tmp_path / "out" / ".faceveil-manifest.jsonl")
    assert Counter(r["input"] for r in records) == Counter(str(p) for p in src.iterdir())
    errors = [r for r in records if r["status"] != "ok"]
    assert len(errors) <= 1 and report.ok >= 7
    for r in errors:
        assert "worker process died" in r["error"] and "SIGKILL" in r["error"]
    assert not leftovers(tmp_path / "out")


# ----------------------------------------------------------------------------- Ray (slow)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the Ray engine needs the cluster extra")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.cluster
def test_ray_engine_gives_the_same_outputs(corpus, local_run, local_ray, tmp_path):
    local_out, local_report, local_records = local_run
    out = tmp_path / "out"
    report = run_batch([corpus.archive, corpus.zip], out, CONFIG,
                       BatchOptions(engine="ray", workers=2))
    assert (report.ok, report.failed, report.planned) == (local_report.ok, local_report.failed, 6)
    records = read_manifest(out / ".faceveil-manifest.jsonl")
    assert all(r["engine"] == "ray" and r["worker"].startswith("ray ") for r in records)
    ray_by, local_by = by_input(records), by_input(local_records)
    assert set(ray_by) == set(local_by)
    for name, mine in ray_by.items():
        theirs = local_by[name]
        for key in ("status", "error", "sha256", "size", "faces", "kept", "kind", "frames"):
            assert mine.get(key) == theirs.get(key), (name, key)
    for rel in corpus.truth:  # pictures: pixel for pixel
        assert np.array_equal(read_image(out / rel).rgb, read_image(local_out / rel).rgb), rel
    ray_frames, local_frames = decode(out / "sub/clip.mp4"), decode(local_out / "sub/clip.mp4")
    assert len(ray_frames) == len(local_frames) == CLIP_FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(ray_frames, local_frames, strict=True))
    assert not leftovers(out)


@pytest.mark.slow
@pytest.mark.cluster
def test_ray_engine_resumes_a_local_run(corpus, local_ray, tmp_path):
    """One manifest, two engines: what the local engine did, the Ray engine skips."""
    out = tmp_path / "out.zip"
    first = run_batch([corpus.zip], out, CONFIG, BatchOptions(workers=1))
    assert first.ok == 2
    again = run_batch([corpus.zip], out, CONFIG, BatchOptions(engine="ray", workers=2, resume=True))
    assert (again.skipped, again.ok, again.failed) == (2, 0, 0)
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["family/couple.png", "family/deeper/group.png"]


@pytest.mark.parametrize(("archives", "folders"), [
    (["a/monday.zip", "b/tuesday.zip"], ["monday", "tuesday"]),
    (["a/day.zip", "b/day.zip", "c/DAY.ZIP"], ["day", "day-2", "DAY-3"]),
    (["...zip", ".zip", "x/..zip"], ["archive", "archive-2", "archive-3"]),  # never "..": outside -o
])
def test_archive_folders_stay_inside_the_output(archives, folders):
    from faceveil.batch.zips import archive_folders

    assert list(archive_folders(archives).values()) == folders


def _peak_in_child(queue) -> None:
    from faceveil.batch.work import peak_rss_mb

    queue.put(peak_rss_mb())


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is read from Linux's /proc")
def test_a_workers_peak_memory_is_its_own_not_its_parents():
    """A spawned worker's ru_maxrss starts at its parent's peak (it is forked, then exec'd): the
    manifest's peak_rss_mb must say what the worker itself held."""
    import multiprocessing as mp

    held = np.ones(400 << 20, np.uint8)  # the parent holds 400 MiB
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_peak_in_child, args=(queue,))
    child.start()
    peak = queue.get(timeout=120)
    child.join(30)
    assert held.sum() == 400 << 20
    assert 1 < peak < 300, peak
