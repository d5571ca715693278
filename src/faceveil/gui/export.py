"""The export room: where the files go and the work that writes them.

The window only wires it: it asks for a name or a folder (Qt's dialogs), asks before
overwriting, runs `export_one` / `export_all` on a `Task` thread and shows the `ExportSummary`.
Nothing here touches a widget, so the rules (default names, what is planned, what is skipped,
how the files are counted) are the same whichever button started the export. Every file goes
through `Review.export`, which runs the file job (`faceveil.pipeline.job.process_file`) with the
faces as reviewed; a file never looked at is analysed first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PipelineConfig
from ..errors import FaceveilError
from ..pipeline.pipeline import Pipeline
from ..review import Review
from ..types import Counts

EXISTING = ("ask", "overwrite", "skip")


def default_name(review: Review, config: PipelineConfig) -> str:
    """The name offered for one file's export: NAME.anonymized.SUFFIX (PNG for a cut-out)."""
    suffix = ".png" if config.background.mode == "transparent" else review.path.suffix
    return review.path.stem + ".anonymized" + suffix


@dataclass
class ExportPlan:
    """Every open file and where it goes; `there` are the outputs that exist already."""

    folder: Path
    pairs: list[tuple[Path, Path]]
    problems: list[str] = field(default_factory=list)  # "what: why" of inputs left out

    @property
    def there(self) -> list[Path]:
        return [dst for _, dst in self.pairs if dst.exists()]

    def question(self) -> str:
        """What to ask before overwriting (call only when `there` is not empty)."""
        there = self.there
        names = ", ".join(p.name for p in there[:5]) + (" …" if len(there) > 5 else "")
        return (f"{len(there)} of the {len(self.pairs)} files are already in {self.folder} "
                f"({names}). Overwrite them?")

    def skipping_existing(self) -> ExportPlan:
        skip = set(self.there)
        return ExportPlan(self.folder, [(s, d) for s, d in self.pairs if d not in skip],
                          list(self.problems))


def plan_export(items: Iterable[Path], root: Path | None, folder: Path) -> ExportPlan:
    """Every open file into `folder`; a folder opened (`root`) is mirrored below it."""
    from ..paths import plan

    planned = plan([str(root)] if root else [str(p) for p in items], str(folder))
    return ExportPlan(folder, [(src, dst) for src, dst in planned.pairs if dst is not None],
                      [f"{what}: {why}" for what, why in planned.errors])


@dataclass
class ExportSummary:
    """What an "export all" did: files written, files that failed (with why), their counts."""

    folder: Path
    planned: int
    done: int = 0
    failed: list[str] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)

    def status(self) -> str:
        return (f"Exported {self.done} of {self.planned} files to {self.folder}: "
                f"{self.counts.describe(self.counts.frames > self.done)}")

    def error(self) -> str:
        """The message to show, "" when every file went."""
        if not self.failed:
            return ""
        return f"{len(self.failed)} could not be exported:\n" + "\n".join(self.failed)


def export_one(review: Review, path: Path, pipeline: Pipeline, progress=None,
               cancel: threading.Event | None = None) -> Path:
    """One reviewed file into `path` (on a task thread)."""
    return review.export(path, pipeline, on_progress=progress, cancel=cancel)


def export_all(plan: ExportPlan, reviews: dict[Path, Review], pipeline: Pipeline, progress=None,
               cancel: threading.Event | None = None,
               note: Callable[[str], None] | None = None) -> ExportSummary:
    """Every planned file with the faces as reviewed (files never opened are opened and
    analysed here), on a task thread. A file that fails is reported and the others go on; a
    cancel stops before the next file (the one being written is removed by the file job)."""
    summary = ExportSummary(plan.folder, len(plan.pairs), failed=list(plan.problems))
    for n, (src, dst) in enumerate(plan.pairs):
        if cancel is not None and cancel.is_set():
            break
        if note is not None:
            note(f"{n + 1}/{len(plan.pairs)} {src.name}")
        try:
            review = reviews.get(src) or Review.open(src)
            review.export(dst, pipeline, on_progress=progress, cancel=cancel)
            summary.done += 1
            summary.counts += review.counts()
        except FaceveilError as exc:
            if cancel is not None and cancel.is_set():
                raise
            summary.failed.append(f"{src.name}: {exc}")
        except OSError as exc:
            summary.failed.append(f"{src.name}: {exc.strerror or exc}")
    return summary
