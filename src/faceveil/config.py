"""Pipeline configuration: nested, frozen, validated; built from keyword options, CLI flags or TOML."""

from __future__ import annotations

import dataclasses
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from . import options as _options
from .errors import ConfigError

QUALITIES = ("fast", "balanced", "thorough")
SHAPES = ("ellipse", "box")
BACKGROUNDS = ("blur", "image", "color", "transparent")

_NAMED_COLORS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "grey": (128, 128, 128),
    "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
}


def parse_color(value: str | tuple[int, int, int] | list[int]) -> tuple[int, int, int]:
    """'#rrggbb', '#rgb', 'r,g,b', a few names, or an (r, g, b) sequence -> (r, g, b)."""
    if isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        text = str(value).strip().lower()
        if text in _NAMED_COLORS:
            return _NAMED_COLORS[text]
        if re.fullmatch(r"#?[0-9a-f]{6}", text):
            h = text.lstrip("#")
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
        if re.fullmatch(r"#[0-9a-f]{3}", text):
            return tuple(int(c * 2, 16) for c in text[1:])  # type: ignore[return-value]
        parts = text.split(",")
    try:
        rgb = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ConfigError(f"not a colour: {value!r} (use #rrggbb, #rgb, r,g,b or a name like black)")
    return rgb  # type: ignore[return-value]


def _check_type(path: str | Path, option: _options.Option, value: Any) -> None:
    """A TOML value has the type the option table declares (colours also as [r, g, b])."""
    if option.type is bool:
        ok, want = isinstance(value, bool), "true or false"
    elif option.type is int:
        ok, want = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif option.type is float:
        ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif option.type is tuple:
        ok = isinstance(value, str) or (isinstance(value, list)
                                         and all(isinstance(v, str) for v in value))
        want = "a text or a list of texts"
    elif option.name.endswith("color"):
        ok = isinstance(value, str) or (isinstance(value, list)
                                        and all(isinstance(v, int) for v in value))
        want = "a colour: '#rrggbb', 'r,g,b', a name or [r, g, b]"
    else:
        ok, want = isinstance(value, str), "a text"
    if not ok:
        raise ConfigError(f"{path}: option {option.name!r} must be {want}, got {value!r:.40}")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


# (section, field) -> its table row: the stage configs check their numbers by the row's range
_ROWS: dict[tuple[str | None, str], _options.Option] = {
    o.config: o for o in _options.config_options() if o.config is not None and o.range is not None}


def _check_ranges(config: Any, section: str) -> None:
    """Each number of `config` (PipelineConfig's `section`) is inside its table row's range, by
    the table's one rule (`Option.range_error`) and in the words argparse, TOML and the web form
    say ("strength must be between 0.05 and 20, got 25"); None means "by quality" or "all"."""
    for f in dataclasses.fields(config):
        row = _ROWS.get((section, f.name))
        value = getattr(config, f.name)
        if row is None or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{row.name} must be a number, got {value!r:.40}")
        if (why := row.range_error(value)) is not None:
            raise ConfigError(f"{row.name} {why}")


