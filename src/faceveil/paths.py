"""Turning command-line inputs into (input, output) pairs. Pure: no pixels are read here.

The walk, globs, media names, hidden files, link checks and alpha naming are here once;
batch planning (`faceveil.batch.plan`) builds on them and adds zips, remote URIs and its
manifest."""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import TypeVar

from ._files import dangling, resolved
from .media.images import SUFFIXES
from .media.video import VIDEO_SUFFIXES

log = logging.getLogger(__name__)

MEDIA_SUFFIXES = frozenset(SUFFIXES) | VIDEO_SUFFIXES
_MAGIC = set("*?[")
P = TypeVar("P", bound=PurePath)

NO_MATCH = "no files match this pattern"
EMPTY_FOLDER = "no pictures or videos found in this folder"
EMPTY_REASONS = (NO_MATCH, EMPTY_FOLDER)  # nothing to process, rather than a failed input


@dataclass
class Plan:
    pairs: list[tuple[Path, Path | None]] = field(default_factory=list)  # (input, output)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    skipped: int = 0  # files left out on purpose (outputs of an earlier run, existing outputs)


def is_media(name: str | PurePath) -> bool:
    """A picture or video name faceveil reads, by its suffix as pathlib sees it (`..mp4` is an
    MP4). Hidden names are the walk's business (`hidden`), not this one's."""
    return PurePosixPath(os.fspath(name).replace(os.sep, "/")).suffix.lower() in MEDIA_SUFFIXES


def hidden(name: str) -> bool:
    """A name a folder walk leaves out: dot files and dot folders."""
    return name.startswith(".")


def walk(root: Path, exclude: Iterable[Path] | Path | None,
         errors: list[tuple[str, str]]) -> list[Path]:
    """Media files below `root`, sorted; hidden files and folders are left out, and so are
    the folders in `exclude` (resolved paths: the output). Symbolic links that loop or lead
    nowhere go to `errors` (one line each, named as found below `root`) and the walk goes on.
    Linked folders are not followed. Used by `plan` and by batch planning."""
    excluded = {exclude} if isinstance(exclude, Path) else set(exclude or ())
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if not hidden(d) and resolved(here / d) not in excluded)
        for f in sorted(filenames):
            path = here / f
            if hidden(f) or not is_media(f):
                continue
            why = dangling(path)
            if why is None:
                found.append(path)
            else:
                errors.append((str(path), why))
    return found


def glob_base(pattern: str) -> Path:
    """The fixed part of a glob pattern (`shots/**/*.jpg` -> `shots`): matches are placed
    below the output by their path relative to it."""
    parts = Path(pattern).parts
    base = [p for p in parts[: next(i for i, p in enumerate(parts) if _MAGIC & set(p))]]
    return Path(*base) if base else Path(".")


def is_pattern(arg: str) -> bool:
    return bool(_MAGIC & set(arg))


def glob_files(pattern: str, errors: list[tuple[str, str]]) -> list[Path]:
    """The files a glob matches, sorted; matches that are media links that loop or lead nowhere
    go to `errors`; nothing at all is `NO_MATCH` there."""
    matches = sorted(glob.glob(pattern, recursive=True))
    files = [Path(m) for m in matches if Path(m).is_file()]
    loops = [(m, why) for m in matches if is_media(m) and (why := dangling(Path(m)))]
    errors += loops
    if not files and not loops:
        errors.append((pattern, NO_MATCH))
    return files


def with_alpha(path: P) -> P:
    """A picture name whose format holds no transparency gets a .png suffix (for
    background="transparent"); other names are left as they are."""
    from .media.images import ALPHA_FORMATS, SUFFIXES

    fmt = SUFFIXES.get(path.suffix.lower())
    return path if fmt is None or fmt in ALPHA_FORMATS else path.with_suffix(".png")


def _wants_folder(output: str, n_inputs: int, any_folder: bool) -> bool:
    p = Path(output)
    return (any_folder or n_inputs > 1 or output.endswith(("/", os.sep)) or p.is_dir()
            or not p.suffix)


def plan(inputs: list[str], output: str | None, suffix: str = ".anonymized",
         skip_existing: bool = False, alpha: bool = False) -> Plan:
    """Expand files, folders (recursively) and globs, and name every output.

    - no output: beside each file as NAME{suffix}.EXT; a folder D goes to a sibling D{suffix}/
    - output "-": nothing is written (the caller prints data instead)
    - output a file: only for a single input file
    - output a folder: folder inputs mirrored below it, single files and globs by name/relative path
    - alpha: pictures whose format has no transparency get a .png name (a named output file is
      left as given)
    """
    result = Plan()
    sources: list[tuple[Path, Path | None, bool]] = []  # (file, mirror root, from a folder)
    out_dir = None
    for arg in inputs:
        path = Path(arg)
        if path.is_file():
            sources.append((path, None, False))
        elif path.is_dir():
            sources.append((path, path, True))
        elif is_pattern(arg):
            files = glob_files(arg, result.errors)
            base = glob_base(arg)
            sources += [(f, base, False) for f in files]
        elif os.path.lexists(arg):
            result.errors.append((arg, dangling(path) or "not a regular file or folder"))
        else:
            result.errors.append((arg, "no such file or folder"))
    if not sources:
        return result

    to_stdout = output == "-"
    if output and not to_stdout:
        if _wants_folder(output, len(sources), any(folder for _, _, folder in sources)):
            out_dir = Path(output)
        elif len(sources) == 1:
            result.pairs.append((sources[0][0], Path(output)))
            return _check(result, skip_existing)
    exclude = resolved(out_dir) if out_dir is not None else None

    for src, root, folder in sources:
        if not folder:
            files = [(src, root)]
        else:
            before = len(result.errors)
            files = [(f, src) for f in walk(src, exclude, result.errors)]
            if not files and len(result.errors) == before:
                result.errors.append((str(src), EMPTY_FOLDER))
        for f, base in files:
            if to_stdout:
                result.pairs.append((f, None))
            elif out_dir is None:
                if f.stem.endswith(suffix):
                    result.skipped += 1  # an output of an earlier run
                    continue
                if folder:
                    full = base if base.name not in ("", "..") else resolved(base)  # "." and ".."
                    target = full.with_name(full.name + suffix) / f.relative_to(base)
                else:
                    target = f.with_name(f.stem + suffix + f.suffix)
                result.pairs.append((f, with_alpha(target) if alpha else target))
            else:
                rel = f.relative_to(base) if base is not None and f.is_relative_to(base) else \
                    Path(f.name)
                target = out_dir / rel
                result.pairs.append((f, with_alpha(target) if alpha else target))
    return _check(result, skip_existing)


def _check(result: Plan, skip_existing: bool) -> Plan:
    """Refuse outputs that are inputs or that two inputs share; optionally skip existing ones."""
    inputs = {resolved(p) for p, _ in result.pairs}
    seen: dict[Path, Path] = {}
    kept = []
    for src, dst in result.pairs:
        if dst is not None:
            key = resolved(dst)
            if key in inputs:
                result.errors.append((str(src), f"output {dst} is an input; refusing to overwrite"))
                continue
            if key in seen:
                result.errors.append((str(src), f"output {dst} would also be written for "
                                                f"{seen[key]}; rename one of them"))
                continue
            seen[key] = src
            if skip_existing and dst.exists():
                result.skipped += 1
                continue
        kept.append((src, dst))
    result.pairs = kept
    return result
