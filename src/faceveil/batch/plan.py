"""What a batch does: inputs (files, folders, globs, zips, URIs) -> items with their outputs.

Pure planning: only names and zip directories are read here, never pixels. Local files,
folders and globs are expanded by `faceveil.paths` (the walk, hidden files, link checks, glob
bases, alpha naming: the same as `faceveil run`); this module adds zips, remote URIs and the
manifest. Folder inputs are
mirrored below the output, zip members keep their paths inside the archive, single files and
glob matches are placed by name (or path relative to the pattern's fixed part), as `faceveil run`
does. The output is a folder, a ``.zip`` (written at the end from a staging folder beside it), or
a URI of a folder on any filesystem pyarrow or fsspec knows.
"""

from __future__ import annotations

import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .. import paths
from .._files import dangling, resolved
from ..errors import ConfigError, FaceveilError
from ..media.video import VIDEO_SUFFIXES
from ..paths import (
    EMPTY_FOLDER,
    MEDIA_SUFFIXES,
    NO_MATCH,
    glob_base,
    glob_files,
    hidden,
    is_pattern,
    walk,
    with_alpha,
)
from . import storage
from .zips import UnsafeArchiveError, ZipLimits, archive_folders, check_archive, safe_name

MANIFEST_NAME = ".faceveil-manifest.jsonl"
SEP = "!/"  # ARCHIVE!/member, in the manifest


@dataclass(frozen=True)
class Item:
    """One input file and where its output goes. Plain strings: it travels to worker processes
    and Ray actors."""

    input: str  # the manifest's name: absolute local path, URI, or ARCHIVE!/member
    source: str  # the file to read: local path or URI; for a zip member, the archive
    member: str | None  # the member's name inside `source`, for zip members
    output: str  # where the worker writes: local path or URI (zip output: the staging file)
    output_name: str  # the manifest's name of the output (zip output: OUT.zip!/member)
    rel: str  # relative POSIX path below the output
    expect: str | None = None  # --resume: sha256 of the input that made the existing output

    @property
    def video(self) -> bool:
        return _suffix(self.rel) in VIDEO_SUFFIXES


@dataclass
class BatchPlan:
    items: list[Item] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (input, why)
    output: str = ""  # the output as given (absolute for local paths)
    zip_out: Path | None = None  # the output zip, when writing one
    staging: Path | None = None  # where workers put the zip's files until it is written
    manifest: str = ""  # the default manifest location

    @property
    def remote(self) -> bool:
        return storage.is_uri(self.output)


def _suffix(name: str) -> str:
    """The lower-case suffix as pathlib sees it (`..mp4` is an MP4)."""
    return PurePosixPath(name).suffix.lower()


def is_media(name: str) -> bool:
    """A picture or video that is not hidden (by its last part)."""
    base = posixpath.basename(name)
    return not hidden(base) and paths.is_media(base)


def _hidden(rel: str) -> bool:
    """Inside zips and remote folders: any hidden part, or macOS's __MACOSX folder."""
    return any(hidden(p) or p == "__MACOSX" for p in rel.split("/"))


def _with_alpha(rel: str) -> str:
    return with_alpha(PurePosixPath(rel)).as_posix()


