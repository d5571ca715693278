"""ONNX Runtime session settings (and OpenCV's for its two detectors): time and outputs per model.

Issue 22, "Inference cost": every shipped model that runs on ONNX Runtime (CenterFace, BlazeFace
full and short range, the selfie segmenters general and landscape) is given the exact inputs it
sees on N WIDER pictures (default 20) at balanced: each detector's inputs are recorded while it
runs its balanced native pass (scale 1.0: CenterFace the whole picture padded to a multiple of 32,
BlazeFace its letterboxed native-resolution tiles), the segmenters' while they mask the picture.
Then one session per setting, each setting changed alone from the shipped one
(`faceveil.models.runtime.ort_session`, with the threads its backend asks for), runs those inputs:

- outputs: every output tensor against the shipped session's. "same" when np.array_equal or
  within 1e-5 absolute; otherwise the max absolute difference is printed, and for a detector its
  recall per face-height bucket on --score pictures (default 55) through the whole balanced
  pipeline (`Pipeline.process`, the detector's session swapped), scored from output pixels with
  faceveil.evaluation.CoverageScore as bench/images.py scores, beside the shipped session's.
- time: `session.run` over all recorded inputs, the settings taking turns within each round
  (order rotated round by round), --rounds rounds. Each round's time is divided by the shipped
  session's in that round; the table shows the median ratio and the spread (min-max) over the
  rounds. "shipped again" is a second shipped session: its spread is the noise. The CPU column
  is the same ratio for the process's CPU time (all its threads): spinning threads show there,
  where a picture's reader and writer threads would lose the cores.

YuNet (cv2.FaceDetectorYN) and the res10 SSD (cv2.dnn) run on OpenCV: their knob is
cv2.setNumThreads (1 vs 2 against OpenCV's default), timed and checked the same way on
`detect` / `forward` with the inputs of their balanced passes. OpenCV's DNN backend/target is
printed: only where another than OpenCV/CPU is available would it be worth a row. Haar has no
runtime knob worth sweeping (cv2.CascadeClassifier's only parallelism is cv2.setNumThreads,
and it is not a shipped default worth tuning: ~25 s a picture at balanced).

    PYTHONPATH=src .venv/bin/python bench/ort_settings.py                  # all models, 20 pictures
    PYTHONPATH=src .venv/bin/python bench/ort_settings.py --models centerface --rounds 7 --markdown

Needs the shared data (../shared/data, --data or $FACEVEIL_DATA): exits with a message when it is
absent. Progress goes to stderr; machine facts and the table to stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ORT_MODELS = ("centerface", "blazeface_full", "blazeface_short", "selfie_general", "selfie_landscape")
CV_MODELS = ("yunet", "ssd")
MODELS = (*ORT_MODELS, *CV_MODELS)
DETECTOR_OF = {"centerface": "centerface", "blazeface_full": "blazeface", "blazeface_short": "blazeface",
               "yunet": "yunet", "ssd": "ssd"}
TOLERANCE = 1e-5
SHIPPED = "shipped"
NOISE = "shipped again"


def images_module() -> Any:
    """bench/images.py, for the helpers the benchmarks share (data, machine facts, tables)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import images

    return images


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------- settings


def _describe(opts: Any) -> dict[str, Any]:
    return {"intra_op": opts.intra_op_num_threads, "inter_op": opts.inter_op_num_threads,
            "mode": str(opts.execution_mode), "graph": str(opts.graph_optimization_level),
            "arena": opts.enable_cpu_mem_arena, "mem_pattern": opts.enable_mem_pattern,
            "spinning": opts.get_session_config_entry("session.intra_op.allow_spinning")}


def _set(attr: str, value: Any) -> Callable[[Any, Any], None]:
    def change(opts: Any, ort: Any) -> None:
        setattr(opts, attr, value(ort) if callable(value) else value)
    return change


def _entry(key: str, value: str) -> Callable[[Any, Any], None]:
    return lambda opts, ort: opts.add_session_config_entry(key, value)


def _parallel(opts: Any, ort: Any) -> None:
    opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    opts.inter_op_num_threads = 2


def _graph(level: str) -> Callable[[Any, Any], None]:
    return _set("graph_optimization_level", lambda ort: getattr(ort.GraphOptimizationLevel, level))


