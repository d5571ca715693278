"""`faceveil gui`: the desktop app."""

from __future__ import annotations

import argparse

EXAMPLES = """\
examples:
  faceveil gui                                # an empty window: File > Open…
  faceveil gui holiday/                       # every picture and video in a folder
  faceveil gui interview.mp4                  # review a video, then File > Export…
  faceveil gui interview.faces.json           # re-open a saved review
  faceveil gui --camera 0                     # the first webcam, anonymized live
"""


def add_parser(sub) -> None:
    from ..options import add_arguments

    p = sub.add_parser(
        "gui", help="the desktop app: review what will be hidden, fix it, export",
        description="Open the desktop window: original and anonymized side by side; click a face "
                    "to keep it visible or hide it again, drag a box over a face the detector "
                    "missed (in a video it is followed through the frames), then export. Needs "
                    "the gui extra: pip install 'faceveil[gui]'.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, "gui_command")


def run(args: argparse.Namespace) -> int:
    from ..gui import main

    return main(args.inputs, camera=args.camera)
