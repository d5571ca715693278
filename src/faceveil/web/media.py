"""What an upload is, decided from its bytes; safe display names; zips opened with guards.

Client file names are never used as paths: every file the server writes gets a name of its
own (`0003.jpg`), with the suffix of the type its content shows. The client's name is only
cleaned up for display and for download names.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import stat
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import CorruptMediaError, MediaTooLargeError, UnsupportedMediaError
from ..media.images import check_pixels
from .errors import UnsafeArchiveError

log = logging.getLogger(__name__)


class ArchiveTooLargeError(MediaTooLargeError):
    """A zip over the entry, size or ratio limits (a zip bomb, or just too much)."""

HEAD = 64  # bytes that decide the type
SUPPORTED = ("JPEG, PNG, WebP, BMP or TIFF pictures, MP4, MOV, MKV, WebM or AVI videos, "
             "or a zip of them")


@dataclass(frozen=True)
class Kind:
    kind: str  # "image" | "video" | "zip"
    format: str  # Pillow format name for pictures; container for videos; "zip"
    suffix: str  # what files of this type are stored as
    mime: str


IMAGE_KINDS = {
    "JPEG": Kind("image", "JPEG", ".jpg", "image/jpeg"),
    "PNG": Kind("image", "PNG", ".png", "image/png"),
    "WEBP": Kind("image", "WEBP", ".webp", "image/webp"),
    "BMP": Kind("image", "BMP", ".bmp", "image/bmp"),
    "TIFF": Kind("image", "TIFF", ".tif", "image/tiff"),
}
VIDEO_KINDS = {
    "mp4": Kind("video", "mp4", ".mp4", "video/mp4"),
    "mov": Kind("video", "mov", ".mov", "video/quicktime"),
    "matroska": Kind("video", "matroska", ".mkv", "video/x-matroska"),
    "webm": Kind("video", "webm", ".webm", "video/webm"),
    "avi": Kind("video", "avi", ".avi", "video/x-msvideo"),
}
ZIP = Kind("zip", "zip", ".zip", "application/zip")
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
                b"msf1", b"avif", b"avis"}
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def sniff(head: bytes) -> Kind:
    """The type of a file from its first bytes; UnsupportedMediaError names what it looks like."""
    if not head:
        raise CorruptMediaError("empty file")
    if head.startswith(b"\xff\xd8\xff"):
        return IMAGE_KINDS["JPEG"]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return IMAGE_KINDS["PNG"]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return IMAGE_KINDS["WEBP"]
    if head[:2] == b"BM" and len(head) >= 26:
        return IMAGE_KINDS["BMP"]
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return IMAGE_KINDS["TIFF"]
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return ZIP
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            raise UnsupportedMediaError(f"HEIC/AVIF pictures are not supported; send {SUPPORTED}")
        return VIDEO_KINDS["mov" if brand == b"qt  " else "mp4"]
    if head[4:8] in _QT_ATOMS:
        return VIDEO_KINDS["mov"]
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return VIDEO_KINDS["webm" if b"webm" in head[:HEAD] else "matroska"]
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return VIDEO_KINDS["avi"]
    raise UnsupportedMediaError(f"{_looks_like(head)}: not supported; send {SUPPORTED}")


def _looks_like(head: bytes) -> str:
    known = [(b"GIF8", "a GIF picture"), (b"%PDF", "a PDF document"), (b"\x1f\x8b", "a gzip file"),
             (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"), (b"ID3", "an MP3 file"),
             (b"fLaC", "a FLAC file"), (b"OggS", "an Ogg file"), (b"\x00\x00\x01\xba", "an MPEG-PS video")]
    for magic, what in known:
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "a WAV sound file"
    if head[:1] == b"\x47" and len(head) > 1:
        return "an MPEG-TS stream or unknown data"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "unknown data"


# ------------------------------------------------------------------------------------- names

_FORBIDDEN = set('<>:"|?*')
_MAX_NAME = 120


def display_name(raw: str | None, fallback: str = "file") -> str:
    """A client's file name cleaned for display and downloads: last path part only, no control
    characters or characters that file systems refuse, no leading dots, at most 120 characters."""
    text = unicodedata.normalize("NFC", str(raw or ""))
    base = re.split(r"[\\/]", text)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C" and c not in _FORBIDDEN)
    base = base.strip().lstrip(".").strip()
    if not base:
        return fallback
    if len(base) > _MAX_NAME:
        stem, dot, ext = base.rpartition(".")
        ext = ext[:16] if dot else ""
        base = (stem if dot else base)[: _MAX_NAME - len(ext) - 1].rstrip() + (f".{ext}" if ext else "")
    return base


def display_path(raw: str, fallback: str = "file") -> str:
    """A zip entry's path cleaned part by part (for display and as a name inside the result zip)."""
    parts = [display_name(p, "") for p in re.split(r"[\\/]", raw)]
    parts = [p for p in parts if p]
    return "/".join(parts[-8:]) or fallback


