"""`faceveil people ...`: the local people gallery (add, list, remove) and discovery."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger("faceveil")

EXAMPLES = """\
examples:
  faceveil people add alice photos/alice/*.jpg     # stores face vectors, never the photos
  faceveil people list
  faceveil people remove alice
  faceveil people discover footage/ -o people/     # groups faces into people: contact sheet + JSON
  faceveil people add --from people/people.json    # adds every group you gave a "name"
  faceveil people add bob --from people/people.json --group person_3
  faceveil run lecture.mp4 --keep alice            # then hide everyone but alice
"""


def add_parser(sub) -> None:
    from ..identity import DISCOVER_DISTANCE
    from ..options import add_arguments

    people = sub.add_parser(
        "people", help="the people gallery used by --keep/--only (add, list, remove, discover)",
        description="Manage the local people gallery: names and face vectors in one SQLite file "
                    "in your user data folder. Photos are never stored.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    psub = people.add_subparsers(dest="people_command", metavar="ACTION", required=True)
    add_arguments(psub.add_parser(
        "add", help="add a person from reference photos or from a discovered group",
        description="Add face vectors under a name: from photos (the main face of each; "
                    "group photos with several similar faces are skipped), or from a people.json "
                    "written by `people discover`."), "people_add")
    add_arguments(psub.add_parser("list", help="list the people in the gallery"), "people_list")
    add_arguments(psub.add_parser("remove", help="remove people and all their face vectors"),
                  "people_remove")
    discover = psub.add_parser(
        "discover", help="group the faces in pictures and videos into people",
        description="Find faces in files and folders, group them by likeness, and write "
                    "people.json and contact_sheet.jpg into a folder. Name the groups in the JSON, "
                    "then run `faceveil people add --from FOLDER/people.json`.")
    add_arguments(discover, "people_discover")
    discover.set_defaults(distance=DISCOVER_DISTANCE)  # the default is the identity package's


def run(args: argparse.Namespace) -> int:
    from ..identity.gallery import Gallery

    gallery = Gallery(args.gallery)
    action = args.people_command
    if action == "list":
        people = gallery.people()
        if args.json:
            print(json.dumps([vars(p) for p in people], indent=1))
        elif not people:
            print(f"faceveil: the gallery {gallery.path} is empty; add people with "
                  "`faceveil people add NAME PHOTOS`", file=sys.stderr)
        else:
            for p in people:
                print(f"{p.name}\t{p.faces} face(s)\tadded {p.added}")
        return 0
    if action == "remove":
        missing = [name for name in args.names if not gallery.remove(name)]
        for name in missing:
            print(f"faceveil: error: no person named {name!r} in {gallery.path}", file=sys.stderr)
        return 1 if missing else 0
    if action == "add":
        return _add(args, gallery)
    return _discover(args)


def _identity_parts(args: argparse.Namespace):
    from ..config import DetectorConfig, IdentityConfig
    from ..detection import create_detector
    from ..identity import embedders

    detector = create_detector(DetectorConfig(name=args.detector or "centerface",
                                              quality=args.quality or "balanced"))
    config = IdentityConfig(gallery=args.gallery)
    return detector, embedders.create(config.embedder), config


def _add(args: argparse.Namespace, gallery) -> int:
    from ..config import IdentityConfig
    from ..identity import embedders
    from ..identity.decide import enrol

    if args.from_file:
        if args.photos:
            raise ConfigError("give photos or --from, not both")
        from ..identity.discover import read_discovery

        embedder = embedders.load(IdentityConfig().embedder)
        groups = read_discovery(args.from_file, embedder.name, embedder.dims)
        model = embedder.name
        if args.name:
            if not args.group:
                raise ConfigError("with --from and a NAME, say which group: --group person_N")
            chosen = [(args.name, v) for gid, _, v in groups if gid == args.group]
            if not chosen:
                raise ConfigError(f"{args.from_file} has no group {args.group!r}")
        else:
            chosen = [(name, v) for _, name, v in groups if name]
            if not chosen:
                raise ConfigError(f"no group in {args.from_file} has a \"name\" yet: fill some in, "
                                  "or use NAME --group ID")
        for name, vectors in chosen:
            added = gallery.add(name, vectors, model)
            print(f"faceveil: {name}: {added} face(s) added ({len(vectors) - added} already there)",
                  file=sys.stderr)
        return 0
    if not args.name or not args.photos:
        raise ConfigError("say who and from which photos: faceveil people add NAME PHOTO...")
    detector, embedder, config = _identity_parts(args)
    got = enrol(args.photos, detector, embedder, config)
    for path, why in got.skipped:
        print(f"faceveil: skipped {path}: {why}", file=sys.stderr)
    if not got.vectors:
        print(f"faceveil: error: no usable face of {args.name} in the photos given", file=sys.stderr)
        return 1
    import numpy as np

    added = gallery.add(args.name, np.stack(got.vectors), embedder.name)
    print(f"faceveil: {args.name}: {added} face(s) added from {len(got.sources)} photo(s) "
          f"to {gallery.path}", file=sys.stderr)
    return 0


def _discover(args: argparse.Namespace) -> int:
    from ..identity.discover import cluster, find_faces, write_discovery
    from ..paths import plan

    work = plan(args.inputs, "-")
    for what, why in work.errors:
        print(f"faceveil: error: {what}: {why}", file=sys.stderr)
    files = [src for src, _ in work.pairs]
    if not files:
        print("faceveil: error: no pictures or videos to look at", file=sys.stderr)
        return 1
    detector, embedder, config = _identity_parts(args)
    failed = len(work.errors)

    def on_file(path: Path, faces: int, error: str) -> None:
        nonlocal failed
        if error:
            failed += 1
            print(f"faceveil: error: {path}: {error}", file=sys.stderr)
        else:
            log.info("%s: %d face(s)", path, faces)

    sightings = find_faces(files, detector, embedder, config, every=args.every, on_file=on_file)
    import numpy as np

    labels = cluster(np.stack([s.vector for s in sightings]) if sightings else np.zeros((0, 128)),
                     args.distance)
    json_path, sheet = write_discovery(args.output, sightings, labels, model=embedder.name,
                                       distance=args.distance)
    groups = int(labels.max()) + 1 if len(labels) else 0
    print(f"faceveil: {len(sightings)} face(s) in {len(files) - (failed - len(work.errors))} file(s), "
          f"{groups} people -> {json_path} and {sheet}", file=sys.stderr)
    return 1 if failed else 0
