"""Keep/hide decisions from face vectors, per picture and per video track. Fail closed.

A face is judged only when it is big enough, sharp enough and a confident detection; otherwise
it is hidden. With `keep`, a judged face is visible when its distance to the nearest reference
of a kept person is below `keep_distance`; with `only`, it is visible when it is at least
`only_distance` from every listed person. In video one decision is made per track, from a few
of its frames (`TrackVotes`), so a person does not flicker between kept and hidden.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import IdentityConfig
from ..errors import ConfigError
from ..types import Detections, Frame
from . import Embedder, embedders
from .gallery import Gallery

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class References:
    """The faces to compare against: the people asked for (`wanted`) and, for an open-set
    decision, every other person enrolled in the gallery."""

    names: tuple[str, ...]
    vectors: np.ndarray  # (M, dims)
    owners: np.ndarray  # (M,) index into names
    wanted: np.ndarray | None = None  # (len(names),) bool; None: all of them

    def __post_init__(self) -> None:
        if self.wanted is None:
            object.__setattr__(self, "wanted", np.ones(len(self.names), bool))

    def per_person(self, vectors: np.ndarray) -> np.ndarray:
        """(N, people): distance from each vector to each person's nearest reference; NaN rows stay NaN."""
        if not len(vectors):
            return np.zeros((0, len(self.names)), np.float32)
        d = np.linalg.norm(vectors[:, None, :] - self.vectors[None, :, :], axis=2)
        out = np.full((len(vectors), len(self.names)), np.inf, np.float32)
        rows = np.arange(len(vectors))[:, None]
        np.minimum.at(out, (rows, np.asarray(self.owners)[None, :]), np.nan_to_num(d, nan=np.inf))
        out[np.isnan(d).any(axis=1)] = np.nan
        return out

    def split(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(wanted distance, wanted person, other distance, other person) per vector: the nearest
        person asked for and the nearest other enrolled person (inf and -1 when there is none)."""
        per = self.per_person(vectors)
        n = len(per)
        if not n:
            return (np.zeros(0, np.float32), np.zeros(0, int), np.zeros(0, np.float32), np.zeros(0, int))
        idx = np.arange(len(self.names))

        def nearest(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if not cols.size:
                return np.full(n, np.inf, np.float32), np.full(n, -1)
            sub = per[:, cols]
            with np.errstate(invalid="ignore"):
                arg = np.nan_to_num(sub, nan=np.inf).argmin(axis=1)
            dist = sub[np.arange(n), arg]
            return dist.astype(np.float32), cols[arg]

        dw, pw = nearest(idx[self.wanted])
        do, po = nearest(idx[~self.wanted])
        do[np.isnan(dw)] = np.nan
        return dw, pw, do, po

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """(N,) distance from each vector to the nearest reference of a wanted person."""
        return self.split(vectors)[0]


def open_set_keep(wanted: np.ndarray, others: np.ndarray, distance: float, margin: float) -> np.ndarray:
    """The open-set rule: True where the nearest wanted person is nearer than `distance` and at
    least `margin` nearer than every other enrolled person. NaN (not judged) is never kept."""
    return effective(wanted, others, distance, margin) < distance


def effective(wanted: np.ndarray, others: np.ndarray, distance: float, margin: float) -> np.ndarray:
    """One number per face for the open-set rule, below `distance` exactly when it is kept:
    max(wanted, wanted - others + margin + distance). It averages over video samples like a
    distance, and a face with no other enrolled person near it keeps its plain distance."""
    w = np.asarray(wanted, np.float32)
    o = np.asarray(others, np.float32)
    with np.errstate(invalid="ignore"):
        return np.maximum(w, w - o + margin + distance)


# A face box narrower than this (width / height) is a face cut off by the picture's edge or turned
# away: not judged. CenterFace's boxes of whole faces in ../shared/data/identities are 0.47-0.86
# wide for their height (0.47-0.50: obama_partial_face*, cut but still matching); the half faces
# at the edges of selfie-many-people.jpg are 0.34-0.43, and linked into one "person" in discovery.
MIN_ASPECT = 0.45
# Another gallery person this near a face asked for is taken to be the same person (enrolled
# twice, or given as photos and by name), not a rival. On ../shared/data/identities the same
# person's faces are 0.38 apart at the median, two different people's at least 0.66.
SAME_PERSON = 0.4


@dataclass
class Enrolment:
    """What reference photos gave: one vector per usable photo, and why others gave none."""

    vectors: list[np.ndarray] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def photo_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Picture files named directly or found (recursively, sorted) in folders."""
    from ..media.images import SUFFIXES

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in SUFFIXES and f.is_file())
        else:
            out.append(p)
    return out


