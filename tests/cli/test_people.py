"""`faceveil people ...` and `run --keep/--only` through the CLI, on real photos and the stage clip.

Every test works on a private gallery (FACEVEIL_DATA_DIR or --gallery under tmp_path). Real data
comes from ../shared/data (identities/, videos/) and is skipped when absent. Pictures are
written as PNG where pixels are compared, so an untouched pixel stays identical; video output
is compared with a tolerance for codec noise.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import require_data
from faceveil.cli import ExitCode, main
from faceveil.evaluation import changed_pixels, face_covered
from faceveil.geometry import intersections, scaled
from faceveil.media.images import read_image, write_image
from faceveil.sidecar import read_sidecar
from faceveil.tracking import SceneCuts, iou_matrix
from faceveil.types import Frame

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")
pytestmark = pytest.mark.people

HAMILTON = "hamilton_short_clip.mp4"
LIN = "lin_manuel_miranda"
LIN_SHOTS = (0, 2)  # of the clip's 4 shots: stage (Lin small), audience, Lin close-up, audience
NOISE = 12  # a video pixel counts as changed when a channel moved by more than this
PEOPLE = ("kit_harington", "rose_leslie", "biden")  # discovered from their folders ...
LEFT_TO_RIGHT = {  # ... and from group photos (order from identities.json)
    "kit_with_rose.jpg": ("rose_leslie", "kit_harington"), "two_people.jpg": ("obama", "biden")}


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("faceveil: error")]


def listed(capsys) -> dict[str, int]:
    """The gallery as `people list --json` gives it: name -> face count."""
    capsys.readouterr()
    assert cli("people", "list", "--json") == ExitCode.OK
    return {p["name"]: p["faces"] for p in json.loads(capsys.readouterr().out)}


def centre(box, shape, share: float = 0.6) -> tuple[slice, slice]:
    """Rows and columns of the central share x share of a box, inside the picture."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * (1 - share) / 2, (y2 - y1) * (1 - share) / 2
    h, w = shape[:2]
    return (slice(max(0, int(y1 + my)), min(h, int(np.ceil(y2 - my)))),
            slice(max(0, int(x1 + mx)), min(w, int(np.ceil(x2 - mx)))))


def unusable(folder: Path) -> tuple[Path, Path]:
    """A picture with no face and a file that is not a picture despite its name."""
    blank = folder / "blank.png"
    ramp = np.linspace(0, 255, 320, dtype=np.uint8)
    write_image(blank, np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (240, 320, 3))))
    fake = folder / "fake.jpg"
    fake.write_text("not a picture")
    return blank, fake


