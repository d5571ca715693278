"""faceveil.media.images: decoding, metadata policy, refusing bad files, atomic writing."""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import textured
from faceveil.errors import CorruptMediaError, MediaTooLargeError, UnsupportedMediaError
from faceveil.media.images import DEFAULT_MAX_PIXELS, encode_image, read_image, write_image

MAKE, MODEL, ORIENTATION, GPS = 0x010F, 0x0110, 0x0112, 0x8825


def scene(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth picture with a few hard edges: JPEG keeps it close, every pixel differs a bit."""
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.stack([xs * 255 // (w - 1), ys * 255 // (h - 1), (xs + ys) * 127 // (w + h)], -1)
    img[h // 4:h // 2, w // 4:w // 2] = (240, 30, 30)
    return img.astype(np.uint8)


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def jpeg_bytes(arr: np.ndarray, **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95, **params)
    return buf.getvalue()


def png_bytes(arr: np.ndarray, **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", **params)
    return buf.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height black pixels: tiny on disk, huge once decoded."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = 1000
    raw = b"\0" * ((1 + (width + 7) // 8) * rows)  # filter byte + packed bits, 1000 rows at a time
    z = zlib.compressobj(9)
    data = b"".join(z.compress(raw) for _ in range(height // rows)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def exif(**tags) -> Image.Exif:
    out = Image.Exif()
    for key, value in tags.items():
        out[{"make": MAKE, "model": MODEL, "orientation": ORIENTATION, "gps": GPS}[key]] = value
    return out


GPS_IFD = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}


# --- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("suffix", "fmt", "tolerance"),
    [
        (".png", "PNG", 0),
        (".bmp", "BMP", 0),
        (".tif", "TIFF", 0),
        (".tiff", "TIFF", 0),
        (".jpg", "JPEG", 2.0),
        (".JPEG", "JPEG", 2.0),
        (".webp", "WEBP", 3.0),
    ],
)
def test_round_trip(tmp_path, suffix, fmt, tolerance):
    rgb = scene()
    path = write_image(tmp_path / f"out{suffix}", rgb)
    assert path == tmp_path / f"out{suffix}"
    with Image.open(path) as img:
        assert img.format == fmt  # the suffix picks the format
    pic = read_image(path)
    assert pic.format == fmt
    assert pic.rgb.dtype == np.uint8 and pic.rgb.shape == rgb.shape and pic.rgb.flags.c_contiguous
    assert pic.alpha is None and not pic.grayscale
    if tolerance == 0:
        np.testing.assert_array_equal(pic.rgb, rgb)
    else:
        assert mean_abs(pic.rgb, rgb) <= tolerance
        assert abs(int(pic.rgb[18, 24, 0]) - 240) < 20  # the red square is still red
    # the in-memory encoder gives the same format; read_image takes bytes and file objects too
    data = encode_image(rgb, fmt)
    assert read_image(data).format == fmt
    with open(path, "rb") as f:
        assert read_image(f).rgb.shape == rgb.shape


def test_format_comes_from_content_not_suffix(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(png_bytes(scene()))
    pic = read_image(path)
    assert pic.format == "PNG"
    np.testing.assert_array_equal(pic.rgb, scene())


@pytest.mark.parametrize("quality", [20, 60, 95])
def test_jpeg_quality_is_used(quality):
    rgb = textured(64, 64)
    data = encode_image(rgb, "JPEG", quality=quality)
    err = mean_abs(read_image(data).rgb, rgb)
    lower = encode_image(rgb, "JPEG", quality=max(1, quality - 15))
    assert len(lower) < len(data)  # higher quality: bigger file ...
    assert err < mean_abs(read_image(lower).rgb, rgb)  # ... and closer to the original


@pytest.mark.parametrize("quality", [0, 101])
def test_bad_quality(quality):
    with pytest.raises(ValueError, match="quality"):
        encode_image(scene(), "JPEG", quality=quality)


# --- orientation -------------------------------------------------------------------------------

MARK = (255, 0, 0)


def marked(h: int = 20, w: int = 40) -> np.ndarray:
    """Blue picture, red 6 x 6 square in the stored top-left corner."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:] = (0, 0, 255)
    arr[:6, :6] = MARK
    return arr


def corner_colours(rgb: np.ndarray) -> dict[str, np.ndarray]:
    return {"tl": rgb[1, 1], "tr": rgb[1, -2], "bl": rgb[-2, 1], "br": rgb[-2, -2]}


@pytest.mark.parametrize(
    ("orientation", "shape", "corner"),
    [
        (1, (20, 40), "tl"),
        (3, (20, 40), "br"),  # rotated 180
        (6, (40, 20), "tr"),  # stored rotated: shown turned 90 degrees clockwise
        (8, (40, 20), "bl"),  # shown turned 90 degrees counter-clockwise
        (2, (20, 40), "tr"),  # mirrored left-right
    ],
)
@pytest.mark.parametrize("container", ["JPEG", "PNG"])
def test_exif_orientation_is_applied(tmp_path, orientation, shape, corner, container):
    path = tmp_path / f"o{orientation}.{container.lower()}"
    Image.fromarray(marked()).save(path, container, exif=exif(orientation=orientation))
    pic = read_image(path)
    assert pic.rgb.shape[:2] == shape
    for name, colour in corner_colours(pic.rgb).items():
        is_red = colour[0] > 200 and colour[2] < 60
        assert is_red == (name == corner), (name, colour)
    # the orientation is now in the pixels: what is kept of the EXIF says so
    e = Image.Exif()
    e.load(pic.exif)
    assert e[ORIENTATION] == 1


# --- metadata ----------------------------------------------------------------------------------

@pytest.fixture
def camera_jpeg(tmp_path) -> Path:
    """A phone-like JPEG: device, GPS position, orientation 6, comment and XMP naming the owner."""
    path = tmp_path / "camera.jpg"
    e = exif(make="AcmePhone", model="Model X9", orientation=6, gps=GPS_IFD)
    Image.fromarray(marked()).save(path, "JPEG", quality=95, exif=e, comment=b"owner Jane Doe",
                                   xmp=b"<x:xmpmeta>creator Jane Doe</x:xmpmeta>", dpi=(300, 300))
    # the fixture is what it claims to be
    with Image.open(path) as img:
        assert img.getexif().get_ifd(GPS)[1] == "N" and img.getexif()[MAKE] == "AcmePhone"
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_metadata_is_stripped_by_default(tmp_path, camera_jpeg, suffix):
    pic = read_image(camera_jpeg)
    out = write_image(tmp_path / f"out{suffix}", pic.rgb, like=pic)
    raw = out.read_bytes()
    for secret in (b"AcmePhone", b"Model X9", b"Jane Doe", b"xmpmeta"):
        assert secret not in raw
    with Image.open(out) as img:
        e = img.getexif()  # for TIFF this also holds the file's own structure tags
        assert not {MAKE, MODEL, GPS, ORIENTATION, 0x8769} & set(e)
        assert "exif" not in img.info and "xmp" not in img.info and "comment" not in img.info
    # the pixels keep the orientation that was applied when reading
    assert read_image(out).rgb.shape[:2] == (40, 20)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_keep_metadata_keeps_device_but_not_gps(tmp_path, camera_jpeg, suffix):
    pic = read_image(camera_jpeg)
    out = write_image(tmp_path / f"out{suffix}", pic.rgb, like=pic, keep_metadata=True)
    with Image.open(out) as img:
        e = img.getexif()
        assert e[MAKE] == "AcmePhone" and e[MODEL] == "Model X9"
        assert GPS not in e and e.get_ifd(GPS) == {}
        assert e[ORIENTATION] == 1  # pixels are already upright: no viewer may turn them again
    assert b"Jane Doe" not in out.read_bytes()  # comments and XMP are never kept
    back = read_image(out)
    assert back.rgb.shape[:2] == (40, 20)
    assert mean_abs(back.rgb, pic.rgb) < 3


def test_picture_exif_has_no_gps(camera_jpeg):
    pic = read_image(camera_jpeg)
    e = Image.Exif()
    e.load(pic.exif)
    assert e[MAKE] == "AcmePhone" and GPS not in e
    assert read_image(jpeg_bytes(scene())).exif is None  # no EXIF in, none out


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_icc_profile_is_kept(tmp_path, suffix):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    src = tmp_path / "icc.jpg"
    src.write_bytes(jpeg_bytes(scene(), icc_profile=icc))
    pic = read_image(src)
    assert pic.icc_profile == icc
    for keep in (False, True):
        out = write_image(tmp_path / f"out{keep}{suffix}", pic.rgb, like=pic, keep_metadata=keep)
        with Image.open(out) as img:
            assert img.info.get("icc_profile") == icc


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_dpi_is_kept(tmp_path, camera_jpeg, suffix):
    pic = read_image(camera_jpeg)
    assert pic.dpi == pytest.approx((300, 300))
    out = write_image(tmp_path / f"out{suffix}", pic.rgb, like=pic)
    with Image.open(out) as img:
        assert tuple(img.info["dpi"]) == pytest.approx((300, 300), abs=0.1)


# --- alpha, grayscale, 16 bits -----------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_alpha_is_kept(tmp_path, suffix):
    rgba = np.dstack([scene(), np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))])
    src = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(src)
    pic = read_image(src)
    np.testing.assert_array_equal(pic.alpha, rgba[..., 3])
    np.testing.assert_array_equal(pic.rgb, rgba[..., :3])
    out = write_image(tmp_path / f"out{suffix}", pic.rgb, like=pic)
    with Image.open(out) as img:
        assert img.mode == "RGBA"
        back = np.asarray(img)
    assert np.abs(back[..., 3].astype(int) - rgba[..., 3]).max() <= (0 if suffix != ".webp" else 2)