def enrol(paths: Iterable[str | os.PathLike], detector, embedder: Embedder,
          config: IdentityConfig | None = None) -> Enrolment:
    """One vector per reference photo: its main face (the biggest, clearly bigger than any other)."""
    from ..errors import describe_error
    from ..media.images import read_image

    config = config or IdentityConfig()
    result = Enrolment()
    for path in photo_files(paths):
        try:
            rgb = read_image(path).rgb
            dets = detector.detect(Frame(rgb, source=str(path)))
        except Exception as exc:
            result.skipped.append((path, describe_error(exc)))
            continue
        dets = dets[dets.scores >= config.min_score]  # false alarms do not make a photo ambiguous
        dets = dets[np.array([g[0] for g in same_face_groups(dets)], int)] if len(dets) else dets
        area = dets.widths * dets.heights
        order = np.argsort(-area)
        if not len(dets):
            result.skipped.append((path, "no face found"))
            continue
        if len(dets) > 1 and area[order[1]] > 0.5 * area[order[0]]:
            result.skipped.append((path, f"{len(dets)} faces of similar size; crop it to the person"))
            continue
        main = dets[order[:1]]
        if not judgeable(main, config)[0]:
            result.skipped.append((path, f"the face is {_why_not(main, 0, config)}"))
            continue
        emb = embedder.embed(rgb, main.xyxy, min_sharpness=config.min_sharpness)
        if not np.isfinite(emb.vectors[0]).all():
            result.skipped.append((path, "the face is too blurred"))
            continue
        result.vectors.append(emb.vectors[0])
        result.sources.append(path)
    return result


def judgeable(dets: Detections, config: IdentityConfig) -> np.ndarray:
    """(N,) faces big enough, confident enough and really detected (not filled in), so worth judging."""
    side = np.minimum(dets.widths, dets.heights)
    whole = dets.widths >= MIN_ASPECT * dets.heights
    return (side >= config.min_face) & (dets.scores >= config.min_score) & ~dets.filled & whole


def load_references(entries: Iterable[str], embedder: Embedder, detector_factory: Callable,
                    config: IdentityConfig) -> References:
    """Gallery names and reference photo paths -> References (ConfigError if one gives nothing)."""
    gallery = Gallery(config.gallery)
    known = {p.name for p in gallery.people()}
    names, vectors, owners = [], [], []
    for entry in entries:
        in_gallery = unicodedata.normalize("NFC", entry).strip() in known  # as check_name stores it
        if not in_gallery and not Path(entry).exists() and ("/" in entry or os.sep in entry):
            raise ConfigError(f"{entry!r} is neither a person in the gallery nor an existing file "
                              f"or folder (gallery: {gallery.path})")
        if not in_gallery and Path(entry).exists():
            got = enrol([entry], detector_factory(), embedder, config)
            for path, why in got.skipped:
                log.warning("%s: not used as a reference: %s", path, why)
            if not got.vectors:
                raise ConfigError(f"{entry}: no usable reference face")
            found = np.stack(got.vectors)
        else:
            found = gallery.vectors(entry, embedder.name)
        names.append(entry)
        vectors.append(found)
        owners.append(np.full(len(found), len(names) - 1))
    if not names:
        raise ConfigError("no people to recognise")
    wanted = len(names)
    asked = {unicodedata.normalize("NFC", e).strip() for e in names}
    mine = np.concatenate(vectors).astype(np.float32)
    for person in gallery.people():  # open set: everybody else enrolled competes for each face
        if person.name in asked:
            continue
        try:
            found = gallery.vectors(person.name, embedder.name)
        except ConfigError:  # enrolled with another embedder only
            continue
        apart = float(np.linalg.norm(found[:, None] - mine[None], axis=2).min())
        if apart < SAME_PERSON:  # e.g. --keep refs/alice/ while alice is also in the gallery
            log.warning("%s in the gallery is %.2f from the faces asked for: taken as the same person, "
                        "not as somebody else", person.name, apart)
            continue
        names.append(person.name)
        vectors.append(found)
        owners.append(np.full(len(found), len(names) - 1))
    return References(tuple(names), np.concatenate(vectors).astype(np.float32), np.concatenate(owners),
                      np.arange(len(names)) < wanted)