#: name -> change to the shipped SessionOptions (one at a time)
ORT_SETTINGS: dict[str, Callable[[Any, Any], None] | None] = {
    SHIPPED: None,
    NOISE: None,
    "intra_op 1": _set("intra_op_num_threads", 1),
    "intra_op 2": _set("intra_op_num_threads", 2),
    "graph BASIC": _graph("ORT_ENABLE_BASIC"),
    "graph EXTENDED": _graph("ORT_ENABLE_EXTENDED"),
    "cpu mem arena off": _set("enable_cpu_mem_arena", False),
    "mem pattern off": _set("enable_mem_pattern", False),
    "spinning 1": _entry("session.intra_op.allow_spinning", "1"),
    "parallel, inter_op 2": _parallel,
    "denormal as zero": _entry("session.set_denormal_as_zero", "1"),
    "disable prepacking": _entry("session.disable_prepacking", "1"),
}
#: name -> cv2.setNumThreads value (None: OpenCV's default, as faceveil ships it)
CV_SETTINGS: dict[str, int | None] = {SHIPPED: None, NOISE: None, "cv2 threads 1": 1, "cv2 threads 2": 2}


def ort_session_with(path: str, change: Callable[[Any, Any], None] | None,
                     threads: int | None = None) -> Any:
    """A CPU session with the shipped options (`threads`: the backend's own), then `change`."""
    from faceveil.models.runtime import _ort, session_options

    ort = _ort()
    opts = session_options(threads)
    if change is not None:
        change(opts, ort)
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------------- recorded inputs


class Recorder:
    """Stands in for a session or a cv2 net: records the calls' inputs, then makes the call."""

    def __init__(self, inner: Any, record: str) -> None:
        self.inner, self.record, self.calls = inner, record, []
        self._size: tuple[int, int] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def run(self, names: Any, feed: dict[str, np.ndarray], *args: Any) -> Any:
        self.calls.append({k: v.copy() for k, v in feed.items()})
        return self.inner.run(names, feed, *args)

    def setInputSize(self, size: tuple[int, int]) -> None:  # cv2's name
        self._size = tuple(size)
        self.inner.setInputSize(size)

    def detect(self, image: np.ndarray) -> Any:
        self.calls.append((self._size, image.copy()))
        return self.inner.detect(image)

    def setInput(self, blob: np.ndarray) -> None:  # cv2's name
        self.calls.append(blob.copy())
        self.inner.setInput(blob)


def model_path(model: str) -> str:
    from faceveil.models import model_file

    return str(model_file(model))


def recorded_inputs(model: str, pictures: Sequence[np.ndarray]) -> tuple[list[Any], int | None]:
    """What `model` is given on `pictures` in faceveil's balanced native pass (or mask), and
    the intra-op threads of the session its backend made with the default settings (None: not
    ONNX Runtime)."""
    from faceveil.config import DetectorConfig
    from faceveil.detection import create_detector
    from faceveil.segmentation.selfie import LandscapeSegmenter, SelfieSegmenter
    from faceveil.types import Frame

    if model.startswith("selfie"):
        seg = (SelfieSegmenter if model == "selfie_general" else LandscapeSegmenter)()
        seg.session = rec = Recorder(seg.session, model)
        for rgb in pictures:
            seg.person_mask(Frame(rgb))
        return rec.calls, _threads(rec)
    det = create_detector(DetectorConfig(name=DETECTOR_OF[model]))
    if model.startswith("blazeface"):
        graph = det.full if model == "blazeface_full" else det.short
        graph.session = rec = Recorder(graph.session, model)
    elif model == "centerface":
        det.session = rec = Recorder(det.session, model)
    else:
        det.net = rec = Recorder(det.net, model)
    for rgb in pictures:
        h, w = rgb.shape[:2]
        # the balanced native pass: scale 1.0 (SSD has none: its finest balanced pass)
        scale = 1.0 if model != "ssd" else max(det.scales(h, w))
        det.detect_at(Frame(rgb), [scale])
    return rec.calls, _threads(rec) if model in ORT_MODELS else None


def _threads(rec: Recorder) -> int:
    return rec.inner.get_session_options().intra_op_num_threads


# --------------------------------------------------------------------------------- running


