"""Reading and writing pictures: RGB uint8 inside, the file's own format outside.

Reading applies EXIF orientation to the pixels and refuses anything faceveil cannot trust:
unknown formats, empty, truncated or corrupt files, decompression bombs. Writing is atomic
(temp file, then rename) and strips metadata by default: EXIF (GPS, device, owner), XMP,
comments. ICC colour profiles and DPI are kept, since they change how the picture looks.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .._files import atomic_path
from ..errors import CorruptMediaError, MediaTooLargeError, UnreadableInputError, UnsupportedMediaError

log = logging.getLogger(__name__)

#: Pillow format name -> file suffixes, for the formats faceveil reads and writes.
FORMATS: dict[str, tuple[str, ...]] = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
}
_READ_AS = {"MPO": "JPEG"}  # phones' multi-picture JPEGs: the first picture is the photo
SUFFIXES = {s: f for f, suffixes in FORMATS.items() for s in suffixes}
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")  # formats that can hold transparency
DEFAULT_MAX_PIXELS = 150_000_000  # above any common camera; raise it with max_pixels


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """The one pixel limit, for pictures and video frames at every door (the web server's lower
    limit too), in one message."""
    if width <= 0 or height <= 0:
        raise CorruptMediaError("has no pixels")
    if width * height > max_pixels:
        raise MediaTooLargeError(f"{width}x{height} is {width * height:,} pixels, over the limit "
                                 f"of {max_pixels:,} (set max_pixels / --max-pixels)")
_GPS_IFD, _ORIENTATION = 0x8825, 0x0112
_TURNED = range(2, 9)  # EXIF orientations that move the pixels (1: as stored)


@dataclass(frozen=True, eq=False)
class Picture:
    """A decoded picture: RGB pixels plus what is needed to write it back alike."""

    rgb: np.ndarray  # (H, W, 3) uint8, orientation already applied
    alpha: np.ndarray | None  # (H, W) uint8 when the source had transparency
    format: str  # Pillow format name of the source, e.g. "JPEG"
    grayscale: bool  # the source was single-channel
    exif: bytes | None  # EXIF with GPS removed and orientation reset; None if absent
    icc_profile: bytes | None
    dpi: tuple[float, float] | None
    extra_frames: int = 0  # frames after the first (animations, multi-page TIFF): not kept
    jpeg_quality: int | None = None  # a JPEG source's quality (1..100), estimated from its tables
    jpeg_subsampling: int | None = None  # a JPEG source's chroma subsampling (Pillow's 0, 1, 2)


# Written JPEG/WebP quality when the caller does not set one and the source's cannot be
# estimated (not a JPEG, or unusual tables): 90 with 4:2:0 keeps outputs near their inputs'
# size on the shared photos (bench/README.md); the old fixed 95 at 4:4:4 doubled them.
DEFAULT_QUALITY = 90


def _ijg_tables() -> np.ndarray:
    """The luminance quantization table Pillow (libjpeg) writes at each quality 1..100."""
    global _TABLES
    if _TABLES is None:
        from PIL import Image

        tiny = Image.new("L", (8, 8))
        rows = []
        for q in range(1, 101):
            buf = io.BytesIO()
            tiny.save(buf, "JPEG", quality=q)
            rows.append(Image.open(buf).quantization[0])
        _TABLES = np.array(rows, np.float64)
    return _TABLES


_TABLES: np.ndarray | None = None


def estimate_jpeg_quality(img) -> int | None:
    """The libjpeg quality whose luminance table is nearest to this JPEG's (a Pillow image),
    or None when there is no table or none of them is near (a camera's own tables)."""
    tables = getattr(img, "quantization", None)
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    table = np.asarray(tables[0], np.float64)
    ref = _ijg_tables()
    error = np.abs(ref - table).mean(axis=1) / np.maximum(ref.mean(axis=1), 1.0)
    best = int(error.argmin())
    return best + 1 if error[best] < 0.25 else None


def format_for_suffix(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    try:
        return SUFFIXES[suffix]
    except KeyError:
        known = ", ".join(sorted(SUFFIXES))
        raise UnsupportedMediaError(f"cannot write pictures as {suffix or 'no suffix'!r} "
                                    f"(use one of {known})") from None


def open_input_file(path: str | os.PathLike) -> BinaryIO:
    """The input opened for reading; an unreadable one raises UnreadableInputError in words."""
    try:
        return open(path, "rb")
    except PermissionError:
        raise UnreadableInputError("cannot read it: permission denied") from None
    except IsADirectoryError:
        raise UnsupportedMediaError("is a folder, not a file") from None


def read_image(source: str | os.PathLike | bytes | BinaryIO,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode a picture file (path, bytes or binary file object)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise CorruptMediaError("empty file")
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise UnsupportedMediaError("is a folder, not a picture")
        if path.stat().st_size == 0:  # raises FileNotFoundError / PermissionError as they are
            raise CorruptMediaError("empty file")
        # Opened here, so a file that cannot be read says so, not "truncated or damaged".
        with open_input_file(path) as f:
            return read_image(f, max_pixels)
    if Image.MAX_IMAGE_PIXELS and max_pixels > 2 * Image.MAX_IMAGE_PIXELS:
        # Pillow refuses more than twice its limit inside open(), before our own check: raise
        # its (process-wide) limit only when the caller asked for more; never lower it.
        Image.MAX_IMAGE_PIXELS = max_pixels // 2 + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source)
    except UnidentifiedImageError:
        raise UnsupportedMediaError(
            "not a picture faceveil reads (JPEG, PNG, WebP, BMP or TIFF)") from None
    except Image.DecompressionBombError as exc:
        raise MediaTooLargeError(f"too many pixels (possible decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMediaError(f"truncated or damaged picture: {exc}") from None
    with img:
        fmt = _READ_AS.get(img.format or "", img.format or "")
        if fmt not in FORMATS:
            raise UnsupportedMediaError(f"{img.format or 'this'} pictures are not supported "
                                        "(JPEG, PNG, WebP, BMP or TIFF)")
        check_pixels(*img.size, max_pixels)
        frames = getattr(img, "n_frames", 1)
        jpeg = (estimate_jpeg_quality(img), _subsampling(img)) if fmt == "JPEG" else (None, None)
        try:
            img.load()
            exif = img.getexif()
            if exif.get(_ORIENTATION, 1) in _TURNED:  # else exif_transpose only copies the pixels
                img = ImageOps.exif_transpose(img) or img
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise CorruptMediaError(f"truncated or damaged picture: {exc}") from None
        return dataclasses.replace(_to_picture(img, fmt, exif, frames - 1),
                                   jpeg_quality=jpeg[0], jpeg_subsampling=jpeg[1])


def _subsampling(img) -> int | None:
    from PIL import JpegImagePlugin

    try:
        value = JpegImagePlugin.get_sampling(img)
    except Exception:  # an unusual JPEG: the writer's own choice
        return None
    return value if value in (0, 1, 2) else None


def _to_picture(img, fmt: str, exif, extra_frames: int) -> Picture:
    mode = img.mode
    alpha = None
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit or float: scale to 8 bits
        from PIL import Image

        arr = np.asarray(img, dtype=np.float64)
        # By bit depth, not by content: a dark 16-bit picture stays dark. Float pictures are
        # taken as 0..1 when they fit, else as 0..255.
        top = {"F": 1.0 if arr.max(initial=0) <= 1.0 else 255.0}.get(mode, 65535.0)
        img = Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8))
        mode = "L"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        rgb, alpha = np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    else:
        rgb = np.ascontiguousarray(np.asarray(img if mode == "RGB" else img.convert("RGB")))
    exif_bytes = None
    if exif:
        exif.pop(_GPS_IFD, None)
        exif[_ORIENTATION] = 1
        exif_bytes = exif.tobytes()
    dpi = img.info.get("dpi")
    return Picture(
        rgb=rgb, alpha=alpha, format=fmt, grayscale=mode in ("L", "LA", "1"),
        exif=exif_bytes, icc_profile=img.info.get("icc_profile"),
        dpi=tuple(float(v) for v in dpi[:2]) if dpi else None, extra_frames=extra_frames,
    )


def encode_image(rgb: np.ndarray, fmt: str, *, like: Picture | None = None,
                 quality: int | None = None, keep_metadata: bool = False) -> bytes:
    """Encode pixels in a format from FORMATS. With `like`, alpha, grayscale, ICC profile and
    DPI come from the source; its EXIF (without GPS) only with keep_metadata. `quality` None:
    a JPEG source's own quality (and subsampling) when it can be estimated, else
    DEFAULT_QUALITY."""
    buf = io.BytesIO()
    _save(rgb, buf, fmt, like, quality, keep_metadata)
    return buf.getvalue()


def write_image(path: str | os.PathLike, rgb: np.ndarray, *, like: Picture | None = None,
                quality: int | None = None, keep_metadata: bool = False) -> Path:
    """Write atomically; the format follows the path's suffix."""
    path = Path(path)
    fmt = format_for_suffix(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        _save(rgb, f, fmt, like, quality, keep_metadata)
    return path


def _save(rgb: np.ndarray, fp, fmt: str, like: Picture | None, quality: int | None,
          keep_metadata: bool) -> None:
    from PIL import Image

    if fmt not in FORMATS:
        raise UnsupportedMediaError(f"cannot write {fmt} pictures")
    subsampling = None
    if quality is None:  # follow the source when it was a JPEG of known quality
        source = like.jpeg_quality if like is not None else None
        quality = source or DEFAULT_QUALITY
        subsampling = like.jpeg_subsampling if source is not None else 2
    if not 1 <= quality <= 100:
        raise ValueError(f"image quality must be 1..100, got {quality}")
    alpha = like.alpha if like is not None else None
    if rgb.ndim == 3 and rgb.shape[2] == 4:  # a cut-out (transparent background)
        if fmt not in ALPHA_FORMATS:
            raise UnsupportedMediaError(
                f"{fmt} cannot hold a transparent background; write PNG, WebP or TIFF")
        rgb, alpha = rgb[..., :3], rgb[..., 3]
        if like is not None and like.alpha is not None and like.alpha.shape == alpha.shape:
            alpha = np.minimum(alpha, like.alpha)
    img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if like is not None and like.grayscale:
        img = img.convert("L")
    if alpha is not None and fmt in ALPHA_FORMATS and alpha.shape == rgb.shape[:2]:
        img.putalpha(Image.fromarray(np.ascontiguousarray(alpha), "L"))
    params: dict = {}
    if like is not None:
        if like.icc_profile:
            params["icc_profile"] = like.icc_profile
        if like.dpi and fmt in ("JPEG", "PNG", "TIFF", "BMP"):
            params["dpi"] = like.dpi
        if keep_metadata and like.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            params["exif"] = like.exif
    if fmt == "JPEG":
        if subsampling is None:
            subsampling = 0 if quality >= 90 else 2
        params.update(quality=quality, subsampling=subsampling)
    elif fmt == "WEBP":
        params.update(quality=quality, method=4)
    elif fmt == "PNG":
        params.update(compress_level=3)
    elif fmt == "TIFF":
        params.update(compression="tiff_lzw")
    img.save(fp, format=fmt, **params)
