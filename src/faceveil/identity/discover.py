"""`people discover`: faces found across pictures and videos, grouped into people.

Writes people.json (one entry per group: where each face was seen and its vectors, with a
"name" to fill in for `faceveil people add --from`) and contact_sheet.jpg (a row of faces per
group) into a folder. Videos are sampled every `every` seconds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .._files import atomic_path
from .._version import __version__
from ..config import IdentityConfig
from ..errors import ConfigError
from ..types import Frame
from . import DISCOVER_DISTANCE, Embedder

log = logging.getLogger(__name__)

MAX_FACES = 5000  # pairwise distances are kept in memory: 100 MB at this many
SHEET_FACES = 8  # faces shown per person on the contact sheet
SHEET_ROWS = 60
THUMB = 96


@dataclass(frozen=True, eq=False)
class Sighting:
    file: str
    frame: int | None  # video frame index, None for a picture
    time: float | None  # seconds, video only
    box: tuple[float, ...]
    vector: np.ndarray
    sharpness: float
    chip: np.ndarray  # the aligned face, for the contact sheet only


def _pictures(path: Path, every: float,
              max_pixels: int) -> Iterator[tuple[np.ndarray, int | None, float | None]]:
    """(rgb, frame index, time) of a picture, or of a video's frames every `every` seconds."""
    from ..media.images import read_image
    from ..media.video import VideoInput, is_video, upright

    if not is_video(path):
        yield read_image(path, max_pixels).rgb, None, None
        return
    next_time = 0.0
    with VideoInput(path, copy_streams=False, max_pixels=max_pixels) as vin:
        for index, frame in enumerate(vin.frames()):
            t = float(frame.pts * frame.time_base) if frame.pts is not None else index / 30
            if t + 1e-6 < next_time:
                continue
            next_time = t + every
            yield upright(frame), index, t


def find_faces(files: Iterable[Path], detector, embedder: Embedder, config: IdentityConfig, *,
               every: float = 1.0, max_pixels: int = 150_000_000,
               on_file: Callable[[Path, int, str], None] | None = None) -> list[Sighting]:
    """Every judgeable face in `files`; `on_file(path, faces, error)` after each file."""
    from ..errors import describe_error
    from .decide import judgeable, same_face_groups

    found: list[Sighting] = []
    for path in files:
        count, error = 0, ""
        try:
            for rgb, index, t in _pictures(path, every, max_pixels):
                dets = detector.detect(Frame(rgb, source=str(path)))
                if not len(dets):
                    continue
                # one sighting per face: duplicate boxes and eye or mouth crops join their face
                dets = dets[np.array([g[0] for g in same_face_groups(dets, min_score=config.min_score)])]
                dets = dets[judgeable(dets, config)]
                if not len(dets):
                    continue
                emb = embedder.embed(rgb, dets.xyxy, min_sharpness=config.min_sharpness, chips=True)
                for i in np.nonzero(np.isfinite(emb.vectors).all(axis=1))[0]:
                    box = tuple(round(float(v), 1) for v in dets.xyxy[i])
                    found.append(Sighting(str(path), index, t, box, emb.vectors[i],
                                          float(emb.sharpness[i]), emb.chips[i]))
                    count += 1
        except Exception as exc:
            error = describe_error(exc)
        if on_file is not None:
            on_file(path, count, error)
    return found


