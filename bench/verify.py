"""Verification benchmark: does `--verify strict` pass good outputs and fail weak ones?

Each picture is anonymized as `faceveil run` would (`Pipeline.process`, the given settings), and
the rendered pixels (what a lossless PNG output holds) are checked by the same
`faceveil.audit.Verifier` that `--verify strict` runs. A picture *fails* when it has a failing
finding. Beside it, what the recogniser says without the verifier's rules (`--truth`): a picture
*has a recognisable face* when one of its hidden faces of 40 px or more (confirmed a face by the
second look close up on the original), sharp enough to embed, is still within dlib's own
same-person distance (0.6) of itself before hiding. With the defaults
every picture should pass; with weak settings every picture with a recognisable face should fail.

    PYTHONPATH=src .venv/bin/python bench/verify.py --set wider                   # defaults, 274 photos
    PYTHONPATH=src .venv/bin/python bench/verify.py --set identities --truth --method none
    PYTHONPATH=src .venv/bin/python bench/verify.py --set wider --every 10 --truth --strength 0.05

Progress goes to stderr; the summary goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
SAME_PERSON = 0.6  # dlib's documented same-person distance


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pictures(data: Path, which: str) -> list[Path]:
    if which == "wider":
        meta = json.loads((data / "images" / "wider_face_val_subset.json").read_text())
        return [data / "images" / im["file"] for im in meta["images"]]
    root = data / "identities"
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--set", choices=("wider", "identities"), default="wider")
    ap.add_argument("--every", type=int, default=1, help="every n-th picture only (a subset)")
    ap.add_argument("--files", nargs="+", metavar="PATH",
                    help="only these pictures (paths relative to --data), instead of --set")
    ap.add_argument("--method", default="blur")
    ap.add_argument("--strength", type=float)
    ap.add_argument("--blocks", type=int)
    ap.add_argument("--truth", action="store_true",
                    help="also embed every hidden face of 40 px or more (the recogniser's verdict)")
    ap.add_argument("--json", type=Path, help="write per-picture results here")
    args = ap.parse_args(argv)

    import numpy as np

    from faceveil.audit.verify import FACE_SCORE, MIN_JUDGED, Verifier
    from faceveil.config import PipelineConfig
    from faceveil.media.images import read_image
    from faceveil.pipeline import Pipeline
    from faceveil.types import Frame

    files = [args.data / f for f in args.files] if args.files else pictures(args.data, args.set)
    files = files[::args.every]
    if not files or not files[0].exists():
        print(f"error: no {args.set} pictures under {args.data} (use --data)", file=sys.stderr)
        return 2
    options = {k: v for k, v in (("method", args.method), ("strength", args.strength),
                                  ("blocks", args.blocks)) if v is not None}
    pipeline = Pipeline(PipelineConfig().replace(**options))
    verifier = Verifier(pipeline.config)
    t0 = time.perf_counter()
    rows, kinds = [], Counter()
    for n, path in enumerate(files, 1):
        image = np.ascontiguousarray(read_image(path).rgb)
        result = pipeline.process(Frame(image))
        findings = verifier.check(image, result.image, result.detections)
        failing = [f for f in findings if f.failing]
        kinds.update(f.kind for f in findings)
        row = {"file": str(path.relative_to(args.data)), "faces": len(result.detections),
               "failed": bool(failing), "kinds": sorted({f.kind for f in findings})}
        if args.truth and verifier.embedder is not None:
            dets = result.detections
            # faces only: a box the second look confirms close up on the original (as the
            # verifier does; a false detection on a shirt is near itself whatever hides it)
            tall = np.array([i for i in np.nonzero(dets.heights >= MIN_JUDGED)[0]
                             if verifier.close_up(image, dets.xyxy[i]) >= FACE_SCORE], int)
            recognisable = False
            if len(tall):
                sharp = pipeline.config.identity.min_sharpness
                before = verifier.embedder.embed(image, dets.xyxy[tall], min_sharpness=sharp).vectors
                ok = np.isfinite(before).all(axis=1)
                if ok.any():
                    after = verifier.embedder.embed(result.image, dets.xyxy[tall][ok]).vectors
                    d = np.linalg.norm(before[ok] - after, axis=1)
                    recognisable = bool((d < SAME_PERSON).any())
                    row["nearest"] = round(float(d.min()), 3)
            row["recognisable"] = recognisable
        rows.append(row)
        log(f"{n}/{len(files)} {row['file']}: {'FAILED' if failing else 'passed'} "
            f"{row['kinds']} {row.get('nearest', '')}")
    failed = sum(r["failed"] for r in rows)
    label = " ".join(f"--{k} {v}" for k, v in options.items())
    print(f"{args.set} ({len(rows)} pictures{'' if args.every == 1 else f', every {args.every}th'}), "
          f"{label}: {failed} failed, {len(rows) - failed} passed; findings by kind: {dict(kinds)}")
    if args.truth:
        rec = [r for r in rows if r.get("recognisable")]
        missed = [r["file"] for r in rec if not r["failed"]]
        print(f"  with a recognisable face (dlib, a hidden face within {SAME_PERSON} of itself): "
              f"{len(rec)}, of which failed {len(rec) - len(missed)}"
              + (f"; passed: {missed}" if missed else ""))
    print(f"  second look {verifier.detector_name}, recogniser "
          f"{verifier.embedder.name if verifier.embedder is not None else 'none'}; "
          f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
