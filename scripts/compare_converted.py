"""The converted models against the originals: BlazeFace and selfie segmentation, ONNX (shipped)
against mediapipe 0.10.21's own graphs, on the shared photos and clips.

Runs where mediapipe 0.10.21 installs (Python 3.11, numpy<2), e.g. the venv of
scripts/convert_models.py:

    PYTHONPATH=src /tmp/convenv/bin/python scripts/compare_converted.py [--limit N] [--markdown]

Detection: the same driver (faceveil's ScaledDetector, quality balanced: whole frame plus
480 px tiles, threshold 0.4) once with mediapipe's graphs as `infer` (the backend faceveil
had before) and once with the ONNX models; recall by face height on the WIDER subset with a
box proxy of data/README.md's pixel metric (a face counts as covered when the detections, grown
1.3x like the default mask, cover 80% of the central 60% x 60% of its box), and how the boxes
of the two agree. mediapipe's Python API does not lower its score floors (0.5 short, 0.6 full
range) to the threshold it is given, so the ONNX models are compared at those floors
(MatchedBlazeFace) and, separately, as shipped (faceveil's thresholds honoured).
Segmentation: person confidence from both on the identity photos and on frames of the clips:
mean absolute difference and IoU of the masks at 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
from mediapipe.python.solutions import face_detection as mp_face
from mediapipe.python.solutions import selfie_segmentation as mp_selfie

from faceveil.config import DetectorConfig
from faceveil.detection.backends.blazeface import BlazeFaceDetector
from faceveil.segmentation.selfie import LandscapeSegmenter, SelfieSegmenter
from faceveil.tracking.tracker import iou_matrix
from faceveil.types import Detections, Frame

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BUCKETS = [(0, 16), (16, 32), (32, 64), (64, 1 << 20)]
NAMES = ["<16", "16-32", "32-64", ">=64"]


class MediaPipeBlazeFace(BlazeFaceDetector):
    """faceveil's former backend: the same driver, mediapipe's graphs inside."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__(config)
        floor = min(self.threshold, 0.2)
        self.mp_full = mp_face.FaceDetection(model_selection=1, min_detection_confidence=floor)
        self.mp_short = mp_face.FaceDetection(model_selection=0, min_detection_confidence=floor)

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        h, w = image.shape[:2]
        boxes, scores = [], []
        for graph in (self.mp_full, self.mp_short):
            for det in graph.process(image).detections or ():
                score = float(det.score[0])
                if score < threshold:
                    continue
                rb = det.location_data.relative_bounding_box
                boxes.append([rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w,
                              (rb.ymin + rb.height) * h])
                scores.append(score)
        return Detections(boxes, scores) if boxes else Detections.empty()


class MatchedBlazeFace(BlazeFaceDetector):
    """The ONNX models with the score floors mediapipe 0.10.21's Python FaceDetection really
    applies: it ignores a min_detection_confidence below its graphs' defaults (0.5 short range,
    0.6 full range), so faceveil's former backend never saw boxes under those scores."""

    def infer(self, image: np.ndarray, threshold: float) -> Detections:
        return Detections.concat([self.full.run(image, max(threshold, 0.6)),
                                  self.short.run(image, max(threshold, 0.5))])


def covered(gt: np.ndarray, dets: Detections, h: int, w: int, scale: float = 1.3) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in dets.xyxy:
        cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale, (y2 - y1) * scale
        y0, y1_, x0, x1_ = int(cy - bh / 2), int(cy + bh / 2) + 1, int(cx - bw / 2), int(cx + bw / 2) + 1
        mask[max(0, y0):y1_, max(0, x0):x1_] = True
    out = []
    for x1, y1, x2, y2 in gt:
        mx, my = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
        top, left = int(y1 + my), int(x1 + mx)
        core = mask[top:max(top + 1, int(y2 - my)), left:max(left + 1, int(x2 - mx))]
        out.append(core.size > 0 and core.mean() >= 0.8)
    return np.array(out, bool)