def cluster(vectors: np.ndarray, distance: float = DISCOVER_DISTANCE, rounds: int = 50) -> np.ndarray:
    """Chinese whispers over the graph of pairs closer than `distance`: (N,) group numbers,
    0 for the biggest group, deterministic."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64)
    if n > MAX_FACES:
        raise ConfigError(f"{n} faces are too many to group at once (at most {MAX_FACES}); "
                          "use fewer files or a larger --every")
    v = vectors.astype(np.float32)
    sq = (v * v).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * v @ v.T, 0))
    linked = d < distance
    np.fill_diagonal(linked, False)
    weight = np.where(linked, 1.0 - d, 0.0)
    labels = np.arange(n)
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        changed = False
        for i in rng.permutation(n):
            nb = np.flatnonzero(linked[i])
            if nb.size:
                best = int(np.bincount(labels[nb], weights=weight[i, nb], minlength=n).argmax())
                if best != labels[i]:
                    labels[i], changed = best, True
        if not changed:
            break
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse]


def write_discovery(folder: str | Path, sightings: list[Sighting], labels: np.ndarray, *,
                    model: str, distance: float) -> tuple[Path, Path]:
    """people.json and contact_sheet.jpg in `folder`; returns their paths."""
    from ..media.images import write_image

    folder = Path(folder)
    groups = [np.flatnonzero(labels == k) for k in range(int(labels.max()) + 1)] if len(labels) else []
    people = []
    for k, idx in enumerate(groups):
        people.append({
            "id": f"person_{k + 1}", "name": None, "faces": len(idx),
            "seen": [{"file": sightings[i].file, "frame": sightings[i].frame,
                      "time": None if sightings[i].time is None else round(sightings[i].time, 3),
                      "box": list(sightings[i].box)} for i in idx],
            "vectors": [[round(float(x), 6) for x in sightings[i].vector] for i in idx],
        })
    document = {"faceveil": __version__, "kind": "people", "model": model, "distance": distance,
                "help": "put a name in \"name\" and run: faceveil people add --from THIS_FILE",
                "people": people}
    json_path, sheet_path = folder / "people.json", folder / "contact_sheet.jpg"
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    write_image(sheet_path, contact_sheet(sightings, groups))
    return json_path, sheet_path


def contact_sheet(sightings: list[Sighting], groups: list[np.ndarray]) -> np.ndarray:
    """One row per group (biggest first): its id and face count, then its sharpest faces."""
    label_w, pad = 150, 4
    rows = []
    for k, idx in enumerate(groups[:SHEET_ROWS]):
        row = np.full((THUMB + 2 * pad, label_w + SHEET_FACES * (THUMB + pad) + pad, 3), 255, np.uint8)
        cv2.putText(row, f"person_{k + 1}", (6, THUMB // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                    cv2.LINE_AA)
        cv2.putText(row, f"{len(idx)} face(s)", (6, THUMB // 2 + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (90, 90, 90), 1, cv2.LINE_AA)
        best = sorted(idx, key=lambda i: -sightings[i].sharpness)[:SHEET_FACES]
        for j, i in enumerate(best):
            x = label_w + j * (THUMB + pad)
            row[pad:pad + THUMB, x:x + THUMB] = cv2.resize(sightings[i].chip, (THUMB, THUMB),
                                                           interpolation=cv2.INTER_AREA)
        rows.append(row)
    if not rows:
        rows.append(np.full((THUMB, label_w + SHEET_FACES * (THUMB + pad), 3), 255, np.uint8))
        cv2.putText(rows[0], "no faces found", (6, THUMB // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0),
                    1, cv2.LINE_AA)
    return np.ascontiguousarray(np.vstack(rows))


def read_discovery(path: str | Path, model: str,
                   dims: int) -> list[tuple[str, str | None, np.ndarray]]:
    """(id, name, vectors) of each group in a people.json written by `write_discovery`."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if document.get("kind") != "people":
            raise ValueError("not a people file from `faceveil people discover`")
        if document.get("model") != model:
            raise ValueError(f"made with {document.get('model')!r}, not {model!r}")
        out = []
        for p in document["people"]:
            vectors = np.asarray(p["vectors"], np.float32)
            if vectors.ndim != 2 or vectors.shape[1] != dims or not len(vectors) \
                    or not np.isfinite(vectors).all():
                raise ValueError(f"{p.get('id')}: bad vectors")
            out.append((str(p["id"]), p.get("name") or None, vectors))
        return out
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
