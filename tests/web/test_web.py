"""The web app's API through the real app (FastAPI's TestClient runs it in-process, lifespan,
worker threads and real detectors included); pictures and clips from ../shared/data."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="needs the web extra: pip install 'faceveil[web]'")
pytest.importorskip("python_multipart", reason="needs the web extra: pip install 'faceveil[web]'")
from fastapi.testclient import TestClient

from conftest import require_data
from faceveil.cli import ExitCode, main
from faceveil.evaluation import changed_pixels, collateral, face_covered
from faceveil.media.images import read_image
from faceveil.web import WebConfig, create_app

BASE = "http://127.0.0.1:8000"
TOKEN = "s3cret-token-for-tests-0123456789"
# WIDER FACE pictures whose counted faces of 32 px and more the balanced preset all covers
# (checked with the library itself); a mix of one, a few and many faces.
WIDER = (
    "wider_face_val_subset/12--Group/12_Group_Group_12_Group_Group_12_80.jpg",  # 21 faces >= 32 px
    "wider_face_val_subset/10--People_Marching/10_People_Marching_People_Marching_2_395.jpg",
    "wider_face_val_subset/13--Interview/13_Interview_Interview_On_Location_13_736.jpg",
)
CLIP = "sadtalker_WDA_KatieHill_000.mp4"  # one large frontal face, 512x512, 8 s


# ------------------------------------------------------------------------------------ helpers


@contextlib.contextmanager
def serve(tmp_path: Path, **options):
    options.setdefault("workers", 1)
    options.setdefault("data_dir", tmp_path / "data")
    app = create_app(WebConfig(**options))
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        client.runtime = app.state.runtime
        yield client


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One app with a loaded detector for the tests that process media."""
    with serve(tmp_path_factory.mktemp("web"), queue_size=4) as client:
        yield client


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """An app whose workers load no model: for requests refused before any processing."""
    with serve(tmp_path_factory.mktemp("bare"), warm=False, max_upload_bytes=2 << 20,
               max_pixels=20_000_000, zip_max_entries=20, zip_max_total=8 << 20) as client:
        yield client


def encode(rgb: np.ndarray, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **params)
    return buf.getvalue()


