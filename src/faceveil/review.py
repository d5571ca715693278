"""Review before export: the faces of one picture or video, corrected by a person, then rendered.

This is the desktop app's model, with no Qt in it. A `Review` holds what the detector found
(every face with a track id: a picture's faces are one-frame tracks), the person's decisions
(keep or hide a track) and the boxes they drew around faces the detector missed (in a video
followed forwards and backwards by `follow_in_video`). `faces(i)` merges the three into the
frame's `Detections`; they are saved as a faces file, the same sidecar format `faceveil run
--json` writes (plus a "review" entry naming the drawn and decided tracks), so a review can be
re-opened, and `faceveil render --faces` renders it too.

Fail closed: nothing is exported from a review that was never analysed, a drawn box is always
hidden, and after a new analysis (other detector or quality) a decision carries over only to
the new faces that overlap the faces it was made on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .config import PipelineConfig
from .errors import ConfigError, FaceveilError
from .geometry import areas, intersections, iou_matrix
from .media.images import DEFAULT_MAX_PIXELS, read_image
from .media.video import EncodeOptions, VideoInput, is_video, upright
from .pipeline.events import Progress, ProgressCallback
from .pipeline.pipeline import Pipeline
from .sidecar import faces_document, read_sidecar, write_sidecar
from .tracking.follow import BoxFollower
from .types import Counts, Detections, Frame

log = logging.getLogger(__name__)

FOLLOW_SIDE = 640  # drawn boxes are followed on frames this long on their long side
FOLLOW_BACK = 900  # frames before the drawn one kept for following backwards (~30 s)
CARRY_IOU = 0.5  # a decision carries to a new face overlapping its face this much
SAME_FACE = 0.5  # two boxes sharing this much of the smaller one are the same face (toggle)

Box = tuple[float, float, float, float]


class Cancelled(FaceveilError):
    """The person stopped a long task."""


def checked(cancel: threading.Event | None, notify: ProgressCallback | None) -> ProgressCallback:
    """A progress callback that passes events on and raises Cancelled once `cancel` is set."""

    def on_progress(event: Progress) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("stopped")
        if notify is not None:
            notify(event)

    return on_progress


class Review:
    """One picture or video under review. Not thread-safe: change it from one thread."""

    def __init__(self, path: str | Path, *, kind: str, width: int, height: int,
                 fps: float | None = None) -> None:
        self.path = Path(path)
        self.kind = kind  # "picture" | "video"
        self.width, self.height, self.fps = width, height, fps
        self.found: list[Detections] = []  # per frame, as analysed, every face with a track id
        self.pts: list[float | None] = []
        self.drawn: dict[int, dict[int, tuple[Box, bool]]] = {}  # track -> frame -> (box, held)
        self.decided: dict[int, bool] = {}  # track -> keep, as the person set it
        self.analyzed = False
        # undo/redo: snapshots of (found, pts, drawn, decided, state); `state` numbers each
        # distinct set of decisions, so undoing back to what was saved is "saved" again
        self._undo: list[tuple] = []
        self._redo: list[tuple] = []
        self._state = self._saved = 0
        self._states = 0

    # ---- opening

    @classmethod
    def open(cls, path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Review:
        """A picture or video, not analysed yet; errors for what cannot be read."""
        path = Path(path)
        if is_video(path):
            from .media.video import FrameReader, probe_video, turns

            info = probe_video(path)
            with FrameReader(path, max_pixels=max_pixels) as reader:
                frame = reader.frame(0)
            w, h = (info.height, info.width) if turns(frame) % 2 else (info.width, info.height)
            review = cls(path, kind="video", width=w, height=h, fps=info.fps)
        else:
            picture = read_image(path, max_pixels)
            h, w = picture.rgb.shape[:2]
            review = cls(path, kind="picture", width=w, height=h)
            review.found, review.pts = [Detections.empty()], [None]
        return review

    @classmethod
    def load(cls, faces_file: str | Path, source: str | Path | None = None) -> Review:
        """A saved review (or any faces file): the faces as they were left.
        `source`: the picture or video, when it is not where the file says."""
        document, frames = read_sidecar(faces_file)
        path = Path(source or document["source"])
        if not path.is_file():
            raise FaceveilError(f"{faces_file}: its {'video' if len(frames) > 1 else 'picture'} "
                                f"{path} is not there; open it from where it is now")
        review = cls.open(path)
        if (review.width, review.height) != (document["width"], document["height"]):
            raise FaceveilError(f"{faces_file} is for a {document['width']}x{document['height']} "
                                f"picture; {path} is {review.width}x{review.height}")
        info = document.get("review") or {}
        drawn = {int(t) for t in info.get("drawn", ())}
        review.decided = {int(t): bool(k) for t, k in info.get("decided", ())}
        next_id = 0
        for i, dets in enumerate(frames):
            if dets.track_ids is None:  # a picture's faces from `faceveil run --json`
                dets = dataclasses.replace(dets, track_ids=np.arange(next_id, next_id + len(dets)))
                next_id += len(dets)
            is_drawn = np.isin(dets.track_ids, list(drawn))
            for j in np.flatnonzero(is_drawn):
                box = tuple(float(v) for v in dets.xyxy[j])
                review.drawn.setdefault(int(dets.track_ids[j]), {})[i] = (box, bool(dets.filled[j]))
            frames[i] = dets[~is_drawn]
        review.found = frames
        review.pts = [f.get("pts") for f in document["frames"]]
        review.analyzed = True
        return review

    # ---- undo, redo, unsaved changes

    def _snapshot(self) -> tuple:
        return (list(self.found), list(self.pts), {t: dict(b) for t, b in self.drawn.items()},
                dict(self.decided), self._state)

    def _restore(self, snapshot: tuple) -> None:
        found, pts, drawn, decided, self._state = snapshot
        self.found, self.pts = list(found), list(pts)
        self.drawn = {t: dict(b) for t, b in drawn.items()}
        self.decided = dict(decided)

    def _edit(self) -> None:
        """Called before each change the person makes: it can be undone."""
        self._undo.append(self._snapshot())
        self._redo.clear()
        self._states += 1
        self._state = self._states

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Take back the last decision, drawn box, removal or split; False when there is none."""
        if not self._undo:
            return False
        self._redo.append(self._snapshot())
        self._restore(self._undo.pop())
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self._snapshot())
        self._restore(self._redo.pop())
        return True

    @property
    def modified(self) -> bool:
        """Changed by the person since it was opened, saved or exported."""
        return self._state != self._saved

    def mark_saved(self) -> None:
        self._saved = self._state

    # ---- analysing

    def analyze(self, pipeline: Pipeline, *, on_progress: ProgressCallback | None = None,
                cancel: threading.Event | None = None) -> None:
        """Detect (and follow, in a video) the faces, keeping drawn boxes and carrying decisions."""
        notify = checked(cancel, on_progress)
        if self.kind == "picture":
            notify(Progress("start", 0, 1, str(self.path)))
            frame = Frame(read_image(self.path).rgb, source=str(self.path))
            dets = pipeline.identify(frame, pipeline.detect(frame))
            found = [dataclasses.replace(dets, track_ids=np.arange(len(dets)))]
            pts: list[float | None] = [None]
            notify(Progress("done", 1, 1, str(self.path)))
        else:
            from .pipeline.video import process_video

            found, pts = [], []

            def collect(index: int, t: float | None, dets: Detections) -> None:
                found.append(dets)
                pts.append(t)

            process_video(self.path, None, pipeline, on_frame=collect, on_progress=notify)
        again = self.analyzed
        old = self.found if again else []
        self.found, self.pts = found, pts
        self._carry(old)
        self.analyzed = True
        # the track ids are new: earlier snapshots no longer fit them
        self._undo.clear()
        self._redo.clear()
        if again and (self.decided or self.drawn):
            self._states += 1
            self._state = self._states

    def _carry(self, old: list[Detections]) -> None:
        """Decisions made on the faces of an earlier analysis, moved to the new faces: a new
        track gets a decision when most of its overlapping old faces had it (keep needs a clear
        majority of keep votes; anything less hides)."""
        votes: dict[int, list[bool]] = {}
        for before, now in zip(old, self.found, strict=False):
            if not len(before) or not len(now) or before.track_ids is None:
                continue
            decided = np.array([int(t) in self.decided for t in before.track_ids])
            if not decided.any():
                continue
            ious = iou_matrix(now.xyxy, before.xyxy[decided])
            tids = before.track_ids[decided]
            for a in range(len(now)):
                b = int(ious[a].argmax())
                if ious[a, b] >= CARRY_IOU:
                    votes.setdefault(int(now.track_ids[a]), []).append(self.decided[int(tids[b])])
        used = self._track_ids()
        drawn_decided = {t: k for t, k in self.decided.items() if t in self.drawn}
        self.decided = {t: 2 * sum(v) > len(v) for t, v in votes.items()}
        # drawn tracks keep their boxes; renumbered past the new tracks
        moved = {}
        for old_id, boxes in self.drawn.items():
            new_id = max(used, default=-1) + 1
            used.add(new_id)
            moved[new_id] = boxes
            if old_id in drawn_decided:
                self.decided[new_id] = drawn_decided[old_id]
        self.drawn = moved

    def _track_ids(self) -> set[int]:
        ids = {int(t) for d in self.found if d.track_ids is not None for t in d.track_ids}
        return ids | set(self.drawn)

    # ---- what the person does

    @property
    def frame_count(self) -> int:
        return len(self.found)

    def faces(self, index: int) -> Detections:
        """Frame `index`'s faces as they will be rendered: found ones with the person's
        decisions, then the drawn ones (hidden unless the person chose keep)."""
        found = self.found[index]
        if len(found) and found.track_ids is not None and self.decided:
            keep = np.array([self.decided.get(int(t), bool(k))
                             for t, k in zip(found.track_ids, found.keep, strict=True)], bool)
            found = dataclasses.replace(found, keep=keep)
        drawn = [(tid, *boxes[index]) for tid, boxes in self.drawn.items() if index in boxes]
        if not drawn:
            return found
        extra = Detections([box for _, box, _ in drawn], np.ones(len(drawn), np.float32),
                           track_ids=[tid for tid, _, _ in drawn],
                           keep=[self.decided.get(tid, False) for tid, _, _ in drawn],
                           filled=[held for _, _, held in drawn],
                           why=None if found.why is None else [""] * len(drawn))
        if found.track_ids is None:
            found = dataclasses.replace(found, track_ids=np.full(len(found), -1))
        return Detections.concat([dataclasses.replace(found, landmarks=None), extra])

    def face_at(self, index: int, x: float, y: float) -> int | None:
        """The track of the smallest face at (x, y) in frame `index`, if any."""
        dets = self.faces(index)
        if not len(dets) or dets.track_ids is None:
            return None
        x1, y1, x2, y2 = dets.xyxy.T
        inside = np.flatnonzero((x1 <= x) & (x <= x2) & (y1 <= y) & (y <= y2))
        if not len(inside):
            return None
        areas = dets.widths[inside] * dets.heights[inside]
        return int(dets.track_ids[inside[int(areas.argmin())]])

    def is_kept(self, track: int) -> bool:
        if track in self.decided:
            return self.decided[track]
        for dets in self.found:
            if dets.track_ids is not None and len(hit := np.flatnonzero(dets.track_ids == track)):
                return bool(dets.keep[hit[0]])
        return False

    def toggle(self, track: int, index: int | None = None) -> bool:
        """Keep a hidden face's track visible, or hide a kept one; returns the new keep.

        With `index`, the faces that mostly overlap it in that frame (a second box the detector
        put on the same face) get the same decision, so keeping a face really shows it."""
        keep = not self.is_kept(track)
        tracks = {track}
        if index is not None:
            dets = self.faces(index)
            hit = np.flatnonzero(dets.track_ids == track) if dets.track_ids is not None else []
            if len(hit):
                clicked = dets.xyxy[hit[:1]]
                smaller = np.minimum(areas(dets.xyxy), areas(clicked)[0])
                same = intersections(dets.xyxy, clicked)[:, 0] >= SAME_FACE * np.maximum(smaller, 1e-6)
                tracks |= {int(t) for t in dets.track_ids[same]}
        self._edit()
        for t in tracks:
            self.decided[t] = keep
        return keep

    def split(self, track: int, index: int) -> int:
        """Cut a track at frame `index`: its faces from there on become a new track (with the
        same decision for now), so "keep him only from here" is a split and a toggle. Returns
        the new track's id."""
        frames = [i for i, d in enumerate(self.found)
                  if d.track_ids is not None and (d.track_ids == track).any()]
        frames += list(self.drawn.get(track, ()))
        if not any(i < index for i in frames) or not any(i >= index for i in frames):
            raise ConfigError(f"face {track} is not seen both before and from frame {index + 1}; "
                              "there is nothing to split")
        self._edit()
        new = max(self._track_ids(), default=-1) + 1
        for i in range(index, self.frame_count):
            dets = self.found[i]
            if dets.track_ids is not None and (hit := dets.track_ids == track).any():
                self.found[i] = dataclasses.replace(dets, track_ids=np.where(hit, new, dets.track_ids))
        if track in self.drawn:
            boxes = self.drawn[track]
            self.drawn[new] = {i: b for i, b in boxes.items() if i >= index}
            self.drawn[track] = {i: b for i, b in boxes.items() if i < index}
        if track in self.decided:
            self.decided[new] = self.decided[track]
        return new

    def add_drawn(self, boxes: dict[int, tuple[Box, bool]]) -> int:
        """A drawn face: frame -> (box in picture pixels, held). Returns its new track id."""
        if not boxes:
            raise ConfigError("a drawn face needs at least one box")
        for i, (box, _) in boxes.items():
            if not 0 <= i < self.frame_count:
                raise ConfigError(f"frame {i} is not in {self.path.name}")
            if not (box[2] > box[0] and box[3] > box[1]):
                raise ConfigError("a drawn box needs a width and a height")
        self._edit()
        track = max(self._track_ids(), default=-1) + 1
        self.drawn[track] = {int(i): (tuple(map(float, b)), bool(h)) for i, (b, h) in boxes.items()}
        return track

    def remove_drawn(self, track: int) -> bool:
        if track not in self.drawn:
            return False
        self._edit()
        self.decided.pop(track, None)
        del self.drawn[track]
        return True

    def marks(self) -> np.ndarray:
        """(frames, 3) counts per frame: hidden faces, kept faces, drawn faces; for a timeline."""
        out = np.zeros((self.frame_count, 3), np.int32)
        for i in range(self.frame_count):
            dets = self.faces(i)
            out[i, 0] = int((~dets.keep).sum())
            out[i, 1] = int(dets.keep.sum())
        for boxes in self.drawn.values():
            for i in boxes:
                out[i, 2] += 1
        return out

    # ---- saving and exporting

    def counts(self) -> Counts:
        """The faces as they will be rendered, counted as every door counts them."""
        return Counts.of(self.faces(i) for i in range(self.frame_count))

    def document(self, config: PipelineConfig, output: str | None = None) -> dict[str, Any]:
        if not self.analyzed:
            raise FaceveilError(f"{self.path.name} has not been analysed yet")
        return faces_document(
            source=str(self.path), output=output, width=self.width, height=self.height,
            frames=[(i, self.pts[i], self.faces(i)) for i in range(self.frame_count)],
            config=config, **({"fps": self.fps} if self.fps else {}),
            counts=self.counts().to_dict(),
            review={"drawn": sorted(self.drawn),
                    "decided": [[t, k] for t, k in sorted(self.decided.items())]})

    def save(self, path: str | Path, config: PipelineConfig) -> Path:
        """Write the review as a faces file (atomically)."""
        out = write_sidecar(path, self.document(config))
        self.mark_saved()
        return out

    def export(self, output: str | Path, pipeline: Pipeline, *,
               on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
               encode: EncodeOptions | None = None, image_quality: int | None = None) -> Path:
        """Render the reviewed faces into `output` (written atomically). A review never analysed
        is analysed first, so nothing leaves unchecked."""
        output = Path(output)
        if output.resolve() == self.path.resolve():
            raise ConfigError(f"{output} is the input; choose another name")
        if not self.analyzed:
            self.analyze(pipeline, on_progress=on_progress, cancel=cancel)
        state = self._state
        notify = checked(cancel, on_progress)
        from .pipeline.job import WriteOptions, process_file

        # the file job, as every door runs it, with the reviewed faces instead of detecting
        picture = self.kind == "picture"
        if picture:
            notify(Progress("start", 0, 1, str(self.path)))
        result = process_file(self.path, output, pipeline, write=WriteOptions(image_quality),
                              encode=encode, faces=[self.faces(i) for i in range(self.frame_count)],
                              on_progress=None if picture else notify, video=not picture,
                              passthrough=(Cancelled,))
        result.raise_for_error()
        if picture:
            notify(Progress("done", 1, 1, str(self.path)))
        self._saved = state  # what was decided is in the output now
        return output