def test_alpha_is_dropped_where_the_format_has_none(tmp_path):
    rgba = np.dstack([scene(), np.full((48, 64), 100, np.uint8)])
    pic = read_image(png_bytes(rgba))
    out = write_image(tmp_path / "out.jpg", pic.rgb, like=pic)
    with Image.open(out) as img:
        assert img.mode == "RGB"


def test_palette_with_transparency_gives_alpha():
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    img.putpixel((0, 0), 0)
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    pic = read_image(buf.getvalue())
    assert pic.alpha is not None and pic.alpha[0, 0] == 0 and pic.alpha[4, 4] == 255
    assert tuple(pic.rgb[4, 4]) == (255, 0, 0)


@pytest.mark.parametrize(("suffix", "tolerance"), [(".png", 0), (".jpg", 2.0), (".tif", 0)])
def test_grayscale_stays_grayscale(tmp_path, suffix, tolerance):
    gray = scene()[..., 0]
    src = tmp_path / f"gray{suffix}"
    Image.fromarray(gray, "L").save(src)
    pic = read_image(src)
    assert pic.grayscale
    assert pic.rgb.shape == (*gray.shape, 3)
    assert (pic.rgb[..., 0] == pic.rgb[..., 1]).all() and (pic.rgb[..., 1] == pic.rgb[..., 2]).all()
    assert mean_abs(pic.rgb[..., 0], gray) <= tolerance
    out = write_image(tmp_path / f"out{suffix}", pic.rgb, like=pic)
    with Image.open(out) as img:
        assert img.mode == "L"


