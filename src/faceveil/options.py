"""The option table: every user option declared once, and which doors offer it.

A row says an option's name, section, type, range, help, where its choices come from (a
registry, read when asked) and, for each door, either that the door offers it or why not. The
default of a pipeline option is not written here: it is read from the config dataclasses in
`faceveil.config` (`default(row)`), so a help text that says "(default {default})" always tells
the truth. The doors build themselves from this table:

- the command line: `add_arguments(parser, door)` for every command: `run`, `render`, `live`
  and `batch` (the pipeline's options and their own), and `people ...`, `serve`, `models` and
  `gui` (COMMANDS: the rows declared for them, mostly their own flags);
- the web app: `faceveil.web.options` (the page's form, `/api/options`, the OpenAPI schema);
- the desktop app: `faceveil.gui.settings` (the settings panel);
- TOML files and the Python API: `PipelineConfig.from_toml` / `replace(**options)`, whose keys
  are the rows with a `config` field.

tests/test_options.py reads every real door and fails when one lacks an option without a
declared reason here, or offers one this table does not know (httpie's `ParserSpec` is the model).
Importing this module is cheap: registries are read only when choices are asked for.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# the doors an option can come in by: the commands that run the pipeline on files or streams,
CLI_DOORS = ("run", "render", "live", "batch")
# the other commands, each with the words that reach its parser (`faceveil people add ...`),
COMMANDS: dict[str, tuple[str, ...]] = {
    "people_add": ("people", "add"), "people_list": ("people", "list"),
    "people_remove": ("people", "remove"), "people_discover": ("people", "discover"),
    "serve": ("serve",), "models": ("models",), "gui_command": ("gui",)}
# and the doors that are not commands
OTHER_DOORS = ("web", "gui", "toml", "api")
DOORS = (*CLI_DOORS, *COMMANDS, *OTHER_DOORS)

OFFERED = ""  # a door's entry when it offers the option; otherwise the reason it does not


@dataclass(frozen=True)
class Option:
    """One user option. `doors` maps every door in DOORS to OFFERED or a reason."""

    name: str  # the flat name: keyword argument, TOML key, form field, argparse dest
    section: str  # the group it is shown in (the CLI's argument groups, the GUI's headings)
    type: type  # bool, int, float, str, or tuple for a repeatable option
    help: str  # may say {default} and {choices}
    doors: Mapping[str, str]
    config: tuple[str | None, str] | None = None  # (section, field) in PipelineConfig
    range: tuple[float, float] | None = None  # checked by `range_error`, the one rule for every door
    exclusive: tuple[bool, bool] = (False, False)  # the range's low / high end is not allowed
    choices: str | tuple[str, ...] | None = None  # a key of CHOICES, or fixed values
    metavar: str | None = None
    flags: tuple[str, ...] = ()  # default: ("--name-with-dashes",)
    label: str = ""  # the web page's and the GUI's label
    when: Mapping[str, tuple[str, ...]] | None = None  # shown only when another option is one of
    step: float | None = None  # the web's and GUI's spin step
    cli: Mapping[str, Any] = field(default_factory=dict)  # more argparse keywords (nargs, default...)
    per_door: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # argparse, per door

    def offered(self, door: str) -> bool:
        return self.doors.get(door, "missing") == OFFERED

    def reason(self, door: str) -> str | None:
        """Why `door` does not offer this option, or None when it does."""
        value = self.doors.get(door)
        return None if value == OFFERED else value

    def range_error(self, value: Any) -> str | None:
        """Why a number is outside this row's range ("must be between 0.05 and 20, got 25"),
        or None when it is inside (or the row has no range, or the value is not a number: its
        type is checked elsewhere). The one range check: argparse's type (`add_arguments`) and the
        config dataclasses' own checks (`faceveil.config`: TOML, the web form, the GUI, the API
        and a dataclass built directly) call it."""
        if (self.range is None or isinstance(value, bool)
                or not isinstance(value, numbers.Real)):
            return None
        (low, high), (no_low, no_high) = self.range, self.exclusive
        if (low < value if no_low else low <= value) and (value < high if no_high else
                                                          value <= high):
            return None
        if not (no_low or no_high):
            return f"must be between {low:g} and {high:g}, got {value:g}"
        above = f"more than {low:g}" if no_low else f"at least {low:g}"
        below = f"less than {high:g}" if no_high else f"at most {high:g}"
        return f"must be {above} and {below}, got {value:g}"

    @property
    def default(self) -> Any:
        """The pipeline's default (from the config dataclasses), else the CLI's own default."""
        if self.config is None:
            return self.cli.get("default")
        from .config import PipelineConfig

        section, name = self.config
        base = PipelineConfig()
        return getattr(base if section is None else getattr(base, section), name)

    def choice_names(self) -> list[str] | None:
        if self.choices is None:
            return None
        if isinstance(self.choices, tuple):
            return list(self.choices)
        return list(CHOICES[self.choices]())

    def registry(self):
        """The registry the choices come from (names and help), or None."""
        if isinstance(self.choices, str) and self.choices in REGISTRIES:
            return REGISTRIES[self.choices]()
        return None

    def help_text(self, door: str | None = None, **more: Any) -> str:
        """The help, with {default} (from the config), {choices} (from the registry) and `more`."""
        text = dict(self.per_door.get(door or "", {})).get("help", self.help)
        choices = ""
        if (registry := self.registry()) is not None:
            choices = "; ".join(f"{e.name}: {e.help}" for e in registry.entries())
        default = self.default
        if isinstance(default, tuple) and len(default) == 3 and self.name.endswith("color"):
            default = "#{:02x}{:02x}{:02x}".format(*default)
        return text.format(default=_show(default), choices=choices, **more)


def _show(value: Any) -> str:
    return str(value)


# why a command that is not given in a row lacks it
_FINDS_ONLY = "finds faces with --detector and --quality only; it hides none"
_COMMAND_REASONS = {
    "people_add": f"people add {_FINDS_ONLY}",
    "people_discover": f"people discover {_FINDS_ONLY}",
    "people_list": "a gallery command: it reads no pictures",
    "people_remove": "a gallery command: it reads no pictures",
    "serve": "the page's visitor chooses it; the server's defaults come from --config (TOML)",
    "models": "models lists the models and where they run; it processes no file",
    "gui_command": "the window's settings panel and dialogs set it",
}


def _doors(offered: str, **reasons: str) -> dict[str, str]:
    """`offered`: the doors (space-separated; "all": every door but the other commands), every
    other door with its reason (a command of COMMANDS not named: its usual one)."""
    names = [n for word in offered.split()
             for n in ((*CLI_DOORS, *OTHER_DOORS) if word == "all" else (word,))]
    doors = dict(_COMMAND_REASONS)
    doors.update({d: OFFERED for d in names})
    doors.update(reasons)
    return doors


# reasons said more than once
PIPELINE_ONLY = "a pipeline setting, not the command's: use a TOML file (--config) or the API"
RUN_SETTING = "a setting of how a command runs or writes files, not of the pipeline"
NO_DETECTION = "render detects nothing: the faces come from the faces file"
NO_PEOPLE_RENDER = "render hides the faces the faces file marks hidden; no people are judged"
WEB_PATH = "names a file on the server: a browser must never make the server read a path it chose"
WEB_TUNING = "a tuning setting; the page keeps to the choices a visitor understands (use the CLI)"
GUI_TUNING = "a tuning setting not in the settings panel yet (use the CLI or a TOML file)"
GUI_PEOPLE = "the GUI decides per face by clicking (keep/hide), not by a people gallery"
GUI_RUN = "the GUI runs and writes files its own way (its export dialog)"
NOT_WEB = "the web app runs and writes files its own way (per job)"
LIVE_WRITES = "a live stream writes no pictures"
CLI_ONLY = "a setting of the command, not the pipeline: not a TOML or API key"
TOML_FILE = "it names the TOML file itself"
WEB_FORMAT = "the command line keeps each file's format or takes it from the output's name"
BATCH_OWN = "batch writes into a mirrored folder or zip (no per-file naming)"


def _tuning_doors() -> dict[str, str]:
    """The doors of a detection or tracking tuning setting (run, live, batch, TOML, API)."""
    return _doors("run live batch toml api", render=NO_DETECTION, web=WEB_TUNING, gui=GUI_TUNING)


def _cli_only(offered: str, **reasons: str) -> dict[str, str]:
    """Doors for a flag of some commands only (not a pipeline option)."""
    base = {"web": NOT_WEB, "gui": GUI_RUN, "toml": CLI_ONLY, "api": CLI_ONLY, **_COMMAND_REASONS}
    if offered:
        only = ", ".join(" ".join(COMMANDS.get(d, (d,))) for d in offered.split())
        base.update({d: f"a flag of {only} only" for d in (*CLI_DOORS, *COMMANDS)})
    base.update(reasons)
    for d in offered.split():
        base[d] = OFFERED
    return base


def _registry(module: str, attr: str) -> Callable[[], Any]:
    def load():
        import importlib

        return getattr(importlib.import_module(f"faceveil.{module}"), attr)

    return load


REGISTRIES: dict[str, Callable[[], Any]] = {
    "detectors": _registry("detection", "detectors"),
    "effects": _registry("anonymization.effects", "effects"),
    "masks": _registry("anonymization.masks", "masks"),
    "segmenters": _registry("segmentation", "segmenters"),
    "embedders": _registry("identity", "embedders"),
}


def _config_names(name: str) -> Callable[[], tuple[str, ...]]:
    def load():
        from . import config

        return getattr(config, name)

    return load


def _devices() -> tuple[str, ...]:
    from .models.runtime import DEVICES

    return DEVICES


CHOICES: dict[str, Callable[[], Any]] = {
    **{k: (lambda k=k: REGISTRIES[k]().names()) for k in REGISTRIES},
    "qualities": _config_names("QUALITIES"),
    "backgrounds": _config_names("BACKGROUNDS"),
    "devices": _devices,
}

# argparse's sections, in the order `--help` shows them
SECTIONS = ("input", "detection", "video tracking", "people (needs the people extra)", "hiding",
            "background (behind people; selfie segmentation on ONNX Runtime)", "output",
            "video output", "proof", "outputs (any number at once)", "source", "batch", "gallery",
            "web app", "messages")
DETECTION, TRACKING, PEOPLE, HIDING, BACKGROUND = SECTIONS[1:6]
GALLERY, SERVER = SECTIONS[-3:-1]

ALL_COMMANDS = " ".join((*CLI_DOORS, *COMMANDS))

_LIVE_KEEP_NOTE = (". A face stays hidden until it is judged; judging takes ~80 ms a face, "
                   "which the stream waits for (expect dropped frames)")

TABLE: tuple[Option, ...] = (
    # ------------------------------------------------------------------ input (positional)
    Option("inputs", "input", tuple, "files, folders or glob patterns", metavar="INPUT",
           flags=("inputs",), cli={"nargs": "+"}, doors=_cli_only(
               "run render batch people_discover gui_command",
               live="live takes one SOURCE (a camera, a stream or a file)",
               web="files are uploaded", gui="files are opened in the window"),
           per_door={"render": {"nargs": 1, "help": "the original picture or video"},
                     "batch": {"help": "files, folders, glob patterns, .zip files, or URIs "
                                       "(s3://..., with the cluster extra)"},
                     "gui_command": {"nargs": "*", "metavar": "PATH",
                                     "help": "pictures, videos, folders or saved reviews "
                                             "(*.faces.json) to open"}}),
    Option("source", "input", str,
           "a camera number (0), a device (/dev/video0), a stream URL (rtsp://, http://, tcp://, "
           "udp://, rtmp://, srt://) or a video file", metavar="SOURCE", flags=("source",),
           doors=_cli_only("live", web="the web app anonymizes uploaded files, not streams",
                           gui="the GUI opens a camera from its Camera… menu")),
    Option("faces", "input", str, "the faces file", metavar="FILE.json", cli={"required": True},
           doors=_cli_only("render", web="the web app detects; it re-renders no faces file",
                           gui="the GUI opens a saved review (a faces file) from its Open… menu")),
    Option("output", "input", str,
           "output file or folder; '-' writes no pictures, only JSON lines to stdout (default: "
           "NAME.anonymized.EXT beside each file, FOLDER.anonymized/)", metavar="PATH",
           flags=("-o", "--output"),
           doors=_cli_only("run render batch people_discover",
                           live="live writes with --record and --serve"),
           per_door={"people_discover": {"required": True, "metavar": "FOLDER",
                                         "help": "where to write"},
                     "render": {"help": "output file (default: NAME.anonymized.EXT beside the "
                                        "input)"},
                     "batch": {"required": True, "metavar": "OUT",
                               "help": "output folder, OUT.zip (written at the end, atomically), "
                                       "or a URI folder"}}),
    # ------------------------------------------------------------------ detection
    Option("detector", DETECTION, str, "{choices}", config=("detector", "name"),
           choices="detectors", label="Detector",
           doors=_doors("all people_add people_discover", render=NO_DETECTION)),
    Option("quality", DETECTION, str,
           "speed against recall: fast, balanced (default), thorough", config=("detector", "quality"),
           choices="qualities", label="Detection quality",
           doors=_doors("all people_add people_discover", render=NO_DETECTION),
           per_door={"live": {"help": "speed against recall (default {default})"}}),
    Option("threshold", DETECTION, float,
           "detection score threshold (default: set by --quality; lower finds more)",
           config=("detector", "threshold"), range=(0.0, 1.0),
           exclusive=(True, True), metavar="0..1",
           doors=_tuning_doors(),
           per_door={"live": {"help": "detection score threshold (default: set by --quality)"}}),
    Option("threads", DETECTION, int, "inference threads (default: all cores; 1 for the small models)",
           config=("detector", "threads"), range=(1, 1024), metavar="N",
           doors=_doors("run live batch toml api", render=NO_DETECTION,
                        web="the server's administrator sets threads (faceveil serve --workers)",
                        gui="the GUI uses the default threads")),
    Option("device", DETECTION, str,
           "where the ONNX models run: {default} (default), auto (a GPU when ONNX Runtime has one), "
           "cuda, ... (the GPU build: pip install 'faceveil[gpu]')", config=("detector", "device"),
           choices="devices",
           doors=_doors("run live batch models toml api", render=NO_DETECTION,
                        web="the server's hardware is the administrator's choice (its TOML file)",
                        gui=GUI_TUNING),
           per_door={"live": {"help": "where the ONNX models run: {default} (default), auto, "
                                      "cuda, ... (as for run)"},
                     "models": {"help": "the device to report providers for (default {default})"}}),
    # ------------------------------------------------------------------ video tracking
    Option("detect_every", TRACKING, int,
           "detect on every K-th frame (and at scene cuts), track in between (default by "
           "--quality: fast 3, balanced 2, thorough 1)", config=("video", "detect_every"),
           range=(1, 100), metavar="K",
           doors=_tuning_doors(),
           per_door={"live": {"help": "the detector runs beside the stream on the newest frame "
                                      "whenever it is free, but at most every K-th frame (a full "
                                      "scan or a quick pass, as for files); the frames in between "
                                      "wait for it and are interpolated (default by --quality: "
                                      "{presets})"}}),
    Option("detect_size", TRACKING, int,
           "long side of the frame the detector sees (default by --quality: fast 480, balanced "
           "640, thorough the full frame)", config=("video", "detect_size"), range=(64, 8192),
           metavar="PX",
           doors=_tuning_doors(),
           per_door={"live": {"help": "long side of the picture the detector sees (default by "
                                      "--quality)"}}),
    Option("scan_every", TRACKING, int,
           "frames between full scans; a quick pass follows known faces in between (default by "
           "--quality: fast 12, balanced 8, thorough 1)", config=("video", "scan_every"),
           range=(1, 1000), metavar="N",
           doors=_tuning_doors(),
           per_door={"live": {"help": "frames between full scans; quick passes in between "
                                      "(default by --quality, as for files: {scans})"}}),
    Option("hold", TRACKING, int, "frames a face stays hidden after it was last seen (default "
           "{default})", config=("video", "hold"), range=(0, 1000), metavar="N",
           doors=_tuning_doors()),
    Option("lead", TRACKING, int, "frames a face is hidden before it was first seen (default "
           "{default})", config=("video", "lead"), range=(0, 1000), metavar="N",
           doors=_tuning_doors(),
           per_door={"live": {"help": "frames a face is hidden before it was first seen, within "
                                      "the frames still waiting to be shown (default {default})"}}),
    Option("max_gap", TRACKING, int, "detection gaps up to this many frames are filled by "
           "interpolation (default {default})", config=("video", "max_gap"), range=(0, 1000),
           doors=_doors("toml api", **dict.fromkeys(CLI_DOORS, PIPELINE_ONLY), web=WEB_TUNING,
                        gui=GUI_TUNING)),
    Option("iou", TRACKING, float, "box overlap that links a detection to a track (default "
           "{default})", config=("video", "iou"), range=(0.0, 1.0),
           exclusive=(True, True),
           doors=_doors("toml api", **dict.fromkeys(CLI_DOORS, PIPELINE_ONLY), web=WEB_TUNING,
                        gui=GUI_TUNING)),
    Option("scene_cut", TRACKING, float, "frame difference that makes a scene cut (tracks end "
           "there); 0: off (default {default})", config=("video", "scene_cut"), range=(0.0, 1.0),
           doors=_doors("toml api", **dict.fromkeys(CLI_DOORS, PIPELINE_ONLY), web=WEB_TUNING,
                        gui=GUI_TUNING)),
    # ------------------------------------------------------------------ people
    Option("keep", PEOPLE, tuple,
           "leave this person visible and hide everyone else: a name from `faceveil people list`, "
           "or reference photos (a file or folder); repeat for several",
           config=("identity", "keep"), metavar="WHO", label="Leave visible",
           cli={"action": "append"}, doors=_doors("all", render=NO_PEOPLE_RENDER, gui=GUI_PEOPLE),
           per_door={"web": {"help": "people from this computer's gallery (faceveil people add); "
                                     "everyone else is hidden"},
                     "live": {"help": "leave this person visible and hide everyone else: a name "
                                      "from `faceveil people list`, or reference photos (a file "
                                      "or folder); repeat for several" + _LIVE_KEEP_NOTE}}),
    Option("only", PEOPLE, tuple, "hide only this person (and any face that might be them); "
           "repeatable", config=("identity", "only"), metavar="WHO", cli={"action": "append"},
           doors=_doors("run live batch toml api", render=NO_PEOPLE_RENDER, gui=GUI_PEOPLE,
                        web="the page offers --keep only: with --only, a face the server's "
                            "gallery cannot judge would be shown")),
    Option("keep_distance", PEOPLE, float, "--keep: a face stays visible below this embedding "
           "distance (default {default})", config=("identity", "keep_distance"), range=(0.0, 2.0),
           exclusive=(True, True),
           metavar="D", doors=_doors("run live batch toml api", render=NO_PEOPLE_RENDER,
                                     web=WEB_TUNING, gui=GUI_PEOPLE)),
    Option("keep_margin", PEOPLE, float, "--keep: ... and only when every other enrolled person "
           "is at least M farther (default {default})", config=("identity", "keep_margin"),
           range=(0.0, 1.0), exclusive=(False, True), metavar="M",
           doors=_doors("run live batch toml api", render=NO_PEOPLE_RENDER, web=WEB_TUNING,
                        gui=GUI_PEOPLE)),
    Option("only_distance", PEOPLE, float, "--only: a face is hidden below this embedding "
           "distance (default {default})", config=("identity", "only_distance"), range=(0.0, 2.0),
           exclusive=(True, True),
           metavar="D", doors=_doors("run live batch toml api", render=NO_PEOPLE_RENDER,
                                     web=WEB_TUNING, gui=GUI_PEOPLE)),
    Option("min_face", PEOPLE, int, "smaller faces are not judged, so hidden (default {default})",
           config=("identity", "min_face"), range=(8, 4096), metavar="PX",
           doors=_doors("run live batch toml api", render=NO_PEOPLE_RENDER, web=WEB_TUNING,
                        gui=GUI_PEOPLE)),
    Option("min_score", PEOPLE, float, "detection confidence needed to judge a face (default "
           "{default}); below it a face is hidden", config=("identity", "min_score"),
           range=(0.0, 1.0), exclusive=(False, True),
           doors=_doors("toml api", **dict.fromkeys(CLI_DOORS, PIPELINE_ONLY),
                                          web=WEB_TUNING, gui=GUI_PEOPLE)),
    Option("min_sharpness", PEOPLE, float, "sharpness (variance of the Laplacian of the aligned "
           "face) needed to judge a face (default {default}); below it a face is hidden",
           config=("identity", "min_sharpness"), range=(0.0, 1e6),
           doors=_doors("toml api", **dict.fromkeys(CLI_DOORS, PIPELINE_ONLY), web=WEB_TUNING,
                        gui=GUI_PEOPLE)),
    Option("embedder", PEOPLE, str, "{choices}", config=("identity", "embedder"),
           choices="embedders",
           doors=_doors("toml api", **dict.fromkeys(CLI_DOORS, PIPELINE_ONLY), web=WEB_TUNING,
                        gui=GUI_PEOPLE)),
    Option("gallery", PEOPLE, str, "people gallery file (default: user data folder)",
           config=("identity", "gallery"), metavar="FILE",
           doors=_doors("run live batch people_add people_list people_remove people_discover "
                        "serve toml api", render=NO_PEOPLE_RENDER, web=WEB_PATH, gui=GUI_PEOPLE),
           per_door={"serve": {"section": SERVER, "help": "people gallery whose names the page "
                                                          "offers to keep visible"}}),
    # ------------------------------------------------------------------ hiding
    Option("method", HIDING, str, "{choices}", config=("effect", "method"), choices="effects",
           label="Hide faces with", doors=_doors("all")),
    Option("strength", HIDING, float, "blur strength (default {default})",
           config=("effect", "strength"), range=(0.05, 20.0), step=0.05, metavar="X",
           label="Blur strength", when={"method": ("blur",)}, doors=_doors("all")),
    Option("blocks", HIDING, int, "pixelate: blocks across a face (default {default})",
           config=("effect", "blocks"), range=(2, 64), step=1, metavar="N",
           label="Blocks across a face", when={"method": ("pixelate",)}, doors=_doors("all")),
    Option("color", HIDING, str, "solid: #rrggbb, r,g,b or a name (default {default})",
           config=("effect", "color"), metavar="COLOUR", label="Fill colour",
           when={"method": ("solid",)}, doors=_doors("all")),
    Option("image", HIDING, str, "image: picture put over each face", config=("effect", "image"),
           metavar="PATH", label="Image", when={"method": ("image",)},
           doors=_doors("run render live batch gui toml api", web=WEB_PATH)),
    Option("shape", HIDING, str, "mask shape (default {default})", config=("mask", "shape"),
           choices="masks", label="Shape", doors=_doors("all")),
    Option("mask_scale", HIDING, float, "mask size relative to the face box (default {default})",
           config=("mask", "scale"), range=(0.5, 4.0), step=0.05, metavar="X", label="Mask size",
           doors=_doors("run render live batch gui toml api", web=WEB_TUNING)),
    Option("feather", HIDING, float, "soft edge, 0..0.5 (default {default})",
           config=("mask", "feather"), range=(0.0, 0.5), step=0.05, metavar="X", label="Soft edge",
           doors=_doors("run render live batch gui toml api", web=WEB_TUNING)),
    Option("draw_boxes", HIDING, bool, "draw detections and scores on the output",
           config=(None, "draw_boxes"), cli={"action": "store_true", "default": None},
           doors=_doors("run render live batch toml api",
                        web="a tuning view; the page's results are for sharing",
                        gui="the GUI draws the boxes over its own view")),
    Option("config", HIDING, str, "options from a TOML file (flags win)", metavar="FILE.toml",
           doors=_cli_only("run render live batch serve", toml=TOML_FILE,
                           api="pass config=PipelineConfig.from_toml(path)", web=WEB_PATH,
                           gui="the GUI remembers its own settings"),
           per_door={"serve": {"section": SERVER, "help": "defaults for the page's options "
                                                          "(TOML)"}}),
    # ------------------------------------------------------------------ background
    Option("background", BACKGROUND, str,
           "blur[:STRENGTH], image:PATH (scaled to cover), color:COLOUR, or transparent (pictures: "
           "PNG/WebP/TIFF cut-out); default: left as is", config=("background", "mode"),
           choices="backgrounds", metavar="MODE", label="Background", doors=_doors("all")),
    Option("background_strength", BACKGROUND, float, "background blur strength (default "
           "{default})", config=("background", "strength"), range=(0.05, 20.0), step=0.05,
           metavar="X", label="Background blur", when={"background": ("blur",)},
           doors=_doors("all")),
    Option("background_image", BACKGROUND, str, "the picture put behind people (or "
           "--background image:PATH)", config=("background", "image"), label="Picture",
           when={"background": ("image",)},
           doors=_doors("gui toml api", web=WEB_PATH,
                        **dict.fromkeys(CLI_DOORS, "given as --background image:PATH"))),
    Option("background_color", BACKGROUND, str, "the colour behind people (default {default})",
           config=("background", "color"), label="Background colour",
           when={"background": ("color",)},
           doors=_doors("web gui toml api",
                        **dict.fromkeys(CLI_DOORS, "given as --background color:COLOUR"))),
    Option("segmenter", BACKGROUND, str, "{choices}", config=("background", "segmenter"),
           choices="segmenters",
           doors=_doors("run render live batch toml api", web=WEB_TUNING, gui=GUI_TUNING)),
    Option("background_threshold", BACKGROUND, float, "person confidence where background starts "
           "(default {default})", config=("background", "threshold"), range=(0.0, 1.0),
           exclusive=(True, True),
           metavar="0..1",
           doors=_doors("run render live batch toml api", web=WEB_TUNING, gui=GUI_TUNING)),
    Option("background_feather", BACKGROUND, float, "soft edge as a fraction of the frame's short "
           "side, 0..0.2 (default {default})", config=("background", "feather"), range=(0.0, 0.2),
           metavar="X",
           doors=_doors("run render live batch toml api", web=WEB_TUNING, gui=GUI_TUNING)),
    Option("background_smooth", BACKGROUND, float, "video: damping of small mask changes between "
           "frames (default {default}; 0 off)", config=("background", "smooth"), range=(0.0, 0.99),
           metavar="0..0.99",
           doors=_doors("run render live batch toml api", web=WEB_TUNING, gui=GUI_TUNING)),
    # ------------------------------------------------------------------ output
    Option("json", "output", bool,
           "also write NAME.anonymized.faces.json beside each output (for videos: per frame, with "
           "track ids and which boxes were filled in)", cli={"action": "store_true"},
           doors=_cli_only("run live batch models people_list", render="render writes the faces "
                           "file it was given back unchanged; nothing new to list", web="the web "
                           "app's job status is JSON", gui="the GUI saves its review as a faces "
                           "file"),
           per_door={"models": {"help": "as JSON on stdout"},
                     "people_list": {"help": "as JSON on stdout"},
                     "live": {"help": "print the end summary as JSON on stdout",
                              "section": "outputs (any number at once)"},
                     "batch": {"help": "print the run's summary as JSON on stdout",
                               "section": "batch"}}),
    Option("image_quality", "output", int,
           "JPEG/WebP quality of written pictures (default: a JPEG input's own quality, estimated "
           "from its tables, else 90)", range=(1, 100), metavar="1..100",
           cli={"default": None}, doors=_cli_only("run render live batch"),
           per_door={"live": {"default": 80, "help": "JPEG quality of the served frames "
                                                     "(default 80)",
                              "section": "outputs (any number at once)"}}),
    Option("format", "output", str, "pictures: the format written",
           choices=("keep", "jpeg", "png", "webp"), label="Save pictures as",
           doors=_cli_only("", web=OFFERED, **dict.fromkeys(CLI_DOORS, WEB_FORMAT),
                           gui="the export dialog's file name says the format",
                           toml=WEB_FORMAT, api="the output's name says the format")),
    Option("keep_metadata", "output", bool,
           "keep picture EXIF (GPS is still removed); default strips all metadata",
           cli={"action": "store_true"}, doors=_cli_only("run render batch", live=LIVE_WRITES)),
    Option("suffix", "output", str, "added to output names (default %(default)s)",
           cli={"default": ".anonymized"},
           doors=_cli_only("run render", live=LIVE_WRITES, batch=BATCH_OWN)),
    Option("skip_existing", "output", bool, "leave outputs that already exist",
           cli={"action": "store_true"},
           doors=_cli_only("run render", live=LIVE_WRITES,
                           batch="batch has --resume, which also checks the input's bytes")),
    Option("max_pixels", "output", float, "refuse pictures and video frames with more pixels "
           "(default 150e6)", metavar="N", cli={"default": 150e6},
           doors=_cli_only("run render batch serve", live="a live source's frame size is fixed "
                           "when it opens", web="the server's administrator sets it (faceveil "
                           "serve --max-pixels)"),
           per_door={"serve": {"section": SERVER, "help": "largest picture or video frame in "
                                                          "pixels (default %(default).0f)"}}),
    Option("codec", "video output", str, "video encoder (default libx264; libvpx-vp9 for .webm, "
           "mpeg4 for .avi)", metavar="NAME",
           doors=_cli_only("run render batch", live="--record picks the encoder by its suffix")),
    Option("crf", "video output", int, "constant quality, lower is better and bigger (default 20)",
           range=(0, 63), metavar="N", cli={"default": 20}, doors=_cli_only("run render live batch"),
           per_door={"live": {"default": 23, "section": "outputs (any number at once)",
                              "help": "--record: constant quality, lower is better and bigger "
                                      "(default 23)"}}),
    Option("preset", "video output", str, "x264 speed preset: ultrafast .. veryslow (default "
           "medium)", metavar="NAME", cli={"default": "medium"},
           doors=_cli_only("run render live batch"),
           per_door={"live": {"default": "ultrafast", "section": "outputs (any number at once)",
                              "help": "--record: x264 speed preset (default ultrafast: the least "
                                      "CPU, taken from detection; veryfast makes ~2x smaller "
                                      "files for ~2x the CPU)"}}),
    Option("no_audio", "video output", bool,
           "drop audio and subtitle streams (default: copied unchanged)",
           cli={"action": "store_true"}, doors=_cli_only("run render live batch"),
           per_door={"live": {"section": "outputs (any number at once)",
                              "help": "--record: leave the source's sound out (default: copied "
                                      "when it has one)"}}),
    # ------------------------------------------------------------------ proof
    Option("report", "proof", str,
           "write an audit report: per file what was hidden, risky moments (unsure detections, "
           "short tracks), thumbnails of the hidden regions, settings, versions and model hashes",
           metavar="FILE.html|.json",
           doors=_cli_only("run", render=NO_DETECTION, live="a stream has no end to report on "
                           "before it stops; live prints its summary (--json)",
                           batch="batch records every item in its manifest")),
    Option("verify", "proof", str,
           "look again at every output with a second detector and, with the people extra, measure "
           "how recognisable hidden faces still are; warn (default) or strict: files with findings "
           "fail and the exit code is non-zero", choices=("warn", "strict"),
           cli={"nargs": "?", "const": "warn"},
           per_door={"batch": {"help": "check every output with a second detector (and, with the "
                                       "people extra, how recognisable hidden faces are); strict: "
                                       "items with findings fail and their outputs are removed",
                               "section": "batch"}},
           doors=_cli_only("run batch", render="render hides exactly the faces it is given",
                           live="a live frame is shown at once; there is no output to look at "
                                "again before it is seen")),
    # ------------------------------------------------------------------ live outputs, source
    Option("no_preview", "outputs (any number at once)", bool,
           "no preview window (default: one where a display is available)",
           cli={"action": "store_true"}, doors=_cli_only("live")),
    Option("serve", "outputs (any number at once)", str,
           "serve an MJPEG stream and a page showing it (default 127.0.0.1:8765; port 0 picks a "
           "free one); open it in a browser, VLC or OBS", metavar="[HOST:]PORT",
           cli={"nargs": "?", "const": ""}, doors=_cli_only("live")),
    Option("allow_remote", "outputs (any number at once)", bool,
           "let --serve use an address other than loopback; without --token one is made and "
           "printed (in the address to open)", cli={"action": "store_true"},
           doors=_cli_only("live")),
    Option("token", "outputs (any number at once)", str,
           "--serve: access token every viewer needs (default: $FACEVEIL_TOKEN; needed off "
           "loopback); also the password a browser or VLC asks for", metavar="T",
           doors=_cli_only("live serve"),
           per_door={"serve": {"section": SERVER,
                               "help": "access token every request must carry (default: "
                                       "$FACEVEIL_TOKEN); the page takes it from #token=T in its "
                                       "address. Guessable ones are refused; wrong ones are "
                                       "throttled per client"}}),
    Option("record", "outputs (any number at once)", str,
           "record the anonymized stream (.mp4, .mkv, .mov, .webm, .avi) at the pace it was seen; "
           "written under a temporary name and renamed at the end", metavar="FILE",
           doors=_cli_only("live")),
    Option("fps_overlay", "outputs (any number at once)", bool,
           "draw output fps, latency and dropped frames on the frames",
           cli={"action": "store_true"}, doors=_cli_only("live")),
    Option("timeout", "source", float,
           "seconds to wait for the source, to open it or for data, before it counts as lost "
           "(default {open} to open, {read} for data)", range=(0, 600), metavar="S",
           doors=_cli_only("live")),
    Option("reconnect", "source", int,
           "attempts to reconnect a stream or camera that dropped, waiting {backoff} s, then twice "
           "as long each time, up to {backoff_max} s (default {reconnects}; 0: stop at once)",
           range=(0, 1000), metavar="N", doors=_cli_only("live")),
    # ------------------------------------------------------------------ batch
    Option("workers", "batch", int,
           "worker processes (local; default one per core) or Ray actors (default: the cluster's "
           "CPUs / --threads); each loads the models once. Unless --threads is given, each gets "
           "cores / N inference threads (Ray: 1)", range=(1, 4096), metavar="N",
           doors=_cli_only("batch serve"),
           per_door={"serve": {"section": SERVER, "help": "jobs processed at once, each with its "
                                                          "own models (default: 2, or 1 on one "
                                                          "core)"}}),
    Option("no_split", "batch", bool,
           "give every video to one worker whole (default: a long video is cut at key frames into "
           "segments that several workers process, then joined)",
           cli={"action": "store_true"}, doors=_cli_only("batch")),
    Option("resume", "batch", bool,
           "skip items already done (same input bytes and settings, output present)",
           cli={"action": "store_true"}, doors=_cli_only("batch")),
    Option("manifest", "batch", str,
           "the JSON-lines manifest (default OUT/.faceveil-manifest.jsonl, or "
           "OUT.zip.faceveil-manifest.jsonl beside an output zip)", metavar="FILE",
           doors=_cli_only("batch")),
    Option("engine", "batch", str,
           "local worker processes (default) or Ray Data (needs faceveil[cluster])",
           choices=("local", "ray"), cli={"default": "local"}, doors=_cli_only("batch")),
    Option("address", "batch", str,
           "--engine ray: join this cluster (auto, ray://host:10001, host:6379); default: start a "
           "local Ray for the run", metavar="ADDR", doors=_cli_only("batch")),
    # ------------------------------------------------------------------ people (the gallery)
    Option("name", GALLERY, str, "the person's name", flags=("name",), cli={"nargs": "?"},
           doors=_cli_only("people_add")),
    Option("photos", GALLERY, tuple, "photos or folders of photos", flags=("photos",),
           metavar="PHOTO", cli={"nargs": "*"}, doors=_cli_only("people_add")),
    Option("from_file", GALLERY, str, "take the faces from a discovery file: every group with a "
           "name, or --group ID under NAME", flags=("--from",), metavar="people.json",
           doors=_cli_only("people_add")),
    Option("group", GALLERY, str, "with --from and NAME: the group to add (person_3)",
           metavar="ID", doors=_cli_only("people_add")),
    Option("names", GALLERY, tuple, "the people to remove", flags=("names",), metavar="NAME",
           cli={"nargs": "+"}, doors=_cli_only("people_remove")),
    Option("every", GALLERY, float, "videos: look at one frame every S seconds (default "
           "{default})", range=(0.0, 86400.0), exclusive=(True, False), metavar="S",
           cli={"default": 1.0}, doors=_cli_only("people_discover")),
    Option("distance", GALLERY, float, "faces closer than this are linked into one person "
           "(default %(default)s)", range=(0.0, 2.0), exclusive=(True, True), metavar="D",
           doors=_cli_only("people_discover")),
    # ------------------------------------------------------------------ the web app's server
    Option("host", SERVER, str, "address to listen on (default %(default)s: this computer only; "
           "any other address needs --token)", cli={"default": "127.0.0.1"},
           doors=_cli_only("serve")),
    Option("port", SERVER, int, "port (default %(default)s; 0: any free one)", range=(0, 65535),
           cli={"default": 8000}, doors=_cli_only("serve")),
    Option("queue", SERVER, int, "requests waiting for a worker before new ones get 429 (default "
           "%(default)s)", range=(0, 10_000), metavar="N", doors=_cli_only("serve")),
    Option("ttl", SERVER, float, "delete a finished job this long after it was last used "
           "(default %(default)g)", range=(0.0, 1e7), exclusive=(True, False), metavar="SECONDS",
           doors=_cli_only("serve")),
    Option("max_upload_mb", SERVER, float, "largest request, all its files together (default "
           "%(default)g)", range=(0.001, 1e7), metavar="MB", doors=_cli_only("serve")),
    Option("max_files", SERVER, int, "files in one job, counting those in zips (default "
           "%(default)s)", range=(1, 1_000_000), metavar="N", doors=_cli_only("serve")),
    Option("max_video_minutes", SERVER, float, "longest video (default %(default)g)",
           range=(0.0, 1e6), exclusive=(True, False), metavar="M", doors=_cli_only("serve")),
    Option("upload_timeout", SERVER, float, "cut off an upload that sends nothing for this long, "
           "or that comes slower than 8 KiB/s on average after that (default %(default)g)",
           range=(0.0, 3600.0), exclusive=(True, False), metavar="SECONDS",
           doors=_cli_only("serve")),
    Option("data_dir", SERVER, str, "where the private upload folder is made (default: the "
           "system temp folder)", metavar="DIR", doors=_cli_only("serve")),
    # ------------------------------------------------------------------ the desktop app's command
    Option("camera", "input", str, "start with a live camera or stream (a number, a device or a "
           "URL)", metavar="SOURCE", doors=_cli_only("gui_command")),
    # ------------------------------------------------------------------ messages
    Option("quiet", "messages", bool, "only errors", flags=("-q", "--quiet"),
           cli={"action": "store_true"}, doors=_cli_only(ALL_COMMANDS)),
    Option("verbose", "messages", int, "more messages (-vv: debug)", flags=("-v", "--verbose"),
           cli={"action": "count", "default": 0}, doors=_cli_only(ALL_COMMANDS)),
    Option("no_progress", "messages", bool, "no progress bar", cli={"action": "store_true"},
           doors=_cli_only(ALL_COMMANDS)),
    Option("traceback", "messages", bool, "show the full error on failure",
           cli={"action": "store_true"}, doors=_cli_only(ALL_COMMANDS)),
)

BY_NAME: dict[str, Option] = {o.name: o for o in TABLE}


def options_for(door: str) -> list[Option]:
    """The rows `door` offers, in table order."""
    return [o for o in TABLE if o.offered(door)]


def config_options() -> list[Option]:
    """The pipeline's options: TOML keys and the API's keyword arguments."""
    return [o for o in TABLE if o.config is not None]


def nearest(name: str, known: list[str] | None = None) -> str | None:
    """The known option most like `name` (for 'did you mean'), or None."""
    known = known if known is not None else [o.name for o in config_options()]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return close[0] if close else None


def add_arguments(parser, door: str, *, groups: dict[str, Any] | None = None,
                  format_help: Mapping[str, Any] | None = None) -> None:
    """Add the flags of the rows `door` offers to an argparse parser, one argument group per
    section, in table order (`groups`: sections made beforehand, to show them first).

    Pipeline options default to None on the command line, so a TOML file (--config) and the
    config's own defaults apply unless a flag is given. `format_help` fills further {names} in
    help texts (live's timeouts).
    """
    groups = {} if groups is None else groups
    for option in options_for(door):
        extra = dict(option.per_door.get(door, {}))
        section = extra.pop("section", option.section)
        kwargs: dict[str, Any] = {**option.cli, **extra}
        kwargs["help"] = option.help_text(door, **(format_help or {}))
        flags = option.flags or ("--" + option.name.replace("_", "-"),)
        positional = not flags[0].startswith("-")
        if option.metavar and "metavar" not in kwargs:
            kwargs["metavar"] = option.metavar
        if not positional:
            kwargs.setdefault("dest", option.name)
        action = kwargs.get("action")
        if action not in ("store_true", "count", "append") and option.type in (int, float):
            kwargs.setdefault("type", _argparse_type(option))
        if option.choices is not None and action != "append":
            kwargs["choices"] = option.choice_names()
            if option.choices == "backgrounds":  # the CLI's one-word forms (image:PATH, ...)
                del kwargs["choices"]
        if section == "input" or positional:
            target = parser
        else:
            if section not in groups:
                groups[section] = parser.add_argument_group(section)
            target = groups[section]
        target.add_argument(*flags, **kwargs)


def _argparse_type(option: Option) -> Callable[[str], Any]:
    """argparse's `type` for a number row: the number, checked against the row's range, so a
    value outside it is argparse's one-line error and exit 2 ("argument --strength: must be
    between 0.05 and 20, got 25")."""
    import argparse

    def convert(text: str) -> Any:
        value = option.type(text)  # ValueError: argparse says "invalid float value: 'x'"
        if (why := option.range_error(value)) is not None:
            raise argparse.ArgumentTypeError(why)
        return value

    convert.__name__ = option.type.__name__
    return convert
