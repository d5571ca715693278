"""The page's options, read from the same registries the CLI uses, and form fields -> config.

The web app offers the CLI's hiding options except those that name a file on the server
(`--image`, `--background image:PATH`, reference photos for `--keep`): a browser must never make
the server read a path it chose. People to keep are names from the server's people gallery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..config import BACKGROUNDS, QUALITIES, PipelineConfig
from ..errors import ConfigError
from ..registry import extra_installed

log = logging.getLogger(__name__)

# Options that need a file on the server, or leave faces visible (the web has no tuning view).
WEB_EXCLUDED_METHODS = ("image", "none")
WEB_EXCLUDED_BACKGROUNDS = ("image",)
OUTPUT_FORMATS = {"keep": None, "jpeg": ".jpg", "png": ".png", "webp": ".webp"}

def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _choices(registry, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"value": e.name, "label": e.name, "help": e.help, "available": extra_installed(e.extra),
             **({"install": f"pip install 'faceveil[{e.extra}]'"} if not extra_installed(e.extra)
                else {})}
            for e in registry.entries() if e.name not in exclude]


def people_names(gallery: str | None) -> list[str]:
    """Names in the people gallery, or [] when the people extra or the gallery is missing."""
    if not extra_installed("people"):
        return []
    try:
        from ..identity.gallery import Gallery

        return [p.name for p in Gallery(gallery).people()]
    except Exception as exc:  # an unreadable gallery must not break the page
        log.warning("people gallery unreadable: %s", exc)
        return []


def describe(base: PipelineConfig) -> list[dict[str, Any]]:
    """The options the page shows: name, label, kind, choices, default, range, when shown."""
    from ..anonymization import effects, masks
    from ..detection import detectors
    from ..segmentation import segmenters

    segmenter_ok = extra_installed(segmenters.entry(base.background.segmenter).extra)
    people = people_names(base.identity.gallery)
    method = base.effect.method if base.effect.method not in WEB_EXCLUDED_METHODS else "blur"
    backgrounds = [{"value": "", "label": "leave as is", "help": "", "available": True}] + [
        {"value": b, "label": b, "help": _BACKGROUND_HELP.get(b, ""), "available": segmenter_ok}
        for b in BACKGROUNDS if b not in WEB_EXCLUDED_BACKGROUNDS]
    return [
        {"name": "method", "label": "Hide faces with", "kind": "choice", "default": method,
         "choices": _choices(effects, WEB_EXCLUDED_METHODS)},
        {"name": "strength", "label": "Blur strength", "kind": "number", "min": 0.05, "max": 20,
         "step": 0.05, "default": base.effect.strength, "when": {"method": ["blur"]}},
        {"name": "blocks", "label": "Blocks across a face", "kind": "integer", "min": 2, "max": 64,
         "step": 1, "default": base.effect.blocks, "when": {"method": ["pixelate"]}},
        {"name": "color", "label": "Fill colour", "kind": "color", "default": _hex(base.effect.color),
         "when": {"method": ["solid"]}},
        {"name": "shape", "label": "Shape", "kind": "choice", "default": base.mask.shape,
         "choices": _choices(masks)},
        {"name": "detector", "label": "Detector", "kind": "choice", "default": base.detector.name,
         "choices": _choices(detectors)},
        {"name": "quality", "label": "Detection", "kind": "choice", "default": base.detector.quality,
         "choices": [{"value": q, "label": q, "help": _QUALITY_HELP[q], "available": True}
                     for q in QUALITIES]},
        {"name": "background", "label": "Background", "kind": "choice",
         "default": base.background.mode or "", "choices": backgrounds},
        {"name": "background_strength", "label": "Background blur", "kind": "number", "min": 0.05,
         "max": 20, "step": 0.05, "default": base.background.strength,
         "when": {"background": ["blur"]}},
        {"name": "background_color", "label": "Background colour", "kind": "color",
         "default": _hex(base.background.color), "when": {"background": ["color"]}},
        {"name": "keep", "label": "Leave visible", "kind": "multi", "default": [],
         "choices": [{"value": n, "label": n, "help": "", "available": True} for n in people],
         "help": "people from this computer's gallery (faceveil people add); everyone else is hidden"},
        {"name": "format", "label": "Save pictures as", "kind": "choice", "default": "keep",
         "choices": [{"value": k, "label": _FORMAT_LABEL[k], "help": "", "available": True}
                     for k in OUTPUT_FORMATS]},
    ]


_QUALITY_HELP = {"fast": "quickest, may miss small faces", "balanced": "the default",
                 "thorough": "slowest, finds the smallest faces"}
_BACKGROUND_HELP = {"blur": "blur the scene behind people", "color": "a plain colour behind people",
                    "transparent": "a PNG cut-out of the people (pictures only)"}
_FORMAT_LABEL = {"keep": "same as the original", "jpeg": "JPEG", "png": "PNG (lossless)",
                 "webp": "WebP"}


@dataclass(frozen=True)
class Choice:
    """What one request asked for: the pipeline settings and the pictures' output format."""

    config: PipelineConfig
    out_suffix: str | None  # None: the original's format


