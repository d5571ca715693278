"""Pipeline.process(frame) -> Result: detect -> (track) -> (identify) -> mask -> effect. Pure."""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..anonymization import Effect, MaskRenderer, effects, masks
from ..anonymization.background import Backdrop
from ..anonymization.masks import pads_unsure
from ..config import PipelineConfig
from ..detection import Detector, create_detector
from ..types import Detections, Frame, Result

if TYPE_CHECKING:
    from ..identity.decide import Identifier
    from ..segmentation import PersonMasker, Segmenter

log = logging.getLogger(__name__)


class Pipeline:
    """Holds the loaded stages; `process` may be called from one thread at a time."""

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        detector: Detector | None = None,
        **options: Any,
    ) -> None:
        config = config or PipelineConfig()
        self.config = config.replace(**options) if options else config
        self._detector = detector
        self._given_detector = detector is not None
        self._identifier: Identifier | None = None
        self.mask: MaskRenderer = masks.create(self.config.mask.shape, self.config.mask)
        self.effect: Effect = effects.create(self.config.effect.method, self.config.effect)
        if reason := self.effect.weakness():
            log.warning("%s", reason)
        background = self.config.background
        self.backdrop: Backdrop | None = Backdrop(background) if background.active else None
        self._segmenter: Segmenter | None = None
        self._masker: PersonMasker | None = None

    def replica(self, threads: int) -> Pipeline | None:
        """A pipeline with this one's settings that loads its own models (sessions with `threads`
        inference threads), to run beside this one on another thread; the mask and effect, which
        keep no state, are shared. None when it cannot be made (see `replicable`)."""
        if not self.replicable:
            return None
        twin = copy.copy(self)
        twin.config = self.config.replace(threads=threads)
        twin._detector = twin._identifier = twin._segmenter = twin._masker = None
        twin.backdrop = Backdrop(twin.config.background) if self.backdrop is not None else None
        return twin

    @property
    def replicable(self) -> bool:
        """Whether `replica` can load a copy: not when the detector was given, not loaded."""
        return not self._given_detector

    @property
    def detector(self) -> Detector:
        """Loaded on first use, so building a Pipeline for rendering alone stays cheap."""
        if self._detector is None:
            self._detector = create_detector(self.config.detector)
        return self._detector

    @property
    def identifier(self) -> Identifier | None:
        """Who stays visible, when `keep` or `only` people are set; references load on first use."""
        if self._identifier is None and self.config.identity.active:
            from ..identity.decide import Identifier

            self._identifier = Identifier.from_config(self.config.identity, lambda: self.detector)
        return self._identifier

    def person_masker(self, *, video: bool = False) -> PersonMasker:
        """A new masker for one video (it smooths over time), or the shared one for pictures.
        The segmentation model loads on first use."""
        from ..segmentation import PersonMasker, segmenters

        if self._segmenter is None:
            detector = self.config.detector  # --device and --threads cover every model
            self._segmenter = segmenters.create(self.config.background.segmenter,
                                                device=detector.device, threads=detector.threads)
        if video:
            return PersonMasker(self._segmenter, self.config.background, video=True)
        if self._masker is None:
            self._masker = PersonMasker(self._segmenter, self.config.background)
        return self._masker

    def detect(self, frame: Frame) -> Detections:
        """A picture's faces: with the preset's closer look at small faces where it has one."""
        if getattr(self.detector, "closer_look", None) is not None:
            return self.detector.detect(frame, closer=True)
        return self.detector.detect(frame)

    def identify(self, frame: Frame, detections: Detections) -> Detections:
        """Mark the faces that stay visible (keep/only people); without people, all are hidden."""
        ident = self.identifier
        return detections if ident is None else ident.decide(frame, detections)

    def render(self, frame: Frame, detections: Detections, *,
               masker: PersonMasker | None = None, still: bool = False) -> np.ndarray:
        """Hide the faces in `detections` that are not marked keep, then the background if set
        (RGBA out for a transparent background). For a stream of frames pass one
        `person_masker(video=True)` with each, so the person mask is smoothed over time.
        `still`: a picture, not a frame of a stream (masks.pads_unsure says which are padded)."""
        pad = pads_unsure(self.config.detector.quality, still)
        mask = self.mask.render(detections, frame.image.shape[:2], pad_unsure=pad)
        out = self.effect.apply(frame.image, mask)
        if self.backdrop is not None:
            h, w = frame.image.shape[:2]
            masker = masker or self.person_masker()
            small = cv2.resize(frame.image, masker.model_input(w, h), interpolation=cv2.INTER_AREA)
            out = self.backdrop.apply_rgb(out, masker.alpha(small, (h, w)))
        if self.config.draw_boxes:
            out = draw_boxes(out, detections)
        return out

    def process(self, frame: Frame) -> Result:
        t0 = time.perf_counter()
        dets = self.detect(frame)
        t1 = time.perf_counter()
        dets = self.identify(frame, dets)
        t2 = time.perf_counter()
        image = self.render(frame, dets, still=True)
        t3 = time.perf_counter()
        return Result(frame, image, dets, {"detect": t1 - t0, "identify": t2 - t1, "anonymize": t3 - t2})


def draw_boxes(image: np.ndarray, detections: Detections) -> np.ndarray:
    """Boxes and scores drawn on a copy: green = hidden, red = kept visible. A score is written
    only where it fits: above, below or inside its box, over no other label, and on a box at
    least half as wide as the text; on a crowd the boxes stay and the clutter goes."""
    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 600))
    scale = 0.35 * thick
    for (x1, y1, x2, y2), keep in zip(detections.xyxy, detections.keep, strict=True):
        color = (255, 40, 40) if keep else (40, 220, 40)
        cv2.rectangle(out, (round(x1), round(y1)), (round(x2), round(y2)), color, thick)
    for i, (x, y) in label_spots(detections, image.shape[:2], scale, thick).items():
        color = (255, 40, 40) if detections.keep[i] else (40, 220, 40)
        cv2.putText(out, f"{detections.scores[i]:.2f}", (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    color, thick, cv2.LINE_AA)
    return out


def label_spots(detections: Detections, shape: tuple[int, int], scale: float,
                thick: int) -> dict[int, tuple[int, int]]:
    """Where each score label goes (text origin), for the faces whose label fits without
    overlapping another; larger faces first."""
    (tw, th), base = cv2.getTextSize("0.00", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    h, w = shape
    placed: list[tuple[int, int, int, int]] = []
    spots: dict[int, tuple[int, int]] = {}
    order = np.argsort(-(detections.widths * detections.heights), kind="stable")
    for i in order:
        x1, y1, x2, y2 = (round(float(v)) for v in detections.xyxy[i])
        if x2 - x1 < tw / 2:
            continue  # smaller than half its label: the label would hide the picture
        for ox, oy in ((x1, y1 - 3), (x1, y2 + th + 3), (x1 + 2, y1 + th + 3)):
            rect = (ox, oy - th, ox + tw, oy + base)
            if rect[0] < 0 or rect[1] < 0 or rect[2] > w or rect[3] > h:
                continue
            if any(rect[0] < r[2] and r[0] < rect[2] and rect[1] < r[3] and r[1] < rect[3]
                   for r in placed):
                continue
            placed.append(rect)
            spots[int(i)] = (ox, oy)
            break
    return spots
