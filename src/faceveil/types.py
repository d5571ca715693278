"""Core value types that flow through the pipeline. All frozen; change with dataclasses.replace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _as_array(value: Any, dtype: type, shape_tail: tuple[int, ...], name: str, n: int | None):
    arr = np.array(value, dtype=dtype, order="C", copy=True)  # never shares the caller's memory
    if arr.size == 0 and n in (None, 0):
        arr = arr.reshape((0, *shape_tail))
    if arr.shape[1:] != shape_tail or (n is not None and arr.shape[0] != n):
        want = ("N" if n is None else str(n), *(str(s) for s in shape_tail))
        raise ValueError(f"Detections.{name} must have shape ({', '.join(want)}), got {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Detections:
    """Faces found in one frame, as parallel arrays.

    xyxy: (N, 4) float32 box corners in pixels of the original frame.
    scores: (N,) float32 confidences in [0, 1].
    landmarks: optional (N, 5, 2) float32 (eyes, nose, mouth corners).
    track_ids: optional (N,) int64; -1 where a face belongs to no track.
    keep: (N,) bool; True means "leave this face visible". Defaults to all False (hide).
    filled: (N,) bool; True for a box a tracker filled in (held, interpolated) rather than
        one a detector found. Defaults to all False.
    why: optional (N,) str: why each face is kept or hidden, when people were recognised.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    keep: np.ndarray | None = None
    filled: np.ndarray | None = None
    why: np.ndarray | None = None

    def __post_init__(self) -> None:
        xyxy = _as_array(self.xyxy, np.float32, (4,), "xyxy", None)
        n = xyxy.shape[0]
        set_ = object.__setattr__
        set_(self, "xyxy", xyxy)
        set_(self, "scores", _as_array(self.scores, np.float32, (), "scores", n))
        if self.landmarks is not None:
            set_(self, "landmarks", _as_array(self.landmarks, np.float32, (5, 2), "landmarks", n))
        if self.track_ids is not None:
            set_(self, "track_ids", _as_array(self.track_ids, np.int64, (), "track_ids", n))
        keep = np.zeros(n, bool) if self.keep is None else self.keep
        set_(self, "keep", _as_array(keep, bool, (), "keep", n))
        filled = np.zeros(n, bool) if self.filled is None else self.filled
        set_(self, "filled", _as_array(filled, bool, (), "filled", n))
        if self.why is not None:
            set_(self, "why", _as_array(self.why, object, (), "why", n))
        if n and not np.isfinite(xyxy).all():
            raise ValueError("Detections.xyxy must be finite")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    @classmethod
    def concat(cls, items: list[Detections] | tuple[Detections, ...]) -> Detections:
        items = [d for d in items if len(d)]
        if not items:
            return cls.empty()
        if len(items) == 1:
            return items[0]

        def cat(name: str):
            parts = [getattr(d, name) for d in items]
            return None if any(p is None for p in parts) else np.concatenate(parts)

        return cls(cat("xyxy"), cat("scores"), cat("landmarks"), cat("track_ids"), cat("keep"),
                   cat("filled"), cat("why"))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Any) -> Detections:
        """Select faces with a boolean mask, an index array or a slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]

        def pick(a: np.ndarray | None):
            return None if a is None else a[index]

        return Detections(
            self.xyxy[index], self.scores[index], pick(self.landmarks),
            pick(self.track_ids), self.keep[index], self.filled[index], pick(self.why),
        )

    @property
    def widths(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def heights(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @property
    def hidden(self) -> Detections:
        """The faces that must be hidden."""
        return self[~self.keep]

    def scaled(self, sx: float, sy: float | None = None, dx: float = 0.0, dy: float = 0.0) -> Detections:
        """Boxes and landmarks multiplied by (sx, sy) then shifted by (dx, dy)."""
        sy = sx if sy is None else sy
        f = np.array([sx, sy, sx, sy], np.float32)
        o = np.array([dx, dy, dx, dy], np.float32)
        lm = None
        if self.landmarks is not None:
            lm = self.landmarks * np.array([sx, sy], np.float32) + np.array([dx, dy], np.float32)
        return Detections(self.xyxy * f + o, self.scores, lm, self.track_ids, self.keep, self.filled,
                          self.why)

    def clipped(self, width: int, height: int) -> Detections:
        """Boxes clipped to the frame; boxes left with no area are dropped."""
        xyxy = self.xyxy.copy()
        np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
        out = Detections(xyxy, self.scores, self.landmarks, self.track_ids, self.keep, self.filled, self.why)
        return out[(xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])]

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready list, one dict per face."""
        out = []
        for i in range(len(self)):
            rec: dict[str, Any] = {
                "box": [round(float(v), 2) for v in self.xyxy[i]],
                "score": round(float(self.scores[i]), 4),
                "hidden": not bool(self.keep[i]),
            }
            if self.landmarks is not None:
                rec["landmarks"] = [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks[i]]
            if self.track_ids is not None:
                rec["track"] = int(self.track_ids[i])
            if self.filled[i]:
                rec["filled"] = True
            if self.why is not None and self.why[i]:
                rec["why"] = str(self.why[i])
            out.append(rec)
        return out

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> Detections:
        if not records:
            return cls.empty()
        lms = [r.get("landmarks") for r in records]
        tracks = [r.get("track") for r in records]
        why = [str(r.get("why", "")) for r in records]
        return cls(
            [r["box"] for r in records],
            [r.get("score", 1.0) for r in records],
            None if any(x is None for x in lms) else lms,
            None if any(t is None for t in tracks) else tracks,
            [not r.get("hidden", True) for r in records],
            [bool(r.get("filled", False)) for r in records],
            why if any(why) else None,
        )


