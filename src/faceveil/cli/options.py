"""The command line's flags: one parser for every subcommand."""

from __future__ import annotations

import argparse

from .._version import __version__

EXAMPLES = """\
examples:
  faceveil photo.jpg                          # -> photo.anonymized.jpg beside it
  faceveil run shots/ -o clean/               # a whole tree, mirrored, recursively
  faceveil run "*.png" --method pixelate --blocks 10
  faceveil run group.jpg --method solid --color "#000000" --shape box --json
  faceveil run shots/ -o - --json             # faces as JSON lines on stdout, no pictures
  faceveil run crowd.jpg --quality thorough --draw-boxes
  faceveil interview.mp4                      # -> interview.anonymized.mp4, with its sound
  faceveil run talks/ -o public/ --method pixelate
  faceveil run clip.mov --json                # per-frame faces and tracks
  faceveil run long.mp4 --detect-every 3 --preset veryfast
  faceveil render clip.mov --faces clip.anonymized.faces.json --method solid
  faceveil run lecture.mp4 --keep alice       # hide everyone but alice (see `faceveil people`)
  faceveil run party/ --keep refs/alice/      # reference photos instead of a gallery name
  faceveil run talk.mp4 --background blur --method none   # face visible, room blurred
  faceveil run me.jpg --background image:beach.jpg
  faceveil run me.png --background transparent           # a PNG cut-out of the people
  faceveil live 0                             # webcam, anonymized in a preview window; q quits
  faceveil live rtsp://camera.local/stream --serve   # MJPEG page on http://127.0.0.1:8765/
  faceveil live 0 --record session.mp4 --fps-overlay
  faceveil live clip.mp4 --serve --no-preview # a file played at its real rate
  faceveil batch archive/ -o clean/ --workers 2   # in parallel, resumable (--resume)
  faceveil batch photos.zip -o photos.anonymized.zip
  faceveil serve                              # web app on http://127.0.0.1:8000: drop files in a browser
  faceveil gui shots/                         # desktop app: review, fix and export
"""


def _choices(registry) -> str:
    return "; ".join(f"{e.name}: {e.help}" for e in registry.entries())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceveil", description="Find every face in pictures and hide it. Fully offline.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceveil {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="anonymize pictures and videos (the default command)", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Anonymize files, folders (recursively) and glob patterns: pictures and videos.",
    )
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or glob patterns")
    run.add_argument("-o", "--output", metavar="PATH",
                     help="output file or folder; '-' writes no pictures, only JSON lines to "
                          "stdout (default: NAME.anonymized.EXT beside each file, FOLDER.anonymized/)")
    _detection_options(run)
    _hiding_options(run)
    _output_options(run, sidecar=True)
    _audit_options(run)
    _common(run)

    render = sub.add_parser(
        "render", help="hide the faces listed in a faces file (no detection)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Re-render a picture or video from its faces JSON (for example one written by "
                    "`faceveil run --json` and edited by hand): every face marked hidden is hidden, "
                    "nothing is detected.",
        epilog="example:\n  faceveil render clip.mov --faces clip.anonymized.faces.json --method solid\n",
    )
    render.add_argument("inputs", nargs=1, metavar="INPUT", help="the original picture or video")
    render.add_argument("--faces", required=True, metavar="FILE.json", help="the faces file")
    render.add_argument("-o", "--output", metavar="PATH",
                        help="output file (default: NAME.anonymized.EXT beside the input)")
    _hiding_options(render)
    _output_options(render, sidecar=False)
    _common(render)

    models = sub.add_parser("models", help="list the models faceveil ships, checked, and where each runs")
    models.add_argument("--json", action="store_true", help="as JSON on stdout")
    models.add_argument("--device", default="cpu", help="the device to report providers for "
                        "(cpu, auto, cuda, ...; default cpu)")
    _common(models)

    from . import batch, gui, live, people, serve

    people.add_parser(sub, _common, _choices)
    live.add_parser(sub, _common, _choices, _hiding_options, _people_options)
    batch.add_parser(sub)
    serve.add_parser(sub, _common, _choices)
    gui.add_parser(sub, _common)
    return parser


