"""Proof of anonymization: an audit report per run and a verification pass on the outputs.

    auditor = Auditor(config, verify="warn")          # or "strict", or None (report only)
    audit = auditor.picture(src, dst, detections)     # after dst was written
    audit = auditor.video(src, dst, report, frames)   # frames: (index, pts, Detections)
    result.audit = audit                              # the file job does this (pipeline.job)
    write_report("run.report.html", results, auditor.facts())
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from ..types import Detections
from .report import FileAudit, audit_frames, run_facts, thumbnails, write_report
from .verify import Finding, Verifier

VERIFY_MODES = ("warn", "strict")


class Auditor:
    def __init__(self, config: PipelineConfig, verify: str | None = None) -> None:
        if verify not in (None, *VERIFY_MODES):
            raise ValueError(f"verify must be one of {VERIFY_MODES} or None, got {verify!r}")
        self.config, self.verify = config, verify
        self.verifier = Verifier(config) if verify else None

    def picture(self, src: str | Path, dst: str | Path | None, dets: Detections) -> FileAudit:
        from ..media.images import read_image

        audit = FileAudit()
        audit_frames(audit, [(0, None, dets)])
        if dst is None:
            return audit
        out = read_image(dst).rgb  # what was written is what is checked
        audit.thumbnails = thumbnails(out, dets)
        if self.verifier is not None:
            audit.findings = self.verifier.check(read_image(src).rgb, out, dets)
            audit.verified_frames = 1
        return audit

    def video(self, src: str | Path, dst: str | Path | None, report: Any,
              frames: Sequence[tuple[int, float | None, Detections]]) -> FileAudit:
        audit = FileAudit()
        audit_frames(audit, frames)
        if dst is None:
            return audit
        from .verify import VIDEO_EMBEDDED, paired_frames

        busiest = max(frames, key=lambda f: int((~f[2].keep).sum()), default=None)
        thumbs_at = busiest[0] if busiest is not None and len(busiest[2]) else None
        samples = self.verifier.video_samples(frames) if self.verifier is not None else {}
        wanted = set(samples) | ({thumbs_at} if thumbs_at is not None else set())
        if self.verifier is not None:
            audit.verified_frames = 0
        for index, before, after in paired_frames(src, dst, wanted) if wanted else ():
            if index == thumbs_at:
                audit.thumbnails = thumbnails(after, busiest[2])
            if index in samples:
                pts, dets = samples[index]
                audit.findings += self.verifier.check(before, after, dets, frame=index, time=pts,
                                                      embed_limit=VIDEO_EMBEDDED)
                audit.verified_frames += 1
        return audit

    def fails(self, audit: FileAudit) -> bool:
        """Under strict verification, a file with findings counts as failed."""
        return self.verify == "strict" and bool(audit.failing)

    def facts(self) -> dict[str, Any]:
        return run_facts(self.config, self.verify,
                         self.verifier.detector_name if self.verifier is not None else None)


__all__ = ["VERIFY_MODES", "Auditor", "FileAudit", "Finding", "Verifier", "write_report"]