@dataclass(frozen=True, eq=False)
class Frame:
    """One picture to anonymize: RGB uint8, C-contiguous, H x W x 3 (a PIL image is converted)."""

    image: np.ndarray
    index: int = 0
    pts: float | None = None  # presentation time in seconds, for video
    source: str = ""

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) and hasattr(img, "convert"):  # a PIL image
            img = np.asarray(img.convert("RGB"))
            object.__setattr__(self, "image", img)
        if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3
                and img.shape[2] == 3):
            got = getattr(img, "shape", type(img).__name__)
            raise ValueError(f"Frame.image must be an RGB uint8 array of shape (H, W, 3), got {got}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError("Frame.image has no pixels")
        if not img.flags.c_contiguous:
            object.__setattr__(self, "image", np.ascontiguousarray(img))

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True, eq=False)
class Result:
    """What Pipeline.process returns for one frame."""

    frame: Frame  # the input frame, untouched
    image: np.ndarray  # the anonymized picture
    detections: Detections  # every face found, with keep/hide decided
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


@dataclass(frozen=True)
class Counts:
    """What a run hid, counted one way for every door (CLI, --json and faces files, web, GUI,
    audit report, batch manifest).

    faces: distinct faces hidden: tracks in a video (a face followed through 300 frames is one),
        boxes in a picture. A box without a track (-1, or a faces file without tracks) is a face
        of its own in its frame; such boxes add the most any one frame has.
    face_frames: hidden boxes summed over frames (a picture: = faces).
    boxes: the face_frames a detector found; filled: those a tracker filled in (held across a
        gap, interpolated, led in), so boxes + filled == face_frames.
    kept: distinct faces left visible (--keep/--only, or a person's choice); kept_frames: their
        boxes summed over frames.
    frames: frames seen (1 for a picture).
    """

    faces: int = 0
    face_frames: int = 0
    boxes: int = 0
    filled: int = 0
    kept: int = 0
    kept_frames: int = 0
    frames: int = 0

    @classmethod
    def of(cls, frames: Any) -> Counts:
        """The counts of an iterable of per-frame Detections (or (index, pts, Detections))."""
        tally = CountTally()
        for item in frames:
            tally.add(item[-1] if isinstance(item, tuple) else item)
        return tally.counts()

    def to_dict(self) -> dict[str, int]:
        return {"faces": self.faces, "face_frames": self.face_frames, "boxes": self.boxes,
                "filled": self.filled, "kept": self.kept, "kept_frames": self.kept_frames,
                "frames": self.frames}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counts:
        return cls(**{k: int(data.get(k) or 0) for k in cls.__dataclass_fields__})

    def __add__(self, other: Counts) -> Counts:
        """Two files' counts together (faces of different files are different faces)."""
        return Counts(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (self.faces, self.face_frames, self.boxes, self.filled, self.kept,
                self.kept_frames, self.frames)

    def describe(self, video: bool | None = None) -> str:
        """'12 faces hidden (340 face-frames)', '3 faces hidden, 1 kept visible': the one
        wording every door shows. `video`: mention face-frames (default: more than one frame)."""
        video = self.frames > 1 if video is None else video
        text = f"{self.faces} face{'' if self.faces == 1 else 's'} hidden"
        if video:
            text += f" ({self.face_frames} face-frames)"
        if self.kept:
            text += f", {self.kept} kept visible"
        return text


class CountTally:
    """Builds `Counts` frame by frame (a long video is never held in memory)."""

    def __init__(self) -> None:
        self._hidden: set[int] = set()
        self._kept: set[int] = set()
        self._loose_hidden = self._loose_kept = 0  # most untracked boxes in one frame
        self.face_frames = self.boxes = self.filled = self.kept_frames = self.frames = 0

    def add(self, dets: Detections) -> None:
        self.frames += 1
        hidden = ~dets.keep
        self.face_frames += int(hidden.sum())
        self.boxes += int((hidden & ~dets.filled).sum())
        self.filled += int((hidden & dets.filled).sum())
        self.kept_frames += int(dets.keep.sum())
        ids = dets.track_ids if dets.track_ids is not None else np.full(len(dets), -1)
        tracked = ids >= 0
        self._hidden.update(ids[hidden & tracked].tolist())
        self._kept.update(ids[dets.keep & tracked].tolist())
        self._loose_hidden = max(self._loose_hidden, int((hidden & ~tracked).sum()))
        self._loose_kept = max(self._loose_kept, int((dets.keep & ~tracked).sum()))

    def counts(self) -> Counts:
        return Counts(faces=len(self._hidden) + self._loose_hidden, face_frames=self.face_frames,
                      boxes=self.boxes, filled=self.filled,
                      kept=len(self._kept) + self._loose_kept, kept_frames=self.kept_frames,
                      frames=self.frames)