def _detection_options(p: argparse.ArgumentParser) -> None:
    """Detection, video tracking and people flags (`run`, `batch`)."""
    from ..config import QUALITIES
    from ..detection import detectors
    from ..models.runtime import DEVICES

    g = p.add_argument_group("detection")
    g.add_argument("--detector", choices=detectors.names(), help=_choices(detectors))
    g.add_argument("--quality", choices=QUALITIES,
                   help="speed against recall: fast, balanced (default), thorough")
    g.add_argument("--threshold", type=float, metavar="0..1",
                   help="detection score threshold (default: set by --quality; lower finds more)")
    g.add_argument("--threads", type=int, metavar="N", help="inference threads (default: all cores)")
    g.add_argument("--device", choices=DEVICES,
                   help="where the ONNX models run: cpu (default), auto (a GPU when ONNX Runtime "
                        "has one), cuda, ... (the GPU build: pip install 'faceveil[gpu]')")
    g = p.add_argument_group("video tracking")
    g.add_argument("--detect-every", type=int, metavar="K",
                   help="detect on every K-th frame (and at scene cuts), track in between (default "
                        "by --quality: fast 3, balanced 2, thorough 1)")
    g.add_argument("--detect-size", type=int, metavar="PX",
                   help="long side of the frame the detector sees (default by --quality: "
                        "fast 480, balanced 640, thorough the full frame)")
    g.add_argument("--scan-every", type=int, metavar="N",
                   help="frames between full scans; a quick pass follows known faces in between "
                        "(default by --quality: fast 12, balanced 8, thorough 1)")
    g.add_argument("--hold", type=int, metavar="N",
                   help="frames a face stays hidden after it was last seen (default 8)")
    g.add_argument("--lead", type=int, metavar="N",
                   help="frames a face is hidden before it was first seen (default 8)")
    _people_options(p)


def _people_options(p: argparse.ArgumentParser, keep_note: str = "") -> None:
    """The people flags, for `run`/`render` and `live` alike."""
    g = p.add_argument_group("people (needs the people extra)")
    g.add_argument("--keep", action="append", metavar="WHO",
                   help="leave this person visible and hide everyone else: a name from `faceveil "
                        "people list`, or reference photos (a file or folder); repeat for several"
                        + keep_note)
    g.add_argument("--only", action="append", metavar="WHO",
                   help="hide only this person (and any face that might be them); repeatable")
    g.add_argument("--keep-distance", type=float, metavar="D",
                   help="--keep: a face stays visible below this embedding distance (default 0.6)")
    g.add_argument("--keep-margin", type=float, metavar="M",
                   help="--keep: ... and only when every other enrolled person is at least M "
                        "farther (default 0.05)")
    g.add_argument("--only-distance", type=float, metavar="D",
                   help="--only: a face is hidden below this embedding distance (default 0.65)")
    g.add_argument("--min-face", type=int, metavar="PX",
                   help="smaller faces are not judged, so hidden (default 32)")
    g.add_argument("--gallery", metavar="FILE", help="people gallery file (default: user data folder)")


def _audit_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("proof")
    g.add_argument("--report", metavar="FILE.html|.json",
                   help="write an audit report: per file what was hidden, risky moments "
                        "(unsure detections, short tracks), thumbnails of the "
                        "hidden regions, settings, versions and model hashes")
    g.add_argument("--verify", nargs="?", const="warn", choices=("warn", "strict"),
                   help="look again at every output with a second detector and, with the people "
                        "extra, measure how recognisable hidden faces still are; warn (default) "
                        "or strict: files with findings fail and the exit code is non-zero")


