"""Re-identification: does a hidden face still match its person for a face recogniser?

The attack measured: someone holds other photos of the people (a gallery) and a recogniser;
they know where each hidden face is. For each reference photo of the shared identities, the
photo's face is hidden at a given face size, embedded at its box, and compared 1-nearest-
neighbour with the untouched faces of every other photo of every person. It is *re-identified*
when the nearest gallery face is the same person, nearer than the recogniser's own same-person
distance (`MATCH`, dlib's 0.6), and nearer than the hidden faces of every other person come to
that person (a lineup). The distance and the lineup matter: with a dozen people a random vector
finds its own person first once in a dozen tries, and a method that makes every face look the
same (an emoji) lands them all next to one person, neither of which says who was hidden.

    probes = load_probes(identities_root, detector)
    gallery = Gallery(embedder, probes)
    hits = gallery.reidentified(hide, size=80)   # per probe: True / False / None (not judged)

Used by bench/reid.py (the table in bench/README.md), by tests/audit/test_reid.py (defaults leave no
face matched) and for the figures the effects quote when a setting is below its floor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..types import Detections, Frame

MATCH = 0.6  # dlib ResNet: faces nearer than this are the same person (its documented threshold)
Hide = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (RGB image, (1, 4) box) -> hidden image


@dataclass(frozen=True, eq=False)
class Probe:
    person: str
    file: str  # relative to the data root
    image: np.ndarray  # RGB, as read (orientation applied)
    box: np.ndarray  # (4,) float32: the photo's largest face


def load_probes(identities: Path, detector, persons: Sequence[str] | None = None) -> list[Probe]:
    """One probe per single-person reference photo (its largest face); group photos are left out."""
    from ..media.images import read_image

    meta = json.loads((identities / "identities.json").read_text())
    out = []
    for person, photos in sorted(meta["persons"].items()):
        if persons is not None and person not in persons:
            continue
        for photo in photos:
            rgb = read_image(identities.parent / photo["file"]).rgb
            found = detector.detect(Frame(np.ascontiguousarray(rgb)))
            if not len(found):
                continue
            box = found.xyxy[int(np.argmax(found.heights))]
            out.append(Probe(person, photo["file"], rgb, box.astype(np.float32)))
    return out


def at_size(image: np.ndarray, box: np.ndarray, size: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The picture scaled so that its face box is `size` px tall (None: as is); only shrinks."""
    if size is None:
        return image, box
    height = float(box[3] - box[1])
    if height < size:
        return None
    f = size / height
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small), (box * f).astype(np.float32)