@dataclass
class Row:
    model: str
    setting: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU seconds (all its threads)
    ratios: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)
    same: bool = True
    max_diff: float = 0.0
    error: str | None = None
    recall: dict[str, float] | None = None  # per bucket, through the pipeline (when not same)
    calls: int = 0


class OrtRunner:
    def __init__(self, model: str, setting: str, threads: int | None = None) -> None:
        self.session = ort_session_with(model_path(model), ORT_SETTINGS[setting], threads)

    def __call__(self, item: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, item)

    def enter(self) -> None:
        pass


class CvRunner:
    """One cv2 net per setting; the setting is cv2.setNumThreads, applied before each block."""

    default_threads = None  # OpenCV's own, read once at start

    def __init__(self, model: str, setting: str, threads: int | None = None) -> None:
        import cv2

        self.threads = CV_SETTINGS[setting]
        self.model = model
        if model == "yunet":
            self.net = cv2.FaceDetectorYN.create(model_path("yunet"), "", (320, 320), 0.2, 0.3, 5000)
        else:
            self.net = cv2.dnn.readNetFromCaffe(model_path("ssd_prototxt"), model_path("ssd_caffemodel"))

    def enter(self) -> None:
        import cv2

        cv2.setNumThreads(self.threads if self.threads is not None else CvRunner.default_threads)

    def __call__(self, item: Any) -> list[np.ndarray]:
        if self.model == "yunet":
            size, image = item
            self.net.setInputSize(size)
            _, faces = self.net.detect(image)
            return [np.zeros((0, 15), np.float32) if faces is None else faces]
        self.net.setInput(item)
        return [self.net.forward()]


def compare(ref: list[np.ndarray], out: list[np.ndarray]) -> tuple[bool, float]:
    """(same within TOLERANCE, max absolute difference) over all output tensors."""
    same, worst = True, 0.0
    for a, b in zip(ref, out, strict=True):
        if a.shape != b.shape:
            return False, math.inf
        if np.array_equal(a, b):
            continue
        d = float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
        worst = max(worst, d)
        same &= d <= TOLERANCE
    return same, worst


def run_model(model: str, items: list[Any], rounds: int, threads: int | None) -> list[Row]:
    settings = CV_SETTINGS if model in CV_MODELS else ORT_SETTINGS
    make = CvRunner if model in CV_MODELS else OrtRunner
    runners, rows = {}, {}
    for name in settings:
        rows[name] = Row(model, name, calls=len(items))
        try:
            runners[name] = make(model, name, threads)
        except Exception as exc:  # a setting this build refuses: say so, time the rest
            rows[name].error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    ref = runners[SHIPPED]
    ref.enter()
    reference = [ref(item) for item in items]  # also the shipped session's warm-up
    for name, runner in runners.items():
        runner.enter()
        row = rows[name]
        for item, want in zip(items, reference, strict=True):
            same, diff = compare(want, runner(item))
            row.same &= same
            row.max_diff = max(row.max_diff, diff)
    order = list(runners)
    for r in range(rounds):
        shift = r % len(order)
        for name in order[shift:] + order[:shift]:
            runner = runners[name]
            runner.enter()
            gc.collect()
            cpu0, started = time.process_time(), time.perf_counter()
            for item in items:
                runner(item)
            rows[name].seconds.append(time.perf_counter() - started)
            rows[name].cpu.append(time.process_time() - cpu0)
        log(f"  {model} round {r + 1}/{rounds}: shipped {rows[SHIPPED].seconds[-1] * 1000:.0f} ms")
    if model in CV_MODELS:
        CvRunner(model, SHIPPED).enter()  # OpenCV's default again
    for row in rows.values():
        if row.seconds:
            row.ratios = [s / b for s, b in zip(row.seconds, rows[SHIPPED].seconds, strict=True)]
            row.cpu_ratios = [s / b for s, b in zip(row.cpu, rows[SHIPPED].cpu, strict=True)]
    return list(rows.values())


# --------------------------------------------------------------------------------- recall


