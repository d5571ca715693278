"""faceveil.anonymization.masks: padded, feathered face shapes merged into non-overlapping patches."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_detections
from faceveil.anonymization.masks import BoxMask, EllipseMask, Mask, ShapeMask, masks
from faceveil.config import MaskConfig

SHAPES = ["ellipse", "box"]


def render(boxes, shape=(200, 300), keep=None, mask_shape="ellipse", **config) -> Mask:
    renderer = ShapeMask(MaskConfig(shape=mask_shape, **config))
    return renderer.render(make_detections(boxes, keep=keep), shape)


def pixel_grid(shape):
    """x and y of every pixel centre."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    return xs + 0.5, ys + 0.5


def inside(box, shape, frac: float) -> np.ndarray:
    """Pixels whose centre lies in the box shrunk (frac < 1) or grown (frac > 1) about its centre."""
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2 * frac, (y2 - y1) / 2 * frac
    xs, ys = pixel_grid(shape)
    return (np.abs(xs - cx) <= hw) & (np.abs(ys - cy) <= hh)


FACES = [
    [100, 50, 160, 130],  # 60 x 80
    [10.3, 20.7, 22.9, 36.1],  # small, fractional corners
    [120, 60, 240, 140],  # wide
    [140, 20, 170, 190],  # tall
]


# --- one face ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mask_shape", SHAPES)
@pytest.mark.parametrize("box", FACES)
def test_single_face_alpha(mask_shape, box):
    shape = (200, 300)
    alpha = render([box], shape, mask_shape=mask_shape).to_array()
    assert alpha.dtype == np.float32 and alpha.shape == shape
    assert alpha.min() >= 0 and alpha.max() <= 1
    # the central 60 % of the face box is fully hidden
    centre = inside(box, shape, 0.6)
    assert centre.any()
    assert (alpha[centre] == 1).all()
    # nothing outside the padded box (default scale 1.3)
    assert (alpha[~inside(box, shape, 1.3)] == 0).all()
    # the face itself is mostly hidden
    assert alpha[inside(box, shape, 1.0)].mean() > 0.8


def test_ellipse_and_box_differ_in_the_corners():
    box = [100, 50, 180, 130]
    x1, y1 = box[:2]
    # a pixel near the corner of the face box: inside a rectangle, outside an ellipse of scale 1.3
    cx, cy = int(x1 + 2), int(y1 + 2)
    ell = render([box]).to_array()
    rect = render([box], mask_shape="box").to_array()
    assert rect[cy, cx] == 1
    assert ell[cy, cx] == 0
    assert rect.sum() > ell.sum()


@pytest.mark.parametrize(
    ("factory", "expect_corner"),
    [(EllipseMask, 0.0), (BoxMask, 1.0), (lambda c: masks.create("box", c), 1.0),
     (lambda c: masks.create("ellipse", c), 0.0)],
)
def test_factories_pick_the_shape(factory, expect_corner):
    m = factory(MaskConfig()).render(make_detections([[100, 50, 180, 130]]), (200, 300)).to_array()
    assert m[52, 102] == expect_corner


@pytest.mark.parametrize("mask_shape", SHAPES)
@pytest.mark.parametrize("feather", [0.05, 0.15, 0.3, 0.5])
def test_feathered_edge_has_intermediate_values(mask_shape, feather):
    alpha = render([[100, 50, 160, 130]], mask_shape=mask_shape, feather=feather).to_array()
    soft = (alpha > 0) & (alpha < 1)
    # at least a one-pixel ring around the shape: perimeter of the padded 78 x 104 box is ~ 300 px
    assert soft.sum() > 150


@pytest.mark.parametrize("mask_shape", SHAPES)
def test_feather_widens_the_soft_edge(mask_shape):
    def soft(feather):
        a = render([[100, 50, 160, 130]], mask_shape=mask_shape, feather=feather).to_array()
        return int(((a > 0) & (a < 1)).sum())

    assert soft(0.05) < soft(0.2) < soft(0.5)


@pytest.mark.parametrize("mask_shape", SHAPES)
@pytest.mark.parametrize("box", FACES)
def test_no_feather_gives_a_hard_edge(mask_shape, box):
    alpha = render([box], mask_shape=mask_shape, feather=0.0).to_array()
    soft = (alpha > 0) & (alpha < 1)
    assert soft.sum() <= 2  # only pixel centres that fall exactly on the edge
    # and the hard shape still covers the padded box's inner part
    assert (alpha[inside(box, alpha.shape, 1.2)] == 1).mean() > 0.75


