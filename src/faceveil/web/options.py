"""The page's options, read from the same registries the CLI uses, and form fields -> config.

The web app offers the CLI's hiding options except those that name a file on the server
(`--image`, `--background image:PATH`, reference photos for `--keep`): a browser must never make
the server read a path it chose. People to keep are names from the server's people gallery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..config import PipelineConfig
from ..errors import ConfigError
from ..options import BACKGROUND, DETECTION, HIDING, PEOPLE, Option, options_for
from ..registry import extra_installed

log = logging.getLogger(__name__)

# Options that need a file on the server, or leave faces visible (the web has no tuning view).
WEB_EXCLUDED_METHODS = ("image", "none")
WEB_EXCLUDED_BACKGROUNDS = ("image",)
OUTPUT_FORMATS = {"keep": None, "jpeg": ".jpg", "png": ".png", "webp": ".webp"}  # table: format

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


# the page's sections, in the order it shows them
WEB_SECTIONS = (HIDING, DETECTION, BACKGROUND, PEOPLE, "output")


def web_options() -> list[Option]:
    """The rows of the option table the web app offers, in the page's order."""
    rows = options_for("web")
    return sorted(rows, key=lambda o: WEB_SECTIONS.index(o.section)
                  if o.section in WEB_SECTIONS else len(WEB_SECTIONS))


def _kind(option: Option) -> str:
    if option.type is tuple:
        return "multi"
    if option.choices is not None:
        return "choice"
    if option.name.endswith("color"):
        return "color"
    return {int: "integer", float: "number"}.get(option.type, "text")


def _value(base: PipelineConfig, option: Option) -> Any:
    """The option's value in the server's settings (its defaults, or its TOML file)."""
    if option.config is None:
        return option.default
    section, name = option.config
    return getattr(base if section is None else getattr(base, section), name)


def _web_choices(option: Option, base: PipelineConfig) -> list[dict[str, Any]]:
    if option.name == "method":
        return _choices(option.registry(), WEB_EXCLUDED_METHODS)
    if (registry := option.registry()) is not None:
        return _choices(registry)
    if option.name == "quality":
        return [{"value": q, "label": q, "help": _QUALITY_HELP[q], "available": True}
                for q in option.choice_names() or ()]
    if option.name == "background":
        from ..segmentation import segmenters

        segmenter_ok = extra_installed(segmenters.entry(base.background.segmenter).extra)
        return [{"value": "", "label": "leave as is", "help": "", "available": True}] + [
            {"value": b, "label": b, "help": _BACKGROUND_HELP.get(b, ""), "available": segmenter_ok}
            for b in option.choice_names() or () if b not in WEB_EXCLUDED_BACKGROUNDS]
    if option.name == "keep":
        return [{"value": n, "label": n, "help": "", "available": True}
                for n in people_names(base.identity.gallery)]
    if option.name == "format":
        return [{"value": k, "label": _FORMAT_LABEL[k], "help": "", "available": True}
                for k in option.choice_names() or ()]
    raise AssertionError(f"the web app has no choices for {option.name!r}")  # a table row to add


def describe(base: PipelineConfig) -> list[dict[str, Any]]:
    """The options the page shows (name, label, kind, choices, default, range, when shown):
    the option table's rows for the web, with the server's settings as defaults."""
    described = []
    for option in web_options():
        kind = _kind(option)
        spec: dict[str, Any] = {"name": option.name, "label": option.label or option.name,
                                "kind": kind}
        value = _value(base, option)
        if kind == "color":
            value = _hex(value)
        elif kind == "multi":
            value = []
        elif option.name == "method" and value in WEB_EXCLUDED_METHODS:
            value = "blur"
        elif option.name == "background":
            value = value or ""
        elif option.name == "format":
            value = "keep"
        spec["default"] = value
        if kind in ("integer", "number") and option.range is not None:
            spec["min"], spec["max"] = option.range
            spec["step"] = option.step or (1 if kind == "integer" else 0.05)
        if option.when:
            spec["when"] = {k: list(v) for k, v in option.when.items()}
        if option.choices is not None or kind == "multi":
            spec["choices"] = _web_choices(option, base)
        if (text := option.per_door.get("web", {}).get("help")) is not None:
            spec["help"] = text
        described.append(spec)
    return described


def form_fields() -> dict[str, str]:
    """The form fields besides the files (for the OpenAPI schema): choices or what they take."""
    fields = {}
    for option in web_options():
        names = option.choice_names()
        if option.name == "method":
            names = [n for n in names or () if n not in WEB_EXCLUDED_METHODS]
        elif option.name == "background":
            names = [n for n in names or () if n not in WEB_EXCLUDED_BACKGROUNDS]
        text = option.per_door.get("web", {}).get("help") or option.help_text()
        if names and option.type is not tuple:
            text = " | ".join(names) + (" (default: left as is)" if option.name == "background"
                                        else "")
        elif option.range is not None:
            low, high = option.range
            text = f"{text.split(' (default')[0]}, {low:g}..{high:g}"
        fields[option.name] = text
    return fields


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


def parse(fields: dict[str, list[str]], base: PipelineConfig) -> Choice:
    """Form fields (name -> values) -> settings. Unknown names and bad values are ConfigErrors.

    The fields are the option table's rows for the web; `keep`, `background` and `format` have
    checks of their own below, the others are read by their type.
    """
    rows = web_options()
    known = {o.name for o in rows}
    numbers = {o.name: o.type for o in rows if o.type in (int, float) and o.choices is None}
    texts = [o.name for o in rows if o.type is str and o.name not in ("background", "format")]
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")

    def one(name: str) -> str | None:
        values = [v.strip() for v in fields.get(name, []) if v.strip()]
        if len(values) > 1:
            raise ConfigError(f"option {name!r} given {len(values)} times")
        return values[0] if values else None

    options: dict[str, Any] = {}
    for name in texts:
        if (value := one(name)) is not None:
            options[name] = value
    for name, kind in numbers.items():
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