def zip_member_name(rel: str) -> str:
    """`rel` as a zip member name. Zip names are UTF-8; a file name whose bytes are not (held
    by Python as lone surrogates) gets its odd bytes written as \\xNN: `caf\\xe9.jpg`."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")
    return rel


def default_manifest(output: str) -> str:
    """OUT/.faceveil-manifest.jsonl; beside an output zip; in the current folder for URIs (a
    manifest is appended line by line, which object stores cannot do)."""
    if storage.is_uri(output):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", output).strip("_")[:80]
        return os.path.abspath(f"faceveil-manifest.{slug}.jsonl")
    out = Path(os.path.abspath(storage.local_path(output)))
    if out.suffix.lower() == ".zip":
        return str(out.with_name(out.name + ".faceveil-manifest.jsonl"))
    return str(out / MANIFEST_NAME)


def plan_batch(inputs: list[str], output: str, *, alpha: bool = False,
               limits: ZipLimits | None = None) -> BatchPlan:
    """Expand the inputs and name every output. Problems with single inputs (missing, unsafe
    zip) are listed in `errors`; a bad output raises ConfigError."""
    limits = limits or ZipLimits()
    plan = BatchPlan()
    output = os.fspath(output)
    if not output:
        raise ConfigError("say where the outputs go: -o FOLDER, -o ARCHIVE.zip or -o s3://...")
    suffix = posixpath.splitext(output.rstrip("/"))[1].lower()
    if suffix in MEDIA_SUFFIXES:
        raise ConfigError(f"a batch writes into a folder or a .zip, not into {output!r} "
                          "(for one file use `faceveil run`)")
    if storage.is_uri(output):
        if suffix == ".zip":
            raise ConfigError(f"{output}: zip outputs are written to a local path; for a remote "
                              "location give a folder")
        plan.output, out_root = output.rstrip("/"), output.rstrip("/")
    else:
        out = Path(os.path.abspath(storage.local_path(output)))
        plan.output = str(out)
        if suffix == ".zip":
            plan.zip_out = out
            plan.staging = out.with_name(f".{out.name}.parts")
            out_root = str(plan.staging)
        else:
            if out.exists() and not out.is_dir():
                raise ConfigError(f"{output} exists and is not a folder")
            out_root = str(out)
    plan.manifest = default_manifest(plan.output)
    exclude = {resolved(Path(out_root))} if not plan.remote else set()
    if plan.zip_out is not None:
        exclude.add(resolved(plan.zip_out))

    sources: list[tuple[str, str, str | None, str]] = []  # (input name, source, member, rel)
    for arg in inputs:
        arg = os.fspath(arg)
        try:
            sources += _expand(arg, exclude, limits, plan.errors)
        except UnsafeArchiveError as exc:
            plan.errors.append((arg, f"refused: {exc}"))
        except (FaceveilError, OSError, zipfile.BadZipFile, ValueError) as exc:
            from ..errors import describe_error

            plan.errors.append((arg, describe_error(exc) if not isinstance(exc, zipfile.BadZipFile)
                                else f"not a readable zip: {exc}"))

    archives = [s for _, s, m, _ in sources if m is not None]
    if len(set(archives)) > 1:  # several zips: each one's members under its own name
        folders = archive_folders(archives)
        sources = [(n, s, m, f"{folders[s]}/{rel}" if m is not None else rel)
                   for n, s, m, rel in sources]
    seen: dict[str, str] = {}
    input_files = {s for _, s, m, _ in sources if m is None and not storage.is_uri(s)}
    for name, source, member, rel in sources:
        rel = _with_alpha(rel) if alpha else rel
        if plan.zip_out is not None:
            rel = zip_member_name(rel)
        if rel in seen:
            plan.errors.append((name, f"its output {rel} would also be written for {seen[rel]}; "
                                      "rename one of them"))
            continue
        seen[rel] = name
        target = storage.join(out_root, rel) if plan.remote else str(Path(out_root, *rel.split("/")))
        if not plan.remote and target in input_files:
            plan.errors.append((name, f"its output {target} is an input; refusing to overwrite it"))
            continue
        shown = f"{plan.zip_out}{SEP}{rel}" if plan.zip_out else target
        plan.items.append(Item(name, source, member, target, shown, rel))
    return plan


def _expand(arg: str, exclude: set[Path], limits: ZipLimits,
            errors: list[tuple[str, str]]) -> list[tuple[str, str, str | None, str]]:
    if storage.is_uri(arg):
        return _expand_remote(arg.rstrip("/"), limits)
    path = storage.local_path(arg)
    if path.is_file():
        name = os.path.abspath(path)
        if resolved(path) in exclude:
            raise ConfigError("is the output; refusing to overwrite it")
        if path.suffix.lower() == ".zip":
            return _members(name, limits)
        # A file named on the command line is taken even when its name starts with a dot
        # (`..jpg`), as `faceveil run` does; only folder walks leave hidden files out.
        if _suffix(path.name) not in MEDIA_SUFFIXES:
            raise ConfigError("not a picture, video or zip faceveil knows")
        return [(name, name, None, path.name)]
    if path.is_dir():
        if resolved(path) in exclude:
            raise ConfigError("is the output folder")
        root = Path(os.path.abspath(path))  # so the walk names what it finds in full
        before = len(errors)
        files = walk(root, exclude, errors)
        if not files and len(errors) == before:
            raise ConfigError(EMPTY_FOLDER)
        return [(str(f), str(f), None, f.relative_to(root).as_posix()) for f in files]
    if is_pattern(arg):
        base = glob_base(arg)
        found: list[tuple[str, str]] = []
        files = [f for f in glob_files(arg, found) if is_media(f.name)]
        loops = [(os.path.abspath(m), why) for m, why in found if why != NO_MATCH]
        errors += loops
        if not files and not loops:
            raise ConfigError(NO_MATCH)
        return [(os.path.abspath(f), os.path.abspath(f), None,
                 f.relative_to(base).as_posix() if f.is_relative_to(base) else f.name)
                for f in files]
    if os.path.lexists(arg):
        raise ConfigError(dangling(path) or "not a regular file or folder")
    raise FileNotFoundError(arg)


def _expand_remote(uri: str, limits: ZipLimits) -> list[tuple[str, str, str | None, str]]:
    remote = storage.resolve(uri)
    files = storage.list_files(remote)
    if files is None:
        name = posixpath.basename(remote.path)
        if name.lower().endswith(".zip"):
            return _members(uri, limits)
        if not is_media(name):
            raise ConfigError("not a picture, video or zip faceveil knows")
        return [(uri, uri, None, name)]
    found = [(storage.join(uri, rel), storage.join(uri, rel), None, rel)
             for rel in files if not _hidden(rel) and is_media(rel)]
    if not found:
        raise ConfigError(EMPTY_FOLDER)
    return found


def _members(archive: str, limits: ZipLimits) -> list[tuple[str, str, str | None, str]]:
    """The media members of a zip, after its safety checks."""
    with storage.open_binary(archive, seekable=True) as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            infos = check_archive(zf, limits, size)
    found = []
    for info in infos:
        rel = safe_name(info.filename)
        if _hidden(rel) or not is_media(rel):
            continue
        found.append((f"{archive}{SEP}{rel}", archive, info.filename, rel))
    if not found:
        raise ConfigError("no pictures or videos in this zip")
    return found