def test_grayscale_with_alpha(tmp_path):
    la = Image.merge("LA", [Image.fromarray(scene()[..., 1]), Image.new("L", (64, 48), 77)])
    src = tmp_path / "la.png"
    la.save(src)
    pic = read_image(src)
    assert pic.grayscale and pic.alpha is not None and (pic.alpha == 77).all()
    with Image.open(write_image(tmp_path / "out.png", pic.rgb, like=pic)) as img:
        assert img.mode == "LA"




@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # full 16-bit range: 65535 -> 255, 32768 -> 128, 0 -> 0
        pytest.param([0, 257, 32768, 65535], [0, 1, 128, 255], id="full-range"),
        # a dark 16-bit picture must stay dark: 200 of 65535 is black, not 200 of 255
        pytest.param([0, 100, 200], [0, 0, 1], id="dark"),
    ],
)
def test_16_bit_png_is_scaled_to_8_bits(tmp_path, values, expected):
    arr = np.array([values], np.uint16).repeat(3, axis=0)
    src = tmp_path / "deep.png"
    Image.fromarray(arr).save(src)
    with Image.open(src) as img:
        assert img.mode.startswith("I")  # really a 16-bit PNG
    pic = read_image(src)
    assert pic.grayscale and pic.rgb.dtype == np.uint8
    assert np.abs(pic.rgb[0, :, 0].astype(int) - expected).max() <= 1


def test_extra_frames_are_counted(tmp_path):
    src = tmp_path / "pages.tif"
    pages = [Image.fromarray(scene()), Image.fromarray(scene()[::-1].copy())]
    pages[0].save(src, save_all=True, append_images=pages[1:])
    pic = read_image(src)
    assert pic.extra_frames == 1
    np.testing.assert_array_equal(pic.rgb, scene())  # the first page


# --- bad input ---------------------------------------------------------------------------------