def make_zip(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that claims width x height gray pixels (its data is cut short)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def error_of(response, status: int) -> str:
    """The JSON error message of a refused request (and that it has no traceback)."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error", "message"} and body["message"], body
    assert "Traceback" not in response.text and "File \"" not in response.text
    return body["message"]


def wait(client, job_id: str, timeout: float = 120.0, seen: list | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/jobs/{job_id}").json()
        if seen is not None:
            seen.append(status)
        if status["state"] not in ("queued", "running"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def counted_boxes(entry: dict, min_height: int = 32) -> list:
    ignore = entry.get("ignore") or [False] * len(entry["boxes"])
    return [b for b, ig in zip(entry["boxes"], ignore, strict=True) if not ig and b[3] - b[1] >= min_height]


def check_hidden(before: np.ndarray, after: np.ndarray, entry: dict) -> None:
    """The shared data's metric: every counted face's central 60% x 60% at least 80% changed;
    and little changed away from every face (of any size: hiding a small face is not
    collateral), so it is not the whole picture that changed."""
    assert after.shape == before.shape
    changed = changed_pixels(before, after)
    boxes = counted_boxes(entry)
    missed = [b for b in boxes if not face_covered(changed, b)]
    assert not missed, f"{len(missed)} of {len(boxes)} faces not hidden: {missed}"
    assert collateral(changed, entry["boxes"]) < 0.05


@pytest.fixture(scope="module")
def wider_entries():
    root = require_data("images")
    meta = json.loads((root / "wider_face_val_subset.json").read_text())["images"]
    by_file = {e["file"]: e for e in meta}
    return root, [by_file[f] for f in WIDER]


def short_clip(path: Path, frames: int = 40) -> Path:
    """The first frames of a real clip, re-encoded (video only)."""
    import av

    src = require_data("videos", CLIP)
    with av.open(str(src)) as inp, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        vin = inp.streams.video[0]
        stream.width, stream.height, stream.pix_fmt = vin.width, vin.height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for i, frame in enumerate(inp.decode(vin)):
            if i == frames:
                break
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def video_frames(data: bytes) -> list[np.ndarray]:
    import av

    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# --------------------------------------------------------------------------- one picture in


@pytest.mark.parametrize("index", range(len(WIDER)))
def test_anonymize_hides_every_face_on_real_photos(web, wider_entries, index):
    root, entries = wider_entries
    entry = entries[index]
    data = (root / entry["file"]).read_bytes()
    r = web.post("/api/anonymize", files={"file": (Path(entry["file"]).name, data, "image/jpeg")},
                 data={"format": "png"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert int(r.headers["x-faceveil-faces"]) >= len(counted_boxes(entry))
    assert "anonymized.png" in r.headers["content-disposition"]
    check_hidden(read_image(data).rgb, read_image(r.content).rgb, entry)


def test_anonymize_keeps_the_format_and_applies_options(web):
    photo = require_data("identities", "obama", "obama.jpg").read_bytes()
    before = read_image(photo).rgb
    r = web.post("/api/anonymize", files={"file": ("obama.jpg", photo, "image/jpeg")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    face = _one_face(web, photo)
    assert face_covered(changed_pixels(before, read_image(r.content).rgb), face)
    r = web.post("/api/anonymize", files={"file": ("obama.jpg", photo)},
                 data={"method": "solid", "color": "#ff0000", "shape": "box", "format": "png"})
    after = read_image(r.content).rgb
    x1, y1, x2, y2 = (int(v) for v in face)
    centre = after[(y1 + y2) // 2 - 5:(y1 + y2) // 2 + 5, (x1 + x2) // 2 - 5:(x1 + x2) // 2 + 5]
    assert (centre == [255, 0, 0]).all()
    r = web.post("/api/anonymize", files={"file": ("obama.jpg", photo)},
                 data={"method": "pixelate", "blocks": "6", "format": "webp"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"


def _one_face(web, photo: bytes):
    from faceveil import detect_faces

    dets = detect_faces(read_image(photo).rgb)
    assert len(dets) >= 1
    return dets.xyxy[int(np.argmax(dets.scores))]


def test_type_comes_from_the_content_not_the_name(web, astronaut):
    r = web.post("/api/anonymize", files={"file": ("photo.jpg", encode(astronaut, "PNG"), "image/jpeg")})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"  # a PNG called .jpg comes back a PNG
    assert "photo.anonymized.png" in r.headers["content-disposition"]
    r = web.post("/api/anonymize", files={"file": ("notes.txt", encode(astronaut, "JPEG"), "text/plain")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


def test_options_come_from_the_registries(web):
    from faceveil.anonymization import effects, masks
    from faceveil.config import BACKGROUNDS, QUALITIES
    from faceveil.detection import detectors

    body = web.get("/api/options").json()
    options = {o["name"]: o for o in body["options"]}
    values = {name: [c["value"] for c in o.get("choices", [])] for name, o in options.items()}
    assert values["method"] == [n for n in effects.names() if n not in ("image", "none")]
    assert values["shape"] == masks.names()
    assert values["detector"] == detectors.names()
    assert values["quality"] == list(QUALITIES)
    assert values["background"] == ["", *[b for b in BACKGROUNDS if b != "image"]]
    assert options["strength"]["when"] == {"method": ["blur"]}
    assert body["limits"]["max_pixels"] == web.runtime.config.max_pixels
    assert body["token_required"] is False


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"method": "sparkle"}, "unknown effect"),
    ({"strength": "lots"}, "strength must be a number"),
    ({"strength": "99"}, "strength must be between"),
    ({"blocks": "1"}, "blocks must be between"),
    ({"color": "not-a-colour"}, "not a colour"),
    ({"quality": "perfect"}, "quality must be one of"),
    ({"method": "image"}, "not offered by the web app"),
    ({"background": "image:/etc/passwd"}, "names a file on the server"),
    ({"keep": "/etc/passwd"}, "not in this server's people gallery"),
    ({"format": "gif"}, "format must be one of"),
    ({"sparkle": "1"}, "unknown option"),
])
def test_bad_options_are_422_with_a_message(bare, astronaut, fields, fragment):
    small = encode(astronaut[:64, :64])
    r = bare.post("/api/anonymize", files={"file": ("a.png", small)}, data=fields)
    assert fragment in error_of(r, 422)


# ------------------------------------------------------------------------------- bad inputs


def _truncated_jpeg(astronaut) -> bytes:
    data = encode(astronaut, "JPEG", quality=90)
    return data[: len(data) // 2]


BAD_PICTURES = [
    # (what, bytes or a builder, status, message fragment)
    ("empty", lambda a: b"", 400, "empty"),
    ("corrupt", lambda a: b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 4000,
                                                                                       dtype=np.uint8)),
     422, "damaged"),
    ("truncated", _truncated_jpeg, 422, "truncated"),
    ("text called .jpg", lambda a: b"hello, I am not a picture\n" * 10, 415, "a text file"),
    ("gif", lambda a: encode(a[:32, :32], "GIF"), 415, "GIF"),
    ("pdf", lambda a: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", 415, "PDF"),
    ("heic", lambda a: b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", 415, "HEIC"),
    ("a zip", lambda a: make_zip([("a.png", encode(a[:32, :32]))]), 415, "/api/jobs"),
    ("huge pixel count", lambda a: png_header(100_000, 100_000), 413, "decompression bomb"),
    ("over the pixel limit", lambda a: png_header(6000, 4000), 413,
     "6000x4000 is 24,000,000 pixels, over the limit of 20,000,000"),
    ("oversize", lambda a: b"\xff\xd8\xff\xe0" + b"\0" * (3 << 20), 413, "limit"),
]


@pytest.mark.parametrize(("what", "build", "status", "fragment"), BAD_PICTURES,
                         ids=[b[0] for b in BAD_PICTURES])
def test_bad_pictures_get_4xx_json(bare, astronaut, what, build, status, fragment):
    r = bare.post("/api/anonymize", files={"file": ("photo.jpg", build(astronaut), "image/jpeg")})
    assert fragment in error_of(r, status)


def test_a_body_without_length_is_cut_off_at_the_limit(bare):
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n\xff\xd8\xff'
        for _ in range(3):
            yield b"\0" * (1 << 20)
        yield b"\r\n--b--\r\n"

    r = bare.post("/api/anonymize", content=chunks(),
                  headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert "limit of 2 MiB" in error_of(r, 413)


def test_a_video_is_refused_by_the_one_picture_endpoint(bare, tmp_path):
    clip = short_clip(tmp_path / "clip.mp4", frames=5).read_bytes()
    assert "/api/jobs" in error_of(bare.post("/api/anonymize", files={"file": ("c.mp4", clip)}), 415)


@pytest.mark.parametrize(("request_kwargs", "status", "fragment"), [
    ({"content": b"raw bytes"}, 415, "multipart/form-data"),
    ({"json": {"file": "x"}}, 415, "multipart/form-data"),
    ({"data": {"method": "blur"}, "files": {"other": ("a.png", b"x")}}, 400, "'file' or 'files'"),
    ({"files": [("file", ("a.png", b"\x89PNG")), ("file", ("b.png", b"\x89PNG"))]}, 400, "exactly one"),
], ids=["raw", "json", "wrong field", "two files"])
def test_malformed_requests_get_4xx_json(bare, request_kwargs, status, fragment):
    assert fragment in error_of(bare.post("/api/anonymize", **request_kwargs), status)


def test_unknown_routes_and_methods_are_json(bare):
    error_of(bare.get("/api/nothing"), 404)
    error_of(bare.put("/api/jobs"), 405)
    error_of(bare.get("/api/jobs/not-a-job"), 404)
    error_of(bare.delete("/api/jobs/not-a-job"), 404)
    error_of(bare.get("/api/jobs/x/files/notanumber"), 422)


def _zip_slip(name: str) -> bytes:
    return make_zip([("ok.png", encode(np.zeros((8, 8, 3), np.uint8))), (name, b"\xff\xd8\xff")])


def _zip_bomb() -> bytes:
    return make_zip([("bomb.bmp", b"BM" + b"\0" * (60 << 20))])  # 60 MiB of zeros, ~60 KiB packed


def _many_entries() -> bytes:
    return make_zip([(f"{i}.png", b"\x89PNG") for i in range(30)])


def _too_big_inside() -> bytes:
    """9 MiB that packs to ~1.3 MiB: a normal ratio, but more than the server unpacks."""
    bits = np.random.default_rng(1).integers(0, 2, 9 << 20, dtype=np.uint8).tobytes()
    return make_zip([("noise.bmp", b"BM" + bits)])


def _corrupt_zip() -> bytes:
    data = bytearray(make_zip([("a.png", encode(np.zeros((64, 64, 3), np.uint8)))]))
    data[40:90] = b"\0" * 50
    return bytes(data[: len(data) - 30])


BAD_ZIPS = [
    ("zip slip ..", lambda: _zip_slip("../../evil.jpg"), 400, "unsafe path"),
    ("zip slip nested ..", lambda: _zip_slip("photos/../../evil.jpg"), 400, "unsafe path"),
    ("zip slip absolute", lambda: _zip_slip("/etc/cron.d/evil"), 400, "unsafe path"),
    ("zip slip drive", lambda: _zip_slip("C:\\Windows\\evil.jpg"), 400, "unsafe path"),
    ("zip bomb", _zip_bomb, 413, "zip bomb"),
    ("too many entries", _many_entries, 413, "entries"),
    ("expands too much", _too_big_inside, 413, "expands to more than"),
    ("corrupt zip", _corrupt_zip, 422, "zip"),
    ("zip of nothing usable", lambda: make_zip([("readme.txt", b"hello"), ("x.gif", b"GIF89a")]), 415,
     "no pictures or videos"),
    ("empty zip", lambda: make_zip([]), 415, "no pictures or videos"),
]


@pytest.mark.parametrize(("what", "build", "status", "fragment"), BAD_ZIPS, ids=[b[0] for b in BAD_ZIPS])
def test_bad_zips_are_refused_before_anything_is_extracted(bare, what, build, status, fragment):
    r = bare.post("/api/jobs", files=[("files", ("photos.zip", build(), "application/zip"))])
    assert fragment in error_of(r, status)
    data = bare.runtime.data
    assert [p for p in data.rglob("*") if p.is_file() and p.name != ".lock"] == []  # nothing left
    assert not (data.parent / "evil.jpg").exists() and not (data.parent.parent / "evil.jpg").exists()


def test_jobs_refuse_bad_files_and_report_them_beside_good_ones(web, astronaut):
    files = [("files", ("good.png", encode(astronaut[:200, 150:350]))),
             ("files", ("notes.txt", b"just text")),
             ("files", ("empty.jpg", b""))]
    r = web.post("/api/jobs", files=files)
    assert r.status_code == 202
    body = r.json()
    assert [f["name"] for f in body["files"]] == ["good.png"]
    assert {x["name"]: x["error"] for x in body["rejected"]} == {
        "notes.txt": "a text file: not supported; send JPEG, PNG, WebP, BMP or TIFF pictures, "
                     "MP4, MOV, MKV, WebM or AVI videos, or a zip of them",
        "empty.jpg": "empty file"}
    assert wait(web, body["id"])["state"] == "done"
    assert web.delete(f"/api/jobs/{body['id']}").status_code == 204
    # all of them bad: the request itself is refused
    r = web.post("/api/jobs", files=[("files", ("a.txt", b"text")), ("files", ("b.txt", b"more"))])
    assert "no usable file" in error_of(r, 415)
    error_of(web.post("/api/jobs", data={"method": "blur"}), 415)  # a plain form: no files at all
    body = b'--b\r\nContent-Disposition: form-data; name="method"\r\n\r\nblur\r\n--b--\r\n'
    r = web.post("/api/jobs", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert "no files" in error_of(r, 400)


def test_a_truncated_picture_in_a_job_fails_alone(web, astronaut):
    whole = encode(astronaut, "JPEG", quality=90)
    r = web.post("/api/jobs", files=[("files", ("cut.jpg", whole[: len(whole) // 2])),
                                     ("files", ("whole.jpg", whole))])
    status = wait(web, r.json()["id"])
    cut, ok = status["files"]
    assert status["state"] == "done" and ok["state"] == "done"
    assert cut["state"] == "failed" and "truncated" in cut["error"]
    assert cut["result_url"] is None
    error_of(web.get(f"/api/jobs/{status['id']}/files/0"), 404)
    web.delete(f"/api/jobs/{status['id']}")


# ----------------------------------------------------------------------------- job lifecycle


@pytest.mark.slow
def test_job_lifecycle_with_photos_a_zip_and_a_real_video(web, wider_entries, tmp_path):
    root, entries = wider_entries
    photos = [(root / e["file"]).read_bytes() for e in entries]
    portrait = require_data("identities", "_multi_person", "two_people.jpg").read_bytes()
    archive = make_zip([("holiday/one.jpg", photos[1]), ("holiday/two.jpg", portrait),
                        ("holiday/readme.txt", b"notes"), ("__MACOSX/holiday/._one.jpg", b"junk"),
                        (".DS_Store", b"junk"), ("holiday/", b"")])
    clip = short_clip(tmp_path / "talk.mp4", frames=40).read_bytes()
    files = [("files", ("group.jpg", photos[0], "image/jpeg")),
             ("files", ("../../etc/passwd.jpg", photos[2], "image/jpeg")),
             ("files", ("holiday.zip", archive, "application/zip")),
             ("files", ("talk.mp4", clip, "video/mp4"))]
    # solid fill: on lossy video, "changed" needs a margin that a blur of smooth skin may not reach
    r = web.post("/api/jobs", files=files, data={"format": "png", "method": "solid"})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/jobs/{r.json()['id']}"
    job = r.json()
    names = [f["name"] for f in job["files"]]
    assert names == ["group.jpg", "passwd.jpg", "holiday.zip/holiday/one.jpg",
                     "holiday.zip/holiday/two.jpg", "talk.mp4"]
    assert [f["kind"] for f in job["files"]] == ["image"] * 4 + ["video"]
    assert [f["entry"] for f in job["files"]][2:4] == [0, 1]  # positions inside the zip
    assert [s["name"] for s in job["skipped"]] == ["holiday.zip/holiday/readme.txt"]
    # the server's own names only, in a private folder
    folder = web.runtime.data / job["id"]
    assert stat.S_IMODE(web.runtime.data.stat().st_mode) == 0o700
    assert all(p.name[:4].isdigit() for p in (folder / "in").iterdir())

    seen: list[dict] = []
    status = wait(web, job["id"], seen=seen)
    assert status["state"] == "done", status
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert status["faces"] >= sum(len(counted_boxes(e)) for e in entries[:3])
    video = status["files"][4]
    assert video["frames_done"] == video["frames_total"] == 40
    # faces: distinct (tracked) faces; face-frames: hidden boxes over the 40 frames
    assert video["counts"]["face_frames"] >= 10 and 1 <= video["faces"] <= video["counts"]["face_frames"]
    assert video["counts"]["boxes"] + video["counts"]["filled"] == video["counts"]["face_frames"]
    assert video["summary"].startswith(f"{video['faces']} face")
    assert list((folder / "in").iterdir()) == []  # inputs go as soon as they are processed

    # one file at a time
    for f, entry in zip(status["files"][:2], (entries[0], entries[2]), strict=True):
        out = web.get(f["result_url"])
        assert out.status_code == 200 and out.headers["content-type"] == "image/png"
        original = photos[0] if f["index"] == 0 else photos[2]
        check_hidden(read_image(original).rgb, read_image(out.content).rgb, entry)
    assert "passwd.anonymized.png" in web.get(status["files"][1]["result_url"]).headers["content-disposition"]
    _check_video(web.get(video["result_url"]).content, clip)

    # everything as a zip, then the job is gone
    r = web.get(status["result_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.namelist() == ["group.anonymized.png", "passwd.anonymized.png",
                                 "holiday/one.anonymized.png", "holiday/two.anonymized.png",
                                 "talk.anonymized.mp4"]
        inner = zf.read("holiday/one.anonymized.png")
    check_hidden(read_image(photos[1]).rgb, read_image(inner).rgb, entries[1])
    error_of(web.get(f"/api/jobs/{job['id']}"), 404)
    assert not folder.exists()


def _check_video(data: bytes, original: bytes) -> None:
    """Faces hidden in every frame. Video is lossy, so 'changed' means by more than 12 levels;
    the face box comes from the detector on the original frame."""
    from faceveil import detect_faces

    before, after = video_frames(original), video_frames(data)
    assert len(after) == len(before) == 40
    for i in (0, 20, 39):
        face = detect_faces(before[i]).xyxy[0]
        diff = np.abs(before[i].astype(int) - after[i].astype(int)).max(axis=2)
        assert face_covered(diff > 12, face), i
        assert collateral(diff > 12, [face]) < 0.02  # outside the face (grown 1.6x): only re-encoded


def test_delete_removes_a_finished_job(web, astronaut):
    r = web.post("/api/jobs", files=[("files", ("a.png", encode(astronaut)))])
    job_id = r.json()["id"]
    wait(web, job_id)
    folder = web.runtime.data / job_id
    assert any((folder / "out").iterdir())
    assert web.delete(f"/api/jobs/{job_id}").status_code == 204
    assert not folder.exists()
    error_of(web.get(f"/api/jobs/{job_id}/files/0"), 404)
    error_of(web.delete(f"/api/jobs/{job_id}"), 404)


def test_finished_jobs_expire(tmp_path, astronaut):
    with serve(tmp_path, job_ttl=1.0) as client:
        job_id = client.post("/api/jobs", files=[("files", ("a.png", encode(astronaut)))]).json()["id"]
        status = wait(client, job_id)
        assert status["state"] == "done" and 0 < status["expires_in"] <= 1.0
        folder = client.runtime.data / job_id
        assert folder.exists()
        time.sleep(1.8)  # nobody asks: the reaper deletes it
        assert not folder.exists()
        assert "deleted" in error_of(client.get(f"/api/jobs/{job_id}"), 404)
        data = client.runtime.data
    assert not data.exists()  # and the whole private folder goes when the server stops


@pytest.mark.slow
def test_full_queue_answers_429_and_delete_cancels_a_running_job(tmp_path, astronaut):
    clip = require_data("videos", CLIP).read_bytes()
    with serve(tmp_path, workers=1, queue_size=1) as client:
        long = client.post("/api/jobs", files=[("files", ("talk.mp4", clip))]).json()["id"]
        seen: list[dict] = []
        deadline = time.monotonic() + 60
        while not (seen and seen[-1]["files"][0]["frames_done"]):  # running, with progress
            seen.append(client.get(f"/api/jobs/{long}").json())
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert seen[-1]["state"] == "running" and 0 < seen[-1]["progress"] < 1
        assert client.get("/api/health").json()["running"] == 1
        waiting = client.post("/api/jobs", files=[("files", ("a.png", encode(astronaut)))])
        assert waiting.status_code == 202 and waiting.json()["state"] == "queued"
        for refused in (client.post("/api/jobs", files=[("files", ("b.png", encode(astronaut)))]),
                        client.post("/api/anonymize", files={"file": ("c.png", encode(astronaut))})):
            assert "busy" in error_of(refused, 429)
            assert refused.headers["retry-after"] == "2"
        jobs = [p for p in client.runtime.data.iterdir() if p.is_dir()]
        assert len(jobs) == 2  # the refused uploads left nothing
        # deleting the running job stops it within a frame or so; the waiting one then runs
        assert client.delete(f"/api/jobs/{long}").status_code == 204
        status = wait(client, waiting.json()["id"], timeout=30)
        assert status["state"] == "done"
        deadline = time.monotonic() + 10
        while (client.runtime.data / long).exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.post("/api/anonymize", files={"file": ("c.png", encode(astronaut))}).status_code == 200


# ------------------------------------------------------------------------------------- security


def test_token_is_needed_for_every_api_request(tmp_path, astronaut):
    with serve(tmp_path, token=TOKEN, warm=False) as client:
        for method, path in [("get", "/api/options"), ("get", "/api/health"), ("get", "/api/openapi.json"),
                             ("post", "/api/jobs"), ("post", "/api/anonymize"), ("get", "/api/jobs/x"),
                             ("delete", "/api/jobs/x"), ("get", "/api/jobs/x/result")]:
            r = getattr(client, method)(path)
            assert "token" in error_of(r, 401), path
            assert r.headers["www-authenticate"] == "Bearer"
        error_of(client.get("/api/options", headers={"Authorization": "Bearer wrong-token-wrong-token"}), 401)
        error_of(client.get("/api/options", headers={"Authorization": f"Basic {TOKEN}"}), 401)
        assert client.get("/api/options", headers={"Authorization": f"Bearer {TOKEN}"}).json()[
            "token_required"] is True
        assert client.get("/api/health", headers={"X-Faceveil-Token": TOKEN}).status_code == 200
        # the page itself holds no data and loads without it (it then asks for the token)
        assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200
        # with a token, other host names are fine (the server was meant to be reached)
        r = client.get("/api/health", headers={"Host": "photos.lan:8000", "Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200


def test_only_localhost_names_and_same_origin_requests_without_a_token(bare):
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert bare.get("/api/health", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example:8000", "192.168.1.10:8000", "127.0.0.1.evil.example"):
        assert "localhost" in error_of(bare.get("/api/health", headers={"Host": host}), 403)  # DNS rebinding
    error_of(bare.post("/api/jobs", headers={"Origin": "http://evil.example"}), 403)
    error_of(bare.get("/api/options", headers={"Origin": "http://127.0.0.1:9999"}), 403)
    error_of(bare.get("/api/options", headers={"Sec-Fetch-Site": "cross-site"}), 403)
    same = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}
    assert bare.get("/api/options", headers=same).status_code == 200


def test_security_headers_on_every_response(bare):
    responses = [bare.get("/"), bare.get("/static/app.js"), bare.get("/static/style.css"),
                 bare.get("/api/options"), bare.get("/api/nothing"), bare.post("/api/anonymize"),
                 bare.get("/api/docs"), bare.get("/api/openapi.json"),
                 bare.get("/api/health", headers={"Host": "evil.example"})]
    for r in responses:
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self';" in csp and "http" not in csp and "*" not in csp and "unsafe" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    assert responses[3].headers["cache-control"] == "no-store"


def test_internal_errors_are_clean_json_500_and_logged(tmp_path, caplog):
    import logging

    app = create_app(WebConfig(workers=1, warm=False, data_dir=tmp_path))

    @app.get("/api/bug")
    async def bug():
        raise RuntimeError("secret internal detail")

    logger = logging.getLogger("faceveil.web.app")  # the CLI may have stopped propagation at "faceveil"
    logger.addHandler(caplog.handler)
    try:
        with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
            r = client.get("/api/bug")
    finally:
        logger.removeHandler(caplog.handler)
    assert r.status_code == 500 and r.json() == {
        "error": "internal_error", "message": "internal error; the server's log has the details"}
    assert "secret" not in r.text and r.headers["x-content-type-options"] == "nosniff"
    assert "secret internal detail" in caplog.text


def test_the_page_loads_nothing_from_elsewhere():
    static = Path(__file__).resolve().parents[2] / "src" / "faceveil" / "web" / "static"
    files = sorted(static.iterdir())
    assert {f.name for f in files} >= {"index.html", "app.js", "style.css", "docs.html", "docs.js"}
    for f in files:
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f.name
        assert "@import" not in text and "innerHTML" not in text and "eval(" not in text, f.name
        assert " style=" not in text and "<script>" not in text, f.name  # nothing inline (CSP)


def test_openapi_schema_lists_the_endpoints(bare):
    schema = bare.get("/api/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/anonymize", "/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result",
            "/api/jobs/{job_id}/files/{index}", "/api/options"} <= set(paths)
    assert set(paths["/api/jobs/{job_id}"]) == {"get", "delete"}
    body = paths["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["files"]["type"] == "array" and "method" in body["properties"]
    assert "429" in paths["/api/jobs"]["post"]["responses"]
    assert "text/html" in bare.get("/api/docs").headers["content-type"]


@pytest.mark.parametrize(("raw", "shown"), [
    ("../../etc/passwd.jpg", "passwd.jpg"),
    ("C:\\Users\\me\\holiday.jpg", "holiday.jpg"),
    ("..", "file"),
    (".hidden.png", "hidden.png"),
    ("line\nbreak\x00.jpg", "linebreak.jpg"),
    ('a<b>c:"d|e?*.png', "abcde.png"),
    ("x" * 300 + ".jpeg", "x" * 115 + ".jpeg"),  # 120 characters
    ("", "file"),
])
def test_client_names_are_only_cleaned_for_display(raw, shown):
    from faceveil.web.media import display_name, display_path, unsafe_entry_name

    assert display_name(raw) == shown
    assert display_path("a/../b\\c/./d.jpg") == "a/b/c/d.jpg"
    assert unsafe_entry_name("a/../../b") and unsafe_entry_name("/etc/x") and unsafe_entry_name("D:x")
    assert not unsafe_entry_name("a/b..c/d.jpg")


# --------------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--host", "0.0.0.0"], "--token"),
    (["--host", "192.168.1.5"], "--token"),
    (["--host", "0.0.0.0", "--token", "short"], "at least 16"),
    (["--workers", "0"], "argument --workers: must be"),
    (["--port", "70000"], "--port"),
])
def test_serve_refuses_unsafe_or_bad_settings(argv, fragment, capsys, monkeypatch):
    monkeypatch.delenv("FACEVEIL_TOKEN", raising=False)
    assert main(["serve", *argv]) == ExitCode.USAGE
    assert fragment in capsys.readouterr().err


def test_serve_reports_a_port_in_use(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == ExitCode.USAGE
    assert "in use" in capsys.readouterr().err


def test_web_config_validates():
    from faceveil.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 16"):
        WebConfig(token="has spaces in it but long enough")
    with pytest.raises(ConfigError, match="queue size"):
        WebConfig(queue_size=-1)
    assert WebConfig(token=f"  {TOKEN} ").token == TOKEN
    assert os.cpu_count() is None or WebConfig().workers == min(2, os.cpu_count())