class Identifier:
    """Judges faces against the references and turns distances into visible/hidden."""

    def __init__(self, config: IdentityConfig, references: References, embedder: Embedder) -> None:
        self.config, self.references, self.embedder = config, references, embedder
        self.keep_mode = bool(config.keep)
        self.last = Judgement(0)

    @classmethod
    def from_config(cls, config: IdentityConfig, detector_factory: Callable) -> Identifier:
        embedder = embedders.create(config.embedder)
        refs = load_references(config.keep or config.only, embedder, detector_factory, config)
        log.info("recognising %s (%d reference faces)", ", ".join(refs.names), len(refs.vectors))
        return cls(config, refs, embedder)

    def judge(self, image: np.ndarray, dets: Detections, which: np.ndarray | None = None) -> np.ndarray:
        """(N,) one distance per face, below the threshold exactly when the face may stay
        visible (see `effective`); NaN where it cannot be judged. The details of the last call
        (who was nearest, at what distance, or why not judged) are in `self.last`."""
        out, self.last = self._judge(image, dets, which)
        return out

    def _judge(self, image: np.ndarray, dets: Detections,
               which: np.ndarray | None = None) -> tuple[np.ndarray, Judgement]:
        n = len(dets)
        out = np.full(n, np.nan, np.float32)
        ok = judgeable(dets, self.config)
        last = Judgement(n)  # a local first: the identifier may serve several threads
        last.why[~ok] = [_why_not(dets, i, self.config) for i in np.nonzero(~ok)[0]]
        if which is not None:
            ok &= which
        idx = np.nonzero(ok)[0]
        if idx.size:
            emb = self.embedder.embed(image, dets.xyxy[idx], min_sharpness=self.config.min_sharpness)
            dw, pw, do, po = self.references.split(emb.vectors)
            cfg = self.config
            out[idx] = (effective(dw, do, cfg.keep_distance, cfg.keep_margin) if self.keep_mode else dw)
            last.wanted[idx], last.other[idx] = dw, do
            names = self.references.names
            for j, i in enumerate(idx):
                if np.isnan(dw[j]):
                    last.why[i] = "too blurred to judge"
                    continue
                last.who[i] = names[pw[j]]
                last.rival[i] = names[po[j]] if po[j] >= 0 else None
        return out, last

    def visible(self, distances: np.ndarray) -> np.ndarray:
        """Per distance: may this face stay visible? NaN (not judged) never may."""
        d = np.asarray(distances, np.float32)
        with np.errstate(invalid="ignore"):
            if self.keep_mode:
                return d < self.config.keep_distance
            return d >= self.config.only_distance

    def decide(self, frame: Frame, dets: Detections) -> Detections:
        """Keep/hide per face. Boxes on one face (`same_face_groups`) are judged once, on the
        group's best box, and share its decision, so a face is kept whole or hidden whole."""
        if not len(dets):
            return dets
        groups = same_face_groups(dets, min_score=self.config.min_score)
        main = np.array([g[0] for g in groups], int)
        judged, last = self._judge(frame.image, dets[main])
        visible = self.visible(judged)
        keep = np.zeros(len(dets), bool)
        why = np.full(len(dets), "", object)
        for k, (g, v) in enumerate(zip(groups, visible, strict=True)):
            keep[g] = v
            why[g] = self.explain(k, judged[k], last)
            if len(g) > 1:
                why[g[1:]] = why[g[0]] + " (another box on the same face)"
        return dataclasses.replace(dets, keep=keep, why=why)

    def explain(self, i: int, judged: float, last: Judgement | None = None) -> str:
        """Why face `i` of a `judge` call (`last`, by default the latest) is kept or hidden."""
        last, cfg = last or self.last, self.config
        if last.why[i]:
            return f"hidden: {last.why[i]}"
        who, dw, rival, do = last.who[i], float(last.wanted[i]), last.rival[i], float(last.other[i])
        next_ = f"; nearest other: {rival} at {do:.2f}" if rival is not None and np.isfinite(do) else ""
        if not self.keep_mode:
            if self.visible(np.float32(judged)):
                return f"shown: not {who} ({dw:.2f} >= {cfg.only_distance:.2f})"
            return f"hidden: may be {who} ({dw:.2f} < {cfg.only_distance:.2f})"
        if self.visible(np.float32(judged)):
            return f"kept: {who} at {dw:.2f}{next_}"
        if dw >= cfg.keep_distance:
            return f"hidden: not {who} ({dw:.2f} >= {cfg.keep_distance:.2f}){next_}"
        return f"hidden: {who} at {dw:.2f} but {rival} at {do:.2f} is within {cfg.keep_margin:.2f}"