def score_recall(model: str, setting: str, entries: list[dict], images_dir: Path,
                 threads: int | None) -> dict[str, float]:
    """Recall per bucket of the balanced pipeline with `model` run under `setting`."""
    import cv2

    from faceveil.config import DetectorConfig
    from faceveil.detection import create_detector
    from faceveil.evaluation import BUCKETS, CoverageScore
    from faceveil.media.images import read_image
    from faceveil.pipeline.pipeline import Pipeline
    from faceveil.types import Frame

    det = create_detector(DetectorConfig(name=DETECTOR_OF[model]))
    threads = cv2.getNumThreads()
    if model in ORT_MODELS and setting != SHIPPED:
        session = ort_session_with(model_path(model), ORT_SETTINGS[setting], threads)
        if model == "centerface":
            det.session = session
        else:
            graph = det.full if model == "blazeface_full" else det.short
            graph.session, graph.input = session, session.get_inputs()[0].name
    elif model in CV_MODELS:
        cv2.setNumThreads(CV_SETTINGS[setting] or CvRunner.default_threads)
    pipeline = Pipeline(detector=det)
    score = CoverageScore()
    try:
        for entry in entries:
            before = read_image(images_dir / entry["file"]).rgb
            after = pipeline.process(Frame(before)).image
            score.add(before, after, entry["boxes"], entry.get("ignore"))
    finally:
        cv2.setNumThreads(threads)
    return {name: score.recall(name) for _, _, name in BUCKETS} | {"n": score.counts}


def centerface_padding(pictures: Sequence[np.ndarray]) -> str:
    """The shipped input is padded to a multiple of 32: how much, and does the model run without?"""
    # shipped options, but quiet: ORT logs each failed run as an error
    session = ort_session_with(model_path("centerface"), _set("log_severity_level", 4))
    padded, extra, fails = 0, 0, 0
    for rgb in pictures:
        h, w = rgb.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        if (ph, pw) == (h, w):
            continue
        padded += 1
        extra += ph * pw - h * w
        try:
            session.run(None, {"input.1": np.zeros((1, 3, h, w), np.float32)})
        except Exception:
            fails += 1
    total = sum(p.shape[0] * p.shape[1] for p in pictures)
    return (f"CenterFace input padded to a multiple of 32 (shipped): {padded} of {len(pictures)} "
            f"pictures are padded, {extra / total:.1%} more pixels in all; unpadded, the model "
            f"fails on {fails} of those {padded} (its upsampling adds feature maps that must match: "
            "the padding is required, not a cost to cut)")


# ------------------------------------------------------------------------------- reporting


def fmt_ratio(ratios: list[float]) -> tuple[str, str]:
    if not ratios:
        return "-", "-"
    return f"{statistics.median(ratios):.3f}", f"{min(ratios):.3f}-{max(ratios):.3f}"


