"""Background effects: segmentation, compositing, smoothing, CLI. Real photos and clips."""

from __future__ import annotations

import itertools

import av
import cv2
import numpy as np
import pytest

from conftest import require_data, textured
from faceveil.anonymization.background import Backdrop
from faceveil.cli import ExitCode, main
from faceveil.config import BackgroundConfig, PipelineConfig
from faceveil.errors import ConfigError
from faceveil.media.images import read_image, write_image
from faceveil.pipeline import Pipeline
from faceveil.pipeline.video import process_video
from faceveil.segmentation import PersonMasker, segmenters
from faceveil.types import Detections, Frame

GREEN = (0, 255, 0)
PORTRAITS = [("obama", "obama.jpg"), ("biden", "biden.jpg"), ("kit_harington", "john1.jpeg"),
             ("rose_leslie", None), ("alex_lacamoire", "alex-lacamoire.png")]


def portrait(person: str, name: str | None) -> np.ndarray:
    folder = require_data("identities", person)
    path = folder / name if name else sorted(p for p in folder.iterdir() if p.suffix != ".json")[0]
    return read_image(path).rgb


def cutout(pipeline: Pipeline, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, alpha 0..1) of a transparent-background render with no faces hidden."""
    rgba = pipeline.render(Frame(image), Detections.empty())
    return rgba[..., :3], rgba[..., 3].astype(np.float32) / 255


# ---- options


@pytest.mark.parametrize(("value", "mode", "attr", "expected"), [
    ("blur", "blur", "strength", 1.0),
    ("blur:2.5", "blur", "strength", 2.5),
    ("image:beach.jpg", "image", "image", "beach.jpg"),
    ("color:#00ff00", "color", "color", (0, 255, 0)),
    ("color:white", "color", "color", (255, 255, 255)),
    ("transparent", "transparent", "mode", "transparent"),
])
def test_background_option_forms(value, mode, attr, expected):
    config = PipelineConfig().replace(background=value).background
    assert config.mode == mode and config.active
    assert getattr(config, attr) == expected


@pytest.mark.parametrize("value", ["sky", "image", "image:", "color:#12", "blur:x", "cut:1"])
def test_bad_background_values_are_refused(value):
    with pytest.raises(ConfigError):
        BackgroundConfig(mode=value)


def test_background_is_off_by_default():
    assert not PipelineConfig().background.active
    assert Pipeline().backdrop is None


def test_segmenters_are_registered():
    assert {"selfie", "landscape"} <= set(segmenters.names())
    for name in ("selfie", "landscape"):
        seg = segmenters.create(name)
        mask = seg.person_mask(Frame(textured(90, 160)))
        assert mask.shape == (90, 160) and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0


# ---- compositing, on made-up pictures where the answer is known


@pytest.fixture
def half() -> tuple[np.ndarray, np.ndarray]:
    """A textured picture and an alpha: person on the left half, background on the right."""
    alpha = np.zeros((120, 200), np.float32)
    alpha[:, :100] = 1.0
    return textured(120, 200), alpha


def test_colour_and_image_replace_only_the_background(half, tmp_path):
    image, alpha = half
    out = Backdrop(BackgroundConfig(mode="color", color=GREEN)).apply_rgb(image, alpha)
    assert np.array_equal(out[:, :100], image[:, :100])
    assert (out[:, 100:] == GREEN).all()
    scene = np.zeros((50, 400, 3), np.uint8)  # wider than the frame: scaled to cover, centred
    scene[:, :200] = (255, 0, 0)
    scene[:, 200:] = (0, 0, 255)
    write_image(tmp_path / "scene.png", scene)
    out = Backdrop(BackgroundConfig(mode="image", image=str(tmp_path / "scene.png"))).apply_rgb(
        image, alpha)
    assert np.array_equal(out[:, :100], image[:, :100])
    assert (out[:, 105:195] == (0, 0, 255)).all()  # the right half of the scene's centre


def test_blur_changes_background_and_keeps_person(half):
    image, alpha = half
    out = Backdrop(BackgroundConfig(mode="blur")).apply_rgb(image, alpha)
    assert np.array_equal(out[:, :100], image[:, :100])
    changed = np.abs(out[:, 110:].astype(int) - image[:, 110:]).max(axis=2) > 20
    assert changed.mean() > 0.9
    assert out[:, 110:].std() < image[:, 110:].std() / 3  # smoothed, not just altered


def test_blur_does_not_bleed_the_person_into_the_background():
    """A bright person on a dark room: the blurred room next to them stays dark (no halo)."""
    image = np.full((180, 320, 3), 20, np.uint8)
    image[:, :160] = 240
    alpha = np.zeros(image.shape[:2], np.float32)
    alpha[:, :160] = 1.0
    out = Backdrop(BackgroundConfig(mode="blur", strength=3)).apply_rgb(image, alpha)
    assert out[:, 162:].max() <= 30
    plain = cv2.GaussianBlur(image, (0, 0), 3 * 0.03 * 180)  # what an ordinary blur would do
    assert plain[:, 162:].max() > 100


def test_transparent_gives_rgba_with_the_alpha(half, tmp_path):
    image, alpha = half
    out = Backdrop(BackgroundConfig(mode="transparent")).apply_rgb(image, alpha)
    assert out.shape == (120, 200, 4)
    assert np.array_equal(out[..., :3], image)
    assert (out[:, :100, 3] == 255).all() and (out[:, 100:, 3] == 0).all()
    write_image(tmp_path / "cut.png", out)
    back = read_image(tmp_path / "cut.png")
    assert np.array_equal(back.alpha, out[..., 3])
    with pytest.raises(Exception, match="transparent"):
        write_image(tmp_path / "cut.jpg", out)
    assert not (tmp_path / "cut.jpg").exists()


@pytest.mark.parametrize("mode", ["blur", "color"])
def test_i420_planes_match_the_rgb_result(half, mode):
    """Video composites on YUV planes; it must look like the RGB result."""
    image, alpha = half
    backdrop = Backdrop(BackgroundConfig(mode=mode, color=GREEN))
    yuv = cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420)
    y, chroma = yuv[:120], yuv[120:].reshape(-1)
    planes = [y, chroma[:6000].reshape(60, 100), chroma[6000:].reshape(60, 100)]
    out = backdrop.apply_planes(planes, alpha, "i420")
    rgb = cv2.cvtColor(np.vstack([out[0], np.concatenate([out[1].ravel(), out[2].ravel()])
                                  .reshape(60, 200)]), cv2.COLOR_YUV2RGB_I420)
    want = backdrop.apply_rgb(image, alpha)
    diff = np.abs(rgb[:, 104:].astype(int) - want[:, 104:]).mean()
    assert diff < 8


# ---- the person mask


class ScriptedSegmenter:
    """Gives back the confidences it was handed, to test PersonMasker's arithmetic exactly."""

    name = "scripted"
    input_size = (64, 64)

    def __init__(self, masks):
        self.masks = iter(masks)

    def person_mask(self, frame):
        return next(self.masks)