class Gallery:
    """The untouched faces of all probes, embedded once."""

    def __init__(self, embedder, probes: Sequence[Probe]) -> None:
        self.embedder, self.probes = embedder, list(probes)
        self.vectors = np.stack([embedder.embed(p.image, p.box[None]).vectors[0] for p in self.probes])
        self.persons = np.array([p.person for p in self.probes])
        counts = {p: int((self.persons == p).sum()) for p in set(self.persons)}
        # a probe can be re-identified only when its person has another photo in the gallery
        self.judged = np.array([counts[p.person] >= 2 for p in self.probes])
        self._before: dict[tuple[int, int | None], np.ndarray] = {}  # unhidden at a size

    def nearest(self, i: int, vector: np.ndarray) -> tuple[str, float]:
        """The nearest other gallery face to `vector`, leaving out probe i's own photo."""
        d = np.linalg.norm(self.vectors - vector, axis=1)
        d[i] = np.inf
        j = int(np.argmin(d))
        return str(self.persons[j]), float(d[j])

    def reidentified(self, hide: Hide, size: int | None = None) -> list[bool | None]:
        """Per probe: whether its face, hidden by `hide` at face height `size`, is re-identified
        (None where it cannot be judged: one photo only, or face smaller than `size`)."""
        return [None if r is None else r[0] and r[1] < min(MATCH, r[2])
                for r in self.nearest_after(hide, size)]

    def nearest_after(self, hide: Hide, size: int | None = None
                      ) -> list[tuple[bool, float, float] | None]:
        """Per probe, for its face hidden by `hide` at face height `size`: (is the nearest other
        gallery face its own person, at what distance, and the lineup distance: how near the
        hidden faces of all other people come to that person's gallery photos). None where it
        cannot be judged.

        The lineup keeps a method's constant look from counting as recognition: an emoji over
        every face lands every hidden face near the same gallery face, so that person's own
        photos "match" at 0.59 although the picture says nothing about who is under it. A hidden
        face is re-identified only when it is also nearer to its person than any other person's
        hidden face is (it would be picked out of a lineup of hidden faces)."""
        vectors: list[np.ndarray | None] = []
        for i, p in enumerate(self.probes):
            scaled = at_size(p.image, p.box, size) if self.judged[i] else None
            if scaled is None:
                vectors.append(None)
                continue
            image, box = scaled
            vectors.append(self.embedder.embed(hide(image, box[None]), box[None]).vectors[0])
        out: list[tuple[bool, float, float] | None] = []
        for i, (p, v) in enumerate(zip(self.probes, vectors, strict=True)):
            if v is None:
                out.append(None)
                continue
            person, dist = self.nearest(i, v)
            own = self.vectors[(self.persons == p.person) & (np.arange(len(self.probes)) != i)]
            others = [w for j, w in enumerate(vectors) if w is not None and self.persons[j] != p.person]
            lineup = min((float(np.linalg.norm(own - w, axis=1).min()) for w in others),
                         default=np.inf)
            out.append((person == p.person, dist, lineup))
        return out

    def own_distances(self, hide: Hide, size: int | None = None) -> list[float | None]:
        """Per probe: how far its face hidden by `hide` at face height `size` is from the same
        face unhidden at that size (what the verifier measures: it has the original, not a
        gallery). None where the probe is not judged."""
        out: list[float | None] = []
        for i, p in enumerate(self.probes):
            scaled = at_size(p.image, p.box, size) if self.judged[i] else None
            if scaled is None:
                out.append(None)
                continue
            image, box = scaled
            key = (i, size)
            if key not in self._before:
                self._before[key] = self.embedder.embed(image, box[None]).vectors[0]
            after = self.embedder.embed(hide(image, box[None]), box[None]).vectors[0]
            out.append(float(np.linalg.norm(after - self._before[key])))
        return out

    def chance(self) -> float:
        """The rank-1 share a recogniser that guesses would reach: per judged probe, the share of
        the other gallery photos that show its person."""
        n = len(self.probes)
        same = [(self.persons == p.person).sum() - 1 for p in self.probes]
        return float(np.mean([s / (n - 1) for s, j in zip(same, self.judged, strict=True) if j]))


def pipeline_hide(config) -> Hide:
    """How faceveil hides one face with `config` (mask and effect exactly as in a run)."""
    from ..pipeline import Pipeline

    pipe = Pipeline(config)

    def hide(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        dets = Detections(boxes.astype(np.float32), np.ones(len(boxes), np.float32))
        return pipe.render(Frame(image), dets, still=True)

    return hide


def emoji_picture(size: int = 256, ring: bool = False) -> np.ndarray:
    """An emoji-like RGBA picture (opaque yellow disc, transparent corners) for overlay tests;
    `ring`: only a thick ring, the middle transparent (the worst case of a see-through picture)."""
    pic = np.zeros((size, size, 4), np.uint8)
    c, r = size // 2, size // 2 - 1
    cv2.circle(pic, (c, c), r, (255, 204, 51, 255), -1, cv2.LINE_AA)
    if ring:
        cv2.circle(pic, (c, c), int(r * 0.7), (0, 0, 0, 0), -1, cv2.LINE_AA)
        return pic
    for ex in (c - size // 6, c + size // 6):
        cv2.circle(pic, (ex, c - size // 8), size // 14, (60, 40, 20, 255), -1, cv2.LINE_AA)
    cv2.ellipse(pic, (c, c + size // 10), (size // 4, size // 6), 0, 10, 170, (60, 40, 20, 255),
                max(2, size // 40), cv2.LINE_AA)
    return pic
