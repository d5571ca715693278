"""Where batch inputs and outputs live: local paths, or any URI pyarrow or fsspec understands.

Local paths never touch pyarrow. A URI (``s3://bucket/raw``, ``gs://...``, ``hdfs://...``, or a
scheme only fsspec knows) is opened through `pyarrow.fs` (fsspec filesystems wrapped in
`pyarrow.fs.PyFileSystem`); both come with the ``cluster`` extra. The per-item function copies a
remote input to a local temporary file, works on that, and uploads the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ConfigError, MissingDependencyError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CHUNK = 1 << 20
# Object stores show an object only once its upload is complete: writing straight to the final
# key is already atomic there. Other filesystems get a temporary name and a rename.
_OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})


def is_uri(location: str | os.PathLike) -> bool:
    """True for 's3://bucket/key' and the like; False for local paths (and file:// URIs)."""
    text = os.fspath(location)
    return bool(_URI.match(text)) and not text.lower().startswith("file://")


def local_path(location: str | os.PathLike) -> Path:
    """A local path from a plain path or a file:// URI."""
    text = os.fspath(location)
    if text.lower().startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(text).path))
    return Path(text)


def join(base: str, rel: str) -> str:
    """`base`/`rel` for URIs (always '/'); `rel` is a relative POSIX path."""
    return base.rstrip("/") + "/" + rel


@dataclass(frozen=True)
class Remote:
    """A pyarrow filesystem and the path inside it that a URI names."""

    fs: Any  # pyarrow.fs.FileSystem
    path: str
    uri: str


def resolve(uri: str) -> Remote:
    """Open the filesystem of a URI: pyarrow's own (S3, GCS, HDFS, ...), else fsspec's."""
    try:
        import pyarrow
        import pyarrow.fs as pafs
    except ImportError as exc:
        raise MissingDependencyError(
            f"{uri}: paths like this need pyarrow: pip install 'faceveil[cluster]'") from exc
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        return Remote(fs, path, uri)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, ValueError) as arrow_error:
        try:
            import fsspec.core
        except ImportError:
            raise ConfigError(f"{uri}: not a location pyarrow can open ({arrow_error})") from None
        try:
            ffs, path = fsspec.core.url_to_fs(uri)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"{uri}: neither pyarrow nor fsspec can open it ({exc})") from None
        return Remote(pafs.PyFileSystem(pafs.FSSpecHandler(ffs)), path, uri)


def list_files(remote: Remote) -> list[str] | None:
    """Every file below a remote folder (relative POSIX paths, sorted); None when it is one file;
    raises FileNotFoundError when nothing is there."""
    import pyarrow.fs as pafs

    info = remote.fs.get_file_info(remote.path)
    if info.type == pafs.FileType.File:
        return None
    if info.type != pafs.FileType.Directory:
        raise FileNotFoundError(remote.uri)
    base = remote.path.rstrip("/") + "/"
    found = []
    for entry in remote.fs.get_file_info(pafs.FileSelector(remote.path, recursive=True)):
        if entry.type == pafs.FileType.File and entry.path.startswith(base):
            found.append(entry.path[len(base):])
    return sorted(found)


def exists(location: str) -> bool:
    if not is_uri(location):
        return local_path(location).is_file()
    import pyarrow.fs as pafs

    remote = resolve(location)
    return remote.fs.get_file_info(remote.path).type == pafs.FileType.File


@contextlib.contextmanager
def open_binary(location: str, *, seekable: bool = False) -> Iterator[BinaryIO]:
    """A readable binary file for a local path or URI (seekable: random access, e.g. for zips)."""
    if not is_uri(location):
        with open(local_path(location), "rb") as f:
            yield f
        return
    remote = resolve(location)
    opener = remote.fs.open_input_file if seekable else remote.fs.open_input_stream
    with opener(remote.path) as f:
        yield f


def copy_hashed(src: BinaryIO, dst: BinaryIO, limit: int | None = None) -> tuple[int, str]:
    """Copy a stream, returning (bytes, sha256); refuses more than `limit` bytes."""
    h, size = hashlib.sha256(), 0
    while block := src.read(_CHUNK):
        size += len(block)
        if limit is not None and size > limit:
            raise ValueError(f"more data than the {limit} bytes announced")
        h.update(block)
        dst.write(block)
    return size, h.hexdigest()


def upload(local: Path, location: str) -> None:
    """Put a finished local file at a URI; it appears there complete or not at all."""
    remote = resolve(location)
    parent = remote.path.rsplit("/", 1)[0]
    if parent and parent != remote.path:
        with contextlib.suppress(Exception):  # object stores have no folders to make
            remote.fs.create_dir(parent, recursive=True)
    direct = remote.fs.type_name in _OBJECT_STORES
    target = remote.path if direct else f"{remote.path}.{secrets.token_hex(4)}.part"
    try:
        with open(local, "rb") as src, remote.fs.open_output_stream(target) as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        if not direct:
            remote.fs.move(target, remote.path)
    except BaseException:
        with contextlib.suppress(Exception):
            remote.fs.delete_file(target)
        raise
