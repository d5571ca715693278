"""faceveil.anonymization.effects, through Pipeline.render and the effect classes."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import make_detections, textured
from faceveil.anonymization.effects import Blur, Overlay, Pixelate, blend, effects
from faceveil.anonymization.masks import ShapeMask
from faceveil.config import EffectConfig, MaskConfig, PipelineConfig
from faceveil.errors import ConfigError, UnsupportedMediaError
from faceveil.pipeline import Pipeline
from faceveil.types import Frame

H, W = 200, 260
FACE = [70, 40, 166, 136]  # 96 x 96
SCENES = {
    "one": [FACE],
    "small": [[20, 20, 34, 36]],  # small face: the blur stays at its floor sigma
    "overlapping": [[40, 40, 100, 110], [90, 60, 150, 130]],
    "edges": [[-20, -10, 40, 60], [220, 150, 300, 230]],  # partly outside the frame
    "many": [[10, 10, 40, 45], [200, 20, 240, 70], [100, 120, 150, 180], [60, 30, 90, 60]],
}


@pytest.fixture(scope="module")
def overlay_png(tmp_path_factory):
    """A small, fully opaque red RGBA picture."""
    path = tmp_path_factory.mktemp("overlay") / "red.png"
    Image.new("RGBA", (16, 16), (255, 0, 0, 255)).save(path)
    return path


@pytest.fixture(scope="module")
def clear_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("overlay") / "clear.png"
    Image.new("RGBA", (16, 16), (0, 255, 0, 0)).save(path)
    return path


def options_for(method, overlay):
    return {"method": method, "image": str(overlay)} if method == "image" else {"method": method}


def render(picture, boxes, keep=None, **options):
    """(output, dense mask alpha) for the faces `boxes` hidden with `options`."""
    pipe = Pipeline(PipelineConfig().replace(**options))
    dets = make_detections(boxes, keep=keep)
    out = pipe.render(Frame(picture), dets)
    alpha = ShapeMask(pipe.config.mask).render(dets, picture.shape[:2]).to_array()
    return out, alpha


def laplacian_std(region: np.ndarray) -> float:
    gray = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(gray, cv2.CV_32F)[1:-1, 1:-1].std())


def central(box, frac=0.6):
    """Slices of the central `frac` of a box (pixel rows and columns fully inside it)."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * (1 - frac) / 2, (y2 - y1) * (1 - frac) / 2
    return slice(int(np.ceil(y1 + my)), int(y2 - my)), slice(int(np.ceil(x1 + mx)), int(x2 - mx))


# --- every method ------------------------------------------------------------------------------

ALL = ["blur", "pixelate", "solid", "image", "none"]


def test_every_registered_method_is_covered():
    assert set(effects.names()) == set(ALL)


@pytest.mark.parametrize("mask_shape", ["ellipse", "box"])
@pytest.mark.parametrize("scene", list(SCENES))
@pytest.mark.parametrize("method", ALL)
def test_pixels_outside_the_mask_are_exact(method, scene, mask_shape, overlay_png):
    image = textured(H, W, seed=3)
    before = image.copy()
    out, alpha = render(image, SCENES[scene], shape=mask_shape, **options_for(method, overlay_png))
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert out is not image
    np.testing.assert_array_equal(image, before)  # input untouched
    outside = alpha == 0
    assert outside.any() and (~outside).any()
    np.testing.assert_array_equal(out[outside], image[outside])


@pytest.mark.parametrize("scene", list(SCENES))
@pytest.mark.parametrize("method", ["blur", "pixelate", "solid", "image"])
def test_face_centres_change(method, scene, overlay_png):
    image = textured(H, W, seed=4)
    out, alpha = render(image, SCENES[scene], **options_for(method, overlay_png))
    full = alpha == 1
    assert full.sum() > 100
    changed = (out != image).any(axis=2)
    assert changed[full].mean() > 0.95


def test_none_changes_nothing():
    image = textured(H, W, seed=5)
    out, alpha = render(image, SCENES["many"], method="none")
    assert (alpha == 1).any()
    np.testing.assert_array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize("method", ["blur", "pixelate", "solid", "image"])
