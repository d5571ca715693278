"""The command line's flags: one parser for every subcommand.

Every command takes its flags from the option table (faceveil.options): the pipeline's options
for `run`, `render`, `live` and `batch`, and the rows the table declares for `models`, `people`,
`serve` and `gui` alone.
"""

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceveil", description="Find every face in pictures and hide it. Fully offline.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceveil {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from ..options import add_arguments

    run = sub.add_parser(
        "run", help="anonymize pictures and videos (the default command)", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Anonymize files, folders (recursively) and glob patterns: pictures and videos.",
    )
    add_arguments(run, "run")

    render = sub.add_parser(
        "render", help="hide the faces listed in a faces file (no detection)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Re-render a picture or video from its faces JSON (for example one written by "
                    "`faceveil run --json` and edited by hand): every face marked hidden is hidden, "
                    "nothing is detected.",
        epilog="example:\n  faceveil render clip.mov --faces clip.anonymized.faces.json --method solid\n",
    )
    add_arguments(render, "render")

    models = sub.add_parser("models", help="list the models faceveil ships, checked, and where each runs")
    add_arguments(models, "models")

    from . import batch, gui, live, people, serve

    people.add_parser(sub)
    live.add_parser(sub)
    batch.add_parser(sub)
    serve.add_parser(sub)
    gui.add_parser(sub)
    return parser