_NUMBERS = {"strength": float, "blocks": int, "background_strength": float}


def parse(fields: dict[str, list[str]], base: PipelineConfig) -> Choice:
    """Form fields (name -> values) -> settings. Unknown names and bad values are ConfigErrors."""
    known = {"method", "strength", "blocks", "color", "shape", "detector", "quality", "background",
             "background_strength", "background_color", "keep", "format"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")

    def one(name: str) -> str | None:
        values = [v.strip() for v in fields.get(name, []) if v.strip()]
        if len(values) > 1:
            raise ConfigError(f"option {name!r} given {len(values)} times")
        return values[0] if values else None

    options: dict[str, Any] = {}
    for name in ("method", "color", "shape", "detector", "quality", "background_color"):
        if (value := one(name)) is not None:
            options[name] = value
    for name, kind in _NUMBERS.items():
        if (value := one(name)) is not None:
            try:
                options[name] = kind(value)
            except ValueError:
                raise ConfigError(f"{name} must be {'a whole number' if kind is int else 'a number'}, "
                                  f"got {value[:40]!r}") from None
    if options.get("method") in WEB_EXCLUDED_METHODS:
        raise ConfigError(f"method {options['method']!r} is not offered by the web app "
                          "(use the command line)")
    background = one("background")
    if background is not None:
        if background in ("none", "off"):
            options["background"] = None
        elif background.partition(":")[0] in WEB_EXCLUDED_BACKGROUNDS:
            raise ConfigError("background 'image' names a file on the server; the web app does not "
                              "offer it (use the command line)")
        elif ":" in background:
            raise ConfigError("give the background mode alone (blur, color, transparent) and its "
                              "setting in background_strength or background_color")
        else:
            options["background"] = background
    keep = [v.strip() for v in fields.get("keep", []) if v.strip()]
    if keep:
        names = set(people_names(base.identity.gallery))
        for who in keep:
            if who not in names:
                raise ConfigError(f"{who[:60]!r} is not in this server's people gallery (the web app "
                                  "keeps only people added with `faceveil people add`)")
        options["keep"] = tuple(keep)
        options["only"] = ()
    out = one("format") or "keep"
    if out not in OUTPUT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {out[:20]!r}")
    config = base.replace(**options)
    from ..anonymization import effects
    from ..detection import detectors
    from ..segmentation import segmenters

    effects.entry(config.effect.method)  # unknown names: ConfigError now, not in a worker
    _check_installed(detectors, config.detector.name)
    if config.background.active:
        _check_installed(segmenters, config.background.segmenter)
    return Choice(config, OUTPUT_FORMATS[out])


def _check_installed(registry, name: str) -> None:
    entry = registry.entry(name)  # ConfigError for unknown names
    if not extra_installed(entry.extra):
        raise ConfigError(f"the {registry.kind} {name!r} is not installed on this server "
                          f"(pip install 'faceveil[{entry.extra}]')")
