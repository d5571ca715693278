"""Zip archives in and out: member names checked (zip-slip), sizes bounded (zip bombs).

An archive is refused as a whole when any member could land outside the output (an absolute
name, a drive letter, '..', a symbolic link) or when it would expand to more than the limits:
a crafted archive is not partly trusted. The output zip is written under a temporary name and
renamed, so a reader never sees half an archive.
"""

from __future__ import annotations

import logging
import posixpath
import re
import shutil
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .._files import atomic_path
from ..errors import FaceveilError

log = logging.getLogger(__name__)

_DRIVE = re.compile(r"^[A-Za-z]:")
_STORED_AS_IS = frozenset({".bmp", ".tif", ".tiff"})  # the only uncompressed formats: deflated


class UnsafeArchiveError(FaceveilError, ValueError):
    """A zip that is refused: names that escape the output, links, or a zip bomb."""


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 100_000
    max_total: int = 64 << 30  # bytes, all members expanded
    max_ratio: float = 200.0  # expanded/compressed, checked for members of 16 MiB and more
    ratio_from: int = 16 << 20


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def safe_name(name: str) -> str:
    """The member's relative POSIX path, or UnsafeArchiveError if it could escape the output."""
    if "\x00" in name:
        raise UnsafeArchiveError(f"member {name!r} has a NUL byte in its name")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeArchiveError(f"member {name!r} has an absolute path (zip-slip)")
    if ".." in parts:
        raise UnsafeArchiveError(f"member {name!r} climbs out with '..' (zip-slip)")
    clean = posixpath.normpath("/".join(p for p in parts if p not in ("", ".")))
    if clean in ("", "."):
        raise UnsafeArchiveError(f"member {name!r} has no name")
    return clean


def archive_folders(archives: Iterable[str]) -> dict[str, str]:
    """A folder name for each input archive (its file name without .zip, made unique with -2,
    -3...), under which its members are written when one batch reads several zips, so two
    zips with the same inner paths do not collide."""
    folders: dict[str, str] = {}
    used: set[str] = set()
    for archive in dict.fromkeys(archives):
        stem = posixpath.basename(archive.replace("\\", "/")).removesuffix(".zip")
        stem = stem.removesuffix(".ZIP")
        if stem.strip(".") == "":  # "", ".", ".." (a zip named "...zip") would leave the output folder
            stem = "archive"
        name, n = stem, 1
        while name.lower() in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name.lower())
        folders[archive] = name
    return folders


def is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def check_archive(zf: zipfile.ZipFile, limits: ZipLimits, compressed_size: int) -> list[zipfile.ZipInfo]:
    """The archive's file members after the safety checks (directories left out)."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeArchiveError(f"{len(infos)} members, over the limit of {limits.max_entries} "
                                 "(possible zip bomb)")
    total = 0
    files = []
    for info in infos:
        safe_name(info.filename)
        if is_link(info):
            raise UnsafeArchiveError(f"member {info.filename!r} is a symbolic link; links are refused")
        if info.is_dir():
            continue
        total += info.file_size
        if (info.file_size >= limits.ratio_from
                and info.file_size > limits.max_ratio * max(1, info.compress_size)):
            raise UnsafeArchiveError(
                f"member {info.filename!r} expands {_size(info.compress_size)} to "
                f"{_size(info.file_size)} (over {limits.max_ratio:.0f}:1; possible zip bomb)")
        files.append(info)
    if total > limits.max_total:
        raise UnsafeArchiveError(f"members expand to {_size(total)}, over the limit of "
                                 f"{_size(limits.max_total)} (possible zip bomb)")
    if total >= limits.ratio_from and total > limits.max_ratio * max(1, compressed_size):
        raise UnsafeArchiveError(f"{_size(compressed_size)} expands to {_size(total)} (over "
                                 f"{limits.max_ratio:.0f}:1; possible zip bomb)")
    return files


def write_zip(target: Path, members: Iterable[tuple[str, Path | tuple[Path, str]]]) -> int:
    """Write a new zip atomically. Each member comes from a file, or (old zip, name) to carry an
    entry over from an earlier output archive. Returns the number of members."""
    count = 0
    old: dict[Path, zipfile.ZipFile] = {}
    try:
        with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as out:
            for name, source in members:
                kind = (zipfile.ZIP_DEFLATED if Path(name).suffix.lower() in _STORED_AS_IS
                        else zipfile.ZIP_STORED)
                if isinstance(source, tuple):
                    archive, member = source
                    zf = old.get(archive) or old.setdefault(archive, zipfile.ZipFile(archive))
                    was = zf.getinfo(member)
                    info = zipfile.ZipInfo(name, was.date_time)
                    info.compress_type, info.file_size = kind, was.file_size  # size: zip64 or not
                    with zf.open(was) as src, out.open(info, "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                else:
                    out.write(source, name, compress_type=kind)
                count += 1
    finally:
        for zf in old.values():
            zf.close()
    return count