def test_kept_faces_stay_visible(method, overlay_png):
    image = textured(H, W, seed=6)
    boxes = [[20, 20, 80, 80], [150, 100, 220, 170]]
    out, _ = render(image, boxes, keep=[True, False], **options_for(method, overlay_png))
    ys, xs = central(boxes[0], 1.0)
    np.testing.assert_array_equal(out[ys, xs], image[ys, xs])
    ys, xs = central(boxes[1])
    assert (out[ys, xs] != image[ys, xs]).any(axis=2).mean() > 0.95


def test_no_faces_returns_an_equal_copy():
    image = textured(H, W, seed=7)
    out, _ = render(image, [], method="blur")
    np.testing.assert_array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize(
    ("base", "top", "alpha", "expected"),
    [
        (10, 250, 0.0, 10),
        (10, 250, 1.0, 250),
        (0, 255, 0.5, 127),  # 127.5: OpenCV rounds half to even
        (200, 100, 0.25, 175),
        (255, 0, 1e-4, 255),  # a trace of alpha does not move the pixel
    ],
)
def test_blend(base, top, alpha, expected):
    out = blend(np.full((1, 1, 3), base, np.uint8), np.full((1, 1, 3), top, np.uint8),
                np.full((1, 1), alpha, np.float32))
    assert out.dtype == np.uint8
    assert out.tolist() == [[[expected] * 3]]


# --- blur --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("face", "strength", "sigma"),
    [
        (100, 1.0, 20.0),  # sigma = strength * face / 5
        (200, 1.0, 40.0),  # twice the face: twice the blur
        (100, 2.0, 40.0),  # twice the strength: twice the blur
        (100, 0.5, 10.0),
        (40, 1.0, 8.0),
        (15, 1.0, 3.0),  # exactly the floor
        (10, 1.0, 3.0),  # below the floor: 2 -> 3
        (10, 0.05, 3.0),
        (100, 0.1, 3.0),  # 2 -> 3
    ],
)
def test_blur_sigma(face, strength, sigma):
    patch = ShapeMask().render(make_detections([[0, 0, face, face]]), (400, 400)).patches[0]
    blur = Blur(EffectConfig(strength=strength))
    assert blur.sigma(patch) == pytest.approx(sigma)
    assert blur.margin(patch) >= 2 * sigma


@pytest.mark.parametrize(
    ("box", "strength"),
    [
        ([70, 40, 166, 136], 1.0),  # big face: downscaled blur
        ([70, 40, 166, 136], 0.3),
        ([100, 80, 116, 96], 1.0),  # small face: floor sigma, direct blur
        ([0, 0, 60, 80], 1.0),  # at the frame corner
    ],
)
def test_blur_removes_fine_detail(box, strength):
    image = textured(H, W, seed=8)
    out, alpha = render(image, [box], method="blur", strength=strength)
    ys, xs = central(box)
    assert (alpha[ys, xs] == 1).all()
    before, after = laplacian_std(image[ys, xs]), laplacian_std(out[ys, xs])
    assert after < 0.1 * before
    # the blur keeps the overall colour: mean within a few levels of the original area's mean
    assert abs(float(out[ys, xs].mean()) - float(image[ys, xs].mean())) < 12


def test_stronger_blur_leaves_less_detail(astronaut):
    box = [170, 20, 290, 150]  # the astronaut's face
    ys, xs = central(box)
    energy = [laplacian_std(render(astronaut, [box], method="blur", strength=s)[0][ys, xs])
              for s in (0.1, 0.5, 1.0, 3.0)]
    assert energy == sorted(energy, reverse=True)
    assert energy[0] > 1.5 * energy[-1]
    assert laplacian_std(astronaut[ys, xs]) > energy[0]


# --- pixelate ----------------------------------------------------------------------------------

def runs(row: np.ndarray) -> list[int]:
    """Lengths of runs of equal colours along a (N, 3) row of pixels."""
    change = np.nonzero((row[1:] != row[:-1]).any(axis=1))[0]
    edges = [0, *(change + 1), len(row)]
    return list(np.diff(edges))


