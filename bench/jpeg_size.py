"""JPEG output size against input size: the old fixed writer setting (quality 95, 4:4:4) and the
new default (the input's own quality and subsampling, estimated from its quantization tables),
on the same anonymized pixels, with the privacy figure from the same outputs.

    .venv/bin/python bench/jpeg_size.py [--limit N] [--sets dlib_faces] [--data ../shared/data]

Each shared photo (WIDER FACE subset and dlib faces) is anonymized once (balanced, blur); the
result is encoded both ways. Privacy: a labelled face (>= 16 px, not ignored) hidden in the
lossless render (the usual coverage rule) counts as still hidden in a JPEG when the JPEG's
central 60% of it is nearer (mean absolute difference) the render than the original: the
encoder carried the hiding, not the face. The two settings should hide the same faces.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=0, help="the first N photos of each set")
    ap.add_argument("--sets", default="wider_face_val_subset,dlib_faces",
                    help="which shared photo sets (default both)")
    args = ap.parse_args()
    from faceveil.evaluation import face_covered
    from faceveil.media.images import encode_image, read_image
    from faceveil.pipeline import Pipeline
    from faceveil.types import Frame

    entries = []
    for name in args.sets.split(","):
        meta = json.loads((args.data / "images" / f"{name}.json").read_text())
        entries += meta["images"][:args.limit or None]
    pipeline = Pipeline()
    sizes = {"input": 0, "old": 0, "new": 0}
    ratios: dict[str, list[float]] = {"old": [], "new": []}
    hidden = {"old": 0, "new": 0}
    faces = lossless = 0
    qualities: dict[int | None, int] = {}
    t0 = time.perf_counter()
    for n, e in enumerate(entries):
        path = args.data / "images" / e["file"]
        picture = read_image(path)
        qualities[picture.jpeg_quality] = qualities.get(picture.jpeg_quality, 0) + 1
        image = pipeline.process(Frame(picture.rgb)).image
        size_in = path.stat().st_size
        sizes["input"] += size_in
        boxes = [b for b, ign in zip(e["boxes"], e.get("ignore", [False] * len(e["boxes"])),
                                     strict=True) if not ign and b[3] - b[1] >= 16]
        faces += len(boxes)
        changed = np.any(image != picture.rgb, axis=2)  # the lossless render's hidden faces
        covered = {tuple(b): face_covered(changed, b) for b in boxes}
        lossless += sum(covered.values())
        for name, quality in (("old", 95), ("new", None)):
            if quality == 95:  # what the writer did before: 95 at 4:4:4
                import io

                from PIL import Image

                buf = io.BytesIO()
                Image.fromarray(image).save(buf, "JPEG", quality=95, subsampling=0)
                data = buf.getvalue()
            else:
                data = encode_image(image, "JPEG", like=picture)
            sizes[name] += len(data)
            ratios[name].append(len(data) / size_in)
            out = read_image(data).rgb.astype(np.int16)
            for box in boxes:
                x1, y1, x2, y2 = (round(v) for v in box)
                mx, my = (x2 - x1) // 5, (y2 - y1) // 5  # the central 60%
                cut = np.s_[y1 + my:y2 - my, x1 + mx:x2 - mx]
                if out[cut].size == 0:
                    continue
                to_render = np.abs(out[cut] - image[cut].astype(np.int16)).mean()
                to_original = np.abs(out[cut] - picture.rgb[cut].astype(np.int16)).mean()
                hidden[name] += int(covered[tuple(box)] and to_render < to_original)
        print(f"\r{n + 1}/{len(entries)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    print(f"{len(entries)} shared photos ({sizes['input'] / 1e6:.1f} MB of JPEG in; estimated "
          f"input qualities: {dict(sorted(qualities.items(), key=str))}), {time.perf_counter() - t0:.0f} s")
    print(f"faces >= 16 px hidden in the lossless render: {lossless}/{faces}; still hidden in "
          "the JPEG = hidden there and its centre nearer the render than the original")
    print("| writer setting | total out / in | median per photo | faces >=16 px still hidden |")
    print("|---|---:|---:|---:|")
    for name, label in (("old", "fixed quality 95, 4:4:4 (before)"),
                        ("new", "the input's quality and subsampling (now)")):
        print(f"| {label} | {sizes[name] / sizes['input']:.2f}x | "
              f"{float(np.median(ratios[name])):.2f}x | {hidden[name]}/{faces} "
              f"({hidden[name] / max(faces, 1):.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