@pytest.fixture()
def data_dir(tmp_path, monkeypatch) -> Path:
    """A private user data folder: the default gallery lives in it."""
    folder = tmp_path / "data"
    monkeypatch.setenv("FACEVEIL_DATA_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def biden_gallery(tmp_path_factory) -> Path:
    """A gallery file with biden enrolled from identities/biden/, made once; tests copy it."""
    photos = require_data("identities", "biden")
    path = tmp_path_factory.mktemp("gallery") / "people.sqlite3"
    assert cli("people", "add", "biden", photos, "--gallery", path, "-q") == ExitCode.OK
    return path


@pytest.fixture()
def with_biden(biden_gallery, data_dir) -> Path:
    data_dir.mkdir()
    (data_dir / "people.sqlite3").write_bytes(biden_gallery.read_bytes())
    return data_dir / "people.sqlite3"


# ---------------------------------------------------------------- people add / list / remove


def test_add_list_remove(data_dir, tmp_path, capsys):
    photos = require_data("identities", "biden")
    blank, fake = unusable(tmp_path)
    assert cli("people", "add", "biden", photos, blank, fake) == ExitCode.OK
    err = capsys.readouterr().err
    assert f"skipped {blank}: no face found" in err
    assert f"skipped {fake}:" in err
    assert "biden: 2 face(s) added from 2 photo(s)" in err
    assert cli("people", "list") == ExitCode.OK
    assert capsys.readouterr().out.startswith("biden\t2 face(s)\tadded ")
    assert listed(capsys) == {"biden": 2}
    assert cli("people", "remove", "biden") == ExitCode.OK
    assert listed(capsys) == {}
    assert cli("people", "remove", "biden") == ExitCode.FAILED
    assert error_lines(capsys.readouterr().err) == [
        f"faceveil: error: no person named 'biden' in {data_dir / 'people.sqlite3'}"]


def test_add_with_no_usable_photo_fails(data_dir, tmp_path, capsys):
    blank, fake = unusable(tmp_path)
    assert cli("people", "add", "nobody", blank, fake) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert err.count("faceveil: skipped ") == 2
    assert "no usable face of nobody" in err
    assert listed(capsys) == {}


@pytest.mark.parametrize("argv", [["people", "add"], ["people", "add", "alice"]])
def test_add_needs_a_name_and_photos(data_dir, capsys, argv):
    assert cli(*argv) == ExitCode.USAGE
    (line,) = error_lines(capsys.readouterr().err)
    assert "faceveil people add NAME PHOTO" in line
    assert not data_dir.exists()


def test_gallery_holds_vectors_not_pictures(biden_gallery):
    raw = biden_gallery.read_bytes()
    assert len(raw) < 64 * 1024, f"{len(raw)} bytes for 2 faces"
    for magic in (b"\xff\xd8\xff", b"\x89PNG"):
        assert magic not in raw
    with contextlib.closing(sqlite3.connect(biden_gallery)) as db:
        sizes = [len(blob) for (blob,) in db.execute("SELECT vector FROM faces")]
    assert sizes == [128 * 4] * 2, "one 128 x float32 vector per face, nothing else"
    if os.name == "posix":
        assert stat.S_IMODE(biden_gallery.stat().st_mode) & 0o077 == 0, "readable by its owner only"


@pytest.mark.slow
def test_real_subprocess(with_biden):
    """`python -m faceveil people list --json`, as a user runs it, sees the private gallery."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "faceveil", "people", "list", "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert [(p["name"], p["faces"]) for p in json.loads(proc.stdout)] == [("biden", 2)]


# ---------------------------------------------------------------- run --keep / --only on a photo


@pytest.mark.parametrize(("flag", "who", "hidden"), [
    ("--keep", "biden", {"obama": True, "biden": False}),
    ("--only", "biden", {"obama": False, "biden": True}),
    ("--keep", "folder", {"obama": True, "biden": False}),  # reference photos, not a name
])
def test_keep_and_only_on_a_photo_of_two(with_biden, tmp_path, capsys, flag, who, hidden):
    src = require_data("identities", "_multi_person", "two_people.jpg")
    who = str(require_data("identities", "biden")) if who == "folder" else who
    out = tmp_path / "out.png"
    code = cli("run", src, flag, who, "-o", out, "--json")
    assert code == ExitCode.OK, capsys.readouterr().err
    doc = json.loads(out.with_name("out.faces.json").read_text())
    faces = doc["frames"][0]["faces"]
    area = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in faces]
    big = sorted(sorted(range(len(faces)), key=lambda i: -area[i])[:2])
    # anything else found (a small false detection in the background) is hidden: fail closed
    assert all(f["hidden"] for i, f in enumerate(faces) if i not in big), faces
    faces = sorted((faces[i] for i in big), key=lambda f: f["box"][0])
    assert len(faces) == 2, faces
    changed = changed_pixels(read_image(src).rgb, read_image(out).rgb)
    for name, face in zip(("obama", "biden"), faces, strict=True):
        assert face["hidden"] is hidden[name], (name, face)
        rows, cols = centre(face["box"], changed.shape)
        share = float(changed[rows, cols].mean())
        if hidden[name]:
            assert face_covered(changed, face["box"]), f"{name}: {share:.0%} of the face changed"
        else:
            assert share <= 0.02, f"{name} should be visible, {share:.0%} of the face changed"


def own_faces(detector, rgb, order) -> list[np.ndarray]:
    """The boxes of the len(order) biggest confident faces, left to right (as identities.json says)."""
    dets = detector.detect(Frame(rgb))
    sure = np.flatnonzero(dets.scores >= 0.5)
    big = sure[np.argsort(-(dets.widths * dets.heights)[sure])[:len(order)]]
    return [dets.xyxy[i] for i in big[np.argsort(dets.xyxy[big, 0])]]


@pytest.mark.slow
@pytest.mark.parametrize("quality", ["balanced", "thorough"])
def test_a_group_picture_with_the_kept_person_twice(data_dir, tmp_path, capsys, centerface, quality):
    """Obama twice (two photos side by side), Biden twice and a third person; both enrolled.
    --keep obama: both of his faces untouched, every other face covered, and the summary's
    counts are the faces file's, box for box. `thorough` finds several boxes per face."""
    ids = require_data("identities")
    left = read_image(ids / "_multi_person" / "two_people.jpg").rgb  # obama, biden
    right = read_image(ids / "_multi_person" / "obama_and_biden.jpg").rgb  # biden, obama
    s = left.shape[0] / right.shape[0]
    import cv2

    right = cv2.resize(right, (round(right.shape[1] * s), left.shape[0]), interpolation=cv2.INTER_AREA)
    group = np.ascontiguousarray(np.hstack([left, right]))
    src = tmp_path / "group.png"
    write_image(src, group)
    shift = np.array([left.shape[1], 0, left.shape[1], 0], np.float32)
    obama_l, biden_l = own_faces(centerface, left, "ob")
    biden_r, obama_r = own_faces(centerface, right, "bo")
    obamas, bidens = [obama_l, obama_r + shift], [biden_l, biden_r + shift]
    for person in ("obama", "biden"):
        assert cli("people", "add", person, ids / person, "-q") == ExitCode.OK
    out = tmp_path / "out.png"
    code = cli("run", src, "--keep", "obama", "--quality", quality, "-o", out, "--json")
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    faces = json.loads(out.with_name("out.faces.json").read_text())["frames"][0]["faces"]
    changed = changed_pixels(group, read_image(out).rgb)
    kept = [f for f in faces if not f["hidden"]]
    hidden = [f for f in faces if f["hidden"]]
    for box in obamas:  # fully visible
        assert any(iou_matrix(np.array([f["box"]]), box[None])[0, 0] >= 0.3 for f in kept), (box, faces)
        x1, y1, x2, y2 = (int(v) for v in box)
        share = float(changed[y1:y2, x1:x2].mean())
        assert share <= 0.01, f"obama at {box}: {share:.1%} of the face changed"
    for f in kept:  # nothing else kept
        assert max(iou_matrix(np.array([f["box"]]), np.stack(obamas))[0]) >= 0.3, f
        assert f["why"].startswith("kept: obama at"), f
    for box in bidens:
        assert face_covered(changed, box), f"biden at {box} not hidden"
    for f in hidden:
        assert f["why"].startswith("hidden: "), f
        if f["score"] >= 0.5 and min(f["box"][2] - f["box"][0], f["box"][3] - f["box"][1]) >= 16:
            assert face_covered(changed, f["box"]), f
    from faceveil.types import Counts

    said = Counts(len(hidden), len(hidden), kept=len(kept), kept_frames=len(kept), frames=1)
    assert said.describe() in err, err
    print(quality, len(kept), "kept boxes,", len(hidden), "hidden boxes")


def test_keep_unknown_name_is_one_clear_error(with_biden, tmp_path, capsys):
    src = require_data("identities", "_multi_person", "two_people.jpg")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(src.read_bytes())
    assert cli("run", folder, "--keep", "nobody") == ExitCode.USAGE
    (line,) = error_lines(capsys.readouterr().err)  # one message, not one per file
    assert "'nobody'" in line and "faceveil people add" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "in"], "no output written"
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "b.jpg"]


