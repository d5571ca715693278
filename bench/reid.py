"""Re-identification benchmark: which share of hidden faces a face recogniser still matches.

Every hiding method, at its defaults and over a sweep of its strength, on the single-person
reference photos of ../shared/data/identities, at several face heights (each photo scaled down
so that its face is that tall). Recogniser: dlib's face recognition ResNet (faceveil.identity,
`people` extra). A hidden face counts as re-identified when its 1-nearest neighbour among the
untouched faces of all other photos of all people is the same person at a distance under 0.6,
and no other person's hidden face comes nearer to that person (see faceveil.audit.reid). The
speed figure beside it is the effect's time per face, from the same run.

    PYTHONPATH=src .venv/bin/python bench/reid.py                    # the full sweep
    PYTHONPATH=src .venv/bin/python bench/reid.py --methods pixelate --sizes 80 --markdown
    PYTHONPATH=src .venv/bin/python bench/reid.py --json bench/out/reid.json

Progress goes to stderr; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
SIZES = ("40", "80", "160")

# (method, options) per row; the defaults are marked in the table.
SWEEP = {
    "none": [{}],
    "blur": [{"strength": s} for s in (0.05, 0.2, 0.3, 0.5, 1.0)],
    "pixelate": [{"blocks": b} for b in (6, 8, 10, 12, 16, 24)],
    "solid": [{}],
    # an opaque emoji, and a ring whose middle is transparent: what shows through it
    "image": [{"image": "emoji"}, {"image": "ring", "strength": 0.05}, {"image": "ring"}],
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--methods", default=",".join(SWEEP), help="comma-separated, from: " + ", ".join(SWEEP))
    ap.add_argument("--sizes", default=",".join(SIZES),
                    help="face heights in px, or native (as photographed)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    from PIL import Image

    from faceveil.audit.reid import MATCH, Gallery, emoji_picture, load_probes, pipeline_hide
    from faceveil.config import DetectorConfig, EffectConfig, PipelineConfig
    from faceveil.detection import create_detector
    from faceveil.identity import embedders

    identities = args.data / "identities"
    if not (identities / "identities.json").exists():
        print(f"error: no identities at {identities} (use --data)", file=sys.stderr)
        return 2
    sizes = [None if s == "native" else int(s) for s in args.sizes.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in SWEEP]
    if unknown:
        print(f"error: unknown method(s) {', '.join(unknown)}", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    probes = load_probes(identities, create_detector(DetectorConfig()))
    embedder = embedders.create("dlib")
    gallery = Gallery(embedder, probes)
    log(f"{len(probes)} photos of {len(set(gallery.persons))} people; {int(gallery.judged.sum())} "
        f"can be re-identified; gallery in {time.perf_counter() - t0:.0f} s")

    tmp = Path(tempfile.mkdtemp(prefix="reid-"))
    pictures = {}
    for name, ring in (("emoji", False), ("ring", True)):
        pictures[name] = tmp / f"{name}.png"
        Image.fromarray(emoji_picture(ring=ring)).save(pictures[name])

    defaults = EffectConfig()
    rows = []
    for method in methods:
        for opts in SWEEP[method]:
            shown = {k: v for k, v in opts.items()}
            cfg_opts = dict(opts)
            if "image" in cfg_opts:
                cfg_opts["image"] = str(pictures[cfg_opts["image"]])
            config = PipelineConfig().replace(method=method, **cfg_opts)
            hide = pipeline_hide(config)
            is_default = method != "none" and all(
                getattr(defaults, k) == v for k, v in opts.items() if k != "image")
            label = method + (" " + " ".join(f"{k}={v}" for k, v in shown.items()) if shown else "")
            row = {"method": method, "options": shown, "label": label, "default": is_default,
                   "sizes": {}}
            spent, faces = 0.0, 0
            for size in sizes:
                def timed(image, box, _hide=hide):
                    nonlocal spent, faces
                    t = time.perf_counter()
                    out = _hide(image, box)
                    spent += time.perf_counter() - t
                    faces += 1
                    return out

                near = [r for r in gallery.nearest_after(timed, size) if r is not None]
                row["sizes"][size or "native"] = {
                    "matched": sum(same and d < min(MATCH, lineup) for same, d, lineup in near),
                    "under_0.6": sum(same and d < MATCH for same, d, _ in near),
                    "rank1": sum(same for same, _, _ in near), "judged": len(near)}
            row["ms_per_face"] = round(1000 * spent / max(faces, 1), 2)
            rows.append(row)
            log(f"{label:<34} " + "  ".join(
                f"{s}px {v['matched']}/{v['judged']} (<0.6 {v['under_0.6']}, rank-1 {v['rank1']})"
                for s, v in row["sizes"].items())
                + f"  {row['ms_per_face']} ms/face")

    print(table(rows, sizes, args.markdown))
    print(f"\nrank-1: nearest gallery face is the same person at any distance; a recogniser that "
          f"guesses reaches {gallery.chance():.0%} rank-1 on these photos")
    print(f"recogniser: {embedder.name} (dlib), 1-NN over {len(probes)} untouched photos of "
          f"{len(set(gallery.persons))} people, match when same person and distance < 0.6; "
          f"data: {identities}; {time.perf_counter() - t0:.0f} s in all")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "photos": len(probes)}, indent=1))
    return 0


def table(rows: list[dict], sizes: list[int], markdown: bool) -> str:
    head = (["method and setting"] + [f"{s} px faces" if s else "native size" for s in sizes]
            + ["re-identified", "1-NN < 0.6, no lineup", "rank-1, any distance", "ms/face"])
    lines = []
    for r in rows:
        m = sum(v["matched"] for v in r["sizes"].values())
        n = sum(v["judged"] for v in r["sizes"].values())
        cells = [r["label"] + (" (default)" if r["default"] else "")]
        cells += [f"{v['matched']}/{v['judged']}" for v in r["sizes"].values()]
        u = sum(v["under_0.6"] for v in r["sizes"].values())
        r1 = sum(v["rank1"] for v in r["sizes"].values())
        cells += [f"{m / max(n, 1):.0%}", f"{u / max(n, 1):.0%}", f"{r1 / max(n, 1):.0%}",
                  f"{r['ms_per_face']:.1f}"]
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c) + " |" for c in lines]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
                     for row in [head, *lines])


if __name__ == "__main__":
    raise SystemExit(main())