def follow_in_video(path: str | Path, index: int, box: Box, size: tuple[int, int], *,
                    hold: int = 8, on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> dict[int, tuple[Box, bool]]:
    """A box drawn on frame `index` of a video, followed backwards and forwards while it is
    found (see `faceveil.tracking.follow`), then held `hold` frames more each way.

    `size`: the (width, height) of the upright frame the box is in. Returns frame -> (box,
    held). Frames are decoded from the start, so indexes match the faces file's exactly.
    """
    notify = checked(cancel, on_progress)
    width, height = size
    scale = min(1.0, FOLLOW_SIDE / max(width, height))
    small = np.asarray(box, np.float64) * scale
    out: dict[int, tuple[Box, bool]] = {index: (tuple(map(float, box)), False)}
    before: deque[tuple[int, np.ndarray]] = deque(maxlen=FOLLOW_BACK)
    forward: BoxFollower | None = None
    last, lost = small, 0

    def put(i: int, b: np.ndarray, held: bool) -> None:
        out[i] = (tuple(float(v) / scale for v in b), held)

    with VideoInput(path, copy_streams=False) as vin:
        total = vin.stream.frames or None
        notify(Progress("start", 0, total, str(path)))
        for i, frame in enumerate(vin.frames()):
            grey = upright(frame, scale, "gray")
            if i < index:
                before.append((i, grey))
            elif i == index:
                _follow_back(BoxFollower(grey, small), before, hold, put)
                before.clear()
                forward = BoxFollower(grey, small)
            elif forward is not None:
                found = forward.step(grey) if not lost else None
                if found is not None:
                    last = found
                    put(i, found, False)
                else:
                    lost += 1
                    if lost > hold:
                        break
                    put(i, last, True)
            if i % 10 == 0:
                notify(Progress("frame", i + 1, total, str(path)))
    if forward is None:
        raise FaceveilError(f"{path}: no frame {index}")
    notify(Progress("done", len(out), total, str(path)))
    return out


def _follow_back(follower: BoxFollower, before: deque, hold: int,
                 put: Callable[[int, np.ndarray, bool], None]) -> None:
    last = follower.box
    frames = list(reversed(before))
    for n, (i, grey) in enumerate(frames):
        found = follower.step(grey)
        if found is None:
            for j, _ in frames[n:n + hold]:
                put(j, last, True)
            return
        last = found
        put(i, found, False)