def test_threshold_ramp_and_feathered_edge():
    conf = np.zeros((64, 64), np.float32)
    conf[:, :32] = 1.0
    hard = PersonMasker(ScriptedSegmenter([conf]), BackgroundConfig(mode="blur", feather=0))
    a = hard.alpha(np.zeros((64, 64, 3), np.uint8), (64, 64))
    assert set(np.unique(a)) == {0.0, 1.0}
    soft = PersonMasker(ScriptedSegmenter([conf]), BackgroundConfig(mode="blur", feather=0.05))
    a = soft.alpha(np.zeros((64, 64, 3), np.uint8), (256, 256))
    row = a[128]
    band = (row > 0.02) & (row < 0.98)
    # sigma = feather x short side: the 2%..98% band is about 4 sigma wide, not the whole row
    assert 0.1 * 256 <= band.sum() <= 0.3 * 256
    assert row[0] > 0.99 and row[-1] < 0.01
    assert np.all(np.diff(row) <= 1e-6)  # monotone: person fades into background


def test_video_smoothing_damps_shimmer_but_follows_motion():
    rng = np.random.default_rng(1)
    base = np.zeros((64, 64), np.float32)
    base[:, :32] = 1.0
    noisy = [np.clip(base + rng.normal(0, 0.2, base.shape), 0, 1).astype(np.float32)
             for _ in range(20)]
    moved = np.zeros_like(base)
    moved[:, :16] = 1.0  # the person stepped aside
    config = BackgroundConfig(mode="blur", feather=0)

    def run(video):
        masker = PersonMasker(ScriptedSegmenter([*noisy, moved]), config, video=video)
        return [masker.alpha(np.zeros((64, 64, 3), np.uint8), (64, 64)) for _ in range(21)]

    still, smoothed = run(False), run(True)
    flicker = [np.mean([np.abs(a - b).mean() for a, b in itertools.pairwise(m[1:20])])
               for m in (still, smoothed)]
    assert flicker[1] < flicker[0] * 0.6
    assert smoothed[-1][:, 20:28].mean() < 0.35  # the vacated strip is background at once