@dataclass
class Judgement:
    """Why each face of the last `Identifier.judge` call was decided as it was."""

    n: int
    who: list[str | None] = field(default_factory=list)  # nearest person asked for
    rival: list[str | None] = field(default_factory=list)  # nearest other enrolled person
    wanted: np.ndarray = field(default=None)  # type: ignore[assignment]
    other: np.ndarray = field(default=None)  # type: ignore[assignment]
    why: np.ndarray = field(default=None)  # type: ignore[assignment]  # "" when judged

    def __post_init__(self) -> None:
        self.who = [None] * self.n
        self.rival = [None] * self.n
        self.wanted = np.full(self.n, np.nan, np.float32)
        self.other = np.full(self.n, np.nan, np.float32)
        self.why = np.full(self.n, "", object)


def _why_not(dets: Detections, i: int, config: IdentityConfig) -> str:
    side = float(min(dets.widths[i], dets.heights[i]))
    if dets.filled[i]:
        return "filled in by the tracker, not seen"
    if side < config.min_face:
        return f"too small to judge ({side:.0f} px < {config.min_face})"
    if dets.widths[i] < MIN_ASPECT * dets.heights[i]:
        return f"cut off or turned away (box {float(dets.widths[i] / dets.heights[i]):.2f} as wide as high)"
    return f"too unsure a detection to judge (score {float(dets.scores[i]):.2f} < {config.min_score})"