@dataclass(frozen=True)
class DetectorConfig:
    name: str = "centerface"
    quality: str = "balanced"  # fast | balanced | thorough: speed against recall
    threshold: float | None = None  # None: the backend's default for the quality preset
    threads: int | None = None  # inference threads; None: all cores (BlazeFace: 1)
    device: str = "cpu"  # ONNX Runtime device: cpu | auto | cuda | ... (faceveil.models.runtime)

    def __post_init__(self) -> None:
        from .models.runtime import DEVICES

        _check(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        _check(self.quality in QUALITIES,
               f"quality must be one of {', '.join(QUALITIES)}, got {self.quality!r}")
        _check_ranges(self, "detector")


@dataclass(frozen=True)
class MaskConfig:
    shape: str = "ellipse"  # ellipse | box
    scale: float = 1.3  # mask size relative to the detected face box
    feather: float = 0.15  # soft edge, as a fraction of the mask's half-size; 0 for a hard edge

    def __post_init__(self) -> None:
        _check(self.shape in SHAPES, f"shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")
        _check_ranges(self, "mask")


@dataclass(frozen=True)
class EffectConfig:
    method: str = "blur"  # a name from faceveil.anonymization.effects
    strength: float = 1.0  # blur: multiplies the face-size-scaled blur radius
    blocks: int = 8  # pixelate: mosaic blocks across a face
    color: tuple[int, int, int] = (0, 0, 0)  # solid
    image: str | None = None  # image: a picture (PNG with alpha, emoji...) put over each face

    def __post_init__(self) -> None:
        object.__setattr__(self, "color", parse_color(self.color))
        _check_ranges(self, "effect")
        _check(self.method != "image" or bool(self.image), "method 'image' needs an image path")


@dataclass(frozen=True)
class VideoConfig:
    """How faces are followed across video frames (see faceveil.tracking)."""

    detect_every: int | None = None  # detect on every K-th frame, tracking fills the rest; None: by quality
    detect_size: int | None = None  # long side of the frame a full scan sees; None: by quality
    scan_every: int | None = None  # frames between full scans (one quick pass in between); None: by quality
    hold: int = 8  # frames a face stays hidden after it was last seen
    lead: int = 8  # frames a face is hidden before it was first seen (files: look-ahead)
    max_gap: int = 24  # detection gaps up to this many frames are filled by interpolation
    iou: float = 0.2  # box overlap that links a detection to a track
    scene_cut: float = 0.09  # frame difference that makes a scene cut (tracks end there); 0: off

    def __post_init__(self) -> None:
        _check_ranges(self, "video")


@dataclass(frozen=True)
class LiveConfig:
    """How a live stream is run (see faceveil.live): timeouts, reconnecting, failures, overlay.

    Detection and tracking settings come from `VideoConfig` as for files; what they are when
    None is in `faceveil.pipeline.step.PRESETS`, the one table for files and live streams.
    """

    open_timeout: float = 10.0  # seconds to open a source (connect, probe) before giving up
    read_timeout: float = 5.0  # seconds without data before a source counts as lost
    reconnects: int = 5  # attempts after a network stream or camera drops; 0: stop at once
    backoff: float = 0.5  # wait before the first attempt, doubled on each further one
    backoff_max: float = 8.0  # longest wait between two attempts
    max_failures: int = 30  # detections in a row that may fail before the run stops
    # seconds a frame may wait for a detection at or after it (about one detection, plus the
    # frames to the next one); older ones are dropped, never shown undetected
    max_delay: float = 0.15
    overlay: bool = False  # draw output fps, latency and drops on the frames

    def __post_init__(self) -> None:
        _check(0 < self.open_timeout <= 600, f"open timeout must be 0..600 s, got {self.open_timeout}")
        _check(0 < self.read_timeout <= 600, f"read timeout must be 0..600 s, got {self.read_timeout}")
        _check(0 <= self.reconnects <= 1000, f"reconnects must be 0..1000, got {self.reconnects}")
        _check(0 <= self.backoff <= self.backoff_max <= 3600,
               f"backoff must be 0..backoff max (<= 3600 s), got {self.backoff}, {self.backoff_max}")
        _check(1 <= self.max_failures <= 100_000, f"max failures must be at least 1, got {self.max_failures}")
        _check(0 <= self.max_delay <= 10, f"max delay must be 0..10 s, got {self.max_delay}")


@dataclass(frozen=True)
class IdentityConfig:
    """Who stays visible (see faceveil.identity). Defaults measured on ../shared/data/identities.

    `keep`/`only` entries are names in the people gallery or paths of reference photos (files or
    folders). With `keep`, a face stays visible only when it clearly matches a kept person; with
    `only`, a face is hidden when it might be a listed person. A face too small, too blurred or
    too unsure a detection to judge is hidden either way.
    """

    keep: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    keep_distance: float = 0.6  # kept when the embedding distance is below this ...
    keep_margin: float = 0.05  # ... and at least this much nearer than any other enrolled person
    only_distance: float = 0.65  # with `only`: hidden when the distance is below this
    min_face: int = 32  # pixels (short side of the box) needed to judge a face
    min_score: float = 0.5  # detection confidence needed to judge a face
    min_sharpness: float = 10.0  # variance of the Laplacian of the aligned 150 px face
    gallery: str | None = None  # the people gallery file; None: the user data folder
    embedder: str = "dlib"

    def __post_init__(self) -> None:
        for name in ("keep", "only"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(str(v) for v in value if str(v).strip()))
        _check(not (self.keep and self.only), "keep and only cannot be used together")
        _check_ranges(self, "identity")

    @property
    def active(self) -> bool:
        return bool(self.keep or self.only)


@dataclass(frozen=True)
class BackgroundConfig:
    """What happens to the scene behind people (see faceveil.segmentation); off by default.

    `mode` also takes the CLI's one-word forms: "image:beach.jpg", "color:#00ff00", "blur:2".
    """

    mode: str | None = None  # blur | image | color | transparent; None: background left as is
    strength: float = 1.0  # blur: multiplies the frame-size-scaled blur radius
    image: str | None = None  # image: the picture put behind people, scaled and cropped to cover
    color: tuple[int, int, int] = (0, 177, 64)  # color: a chroma-key green by default
    segmenter: str = "selfie"  # a name from faceveil.segmentation.segmenters
    threshold: float = 0.5  # segmenter confidence where person turns into background
    feather: float = 0.01  # Gaussian edge softening, as a fraction of the frame's short side
    smooth: float = 0.75  # video: how much small mask changes are damped between frames; 0: off

    def __post_init__(self) -> None:
        mode = self.mode or None
        if mode and ":" in mode:
            mode, _, arg = mode.partition(":")
            _check(mode in ("image", "color", "blur") and bool(arg),
                   f"background {self.mode!r}: use blur[:STRENGTH], image:PATH, color:COLOUR "
                   "or transparent")
            if mode == "image":
                object.__setattr__(self, "image", arg)
            elif mode == "color":
                object.__setattr__(self, "color", arg)
            else:
                try:
                    object.__setattr__(self, "strength", float(arg))
                except ValueError:
                    raise ConfigError(f"background blur strength must be a number, got {arg!r}") from None
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "color", parse_color(self.color))
        _check(mode is None or mode in BACKGROUNDS,
               f"background must be one of {', '.join(BACKGROUNDS)}, got {mode!r}")
        _check(mode != "image" or bool(self.image), "background 'image' needs a picture: image:PATH")
        _check_ranges(self, "background")

    @property
    def active(self) -> bool:
        return self.mode is not None


