"""The audit report: per file what was hidden, the risky moments, what verification found.

Thumbnails show anonymized regions of the output only, never the original pictures. The HTML
is one self-contained file (inline style, pictures as data: URIs, no script), safe to open: all
text from file names and settings is escaped.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .._files import atomic_path
from .._version import __version__
from ..config import PipelineConfig
from ..types import Detections
from .verify import Finding

if TYPE_CHECKING:
    from ..pipeline.job import FileResult

LOW_SCORE = 0.5  # a detection under this confidence is a risky moment
SHORT_TRACK = 5  # a face seen on fewer frames than this is a risky moment
THUMBS = 8  # per file
LISTED = 40  # risky moments listed per kind (all are counted)


@dataclass
class FileAudit:
    """What auditing one file found. The file's own facts (input, output, kind, ok, error, size,
    counts) are its `FileResult`'s (faceveil.pipeline.job), which holds this audit: the report
    reads them there (`file_entry`), from no copy. (The audit does not point back at the result:
    that would be a reference cycle keeping a video's frames alive until the cycle collector.)"""

    frames: int = 0  # frames audited
    tracks: int = 0  # tracks seen detected (not only filled in by tracking)
    risky: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> {count, moments}
    findings: list[Finding] = field(default_factory=list)
    verified_frames: int | None = None  # None: not verified
    thumbnails: list[str] = field(default_factory=list)  # data: URIs, output pixels only
    decisions: list[dict[str, Any]] = field(default_factory=list)  # keep/hide and why, with --keep/--only

    @property
    def status(self) -> str:
        """The audit's verdict; a file that failed is "failed" whatever it says (file_status)."""
        if self.verified_frames is None:
            return "not verified"
        return "findings" if self.failing else "verified"

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.failing]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("findings", "thumbnails")}
        out["findings"] = [f.to_dict() for f in self.findings]
        out["thumbnails"] = len(self.thumbnails)
        return out


def file_status(result: FileResult) -> str:
    """failed, not verified, findings or verified: one file of the report."""
    if not result.ok:
        return "failed"
    return "not verified" if result.audit is None else result.audit.status


def file_entry(result: FileResult) -> dict[str, Any]:
    """One file of the JSON report: the file job's facts and counts, then what its audit found."""
    audit = result.audit or FileAudit()
    written = result.output if result.ok else None  # a failed file's output is not there
    return {"input": str(result.input), "output": None if written is None else str(written),
            "kind": result.kind, "ok": result.ok, "error": result.error, "width": result.width,
            "height": result.height, "counts": result.counts.to_dict(), **audit.to_dict(),
            "status": file_status(result)}


def audit_frames(audit: FileAudit, frames: Sequence[tuple[int, float | None, Detections]]) -> None:
    """Risky moments and keep/hide decisions from the per-frame faces of a picture (one frame)
    or video (its counts are the file job's: FileResult.counts).

    A risky moment is one where a face may have been missed: a detection the detector was
    unsure of, or a face seen on only a few frames. Boxes the tracker filled (held, interpolated,
    lead) are the design working, not a risk: they are counted in `filled`, not listed."""
    risky: dict[str, list[dict[str, Any]]] = {"low_confidence": [], "short_track": []}
    seen: dict[int, list[tuple[int, float | None]]] = {}
    state: dict[int, bool] = {}  # track -> kept, to list a track's decision only when it changes
    for index, pts, dets in frames:
        if dets.why is not None:
            for j in range(len(dets)):
                track = -1 if dets.track_ids is None else int(dets.track_ids[j])
                if track >= 0 and state.get(track) == bool(dets.keep[j]):
                    continue
                state[track] = bool(dets.keep[j])
                if len(audit.decisions) < 10 * LISTED:
                    audit.decisions.append({"frame": index, "time": pts, "track": track,
                                            "box": [round(float(v), 1) for v in dets.xyxy[j]],
                                            "kept": bool(dets.keep[j]), "why": str(dets.why[j])})
        for j in range(len(dets)):
            box = [round(float(v), 1) for v in dets.xyxy[j]]
            if dets.filled[j]:
                continue
            if dets.scores[j] < LOW_SCORE:
                risky["low_confidence"].append({"frame": index, "time": pts, "box": box,
                                                "score": round(float(dets.scores[j]), 3)})
            if dets.track_ids is not None and not dets.filled[j]:
                seen.setdefault(int(dets.track_ids[j]), []).append((index, pts))
    audit.frames = len(frames)
    audit.tracks = len(seen)
    for track, where in seen.items():
        if len(where) < SHORT_TRACK:
            risky["short_track"].append({"frame": where[0][0], "time": where[0][1], "track": track,
                                         "frames_seen": len(where)})
    audit.risky = {k: {"count": len(v), "moments": v[:LISTED]} for k, v in risky.items()}


