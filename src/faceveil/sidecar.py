"""The faces sidecar: per-frame boxes, scores and decisions, as JSON.

One format for photos (one frame) and videos, written by `--json`, read back by the GUI and by
re-rendering. Boxes are in pixels of the (orientation-corrected) picture.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._files import atomic_path
from ._version import __version__
from .config import PipelineConfig
from .errors import CorruptMediaError
from .types import Detections

SCHEMA = "faceveil.faces/1"


def sidecar_path(output: str | Path) -> Path:
    """photo.anonymized.jpg -> photo.anonymized.faces.json"""
    output = Path(output)
    return output.with_name(output.stem + ".faces.json")


def faces_document(
    *, source: str, output: str | None, width: int, height: int,
    frames: Iterable[tuple[int, float | None, Detections]], config: PipelineConfig,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "faceveil": __version__,
        "source": source,
        "output": output,
        "width": width,
        "height": height,
        "settings": config.to_dict(),
        **extra,
        "frames": [
            {"index": i, "pts": pts, "faces": dets.to_records()} for i, pts, dets in frames
        ],
    }


class SidecarStream:
    """Writes a faces document frame by frame, so a long video never holds it all in memory.

    The file is the same JSON as `faces_document` gives (frames, then the counts). Use inside
    `atomic_path`: `open` the temporary path, `add` each frame, `close`.
    """

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        head = json.dumps({k: v for k, v in header.items() if k != "frames"}, indent=1)
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._file.write(head[: -len("\n}")] + ',\n "frames": [')
        self._first = True

    def add(self, index: int, pts: float | None, dets: Detections) -> None:
        rec = {"index": index, "pts": None if pts is None else round(pts, 6), "faces": dets.to_records()}
        self._file.write(("\n  " if self._first else ",\n  ") + json.dumps(rec, separators=(",", ":")))
        self._first = False

    def close(self, **extra: Any) -> None:
        """Finish the document; `extra` entries (e.g. counts, known only at the end) follow
        the frames."""
        tail = "".join(f',\n {json.dumps(k)}: {json.dumps(v, separators=(",", ":"))}'
                       for k, v in extra.items())
        self._file.write(f"\n ]{tail}\n}}\n")
        self._file.close()

    def abort(self) -> None:
        """Close without finishing (the caller throws the file away)."""
        self._file.close()


def write_sidecar(path: str | Path, document: dict[str, Any]) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return Path(path)


def read_sidecar(path: str | Path) -> tuple[dict[str, Any], list[Detections]]:
    """The document and the Detections of each frame, in order."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
        return doc, [Detections.from_records(f["faces"]) for f in doc["frames"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptMediaError(f"{path}: not a faceveil faces file: {exc}") from exc