def test_keep_and_only_together_is_a_usage_error(data_dir, tmp_path, capsys):
    src = require_data("identities", "_multi_person", "two_people.jpg")
    out = tmp_path / "out.png"
    assert cli("run", src, "--keep", "a", "--only", "b", "-o", out) == ExitCode.USAGE
    (line,) = error_lines(capsys.readouterr().err)
    assert "keep and only" in line
    assert not out.exists()


# ---------------------------------------------------------------- people discover


@pytest.fixture(scope="module")
def discovered(tmp_path_factory) -> Path:
    """people.json of the reference folders in PEOPLE and the group photos, made once."""
    ids = require_data("identities")
    folder = tmp_path_factory.mktemp("discover")
    inputs = [ids / p for p in PEOPLE] + [ids / "_multi_person" / f for f in LEFT_TO_RIGHT]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEVEIL_DATA_DIR", str(folder / "data"))
        assert cli("people", "discover", *inputs, "-o", folder / "out", "-q") == ExitCode.OK
    return folder / "out" / "people.json"


def owner(file: str) -> str | None:
    """The person whose reference folder holds `file`; None for a group photo."""
    parent = Path(file).parent.name
    return None if parent == "_multi_person" else parent


def home(groups: list[dict], person: str) -> dict:
    """The one group that holds the person's reference photos."""
    found = [g for g in groups if any(owner(s["file"]) == person for s in g["seen"])]
    assert len(found) == 1, f"{person} is split over {[g['id'] for g in found]}"
    return found[0]