def thumbnails(image: np.ndarray, dets: Detections, limit: int = THUMBS, size: int = 96) -> list[str]:
    """JPEG data URIs of the hidden regions of an anonymized picture (largest first)."""
    hidden = dets[~dets.keep]
    out = []
    h, w = image.shape[:2]
    for x1, y1, x2, y2 in hidden.xyxy[np.argsort(-hidden.heights)][:limit]:
        pad = 0.3 * max(x2 - x1, y2 - y1)
        crop = image[max(0, int(y1 - pad)):min(h, int(y2 + pad)), max(0, int(x1 - pad)):min(w, int(x2 + pad))]
        if crop.size == 0:
            continue
        scale = size / max(crop.shape[:2])
        crop = cv2.resize(crop, None, fx=scale, fy=scale,
                          interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        ok, jpg = cv2.imencode(".jpg", np.ascontiguousarray(crop[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            out.append("data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode())
    return out


def run_facts(config: PipelineConfig, verify: str | None, verifier_detector: str | None) -> dict[str, Any]:
    """Settings, versions and model hashes: enough to reproduce and to trust the run."""
    from ..models import describe

    versions = {"faceveil": __version__, "python": platform.python_version()}
    for dist in ("numpy", "opencv-python-headless", "onnxruntime", "av", "dlib-bin"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    try:
        models = [{"name": m.name, "sha256": m.sha256, "source": m.source} for m in describe()]
    except Exception as exc:  # a report must not fail on a model it could not describe
        models = [{"error": str(exc)}]
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.system()} {platform.machine()}", "versions": versions,
            "models": models, "settings": config.to_dict(),
            "verify": verify, "verify_detector": verifier_detector}


def write_report(path: str | Path, results: Sequence[FileResult], facts: dict[str, Any]) -> Path:
    """The report on the file job's results (each with its audit, if it got that far): JSON when
    the name ends in .json, else HTML; written atomically."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps({"report": "faceveil audit", **facts,
                           "files": [file_entry(r) for r in results]}, indent=1, default=str)
    else:
        text = render_html(results, facts)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#1d2330;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin:1.6em 0 .4em;word-break:break-all}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.25em .8em;border-bottom:1px solid #dde;
text-align:left;vertical-align:top} th{background:#f3f4f8}
.verified{color:#17753a;font-weight:600} .findings,.failed{color:#b3261e;font-weight:600}
.not{color:#6b7080} .thumbs img{width:96px;height:auto;margin:2px;border:1px solid #ccd}
details{margin:.3em 0} pre{background:#f6f7f9;padding:.8em;overflow:auto;font-size:12px}
.muted{color:#6b7080}
"""


def render_html(results: Sequence[FileResult], facts: dict[str, Any]) -> str:
    e = html.escape
    files = [(r, r.audit or FileAudit(), file_status(r)) for r in results]
    totals = {s: sum(status == s for _, _, status in files)
              for s in ("verified", "findings", "failed", "not verified")}
    rows = "".join(
        f"<tr><td><a href='#f{i}'>{e(str(r.input))}</a></td><td>{r.kind}</td><td>{a.frames}</td>"
        f"<td>{e(r.counts.describe(r.kind == 'video'))}</td>"
        f"<td>{sum(m['count'] for m in a.risky.values())}</td>"
        f"<td class='{status.split()[0]}'>{e(status)}</td></tr>"
        for i, (r, a, status) in enumerate(files))
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
             f"img-src data:; style-src 'unsafe-inline'\">"
             f"<title>faceveil audit report</title><style>{_CSS}</style></head><body>",
             "<h1>faceveil audit report</h1>",
             f"<p class='muted'>{e(facts['date'])} · faceveil {e(facts['versions']['faceveil'])} · "
             f"verification: {e(str(facts.get('verify') or 'off'))}"
             + (f" (second detector: {e(str(facts['verify_detector']))})" if facts.get("verify") else "")
             + "</p>",
             f"<p>{len(files)} file(s): {totals['verified']} verified clean, {totals['findings']} "
             f"with findings, {totals['failed']} failed, {totals['not verified']} not verified.</p>",
             "<table><tr><th>file</th><th>kind</th><th>frames</th><th>faces</th>"
             f"<th>risky moments</th><th>status</th></tr>{rows}</table>"]
    for i, (r, a, status) in enumerate(files):
        parts.append(f"<h2 id='f{i}'>{e(str(r.input))}</h2>")
        if not r.ok:
            parts.append(f"<p class='failed'>failed: {e(r.error)}</p>")
            continue
        c = r.counts
        parts.append(
            f"<table><tr><th>output</th><td>{e(str(r.output))}</td></tr>"
            f"<tr><th>size</th><td>{r.width} x {r.height}, {a.frames} frame(s)</td></tr>"
            f"<tr><th>faces</th><td>{e(c.describe(r.kind == 'video'))}; "
            f"{c.boxes} boxes detected, {c.filled} filled in by tracking"
            + (f", {c.kept_frames} kept face-frames" if c.kept_frames else "")
            + "</td></tr>"
            f"<tr><th>verification</th><td class='{status.split()[0]}'>{e(status)}"
            + (f" ({a.verified_frames} frame(s) checked)" if a.verified_frames is not None else "")
            + "</td></tr></table>")
        if a.findings:
            items = "".join(f"<li class='{'failed' if f.failing else 'not'}'>{_when(f.frame, f.time)}"
                            f"{e(f.detail)} at {e(str(f.box))}</li>" for f in a.findings)
            parts.append(f"<p><b>Findings</b></p><ul>{items}</ul>")
        for kind, info in a.risky.items():
            if not info["count"]:
                continue
            items = "".join(f"<li>{_when(m.get('frame'), m.get('time'))}{e(_moment(kind, m))}</li>"
                            for m in info["moments"])
            more = info["count"] - len(info["moments"])
            parts.append(f"<details><summary>{kind.replace('_', ' ')}: {info['count']}</summary>"
                         f"<ul>{items}</ul>{f'<p>and {more} more</p>' if more > 0 else ''}</details>")
        if a.decisions:
            items = "".join(f"<li>{_when(d['frame'], d['time'])}{e(d['why'])} at {d['box']}</li>"
                            for d in a.decisions)
            parts.append(f"<details><summary>people: {sum(d['kept'] for d in a.decisions)} kept, "
                         f"{sum(not d['kept'] for d in a.decisions)} hidden (decisions)</summary>"
                         f"<ul>{items}</ul></details>")
        if a.thumbnails:
            imgs = "".join(f"<img src='{t}' alt='hidden region'>" for t in a.thumbnails)
            parts.append(f"<p class='muted'>Hidden regions, as written:</p><div class='thumbs'>{imgs}</div>")
    model_rows = "".join(f"<tr><td>{e(str(m.get('name', '')))}</td><td><code>"
                         f"{e(str(m.get('sha256', m.get('error', ''))))}</code></td></tr>"
                         for m in facts["models"])
    versions = ", ".join(f"{e(k)} {e(str(v))}" for k, v in facts["versions"].items())
    parts.append(f"<h2>Run</h2><p>{versions} · {e(facts['machine'])}</p>"
                 f"<details><summary>models</summary><table>{model_rows}</table></details>"
                 f"<details><summary>settings</summary><pre>"
                 f"{e(json.dumps(facts['settings'], indent=1, default=str))}</pre></details>"
                 "</body></html>\n")
    return "".join(parts)


def _when(frame: int | None, time: float | None) -> str:
    if time is not None:
        return f"{time:.2f} s (frame {frame}): "
    return f"frame {frame}: " if frame else ""


def _moment(kind: str, m: dict[str, Any]) -> str:
    if kind == "low_confidence":
        return f"low-confidence detection ({m['score']}) at {m['box']}, hidden"
    return f"track {m['track']} seen on only {m['frames_seen']} frame(s)"