@pytest.mark.parametrize("blocks", [4, 6, 8, 12, 16])
def test_pixelate_blocks_across_the_face(blocks):
    image = textured(H, W, seed=9)
    out, alpha = render(image, [FACE], method="pixelate", blocks=blocks)
    x1, y1, x2, y2 = FACE
    block = (x2 - x1) / blocks
    for y in (y1 + 30, (y1 + y2) // 2, y2 - 30):
        assert (alpha[y, x1:x2] == 1).all()
        lengths = runs(out[y, x1:x2])
        assert abs(len(lengths) - blocks) <= 2, lengths
        # every run but the two cut by the face edges is one block wide (give or take a pixel)
        assert all(abs(n - block) <= 1.5 for n in lengths[1:-1]), lengths


@pytest.mark.parametrize("blocks", [4, 8, 16])
def test_pixelate_is_flat_blocks(blocks):
    image = textured(H, W, seed=10)
    out, _ = render(image, [FACE], method="pixelate", blocks=blocks)
    ys, xs = central(FACE)
    region = out[ys, xs]
    win = max(2, int((FACE[2] - FACE[0]) / blocks) - 2)  # smaller than a block
    for y in range(0, region.shape[0] - win, win):
        for x in range(0, region.shape[1] - win, win):
            colours = np.unique(region[y:y + win, x:x + win].reshape(-1, 3), axis=0)
            assert len(colours) <= 4  # a window smaller than a block touches at most 4 blocks
    # while the same window of the input is full of different colours
    assert len(np.unique(image[ys, xs][:win, :win].reshape(-1, 3), axis=0)) > win * win // 2


def test_pixelate_block_colour_is_the_local_mean():
    # left half dark, right half bright: blocks well inside each half keep that half's colour
    image = np.zeros((H, W, 3), np.uint8)
    image[:, W // 2:] = 200
    box = [W // 2 - 48, 50, W // 2 + 48, 146]
    out, _ = render(image, [box], method="pixelate", blocks=6)
    assert (out[98, box[0] + 2:box[0] + 20] == 0).all()
    assert (out[98, box[2] - 20:box[2] - 2] == 200).all()


# --- solid -------------------------------------------------------------------------------------

@pytest.mark.parametrize("color", [(0, 0, 0), (255, 255, 255), (12, 200, 99), "#ff8000"])
def test_solid_fills_with_the_exact_colour(color):
    image = textured(H, W, seed=11)
    out, alpha = render(image, SCENES["many"], method="solid", color=color)
    rgb = EffectConfig(color=color).color
    full = alpha == 1
    assert full.sum() > 100
    assert (out[full] == rgb).all()
    # feathered pixels lie between the picture and the colour
    soft = (alpha > 0) & (alpha < 1)
    assert soft.any()
    lo = np.minimum(image[soft], np.array(rgb, np.uint8)).astype(int)
    hi = np.maximum(image[soft], np.array(rgb, np.uint8)).astype(int)
    assert ((out[soft] >= lo) & (out[soft] <= hi)).all()


# --- weakness ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("options", "weak"),
    [
        ({"method": "blur"}, None),
        ({"method": "blur", "strength": 0.5}, None),
        ({"method": "blur", "strength": 0.49}, "0% / 3% / 3% of 40 / 80 / 160 px faces (measured at 0.3)"),
        ({"method": "blur", "strength": 0.05}, "blur strength 0.05 is below its privacy floor of 0.5"),
        ({"method": "blur", "strength": 0.2}, "re-identified 0% / 27% / 35% of 40 / 80 / 160 px"),
        ({"method": "pixelate"}, None),
        ({"method": "pixelate", "blocks": 10}, None),
        ({"method": "pixelate", "blocks": 11}, "3% / 3% / 0% of 40 / 80 / 160 px faces (measured at 12)"),
        ({"method": "pixelate", "blocks": 16}, "16 blocks across a face is weaker than its privacy floor"),
        ({"method": "pixelate", "blocks": 64}, "35% / 89% / 85% of 40 / 80 / 160 px faces (measured at 24)"),
        ({"method": "solid"}, None),
        ({"method": "solid", "strength": 0.1, "blocks": 60}, None),  # options of other methods
        ({"method": "image", "image": "x.png"}, None),
        ({"method": "image", "image": "x.png", "strength": 0.05}, None),  # the blur under it is floored
        ({"method": "none"}, "leaves every face visible"),
    ],
)
def test_weakness(options, weak, caplog):
    cfg = EffectConfig(**options)
    reason = effects.create(cfg.method, cfg).weakness()
    if weak is None:
        assert reason is None
    else:
        assert weak in reason
    with caplog.at_level(logging.WARNING, logger="faceveil"):
        Pipeline(PipelineConfig(effect=cfg))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    if weak is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and weak in warnings[0].getMessage()


def test_pipeline_options_override_config(caplog):
    with caplog.at_level(logging.WARNING, logger="faceveil"):
        pipe = Pipeline(PipelineConfig(), method="pixelate", blocks=32)
    assert isinstance(pipe.effect, Pixelate) and pipe.config.effect.blocks == 32
    assert any("32 blocks" in r.getMessage() for r in caplog.records)


# --- image overlay -----------------------------------------------------------------------------

def test_opaque_overlay_covers_the_face(overlay_png):
    image = textured(H, W, seed=12)
    out, alpha = render(image, [FACE], method="image", image=str(overlay_png))
    assert (out[alpha == 1] == (255, 0, 0)).all()


def test_transparent_overlay_still_hides_the_face(clear_png):
    image = textured(H, W, seed=13)
    out, _ = render(image, [FACE], method="image", image=str(clear_png))
    blurred, _ = render(image, [FACE], method="blur")
    # nothing of the overlay shows, and the blur underneath still hides the face
    np.testing.assert_array_equal(out, blurred)
    ys, xs = central(FACE)
    assert laplacian_std(out[ys, xs]) < 0.1 * laplacian_std(image[ys, xs])


def test_half_transparent_overlay_mixes_with_the_blur(tmp_path):
    path = tmp_path / "half.png"
    Image.new("RGBA", (8, 8), (255, 255, 255, 128)).save(path)
    image = textured(H, W, seed=14)
    out, alpha = render(image, [FACE], method="image", image=str(path))
    blurred, _ = render(image, [FACE], method="blur")
    full = alpha == 1
    expected = blurred[full].astype(float) * (1 - 128 / 255) + 255 * 128 / 255
    assert np.abs(out[full].astype(float) - expected).max() <= 1.5


def test_a_round_opaque_picture_shows_nothing_of_the_face_centre(tmp_path):
    """The image method's floor, part 1 (part 2: test_overlay_blur_never_goes_below_the_floor):
    the picture is scaled to the padded face box, so a round emoji covers the face's centre
    (eyes, nose, mouth: the central 60% x 60% of the detected box) with the picture alone: two
    different faces under it give the same pixels there."""
    from faceveil.audit.reid import emoji_picture

    path = tmp_path / "emoji.png"
    Image.fromarray(emoji_picture()).save(path)
    one, _ = render(textured(H, W, seed=16), [FACE], method="image", image=str(path))
    other, _ = render(textured(H, W, seed=17), [FACE], method="image", image=str(path))
    ys, xs = central(FACE)
    np.testing.assert_array_equal(one[ys, xs], other[ys, xs])
    # and the picture sits on the face, centred: its yellow disc fills the box's centre
    assert (np.abs(one[ys, xs].astype(int) - (255, 204, 51)).max(axis=2) <= 2).mean() > 0.6


def test_missing_overlay_raises_config_error(tmp_path):
    missing = tmp_path / "nope.png"
    pipe = Pipeline(method="image", image=str(missing))
    with pytest.raises(ConfigError, match=r"nope\.png"):
        pipe.render(Frame(textured(H, W)), make_detections([FACE]))


def test_overlay_that_is_not_a_picture_raises(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    effect = Overlay(EffectConfig(method="image", image=str(path)))
    mask = ShapeMask(MaskConfig()).render(make_detections([FACE]), (H, W))
    with pytest.raises(UnsupportedMediaError):
        effect.apply(textured(H, W), mask)


def test_overlay_blur_never_goes_below_the_floor(clear_png):
    """What shows through a picture's transparent parts is at least the floor blur."""
    from faceveil.anonymization.effects import BLUR_FLOOR

    image = textured(H, W, seed=15)
    weak, _ = render(image, [FACE], method="image", image=str(clear_png), strength=0.05)
    floor, _ = render(image, [FACE], method="blur", strength=BLUR_FLOOR)
    np.testing.assert_array_equal(weak, floor)