def test_discover_groups_each_person_apart(discovered):
    doc = json.loads(discovered.read_text())
    groups = doc["people"]
    assert doc["kind"] == "people" and all(g["name"] is None for g in groups)
    assert [g["id"] for g in groups] == [f"person_{k + 1}" for k in range(len(groups))]
    assert all(g["faces"] == len(g["seen"]) == len(g["vectors"]) for g in groups)
    assert [g["faces"] for g in groups] == sorted((g["faces"] for g in groups), reverse=True)
    ids = require_data("identities")
    for person in PEOPLE:
        seen = home(groups, person)["seen"]
        assert {owner(s["file"]) for s in seen} <= {person, None}, f"{person}'s group: {seen}"
        assert {Path(s["file"]).name for s in seen if owner(s["file"])} == {
            p.name for p in (ids / person).iterdir()}, f"every photo of {person} in one group"
    for photo, order in LEFT_TO_RIGHT.items():  # each face of a group photo joins its person
        faces = sorted((s["box"][0], g["id"]) for g in groups for s in g["seen"]
                       if Path(s["file"]).name == photo)
        assert len(faces) == len(order), (photo, faces)
        for (_, gid), person in zip(faces, order, strict=True):
            if person in PEOPLE:
                assert gid == home(groups, person)["id"], (photo, person, faces)
    sheet = discovered.with_name("contact_sheet.jpg")
    assert sheet.read_bytes()[:3] == b"\xff\xd8\xff"
    rgb = read_image(sheet).rgb
    assert rgb.shape[0] >= 96 * len(groups) and rgb.std() > 10, rgb.shape


@pytest.mark.slow
def test_discover_every_identity_without_fragments(data_dir, tmp_path):
    """All of ../shared/data/identities at the default distance: one sighting per face (no
    second box, eye or mouth crop of it), each person's photos in one group of their own, and
    never two faces of one picture in one group (half faces cut by a picture's edge are not
    judged, so they cannot chain strangers together)."""
    ids = require_data("identities")
    assert cli("people", "discover", ids, "-o", tmp_path / "out", "-q") == ExitCode.OK
    groups = json.loads((tmp_path / "out" / "people.json").read_text())["people"]
    seen = [(g["id"], Path(s["file"])) for g in groups for s in g["seen"]]
    for _, file in seen:
        if owner(str(file)):
            assert sum(f == file for _, f in seen) == 1, f"{file}: more than one face found"
    for g in groups:
        files = [Path(s["file"]) for s in g["seen"]]
        assert len(set(files)) == len(files), f"{g['id']} has two faces of one picture: {files}"
        assert len({owner(str(f)) for f in files} - {None}) <= 1, f"{g['id']} mixes people: {files}"
    persons = {owner(str(f)) for _, f in seen} - {None}
    split = [p for p in persons if len({gid for gid, f in seen if owner(str(f)) == p}) > 1]
    assert not split, f"split over several groups: {split}"
    assert len(persons) == 12


def test_named_groups_are_added_from_the_file(discovered, data_dir, tmp_path, capsys):
    doc = json.loads(discovered.read_text())
    kit, rose = home(doc["people"], "kit_harington"), home(doc["people"], "rose_leslie")
    kit["name"], rose["name"] = "Kit", "Rose"
    named = tmp_path / "named.json"
    named.write_text(json.dumps(doc))
    assert cli("people", "add", "--from", named) == ExitCode.OK
    assert listed(capsys) == {"Kit": kit["faces"], "Rose": rose["faces"]}
    assert cli("people", "add", "--from", named) == ExitCode.OK
    assert f"Kit: 0 face(s) added ({kit['faces']} already there)" in capsys.readouterr().err