def table(rows: list[Row], markdown: bool, reference: dict[str, dict]) -> str:
    from faceveil.evaluation import BUCKETS

    images = images_module()
    header = ["model", "setting", "calls", "shipped ms/call", "time vs shipped (median)",
              "spread (min-max)", "CPU vs shipped (median)", "same output",
              "recall change <16 / 16-32 / 32-64 / >=64"]
    body = []
    for row in rows:
        base = next(r for r in rows if r.model == row.model and r.setting == SHIPPED)
        ms = statistics.median(base.seconds) / base.calls * 1000 if base.seconds else math.nan
        median, spread = fmt_ratio(row.ratios)
        cpu = fmt_ratio(row.cpu_ratios)[0]
        if row.error:
            same = f"not run: {row.error}"
        elif row.same:
            same = "yes" + ("" if row.max_diff == 0 else f" (max diff {row.max_diff:.1e})")
        else:
            same = f"no: max diff {row.max_diff:.2e}"
        change = "-"
        if row.recall is not None:
            ref = reference[row.model]
            change = " / ".join("-" if math.isnan(row.recall[n]) else f"{row.recall[n] - ref[n]:+.3f}"
                                for _, _, n in BUCKETS)
        elif not row.same and not row.error:
            change = "not a detector" if row.model.startswith("selfie") else "not scored"
        body.append([row.model, row.setting, str(row.calls), f"{ms:.1f}", median, spread, cpu, same,
                     change])
    return images.render_table(header, body, markdown, text_columns=2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    images = images_module()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from: {', '.join(MODELS)}")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="pictures timed (default 20)")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="only every K-th picture of the subset (before --limit and --score)")
    p.add_argument("--rounds", type=int, default=5, metavar="R", help="interleaved rounds (default 5)")
    p.add_argument("--score", type=int, default=55, metavar="N",
                   help="pictures to score recall on when a setting's outputs differ (default 55; "
                        "0: do not score)")
    p.add_argument("--data", default=None,
                   help=f"shared data folder (default: $FACEVEIL_DATA, else {images.DEFAULT_DATA})")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", default=None, metavar="PATH", help="write all figures as JSON")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown or not args.models:
        p.error(f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODELS)}")
    if min(args.limit, args.every, args.rounds) < 1 or args.score < 0:
        p.error("--limit, --every and --rounds must be at least 1, --score at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    images = images_module()
    data = images.find_data(args.data, "the WIDER FACE pictures")
    meta = json.loads((data / images.SUBSET_JSON).read_text(encoding="utf-8"))
    images_dir = (data / images.SUBSET_JSON).parent
    entries = meta["images"][:: args.every]

    import cv2

    from faceveil.media.images import read_image
    from faceveil.models.runtime import session_options

    CvRunner.default_threads = cv2.getNumThreads()
    facts = images.machine_facts()
    pictures = [read_image(images_dir / e["file"]).rgb for e in entries[: args.limit]]
    log(f"{len(pictures)} pictures, {args.rounds} rounds, models {', '.join(args.models)}")

    rows: list[Row] = []
    shipped_threads: dict[str, int | None] = {}
    for model in args.models:
        items, threads = recorded_inputs(model, pictures)
        shipped_threads[model] = threads
        log(f"{model}: {len(items)} calls on {len(pictures)} pictures")
        rows += run_model(model, items, args.rounds, threads)
    load_after = [round(v, 2) for v in os.getloadavg()]

    reference: dict[str, dict] = {}
    to_score = [r for r in rows if not r.same and not r.error and r.model in DETECTOR_OF and args.score]
    for row in to_score:
        sample = entries[: args.score]
        if row.model not in reference:
            log(f"scoring {row.model} shipped on {len(sample)} pictures ...")
            reference[row.model] = score_recall(row.model, SHIPPED, sample, images_dir,
                                                shipped_threads[row.model])
        log(f"scoring {row.model} {row.setting} on {len(sample)} pictures ...")
        row.recall = score_recall(row.model, row.setting, sample, images_dir,
                                  shipped_threads[row.model])

    bullet = "- " if args.markdown else ""
    images.print_facts(facts | {"loadavg_after_timing": load_after}, bullet,
                       f"Python {facts['python']}, onnxruntime {facts['onnxruntime']}, "
                       f"OpenCV {facts['opencv']} (cv2 default threads {CvRunner.default_threads}), "
                       f"numpy {facts['numpy']}")
    print(f"{bullet}pictures: the first {len(pictures)} of {images.SUBSET_JSON}"
          + (f" (every {args.every}th)" if args.every > 1 else "")
          + f"; {args.rounds} interleaved rounds, order rotated; same output: all tensors equal or "
            f"within {TOLERANCE:g} abs")
    print(f"{bullet}shipped ONNX Runtime options: {_describe(session_options())}; intra-op "
          "threads as each backend makes its session: "
          + ", ".join(f"{m} {t}" for m, t in shipped_threads.items() if t is not None))
    targets = {b: cv2.dnn.getAvailableTargets(b) for b in (cv2.dnn.DNN_BACKEND_OPENCV,
                                                            cv2.dnn.DNN_BACKEND_INFERENCE_ENGINE,
                                                            cv2.dnn.DNN_BACKEND_CUDA,
                                                            cv2.dnn.DNN_BACKEND_VKCOM)}
    others = [b for b, t in targets.items() if t and b != cv2.dnn.DNN_BACKEND_OPENCV]
    print(f"{bullet}OpenCV DNN backends with a target here: OpenCV/CPU"
          + (f" and backend ids {others}" if others else " only (no other row to time)"))
    if "centerface" in args.models:
        print(f"{bullet}{centerface_padding(pictures)}")
    for model, ref in reference.items():
        print(f"{bullet}{model} shipped recall on {args.score} pictures: "
              + " / ".join(f"{ref[k]:.3f}" for k in ("<16", "16-32", "32-64", ">=64"))
              + f" (faces {ref['n']})")
    print()
    print(table(rows, args.markdown, reference))
    if args.json:
        doc = {"machine": facts, "loadavg_after_timing": load_after, "args": vars(args),
               "rows": [vars(r) for r in rows], "reference_recall": reference}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