def same_face_groups(dets: Detections, iou: float = 0.45, inside: float = 0.8,
                     min_score: float = 0.5) -> list[np.ndarray]:
    """Boxes that cover one face, grouped: each group's indices, its best box first (really
    detected, then confident (`min_score`), then the biggest).

    Two boxes are one face when they overlap by `iou` or more, or when the smaller lies at least
    `inside` within the bigger with its centre in the middle half of the bigger (an eye or mouth
    box, or a tighter box from another detector pass). Faces side by side or one behind the
    other's shoulder stay apart. Every box is in exactly one group.
    """
    n = len(dets)
    if n < 2:
        return [np.arange(n)]
    from ..geometry import centres, components, overlapping_pairs, paired_intersections

    # only boxes that overlap can be one face: pairs of them, not an N x N matrix (crowds)
    xyxy = dets.xyxy
    a, b = overlapping_pairs(xyxy)
    size = xyxy[:, 2:] - xyxy[:, :2]
    area = size.prod(axis=1)
    c = centres(xyxy)
    inter = paired_intersections(xyxy[a], xyxy[b])

    def nested(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Box i lies `inside` within box j, centred in its middle half, and is no bigger."""
        centred = (np.abs(c[i] - c[j]) <= size[j] / 4).all(axis=1)
        return (inter / np.maximum(area[i], 1e-6) >= inside) & centred & (area[i] <= area[j])

    same = ((inter / np.maximum(area[a] + area[b] - inter, 1e-6) >= iou)
            | nested(a, b) | nested(b, a))
    face = components(n, a[same], b[same]).tolist()
    rank = np.lexsort((-area, dets.scores < min_score, dets.filled))
    groups: dict[int, list[int]] = {}
    for i in rank.tolist():
        groups.setdefault(face[i], []).append(i)
    return [np.array(groups[k]) for k in sorted(groups)]  # by lowest index: the label


@dataclass
class _Track:
    last_seen: int
    distances: list[float] = field(default_factory=list)  # recent samples; NaN: could not judge
    last_sample: int | None = None  # frame of the last attempt
    interval: int = 0
    visible: bool = False
    near: bool = False  # close to another face at its last detection
    why: str = ""  # the last sample's explanation


class TrackVotes:
    """One keep/hide decision per track, from a few sampled frames rather than every frame.

    `observe` is called with each frame's detections as the tracker numbered them (before the
    tracker hands the frame on, so a decision can use frames up to its look-ahead later);
    `decide` marks the faces of a finished frame. A track is sampled when it appears, then
    every `SAMPLE_EVERY` frames until it has `VOTES` samples (fewer when the first is far from
    the threshold), then a visible track every `VERIFY_EVERY` frames and a hidden one more and
    more rarely. A visible track is also sampled again at once when it comes near another face
    or is found again after a gap, where a tracker can swap two people, and every
    `SAMPLE_EVERY` frames while it stays near one: if such a sample says hidden, the track's
    earlier votes are dropped. A track is visible while the mean of its last
    `VOTES` + 2 samples is a match (with `keep`), or while none of them looks like a listed
    person (with `only`); a latest sample that could not be judged hides it.
    """

    VOTES = 3
    SAMPLE_EVERY = 8
    VERIFY_EVERY = 30
    MAX_INTERVAL = 240
    CLEAR = 0.1  # a sample this far on the hidden side of the threshold needs no more votes
    PER_FRAME = 4  # at most this many faces embedded per frame (the rest wait, hidden)

    def __init__(self, identifier: Identifier, detect_every: int = 1, min_votes: int = 1) -> None:
        self.identifier = identifier
        self.gap = max(1, detect_every)
        # A file's frames leave the tracker a window later, when a track has its VOTES samples;
        # a live frame is shown at once, so live asks for VOTES samples before a face shows.
        self.min_votes = max(1, min(min_votes, self.VOTES))
        self._tracks: dict[int, _Track] = {}
        self.samples = 0

    def observe(self, number: int, dets: Detections, image: Callable[[], np.ndarray]) -> None:
        if not len(dets) or dets.track_ids is None:
            return
        near = _near_others(dets)
        worth = judgeable(dets, self.identifier.config)  # costs nothing to know
        due: list[tuple[int, int, bool]] = []
        for i, tid in enumerate(dets.track_ids.tolist()):
            t = self._tracks.setdefault(tid, _Track(last_seen=number))
            was_near, t.near = t.near, bool(near[i])
            found_again = number - t.last_seen > self.gap
            t.last_seen = number
            risky = t.visible and (found_again or t.near)  # a sample now may show someone else
            urgent = t.visible and (found_again or (t.near and not was_near))
            interval = min(t.interval, self.SAMPLE_EVERY) if risky else t.interval
            if not (t.last_sample is None or urgent or number - t.last_sample >= interval):
                continue
            if worth[i]:
                due.append((0 if t.last_sample is None else 1 if risky else 2, i, risky))
            elif risky:  # maybe someone else now, and too small or unsure to tell: hidden
                t.distances, t.visible, t.interval = [np.nan], False, self.SAMPLE_EVERY
        if not due:
            return
        due.sort()
        due = due[:self.PER_FRAME]
        which = np.zeros(len(dets), bool)
        which[[i for _, i, _ in due]] = True
        distances, last = self.identifier._judge(image(), dets, which)
        for _, i, risky in due:
            t = self._tracks[int(dets.track_ids[i])]
            t.last_sample = number
            d = float(distances[i])
            t.why = self.identifier.explain(i, d, last)
            if np.isnan(d) and not risky:
                t.interval = self.SAMPLE_EVERY  # cannot judge it now: look again soon
                continue
            self.samples += int(not np.isnan(d))
            if risky and not self.identifier.visible(d):
                t.distances = []  # maybe someone else now: their votes start afresh
            t.distances = [*t.distances, d][-(self.VOTES + 2):]
            self._update(t)

    def _update(self, t: _Track) -> None:
        ident = self.identifier
        recent = np.array(t.distances, np.float32)
        judged = recent[~np.isnan(recent)]
        if np.isnan(recent[-1]) or not judged.size:
            match = False
        elif ident.keep_mode:
            match = bool(ident.visible(judged.mean()))
        else:
            match = bool(ident.visible(judged).all())
        t.visible = match and judged.size >= self.min_votes  # too few samples: hidden
        threshold = ident.config.keep_distance if ident.keep_mode else ident.config.only_distance
        far = abs(float(judged.mean()) - threshold) > self.CLEAR if judged.size else False
        if judged.size < self.VOTES and not (far and not match):
            t.interval = self.SAMPLE_EVERY
        elif t.visible:
            t.interval = self.VERIFY_EVERY
        else:
            t.interval = min(self.MAX_INTERVAL, max(self.VERIFY_EVERY, 2 * t.interval))

    def decide(self, dets: Detections) -> Detections:
        if not len(dets) or dets.track_ids is None:
            return dets
        tracks = [self._tracks.get(tid) for tid in dets.track_ids.tolist()]
        keep = np.zeros(len(dets), bool)
        for g in same_face_groups(dets, min_score=self.identifier.config.min_score):
            # one face, one decision: kept when a track on it is kept and no track on it was
            # judged to be somebody else; boxes that could not be judged follow the judged one
            ts = [tracks[i] for i in g]
            seen = [t for t in ts if t is not None and any(np.isfinite(t.distances))]
            keep[g] = bool(seen) and all(t.visible for t in seen)
        why = np.array([self._why(t, k) for t, k in zip(tracks, keep, strict=True)], object)
        return dataclasses.replace(dets, keep=keep, why=why)

    @staticmethod
    def _why(t: _Track | None, kept: bool) -> str:
        if t is None or not t.why:
            return ("kept: another box on the same face is kept" if kept
                    else "hidden: not judged yet (too small, unsure or waiting its turn)")
        looks = int(np.isfinite(t.distances).sum())
        state = "kept" if kept else "hidden"
        return f"{state} ({looks} look(s) at this track); last look: {t.why}"


def _near_others(dets: Detections) -> np.ndarray:
    """(N,) whether each box, grown by half, overlaps another face's box (not its own second box)."""
    xyxy = dets.xyxy
    if len(xyxy) < 2:
        return np.zeros(len(xyxy), bool)
    from ..geometry import overlapping_pairs, scaled

    a, b = overlapping_pairs(scaled(xyxy, 1.5))
    face = np.zeros(len(xyxy), np.int64)
    for k, g in enumerate(same_face_groups(dets)):
        face[g] = k
    other = face[a] != face[b]
    near = np.zeros(len(xyxy), bool)
    near[a[other]] = near[b[other]] = True
    return near