def test_one_group_is_added_under_a_name_and_kept(discovered, data_dir, tmp_path, capsys):
    group = home(json.loads(discovered.read_text())["people"], "biden")
    assert cli("people", "add", "joe", "--from", discovered, "--group", group["id"]) == ExitCode.OK
    assert listed(capsys) == {"joe": group["faces"]}
    src = require_data("identities", "_multi_person", "two_people.jpg")
    assert cli("run", src, "--keep", "joe", "-o", "-") == ExitCode.OK
    faces = json.loads(capsys.readouterr().out)["frames"][0]["faces"]
    big = sorted(faces, key=lambda f: -(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    assert all(f["hidden"] for f in big[2:]), "anything else found is hidden"
    two = sorted(big[:2], key=lambda f: f["box"][0])
    assert [f["hidden"] for f in two] == [True, False], "obama hidden, biden (joe) kept"


BAD_FILES = {
    "not json": "people, surely",
    "foreign": json.dumps({"schema": "faceveil.faces/1", "frames": []}),
    "other model": json.dumps({"kind": "people", "model": "arcface", "people": []}),
    "no vectors": json.dumps({"kind": "people", "model": "dlib-resnet-v1",
                              "people": [{"id": "person_1", "name": "x", "vectors": []}]}),
    "short vectors": json.dumps({"kind": "people", "model": "dlib-resnet-v1",
                                 "people": [{"id": "person_1", "name": "x", "vectors": [[0.1, 0.2]]}]}),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_add_from_a_bad_file_is_a_usage_error(data_dir, tmp_path, capsys, case):
    bad = tmp_path / "people.json"
    bad.write_text(BAD_FILES[case])
    assert cli("people", "add", "--from", bad) == ExitCode.USAGE
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(f"faceveil: error: cannot read {bad}")
    assert listed(capsys) == {}


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "{file}"], 'no group in {file} has a "name"'),
    (["x", "--from", "{file}"], "say which group: --group person_N"),
    (["x", "--from", "{file}", "--group", "person_99"], "has no group 'person_99'"),
    (["x", "photo.jpg", "--from", "{file}"], "give photos or --from, not both"),
])
def test_add_from_usage_errors(discovered, data_dir, capsys, argv, message):
    argv = [a.format(file=discovered) for a in argv]
    assert cli("people", "add", *argv) == ExitCode.USAGE
    (line,) = error_lines(capsys.readouterr().err)
    assert message.format(file=discovered) in line
    assert listed(capsys) == {}


def test_discover_finds_lin_in_the_clip(data_dir, tmp_path, capsys, centerface):
    from faceveil.identity import embedders
    from faceveil.identity.decide import enrol

    clip, refs = require_data("videos", HAMILTON), require_data("identities", LIN)
    assert cli("people", "discover", clip, "--every", "2", "-o", tmp_path / "out") == ExitCode.OK
    groups = json.loads((tmp_path / "out" / "people.json").read_text())["people"]
    reference = np.stack(enrol([refs], centerface, embedders.create("dlib")).vectors)
    lin = groups[0]  # the biggest group
    distances = np.linalg.norm(np.asarray(lin["vectors"])[:, None] - reference[None], axis=2).min(1)
    assert lin["faces"] >= 2 and (distances < 0.6).all(), (distances, lin["seen"])
    assert {s["file"] for s in lin["seen"]} == {str(clip)}
    assert all(isinstance(s["frame"], int) and s["time"] is not None for s in lin["seen"])


# ---------------------------------------------------------------- the stage clip, keeping Lin


def decoded(path: Path):
    """(RGB, 64x36 grey thumbnail) of every frame, as the video runner makes its thumbnails."""
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield (f.to_ndarray(format="rgb24"),
                   f.reformat(64, 36, format="gray", interpolation="AREA").to_ndarray())