@pytest.mark.parametrize("mask_shape", SHAPES)
def test_scale_grows_the_area(mask_shape):
    box = [120, 70, 180, 130]  # 60 x 60, room to grow in a 200 x 300 frame
    areas = [render([box], mask_shape=mask_shape, scale=s, feather=0).to_array().sum()
             for s in (0.5, 1.0, 1.3, 2.0)]
    assert areas == sorted(areas) and len(set(areas)) == 4
    # area goes with the square of the scale (ellipse: pi a b, box: 4 a b)
    assert areas[3] / areas[1] == pytest.approx(4.0, rel=0.1)
    expected = (np.pi if mask_shape == "ellipse" else 4.0) * 30 * 30
    assert areas[1] == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.3, 2.5])
def test_patch_boxes_are_the_padded_faces(scale):
    m = render([[170, 110, 230, 190]], (300, 400), scale=scale)
    (p,) = m.patches
    cx, cy, hw, hh = 200, 150, 30 * scale, 40 * scale
    np.testing.assert_allclose(p.boxes, [[cx - hw, cy - hh, cx + hw, cy + hh]], atol=1e-4)
    # the patch is the padded box rounded outwards
    assert (p.x0, p.y0) == (int(np.floor(cx - hw)), int(np.floor(cy - hh)))
    assert (p.x1, p.y1) == (int(np.ceil(cx + hw)), int(np.ceil(cy + hh)))


# --- several faces -----------------------------------------------------------------------------

def test_kept_faces_produce_no_patch():
    assert len(render([[10, 10, 50, 50]], keep=[True])) == 0
    assert len(render([[10, 10, 50, 50], [200, 100, 250, 160]], keep=[True, True])) == 0
    m = render([[10, 10, 50, 50], [200, 100, 250, 160]], keep=[True, False])
    assert len(m) == 1
    alpha = m.to_array()
    assert alpha[30, 30] == 0 and alpha[130, 225] == 1


def test_no_faces():
    m = ShapeMask().render(make_detections([]), (20, 30))
    assert len(m) == 0 and m.shape == (20, 30)
    assert not m.to_array().any() and m.to_array().shape == (20, 30)


@pytest.mark.parametrize(
    ("boxes", "n_patches"),
    [
        ([[50, 50, 90, 90], [80, 60, 120, 100]], 1),  # faces overlap
        ([[50, 50, 90, 90], [95, 50, 135, 90]], 1),  # faces apart, padded boxes overlap
        ([[20, 20, 50, 50], [200, 120, 240, 160]], 2),  # far apart
        ([[20, 20, 50, 50], [55, 20, 85, 50], [90, 20, 120, 50]], 1),  # a chain A-B-C
        ([[20, 20, 50, 50], [60, 20, 90, 50], [100, 20, 130, 50]], 3),  # padded boxes just apart
        ([[20, 20, 50, 50], [20, 20, 50, 50]], 1),  # the same face twice
        ([[20, 20, 40, 40], [100, 20, 120, 40], [200, 20, 220, 40], [20, 150, 40, 170]], 4),
    ],
)
def test_overlapping_faces_share_one_patch(boxes, n_patches):
    m = render(boxes)
    assert len(m) == n_patches
    assert sum(len(p.boxes) for p in m.patches) == len(boxes)  # every face lands in one patch


def test_merging_patches_can_pull_in_a_third_face():
    # A and B overlap; their merged rectangle reaches C's, though C's padded box touches neither
    # A's nor B's on its own. Patches must still not overlap, so all three end up together.
    a, b, c = [10, 10, 50, 30], [40, 30, 80, 70], [10, 45, 24, 59]
    singles = [render([x]).patches[0] for x in (a, b, c)]

    def overlap(p, q):
        return p.x0 < q.x1 and q.x0 < p.x1 and p.y0 < q.y1 and q.y0 < p.y1

    assert overlap(singles[0], singles[1])
    assert not overlap(singles[0], singles[2]) and not overlap(singles[1], singles[2])
    m = render([a, b, c])
    assert len(m) == 1


def random_boxes(seed: int, n: int, shape=(240, 320)):
    rng = np.random.default_rng(seed)
    h, w = shape
    size = rng.uniform(4, 60, (n, 2))
    x1 = rng.uniform(-20, w, n)
    y1 = rng.uniform(-20, h, n)
    return np.stack([x1, y1, x1 + size[:, 0], y1 + size[:, 1]], 1)