@dataclass(frozen=True)
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    effect: EffectConfig = field(default_factory=EffectConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    draw_boxes: bool = False  # draw detections on the output, for tuning

    # flat option name -> (section, field); what keyword arguments, TOML keys and CLI flags use.
    # Read from the option table (faceveil.options), where each option is declared once.
    _FLAT: ClassVar[dict[str, tuple[str | None, str]]] = {
        o.name: o.config for o in _options.config_options() if o.config is not None}

    @classmethod
    def option_names(cls) -> list[str]:
        return list(cls._FLAT)

    def replace(self, **options: Any) -> PipelineConfig:
        """A copy with flat options changed, e.g. replace(method="pixelate", blocks=10)."""
        sections: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, value in options.items():
            if key not in self._FLAT:
                raise ConfigError(f"unknown option {key!r} (known: {', '.join(self._FLAT)})")
            section, name = self._FLAT[key]
            if section is None:
                top[name] = value
            else:
                sections.setdefault(section, {})[name] = value
        for section, values in sections.items():
            top[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **top)

    @classmethod
    def from_options(cls, **options: Any) -> PipelineConfig:
        return cls().replace(**{k: v for k, v in options.items() if v is not None})

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Flat keys (method = "pixelate") and/or tables ([effect] method = "pixelate").

        Every key is checked against the option table: an unknown one is a one-line error naming
        it and the nearest valid key, a value of the wrong type one naming the option.
        """
        import tomllib

        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        flat: dict[str, Any] = {}
        reverse = {v: k for k, v in cls._FLAT.items()}
        tabled = [f"[{s}] {n}" for s, n in reverse if s is not None]
        for key, value in data.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    if (key, sub) not in reverse:
                        near = _options.nearest(f"[{key}] {sub}", tabled)
                        hint = f" (did you mean {near}?)" if near else ""
                        raise ConfigError(f"{path}: unknown option [{key}] {sub}{hint}")
                    flat[reverse[(key, sub)]] = v
            else:
                if key not in cls._FLAT:
                    near = _options.nearest(key, list(cls._FLAT))
                    hint = f" (did you mean {near!r}?)" if near else ""
                    raise ConfigError(f"{path}: unknown option {key!r}{hint}")
                flat[key] = value
        for key, value in flat.items():
            _check_type(path, _options.BY_NAME[key], value)
        return cls.from_options(**flat)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