def output_name(name: str, suffix: str) -> str:
    """`holiday/beach.jpg` -> `holiday/beach.anonymized.png` (suffix of the output's format)."""
    folder, _, base = name.rpartition("/")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return (f"{folder}/" if folder else "") + f"{stem or 'file'}.anonymized{suffix}"


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name (2)` ... when that one is taken (case-insensitively)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or "/" in ext:
        stem, ext = name, ""
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem} ({n})" + (f".{ext}" if ext else "")
    taken.add(candidate.lower())
    return candidate


# ------------------------------------------------------------------------------------- probes


def probe(path: Path, kind: Kind, max_pixels: int, max_video_seconds: float) -> int | None:
    """Cheap checks before a file is queued: the header decodes and is within the limits.
    For videos, the number of frames to expect (None when the file does not say)."""
    if kind.kind == "image":
        _probe_image(path, kind, max_pixels)
        return None
    return _probe_video(path, max_pixels, max_video_seconds)


def _probe_image(path: Path, kind: Kind, max_pixels: int) -> None:
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                fmt = "JPEG" if img.format == "MPO" else img.format
    except UnidentifiedImageError:
        raise CorruptMediaError(f"looks like a {kind.format} picture but cannot be read") from None
    except Image.DecompressionBombError as exc:
        raise MediaTooLargeError(f"too many pixels (possible decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMediaError(f"truncated or damaged picture: {exc}") from None
    if fmt != kind.format:
        raise CorruptMediaError(f"starts like a {kind.format} picture but reads as {fmt}")
    check_pixels(w, h, max_pixels)


def _probe_video(path: Path, max_pixels: int, max_seconds: float) -> int | None:
    from ..media.video import probe_video

    info = probe_video(path)  # CorruptMediaError / UnsupportedMediaError with clear messages
    check_pixels(info.width, info.height, max_pixels)
    if info.duration is not None and info.duration > max_seconds:
        raise MediaTooLargeError(f"the video is {info.duration / 60:.1f} minutes long, over the "
                                 f"limit of {max_seconds / 60:.0f}")
    if info.frames:
        return info.frames
    return round(info.duration * info.fps) if info.duration and info.fps else None


# --------------------------------------------------------------------------------------- zips


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_total: int
    max_ratio: float


@dataclass(frozen=True)
class ZipEntry:
    position: int  # index among the zip's entries (as listed in its central directory)
    name: str  # cleaned path, for display
    info: zipfile.ZipInfo


def unsafe_entry_name(name: str) -> bool:
    """Absolute paths, drive letters and '..' parts: entries that try to leave their folder."""
    n = name.replace("\\", "/")
    return n.startswith("/") or bool(re.match(r"^[A-Za-z]:", n)) or ".." in n.split("/")


def _ignored(name: str) -> bool:
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


@contextlib.contextmanager
def open_zip(path: Path, limits: ZipLimits) -> Iterator[tuple[zipfile.ZipFile, list[ZipEntry],
                                                              list[tuple[str, str]]]]:
    """The zip, its entries worth extracting and (name, reason) of those left out.

    Refuses the whole archive before anything is extracted when an entry name tries to leave
    the folder (zip slip), or when entry count, declared total size or compression ratio are
    over the limits (zip bombs). Extraction then counts real bytes too (`extract`).
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise CorruptMediaError(f"not a readable zip: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise ArchiveTooLargeError(f"the zip has {len(infos)} entries, over the limit of "
                                     f"{limits.max_entries}")
        entries, skipped = [], []
        total = compressed = 0
        for position, info in enumerate(infos):
            if unsafe_entry_name(info.filename):
                raise UnsafeArchiveError(f"the zip holds an unsafe path {info.filename[:200]!r} "
                                         "(absolute or with '..'); nothing was extracted")
            if info.is_dir() or _ignored(info.filename):
                continue
            name = display_path(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped.append((name, "a link, not a file"))
                continue
            if info.flag_bits & 0x1:
                skipped.append((name, "encrypted"))
                continue
            total += info.file_size
            compressed += info.compress_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > (1 << 20) and ratio > limits.max_ratio:
                raise ArchiveTooLargeError(
                    f"the zip looks like a zip bomb: {name!r} expands {ratio:.0f} times "
                    f"(limit {limits.max_ratio:.0f})")
            if total > limits.max_total:
                raise ArchiveTooLargeError(f"the zip expands to more than {limits.max_total >> 20} MiB, "
                                         "over this server's limit")
            entries.append(ZipEntry(position, name, info))
        if total > (1 << 20) and total / max(compressed, 1) > limits.max_ratio:
            raise ArchiveTooLargeError(f"the zip looks like a zip bomb: it expands "
                                     f"{total / max(compressed, 1):.0f} times (limit "
                                     f"{limits.max_ratio:.0f})")
        yield zf, entries, skipped


def extract(zf: zipfile.ZipFile, entry: ZipEntry, dst: Path, budget: int) -> int:
    """Copy one entry to `dst`, at most its declared size and `budget` bytes; returns the size."""
    import zlib

    limit = min(entry.info.file_size, budget)
    written = 0
    damaged = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError,
               RuntimeError)  # CRC errors, bad deflate data, unknown methods, passwords
    try:
        with zf.open(entry.info) as src, open(dst, "xb") as out:
            while True:
                try:
                    chunk = src.read(1 << 20)
                except damaged as exc:
                    raise CorruptMediaError(f"{entry.name!r} in the zip cannot be read: {exc}") from None
                if not chunk:
                    break
                written += len(chunk)
                if written > limit:
                    raise ArchiveTooLargeError(f"{entry.name!r} in the zip expands beyond its "
                                             "declared size or the server's limit")
                out.write(chunk)
    except damaged as exc:  # from zf.open: a damaged local header
        with contextlib.suppress(OSError):
            dst.unlink()
        raise CorruptMediaError(f"{entry.name!r} in the zip cannot be read: {exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            dst.unlink()
        raise
    return written


def copy_limited(src: BinaryIO, dst: Path, limit: int) -> tuple[int, bytes]:
    """Copy an uploaded file into the data folder; returns (size, first bytes)."""
    size, head = 0, b""
    with open(dst, "xb") as out:
        while chunk := src.read(1 << 20):
            if not head:
                head = chunk[:HEAD]
            size += len(chunk)
            if size > limit:
                raise MediaTooLargeError(f"over the upload limit of {limit >> 20} MiB")
            out.write(chunk)
    return size, head


def head_of(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEAD)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