@pytest.mark.slow
def test_keep_lin_on_the_stage_clip(data_dir, tmp_path, capsys, centerface):
    """Lin stays visible wherever he is detectable; every other face is hidden, in every frame.

    Faces are found independently of the run, on the original frames. In Lin's shots he is the
    biggest face scoring >= 0.8 (the top score alone is not enough: in the stage shot a 24 px
    face in the audience sometimes outscores him). Hiding is solid magenta so that the changed-
    pixel test sees it even on the dark audience faces, where a blur moves few pixels by > 12.
    """
    clip, refs = require_data("videos", HAMILTON), require_data("identities", LIN)
    assert cli("people", "add", LIN, refs) == ExitCode.OK
    for other in ("alex_lacamoire", "obama"):  # also in the clip, and enrolled: an open set
        assert cli("people", "add", other, require_data("identities", other), "-q") == ExitCode.OK
    out = tmp_path / "kept.mp4"
    code = cli("run", clip, "--keep", LIN, "--method", "solid", "--color", "#ff00ff", "-o", out,
               "--json", "--preset", "ultrafast")
    assert code == ExitCode.OK, capsys.readouterr().err
    _, sidecar = read_sidecar(out.with_name("kept.faces.json"))

    cuts, shot, shots = SceneCuts(), 0, []
    lin_frames: list[tuple[int, bool, float, float]] = []  # (frame, kept in JSON, mad, changed)
    lin_missing, covered, uncovered, kept_wrongly = [], 0, [], []
    for i, ((before, thumb), (after, _), faces) in enumerate(
            zip(decoded(clip), decoded(out), sidecar, strict=True)):
        shot += cuts.update(thumb)
        shots.append(shot)
        dets = centerface.detect(Frame(before, i))
        dets = dets[dets.scores >= 0.5]
        diff = np.abs(before.astype(np.int16) - after.astype(np.int16))
        changed = diff.max(axis=2) > NOISE
        lin = None
        if shot in LIN_SHOTS:
            sure = np.flatnonzero(dets.scores >= 0.8)
            if sure.size:
                lin = int(sure[np.argmax((dets.widths * dets.heights)[sure])])
            else:
                lin_missing.append(i)
        for k in range(len(dets)):
            if k == lin:
                continue
            if face_covered(changed, dets.xyxy[k]):
                covered += 1
            else:
                uncovered.append((i, dets.xyxy[k].round().tolist(), round(float(dets.scores[k]), 2)))
        kept_boxes = faces.xyxy[faces.keep]
        if lin is None:
            if len(kept_boxes):
                kept_wrongly.append(i)
            continue
        box = dets.xyxy[lin:lin + 1]
        overlap = iou_matrix(box, faces.xyxy)[0] if len(faces) else np.zeros(0)
        kept = bool(overlap.size and overlap.max() >= 0.5 and faces.keep[overlap.argmax()])
        if len(kept_boxes) and iou_matrix(box, kept_boxes).min() < 0.3:
            kept_wrongly.append(i)
        rows, cols = centre(box[0], before.shape)
        # fail closed: a detection too unsure to judge is hidden, even on Lin (his hand over his
        # mouth, score 0.16, frames 128-136); such frames are listed apart, and must stay rare
        unsure = faces.xyxy[~faces.keep & (faces.scores < 0.5)]
        region = np.array([[cols.start, rows.start, cols.stop, rows.stop]], np.float32)
        on_lin = bool(len(unsure)) and bool((intersections(scaled(unsure, 1.5), region) > 0).any())
        lin_frames.append((i, kept, float(diff[rows, cols].mean()), float(changed[rows, cols].mean()),
                           on_lin))

    bounds = [i for i in range(1, len(shots)) if shots[i] != shots[i - 1]]
    assert len(bounds) == 3, f"expected 4 shots, scene cuts at {bounds}"
    in_lin_shots = sum(s in LIN_SHOTS for s in shots)
    report = (f"{len(shots)} frames, cuts at {bounds}; Lin found in {len(lin_frames)} of "
              f"{in_lin_shots} frames of his shots; {covered} other faces covered")
    assert len(lin_frames) >= 0.9 * in_lin_shots, f"{report}; Lin not found in {lin_missing}"
    assert not uncovered, f"{report}; {len(uncovered)} faces left visible: {uncovered[:10]}"
    assert covered > 0, report
    not_kept = [i for i, kept, *_ in lin_frames if not kept]
    assert not not_kept, f"{report}; the faces JSON hides Lin in frames {not_kept}"
    assert not kept_wrongly, f"{report}; a face other than Lin kept in frames {kept_wrongly}"
    damaged = [(i, round(m, 1), round(c, 2)) for i, _, m, c, unsure in lin_frames
               if (m > 8 or c > 0.2) and not unsure]
    unsure = [i for i, *_, on_lin in lin_frames if on_lin]
    worst = max(m for _, _, m, _, on_lin in lin_frames if not on_lin)
    assert not damaged, f"{report}; Lin's face changed (frame, mean diff, share): {damaged}"
    assert len(unsure) <= 0.1 * len(lin_frames), f"{report}; unsure boxes hidden on Lin in {unsure}"
    print(f"{report}; Lin kept in all {len(lin_frames)}, worst mean diff on his face {worst:.1f}")