def detection(limit: int | None) -> dict:
    meta = json.loads((DATA / "images" / "wider_face_val_subset.json").read_text())["images"][:limit]
    config = DetectorConfig(name="blazeface", quality="balanced", threads=2)
    tools = {"mediapipe 0.10.21": MediaPipeBlazeFace(config),
             "onnx, mediapipe's floors": MatchedBlazeFace(config),
             "onnx (shipped)": BlazeFaceDetector(config)}
    hits = {k: [[0, 0] for _ in BUCKETS] for k in tools}
    secs = dict.fromkeys(tools, 0.0)
    counts = dict.fromkeys(tools, 0)
    ious, matched, total_ref = [], 0, 0
    for k, item in enumerate(meta, 1):
        if k % 20 == 0:
            print(f"detection: {k}/{len(meta)} pictures", file=sys.stderr, flush=True)
        image = cv2.cvtColor(cv2.imread(str(DATA / "images" / item["file"])), cv2.COLOR_BGR2RGB)
        h, w = image.shape[:2]
        gt = np.array([b for b, ig in zip(item["boxes"], item["ignore"], strict=True) if not ig],
                      np.float32).reshape(-1, 4)
        found = {}
        for name, det in tools.items():
            t = time.perf_counter()
            found[name] = det.detect(Frame(image))
            secs[name] += time.perf_counter() - t
            counts[name] += len(found[name])
            cov = covered(gt, found[name], h, w)
            for i, (lo, hi) in enumerate(BUCKETS):
                sel = ((gt[:, 3] - gt[:, 1]) >= lo) & ((gt[:, 3] - gt[:, 1]) < hi)
                hits[name][i][0] += int(cov[sel].sum())
                hits[name][i][1] += int(sel.sum())
        ref, new = found["mediapipe 0.10.21"], found["onnx, mediapipe's floors"]
        total_ref += len(ref)
        if len(ref) and len(new):
            best = iou_matrix(ref.xyxy, new.xyxy).max(1)
            matched += int((best >= 0.5).sum())
            ious.extend(best[best >= 0.5].tolist())
    rows = {name: {"recall": [round(a / b, 4) if b else None for a, b in hits[name]],
                   "faces": [b for _, b in hits[name]], "boxes": counts[name],
                   "seconds": round(secs[name], 2)} for name in tools}
    return {"images": len(meta), "rows": rows,
            "boxes_matched": f"{matched}/{total_ref}", "matched_iou_mean": round(float(np.mean(ious)), 4)
            if ious else None}


def frames() -> list[tuple[str, np.ndarray]]:
    out = []
    for path in sorted((DATA / "identities").glob("*/*.jpg")):
        img = cv2.imread(str(path))
        if img is not None:
            out.append((f"{path.parent.name}/{path.name}", cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
    for path in sorted((DATA / "videos").glob("*.mp4")):
        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 100
        for k in range(5):
            cap.set(cv2.CAP_PROP_POS_FRAMES, k * n // 5)
            ok, img = cap.read()
            if ok:
                out.append((f"{path.name}#{k}", cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
    return out


def segmentation() -> dict:
    pics = frames()
    out = {}
    for model, (cls, sel) in {"selfie": (SelfieSegmenter, 0), "landscape": (LandscapeSegmenter, 1)}.items():
        ours, theirs = cls(threads=2), mp_selfie.SelfieSegmentation(model_selection=sel)
        mad, ious, worst = [], [], (0.0, "")
        for name, image in pics:
            mw, mh = ours.input_size
            scale = min(1.0, max(mw / image.shape[1], mh / image.shape[0]))
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)  # what PersonMasker hands over
            a = ours.person_mask(Frame(small))
            b = np.asarray(theirs.process(small).segmentation_mask, np.float32)
            d = float(np.abs(a - b).mean())
            mad.append(d)
            worst = max(worst, (d, name))
            pa, pb = a >= 0.5, b >= 0.5
            union = (pa | pb).sum()
            ious.append(float((pa & pb).sum() / union) if union else 1.0)
        out[model] = {"pictures": len(pics), "mean_abs_diff": round(float(np.mean(mad)), 4),
                      "max_mean_abs_diff": round(worst[0], 4), "worst": worst[1],
                      "mask_iou_mean": round(float(np.mean(ious)), 4),
                      "mask_iou_min": round(float(np.min(ious)), 4)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="converted models against mediapipe 0.10.21")
    ap.add_argument("--limit", type=int, help="first N WIDER pictures only")
    ap.add_argument("--skip-detection", action="store_true")
    ap.add_argument("--skip-segmentation", action="store_true")
    args = ap.parse_args()
    result = {}
    if not args.skip_segmentation:
        result["segmentation"] = segmentation()
    if not args.skip_detection:
        result["detection"] = detection(args.limit)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