# ---- real portraits and group photos


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline(background="transparent")


@pytest.mark.parametrize(("person", "name"), PORTRAITS)
def test_portrait_person_kept_and_room_replaced(pipe, person, name):
    image = portrait(person, name)
    dets = pipe.detect(Frame(image))
    assert len(dets)
    _, alpha = cutout(pipe, image)
    for x1, y1, x2, y2 in dets.xyxy.astype(int):  # a face is a person: it is never replaced
        cy, cx = (y1 + y2) // 2, (x1 + x2) // 2
        assert alpha[cy, cx] > 0.99
    person, background = alpha > 0.99, alpha < 0.01
    assert 0.1 < person.mean() < 0.95 and background.mean() > 0.03
    # the edge is feathered all along: where person meets background, alpha is in between
    edge = cv2.morphologyEx((alpha > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT,
                            np.ones((3, 3), np.uint8)).astype(bool)
    assert np.mean((alpha[edge] > 0.02) & (alpha[edge] < 0.98)) > 0.95
    band = ~person & ~background
    assert band.sum() >= 3 * edge.sum()  # a few pixels wide, not a hard step


@pytest.mark.parametrize(("person", "name"), PORTRAITS[:3])
def test_portrait_colour_with_pixelated_face(person, name):
    """Person pixels are the original apart from the face effect; background pixels are green."""
    image = portrait(person, name)
    faces_only = Pipeline(method="pixelate")
    both = Pipeline(method="pixelate", background="color:#00ff00")
    frame = Frame(image)
    dets = faces_only.detect(frame)
    hidden = faces_only.render(frame, dets)
    out = both.render(frame, dets)
    alpha = both.person_masker().alpha(
        cv2.resize(image, both.person_masker().model_input(image.shape[1], image.shape[0]),
                   interpolation=cv2.INTER_AREA), image.shape[:2])
    person, background = alpha > 0.999, alpha < 0.001
    assert np.abs(out[person].astype(int) - hidden[person]).max() <= 1
    assert (out[background] == GREEN).all()
    face_changed = np.abs(out.astype(int) - image).max(axis=2) > 0
    for x1, y1, x2, y2 in dets.xyxy.astype(int):  # the face effect is still there
        assert face_changed[(y1 + y2) // 2, (x1 + x2) // 2]


@pytest.mark.parametrize("name", ["two_people.jpg", "obama_and_biden.jpg", "kit_with_rose.jpg"])
def test_several_people_all_kept(pipe, name):
    image = read_image(require_data("identities", "_multi_person", name)).rgb
    dets = pipe.detect(Frame(image))
    assert len(dets) >= 2
    _, alpha = cutout(pipe, image)
    # the two people the photo is of (small faces in the dark behind them may not be segmented;
    # they are hidden by the face effect either way)
    area = (dets.xyxy[:, 2] - dets.xyxy[:, 0]) * (dets.xyxy[:, 3] - dets.xyxy[:, 1])
    for x1, y1, x2, y2 in dets.xyxy[np.argsort(area)[-2:]].astype(int):
        assert alpha[(y1 + y2) // 2, (x1 + x2) // 2] > 0.9


# ---- video


def frames_of(path, count=None) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if count and len(out) == count:
                break
    return out


@pytest.mark.slow
def test_talking_head_room_blurred_face_kept(tmp_path):
    """`--background blur --method none`: the speaker's face as it was, the room blurred."""
    src = require_data("videos", "sadtalker_WDA_KatieHill_000.mp4")
    dst = tmp_path / "out.mp4"
    pipeline = Pipeline(background="blur", method="none")
    report = process_video(src, dst, pipeline)
    assert report.frames == 200
    before, after = frames_of(src, 60), frames_of(dst, 60)
    masker = PersonMasker(pipeline._segmenter, pipeline.config.background)
    for i in (0, 30, 59):
        small = cv2.resize(before[i], masker.model_input(512, 512), interpolation=cv2.INTER_AREA)
        alpha = masker.alpha(small, (512, 512))
        diff = np.abs(after[i].astype(int) - before[i]).max(axis=2)
        dets = pipeline.detect(Frame(before[i]))
        assert len(dets) == 1
        x1, y1, x2, y2 = dets.xyxy[0].astype(int)
        face = diff[y1:y2, x1:x2]
        assert np.median(face) <= 6  # only the codec's noise on the face
        room = diff[alpha < 0.01]
        assert room.size > 0.05 * diff.size and np.mean(room > 12) > 0.3


def edge_flicker(frames, masker) -> float:
    """Mean frame-to-frame change of the mask in its edge band, in alpha units."""
    alphas = []
    for f in frames:
        h, w = f.shape[:2]
        small = cv2.resize(f, masker.model_input(w, h), interpolation=cv2.INTER_AREA)
        alphas.append(masker.alpha(small, (h, w)))
    band = np.zeros(alphas[0].shape, bool)
    for a in alphas:
        band |= (a > 0.05) & (a < 0.95)
    return float(np.mean([np.abs(a - b)[band].mean() for a, b in itertools.pairwise(alphas)]))


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["sadtalker_WDA_KatieHill_000.mp4",
                                  "liveportrait_d13_vertical_noaudio.mp4"])
def test_mask_is_stable_on_a_still_speaker(clip):
    frames = frames_of(require_data("videos", clip), 60)
    seg = segmenters.create("selfie")
    raw = edge_flicker(frames, PersonMasker(seg, BackgroundConfig(mode="blur", smooth=0),
                                            video=True))
    smooth = edge_flicker(frames, PersonMasker(seg, BackgroundConfig(mode="blur"), video=True))
    assert smooth < raw * 0.8
    assert smooth < 0.05


def test_video_refuses_a_transparent_background(tmp_path):
    src = require_data("videos", "hamilton_short_clip.mp4")
    with pytest.raises(Exception, match="transparent"):
        process_video(src, tmp_path / "out.mp4", Pipeline(background="transparent"))
    assert not list(tmp_path.iterdir())


# ---- command line


def test_cli_transparent_picture_becomes_png(tmp_path, capsys):
    src = require_data("identities", "obama", "obama.jpg")
    work = tmp_path / "in"
    work.mkdir()
    (work / "me.jpg").write_bytes(src.read_bytes())
    assert main(["run", str(work / "me.jpg"), "--background", "transparent", "--no-progress"]) == 0
    out = read_image(work / "me.anonymized.png")
    assert out.alpha is not None and (out.alpha == 0).mean() > 0.05 and (out.alpha == 255).mean() > 0.1
    assert not (work / "me.anonymized.jpg").exists()
    # a named JPEG output cannot hold it: a clear error, nothing written
    code = main(["run", str(work / "me.jpg"), "-o", str(tmp_path / "x.jpg"),
                 "--background", "transparent", "--no-progress"])
    assert code == ExitCode.FAILED
    assert "transparent" in capsys.readouterr().err
    assert not (tmp_path / "x.jpg").exists()


def test_cli_background_image_and_bad_values(tmp_path, capsys):
    src = require_data("identities", "biden", "biden.jpg")
    scene = tmp_path / "beach.png"
    write_image(scene, textured(60, 90))
    out = tmp_path / "o.jpg"
    assert main(["run", str(src), "-o", str(out), "--background", f"image:{scene}",
                 "--no-progress"]) == 0
    assert read_image(out).rgb.shape == read_image(src).rgb.shape
    for bad in (["--background", "sky"], ["--background", f"image:{tmp_path / 'none.png'}"],
                ["--background", "blur", "--background-threshold", "2"]):
        capsys.readouterr()
        assert main(["run", str(src), "-o", str(tmp_path / "p.jpg"), *bad]) == ExitCode.USAGE
        err = capsys.readouterr().err
        # the range is argparse's (usage, then its one error line), the others the CLI's line
        last = err.strip().splitlines()[-1]
        assert last.startswith(("faceveil: error:", "faceveil run: error: argument")), err
        assert "Traceback" not in err