@pytest.mark.parametrize("mask_shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_random_faces_patches_never_overlap(seed, mask_shape):
    shape = (240, 320)
    boxes = random_boxes(seed, 25, shape)
    m = render(boxes, shape, mask_shape=mask_shape)
    assert len(m) >= 1
    cover = np.zeros(shape, int)
    for p in m.patches:
        assert 0 <= p.x0 < p.x1 <= shape[1] and 0 <= p.y0 < p.y1 <= shape[0]
        cover[p.slices] += 1
    assert cover.max() == 1  # pairwise disjoint
    # merged patches hide exactly what each face hides on its own
    singles = [render([b], shape, mask_shape=mask_shape).to_array() for b in boxes]
    np.testing.assert_array_equal(m.to_array(), np.maximum.reduce(singles))


def test_a_crowd_of_thousands_is_grouped_without_a_matrix_of_all_pairs():
    """20,000 faces (a stadium): 100 rows of 200 overlapping faces each, rows apart. An N x N
    overlap matrix would need gigabytes; the sweep stays small."""
    import tracemalloc

    xs, ys = np.meshgrid(np.arange(200) * 30.0, np.arange(100) * 60.0)
    boxes = np.stack([xs.ravel(), ys.ravel(), xs.ravel() + 40, ys.ravel() + 40], 1)
    shape = (6000, 6100)
    tracemalloc.start()
    try:
        m = ShapeMask(MaskConfig(scale=1.0, feather=0.0), shape="box").render(
            make_detections(boxes), shape)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(m) == 100  # one patch a row
    assert all(p.boxes.shape == (200, 4) for p in m.patches)
    assert peak < 400 * 2**20, f"{peak / 2**20:.0f} MiB"  # ~100 MiB: the patches themselves


@pytest.mark.parametrize("seed", [5, 6])
def test_to_array_matches_patches(seed):
    shape = (240, 320)
    m = render(random_boxes(seed, 12, shape), shape)
    dense = m.to_array()
    covered = np.zeros(shape, bool)
    for p in m.patches:
        np.testing.assert_array_equal(dense[p.slices], p.alpha)
        assert p.alpha.dtype == np.float32
        covered[p.slices] = True
    assert not dense[~covered].any()


@pytest.mark.parametrize(
    "box",
    [
        [-30, -20, 40, 50],  # top-left corner outside
        [260, 150, 340, 260],  # bottom-right outside
        [-50, 80, 350, 120],  # wider than the frame
    ],
)
def test_boxes_partly_outside_are_clipped(box):
    shape = (200, 300)
    m = render([box], shape)
    (p,) = m.patches
    assert p.x0 >= 0 and p.y0 >= 0 and p.x1 <= shape[1] and p.y1 <= shape[0]
    assert p.alpha.shape == (p.y1 - p.y0, p.x1 - p.x0)
    dense = m.to_array()
    centre = inside(box, shape, 0.6)
    assert centre.any() and (dense[centre] == 1).all()
    # clipping keeps the shape where it was: compare with the same face in a frame big enough
    pad = 100
    big = render([np.add(box, [pad, pad, pad, pad])], (shape[0] + 2 * pad, shape[1] + 2 * pad))
    np.testing.assert_array_equal(dense, big.to_array()[pad:-pad, pad:-pad])


@pytest.mark.parametrize("box", [[-200, -200, -100, -100], [400, 0, 460, 50], [0, 300, 50, 360]])
def test_boxes_outside_the_frame_give_no_patch(box):
    m = render([box, [100, 100, 120, 120]], (200, 300))
    assert len(m) == 1
    assert m.patches[0].x0 >= 90


@pytest.mark.parametrize(
    ("boxes", "largest"),
    [
        ([[50, 50, 90, 90], [80, 60, 110, 80]], 40.0),  # 40 x 40 and 30 x 20
        ([[50, 50, 60, 60], [55, 52, 115, 67]], np.sqrt(60 * 15)),  # wide box wins by area
        ([[0, 0, 10, 10]], 10.0),
    ],
)
def test_face_size_of_a_patch_is_its_largest_face(boxes, largest):
    (p,) = render(boxes).patches
    assert p.face_size == pytest.approx(largest, rel=1e-5)


def test_face_size_uses_the_detected_box_not_the_padded_or_clipped_one():
    (p,) = render([[-20, 10, 20, 50]], scale=2.0).patches  # half outside the frame
    assert p.face_size == pytest.approx(40.0)


@pytest.mark.parametrize("mask_shape", SHAPES)
@pytest.mark.parametrize(("score", "factor"), [(0.9, 1.0), (0.6, 1.0), (0.4, 1.15), (0.2, 1.3),
                                               (0.05, 1.3)])
def test_unsure_detections_get_a_wider_mask(mask_shape, score, factor):
    """A detector places the box of a face it is unsure of less well: the padding grows as the
    score falls (score_padding), and a sure face keeps `scale` exactly."""
    box = [100, 60, 140, 110]
    d = make_detections([box], scores=np.array([score], np.float32))
    mask = ShapeMask(MaskConfig(shape=mask_shape)).render(d, (200, 300))
    (patch,) = mask.patches
    w, h = patch.boxes[0, 2] - patch.boxes[0, 0], patch.boxes[0, 3] - patch.boxes[0, 1]
    assert w == pytest.approx(40 * 1.3 * factor, rel=1e-4)
    assert h == pytest.approx(50 * 1.3 * factor, rel=1e-4)
    # the opaque part covers the whole core of a face whose box sits a fifth of its size off
    # only when the detector was unsure enough to widen it
    alpha = mask.to_array()
    core = alpha[int(85 - 0.3 * 50 + 10):int(85 + 0.3 * 50 + 10), (120 - 12 + 8):(120 + 12 + 8)]
    if mask_shape == "ellipse":  # (a box's corners reach further)
        assert (core.min() >= 0.99) == (factor >= 1.3)


def test_a_still_pictures_unsure_boxes_keep_the_plain_scale():
    """pad_unsure=False (pictures, see ShapeMask.render): every box gets `scale`, whatever its
    score; a video frame's unsure box is widened."""
    d = make_detections([[100, 60, 140, 110]], scores=np.array([0.2], np.float32))
    widths = []
    for pad in (False, True):
        (patch,) = ShapeMask(MaskConfig()).render(d, (200, 300), pad_unsure=pad).patches
        widths.append(patch.boxes[0, 2] - patch.boxes[0, 0])
    assert widths == pytest.approx([40 * 1.3, 40 * 1.3 * 1.3], rel=1e-4)


def test_crowd_masks_are_the_formula_written_out():
    """Live renders many boxes a frame; the mask's grouping and in-place arithmetic (kept for
    speed) give the same alpha, pixel for pixel, as each face's shape written out over the whole
    frame, overlapping faces taking the larger alpha."""
    from faceveil.anonymization.masks import ShapeMask, score_padding
    from faceveil.config import MaskConfig
    from faceveil.types import Detections

    rng = np.random.default_rng(7)
    h, w = 120, 160
    xy = rng.uniform(-10, [w, h], (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(2, 40, (30, 2))], 1).astype(np.float32)
    dets = Detections(boxes, rng.uniform(0.1, 1.0, 30).astype(np.float32))
    for shape in ("ellipse", "box"):
        mask = ShapeMask(MaskConfig(), shape=shape)
        got = mask.render(dets, (h, w)).to_array()
        want = np.zeros((h, w), np.float32)
        b = boxes.astype(np.float64)
        half = (b[:, 2:] - b[:, :2]) / 2 * mask.config.scale * score_padding(dets.scores)[:, None]
        centre = (b[:, :2] + b[:, 2:]) / 2
        for (cx, cy), (hx, hy) in zip(centre, half, strict=True):
            ax, ay = max(hx, 0.5), max(hy, 0.5)
            x0, x1 = max(0, int(np.floor(cx - hx))), min(w, int(np.ceil(cx + hx)))
            y0, y1 = max(0, int(np.floor(cy - hy))), min(h, int(np.ceil(cy + hy)))
            if x1 <= x0 or y1 <= y0:
                continue
            dx = np.abs((np.arange(x0, x1) + 0.5 - cx) / ax).astype(np.float32)[None, :]
            dy = np.abs((np.arange(y0, y1) + 0.5 - cy) / ay).astype(np.float32)[:, None]
            r = np.sqrt(dx * dx + dy * dy) if shape == "ellipse" else np.maximum(dx, dy)
            f = max(mask.config.feather, 1.5 / min(ax, ay))
            t = np.clip((1.0 - r) * np.float32(1.0 / f), 0.0, 1.0)
            want[y0:y1, x0:x1] = np.maximum(want[y0:y1, x0:x1], t * t * (3 - 2 * t))
        assert np.array_equal(got, want), shape
        assert (got > 0).sum() > 0.1 * h * w  # a crowd: many overlapping faces