def _truncated(fmt):
    def make(tmp_path):
        data = jpeg_bytes(textured(64, 64)) if fmt == "jpg" else png_bytes(textured(64, 64))
        path = tmp_path / f"cut.{fmt}"
        path.write_bytes(data[: len(data) // 2])
        return path
    return make


def _file(name, data):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return make


def _gif(tmp_path):
    path = tmp_path / "anim.gif"
    Image.fromarray(scene()).save(path)
    return path


def _folder(tmp_path):
    path = tmp_path / "photos.jpg"  # a folder, even if named like a picture
    path.mkdir()
    return path


def _missing(tmp_path):
    return tmp_path / "missing.jpg"


BAD = {
    "empty file": (_file("empty.jpg", b""), CorruptMediaError, "empty"),
    "empty bytes": (lambda _: b"", CorruptMediaError, "empty"),
    "random bytes": (lambda _: np.random.default_rng(0).bytes(500), UnsupportedMediaError, "not a picture"),
    "random file": (_file("noise.png", np.random.default_rng(1).bytes(500)), UnsupportedMediaError,
                    "not a picture"),
    "text as jpg": (_file("notes.jpg", b"shopping list\n- milk\n"), UnsupportedMediaError, "not a picture"),
    "truncated jpeg": (_truncated("jpg"), CorruptMediaError, "truncated"),
    "truncated png": (_truncated("png"), CorruptMediaError, "truncated"),
    "only a png signature": (_file("sig.png", b"\x89PNG\r\n\x1a\n"),
                             (CorruptMediaError, UnsupportedMediaError), "picture"),
    "gif": (_gif, UnsupportedMediaError, "GIF pictures are not supported"),
    "folder": (_folder, UnsupportedMediaError, "folder"),
    "missing": (_missing, FileNotFoundError, "missing.jpg"),
    "bomb": (lambda _: png_bomb(20000, 20000), MediaTooLargeError, "decompression bomb"),
    "over default limit": (lambda _: png_bomb(13000, 12000), MediaTooLargeError, "over the limit of 150"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(tmp_path, case):
    make, error, message = BAD[case]
    source = make(tmp_path)
    with pytest.raises(error, match=message) as info:
        read_image(source)
    if error is not FileNotFoundError:
        assert isinstance(info.value, ValueError)  # every media error is also a ValueError


def test_bombs_are_small_on_disk():
    # what makes them dangerous: the decoded size, not the file size
    assert len(png_bomb(20000, 20000)) < 100_000
    assert DEFAULT_MAX_PIXELS < 13000 * 12000


@pytest.mark.parametrize(("size", "limit", "ok"), [((100, 80), 8000, True), ((100, 80), 7999, False)])
def test_max_pixels(size, limit, ok):
    data = png_bytes(scene(size[1], size[0]))
    if ok:
        assert read_image(data, max_pixels=limit).rgb.shape == (80, 100, 3)
    else:
        with pytest.raises(MediaTooLargeError, match="100x80"):
            read_image(data, max_pixels=limit)


def test_max_pixels_above_pillows_own_limit_is_honoured(monkeypatch):
    # Shrink Pillow's global limit so the check is cheap to show: 100 x 100 = 10,000 pixels is over
    # Pillow's 2 x 1,000 but well under the max_pixels the caller asked for.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert read_image(png_bytes(scene(100, 100)), max_pixels=1_000_000).rgb.shape == (100, 100, 3)


# --- writing -----------------------------------------------------------------------------------

def test_write_leaves_no_temp_files(tmp_path):
    out = tmp_path / "deep" / "er" / "out.jpg"  # parent folders are made
    write_image(out, scene())
    write_image(out, textured(48, 64))  # overwrite
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.jpg"]
    assert mean_abs(read_image(out).rgb, textured(48, 64)) < mean_abs(read_image(out).rgb, scene())


@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, existing):
    out = tmp_path / "out.png"
    if existing:
        write_image(out, scene())
        before = out.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(out, textured(48, 64))
    if existing:
        assert out.read_bytes() == before  # the old file is untouched, never half-written
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    else:
        assert not out.exists()
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.gif", "out.txt", "out", "out.jpg.part", "out.heic"])
def test_unknown_output_suffix(tmp_path, name):
    with pytest.raises(UnsupportedMediaError, match="cannot write pictures as"):
        write_image(tmp_path / name, scene())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["GIF", "jpeg", "MPO"])
def test_encode_unknown_format(fmt):
    with pytest.raises(UnsupportedMediaError):
        encode_image(scene(), fmt)


def test_written_file_has_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    out = write_image(tmp_path / "out.jpg", scene())
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(b"x")
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("quality", [40, 75, 92])
def test_a_jpeg_is_written_at_its_own_estimated_quality_and_about_its_size(quality, astronaut):
    """The default writer follows a JPEG input's quality and subsampling (estimated from its
    quantization tables), so re-saving it keeps its size; a fixed 95 at 4:4:4 doubled it."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, "JPEG", quality=quality)  # Pillow's default: 4:2:0
    source = buf.getvalue()
    picture = read_image(source)
    assert picture.jpeg_quality == quality and picture.jpeg_subsampling == 2
    again = encode_image(picture.rgb, "JPEG", like=picture)
    assert 0.8 < len(again) / len(source) < 1.25
    fixed = encode_image(picture.rgb, "JPEG", like=picture, quality=95)
    assert len(fixed) > len(again)  # an explicit quality still wins
    png = read_image(encode_image(astronaut, "PNG"))
    assert png.jpeg_quality is None
    assert read_image(encode_image(astronaut, "JPEG", like=png)).jpeg_quality == 90