def _hiding_options(p: argparse.ArgumentParser) -> None:
    from ..anonymization import effects, masks

    g = p.add_argument_group("hiding")
    g.add_argument("--method", choices=effects.names(), help=_choices(effects))
    g.add_argument("--strength", type=float, metavar="X", help="blur strength (default 1.0)")
    g.add_argument("--blocks", type=int, metavar="N",
                   help="pixelate: blocks across a face (default 8)")
    g.add_argument("--color", metavar="COLOUR", help="solid: #rrggbb, r,g,b or a name (default black)")
    g.add_argument("--image", metavar="PATH", help="image: picture put over each face")
    g.add_argument("--shape", choices=masks.names(), help="mask shape (default ellipse)")
    g.add_argument("--mask-scale", type=float, metavar="X",
                   help="mask size relative to the face box (default 1.3)")
    g.add_argument("--feather", type=float, metavar="X", help="soft edge, 0..0.5 (default 0.15)")
    g.add_argument("--draw-boxes", action="store_true", default=None,
                   help="draw detections and scores on the output")
    g.add_argument("--config", metavar="FILE.toml", help="options from a TOML file (flags win)")
    from ..segmentation import segmenters

    g = p.add_argument_group("background (behind people; selfie segmentation on ONNX Runtime)")
    g.add_argument("--background", metavar="MODE",
                   help="blur[:STRENGTH], image:PATH (scaled to cover), color:COLOUR, or transparent "
                        "(pictures: PNG/WebP/TIFF cut-out); default: left as is")
    g.add_argument("--background-strength", type=float, metavar="X",
                   help="background blur strength (default 1.0)")
    g.add_argument("--segmenter", choices=segmenters.names(), help=_choices(segmenters))
    g.add_argument("--background-threshold", type=float, metavar="0..1",
                   help="person confidence where background starts (default 0.5)")
    g.add_argument("--background-feather", type=float, metavar="X",
                   help="soft edge as a fraction of the frame's short side, 0..0.2 (default 0.01)")
    g.add_argument("--background-smooth", type=float, metavar="0..0.99",
                   help="video: damping of small mask changes between frames (default 0.75; 0 off)")


def _output_options(p: argparse.ArgumentParser, *, sidecar: bool, naming: bool = True) -> None:
    g = p.add_argument_group("output")
    if sidecar:
        g.add_argument("--json", action="store_true",
                       help="also write NAME.anonymized.faces.json beside each output (for videos: "
                            "per frame, with track ids and which boxes were filled in)")
    g.add_argument("--image-quality", type=int, default=None, metavar="1..100",
                   help="JPEG/WebP quality of written pictures (default: a JPEG input's own "
                        "quality, estimated from its tables, else 90)")
    g.add_argument("--keep-metadata", action="store_true",
                   help="keep picture EXIF (GPS is still removed); default strips all metadata")
    if naming:
        g.add_argument("--suffix", default=".anonymized", help="added to output names (default %(default)s)")
        g.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist")
    g.add_argument("--max-pixels", type=float, default=150e6, metavar="N",
                   help="refuse pictures and video frames with more pixels (default 150e6)")
    g = p.add_argument_group("video output")
    g.add_argument("--codec", metavar="NAME",
                   help="video encoder (default libx264; libvpx-vp9 for .webm, mpeg4 for .avi)")
    g.add_argument("--crf", type=int, default=20, metavar="N",
                   help="constant quality, lower is better and bigger (default 20)")
    g.add_argument("--preset", default="medium", metavar="NAME",
                   help="x264 speed preset: ultrafast .. veryslow (default medium)")
    g.add_argument("--no-audio", action="store_true",
                   help="drop audio and subtitle streams (default: copied unchanged)")


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("messages")
    g.add_argument("-q", "--quiet", action="store_true", help="only errors")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more messages (-vv: debug)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--traceback", action="store_true", help="show the full error on failure")
