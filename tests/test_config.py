"""faceveil.config (colours, validation, flat options, TOML) and a cheap import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from faceveil.config import DetectorConfig, EffectConfig, MaskConfig, PipelineConfig, parse_color
from faceveil.errors import ConfigError, FaceveilError

# --- colours -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "rgb"),
    [
        ("#ff8000", (255, 128, 0)),
        ("#FF8000", (255, 128, 0)),
        ("ff8000", (255, 128, 0)),
        ("  #0a0B0c ", (10, 11, 12)),
        ("#f80", (255, 136, 0)),  # each short digit doubled: f -> ff, 8 -> 88
        ("#FFF", (255, 255, 255)),
        ("1,2,3", (1, 2, 3)),
        (" 255 , 0 ,  7 ", (255, 0, 7)),
        ("0,0,0", (0, 0, 0)),
        ("black", (0, 0, 0)),
        ("White", (255, 255, 255)),
        ("grey", (128, 128, 128)),
        ("gray", (128, 128, 128)),
        ("red", (255, 0, 0)),
        ((1, 2, 3), (1, 2, 3)),
        ([255, 255, 0], (255, 255, 0)),
        (("4", "5", "6"), (4, 5, 6)),
    ],
)
def test_parse_color(value, rgb):
    out = parse_color(value)
    assert out == rgb
    assert isinstance(out, tuple)


@pytest.mark.parametrize(
    "value",
    ["", "#12", "#1234", "#gggggg", "#ff80000", "1,2", "1,2,3,4", "256,0,0", "-1,0,0", "a,b,c",
     "1.5,2,3", "purple-ish", (1, 2), (1, 2, 3, 4), (0, 0, 300), (1.5, 2, 3), 7],
)
def test_parse_color_rejects(value):
    with pytest.raises(ConfigError, match="not a colour") as info:
        parse_color(value)
    assert isinstance(info.value, ValueError)  # callers may catch the builtin
    assert isinstance(info.value, FaceveilError)


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, FaceveilError)


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (DetectorConfig, {"quality": "best"}, "quality"),
        (DetectorConfig, {"threshold": 0.0}, "threshold"),
        (DetectorConfig, {"threshold": 1.0}, "threshold"),
        (DetectorConfig, {"threshold": -0.2}, "threshold"),
        (DetectorConfig, {"threshold": float("nan")}, "threshold"),
        (DetectorConfig, {"threads": 0}, "threads"),
        (MaskConfig, {"shape": "circle"}, "shape"),
        (MaskConfig, {"scale": 0.49}, "scale"),
        (MaskConfig, {"scale": 4.01}, "scale"),
        (MaskConfig, {"feather": -0.01}, "feather"),
        (MaskConfig, {"feather": 0.51}, "feather"),
        (EffectConfig, {"strength": 0.04}, "strength"),
        (EffectConfig, {"strength": 21}, "strength"),
        (EffectConfig, {"strength": float("nan")}, "strength"),
        (EffectConfig, {"blocks": 1}, "blocks"),
        (EffectConfig, {"blocks": 65}, "blocks"),
        (EffectConfig, {"color": "nope"}, "colour"),
        (EffectConfig, {"method": "image"}, "image"),
        (EffectConfig, {"method": "image", "image": ""}, "image"),
    ],
)
def test_out_of_range_options_raise(cls, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (DetectorConfig, {"quality": "fast", "threshold": 0.01, "threads": 1}),
        (DetectorConfig, {"quality": "thorough", "threshold": 0.99}),
        (MaskConfig, {"shape": "box", "scale": 0.5, "feather": 0.0}),
        (MaskConfig, {"scale": 4.0, "feather": 0.5}),
        (EffectConfig, {"strength": 0.05, "blocks": 2}),
        (EffectConfig, {"strength": 20, "blocks": 64}),
        (EffectConfig, {"method": "image", "image": "smile.png"}),
    ],
)
def test_boundary_values_are_accepted(cls, kwargs):
    cfg = cls(**kwargs)
    for key, value in kwargs.items():
        assert getattr(cfg, key) == value


def test_effect_color_is_normalised_to_a_tuple():
    assert EffectConfig(color="#fff").color == (255, 255, 255)
    assert EffectConfig(color=[1, 2, 3]).color == (1, 2, 3)


# --- flat options ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("option", "value", "section", "field"),
    [
        ("detector", "mediapipe", "detector", "name"),
        ("quality", "fast", "detector", "quality"),
        ("threshold", 0.3, "detector", "threshold"),
        ("threads", 2, "detector", "threads"),
        ("shape", "box", "mask", "shape"),
        ("mask_scale", 2.0, "mask", "scale"),
        ("feather", 0.0, "mask", "feather"),
        ("method", "pixelate", "effect", "method"),
        ("strength", 2.5, "effect", "strength"),
        ("blocks", 12, "effect", "blocks"),
        ("color", (1, 2, 3), "effect", "color"),
        ("draw_boxes", True, None, "draw_boxes"),
    ],
)
def test_replace_flat_option(option, value, section, field):
    base = PipelineConfig()
    new = base.replace(**{option: value})
    target = new if section is None else getattr(new, section)
    assert getattr(target, field) == value
    assert new != base
    assert base == PipelineConfig()  # the original is untouched (frozen)
    # every other section stays equal
    for other in ("detector", "mask", "effect"):
        if other != section:
            assert getattr(new, other) == getattr(base, other)


def test_option_names_cover_every_flat_option():
    assert set(PipelineConfig.option_names()) == {
        "detector", "quality", "threshold", "threads", "device", "shape", "mask_scale", "feather",
        "method", "strength", "blocks", "color", "image", "draw_boxes",
        "detect_every", "detect_size", "scan_every", "hold", "lead", "max_gap", "scene_cut", "iou",
        "keep", "only", "keep_distance", "keep_margin", "only_distance", "min_face", "gallery",
        "min_score", "min_sharpness", "embedder",
        "background", "background_strength", "background_image", "background_color", "segmenter",
        "background_threshold", "background_feather", "background_smooth",
    }


def test_every_field_of_the_config_is_a_flat_option():
    """A setting added to a config dataclass without an option-table row fails here."""
    import dataclasses

    reachable = set(PipelineConfig._FLAT.values())
    for section in dataclasses.fields(PipelineConfig):
        if dataclasses.is_dataclass(section.default_factory):
            for f in dataclasses.fields(section.default_factory):
                assert (section.name, f.name) in reachable, (section.name, f.name)
        else:
            assert (None, section.name) in reachable, section.name


def test_replace_several_options_in_one_section():
    cfg = PipelineConfig().replace(method="solid", color="white", strength=3)
    assert (cfg.effect.method, cfg.effect.color, cfg.effect.strength) == ("solid", (255, 255, 255), 3)


def test_replace_validates():
    with pytest.raises(ConfigError, match="blocks"):
        PipelineConfig().replace(blocks=100)


@pytest.mark.parametrize("name", ["scale", "colour", "effect", "mask", "METHOD", "blur"])
def test_unknown_option_raises_and_lists_known(name):
    with pytest.raises(ConfigError, match=rf"unknown option '{name}'.*mask_scale"):
        PipelineConfig().replace(**{name: 1})
    with pytest.raises(ConfigError, match="unknown option"):
        PipelineConfig.from_options(**{name: 1})


def test_from_options_ignores_none():
    cfg = PipelineConfig.from_options(method="pixelate", blocks=None, threshold=None, quality="fast")
    assert cfg.effect.method == "pixelate" and cfg.effect.blocks == EffectConfig().blocks
    assert cfg.detector.threshold is None and cfg.detector.quality == "fast"
    assert PipelineConfig.from_options() == PipelineConfig()


# --- TOML --------------------------------------------------------------------------------------

def write(tmp_path, text: str, name: str = "faceveil.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


TOML_CASES = {
    "flat": """
        method = "pixelate"
        blocks = 10
        mask_scale = 1.6
        quality = "fast"
        color = "#00ff00"
        draw_boxes = true
    """,
    "tables": """
        [effect]
        method = "pixelate"
        blocks = 10
        color = [0, 255, 0]

        [mask]
        scale = 1.6

        [detector]
        quality = "fast"
    """,
    "mixed": """
        draw_boxes = true
        quality = "fast"

        [effect]
        method = "pixelate"
        blocks = 10
        color = "0,255,0"

        [mask]
        scale = 1.6
    """,
}


@pytest.mark.parametrize("style", list(TOML_CASES))
def test_from_toml(tmp_path, style):
    cfg = PipelineConfig.from_toml(write(tmp_path, TOML_CASES[style]))
    assert cfg.effect.method == "pixelate" and cfg.effect.blocks == 10
    assert cfg.effect.color == (0, 255, 0)
    assert cfg.mask.scale == pytest.approx(1.6)
    assert cfg.detector.quality == "fast"
    assert cfg.mask.shape == MaskConfig().shape  # untouched options keep their defaults
    if style != "tables":
        assert cfg.draw_boxes is True


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("method = ", "cannot read config"),  # TOML syntax error
        ("[effect\nmethod = 'blur'", "cannot read config"),
        ("method = 'blur'\nmethod = 'solid'", "cannot read config"),  # duplicate key
        ("[effect]\nradius = 3", r"unknown option \[effect\] radius"),
        ("[effect]\nscale = 3", r"unknown option \[effect\] scale"),  # mask's key in the wrong table
        ("[output]\nquality = 90", r"unknown option \[output\] quality"),
        ("radius = 3", "unknown option 'radius'"),
        ("[effect]\nblocks = 1000", "blocks"),  # known but out of range
        ("quality = 'ultra'", "quality"),
    ],
)
def test_from_toml_errors(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        PipelineConfig.from_toml(write(tmp_path, text))


def test_from_toml_missing_or_binary_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        PipelineConfig.from_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read config"):
        PipelineConfig.from_toml(bad)


# --- hashing -----------------------------------------------------------------------------------

def test_configs_are_hashable_cache_keys():
    a = PipelineConfig().replace(color="black", method="solid")
    b = PipelineConfig(effect=EffectConfig(method="solid", color=(0, 0, 0)))
    c = PipelineConfig().replace(color="white", method="solid")
    assert a == b and hash(a) == hash(b)  # same settings written differently: one cache entry
    cache = {a: 1}
    assert cache[b] == 1 and c not in cache
    assert hash(DetectorConfig(threshold=0.5)) == hash(DetectorConfig(threshold=0.5))
    assert hash(MaskConfig(scale=2)) == hash(MaskConfig(scale=2.0))
    # a list colour (as TOML gives) must not make the config unhashable
    assert {EffectConfig(color=[1, 2, 3]), EffectConfig(color="1,2,3")} == {EffectConfig(color="#010203")}


def test_to_dict_is_nested():
    d = PipelineConfig().replace(blocks=5).to_dict()
    assert d["effect"]["blocks"] == 5 and d["mask"]["shape"] == "ellipse" and d["draw_boxes"] is False


# --- cheap import ------------------------------------------------------------------------------

HEAVY = ["onnxruntime", "cv2", "mediapipe", "PIL", "onnx"]


@pytest.mark.parametrize("statement", ["import faceveil", "import faceveil.config, faceveil.registry"])
def test_import_is_cheap(statement):
    code = f"{statement}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.split() == []


def test_lazy_attributes_resolve():
    import faceveil

    assert faceveil.PipelineConfig is PipelineConfig
    assert faceveil.ConfigError is ConfigError
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        faceveil.nope  # noqa: B018


@pytest.mark.parametrize(("text", "match"), [
    ("quallity = 'fast'", r"unknown option 'quallity' \(did you mean 'quality'\?\)"),
    ("[effect]\nmethd = 'blur'", r"unknown option \[effect\] methd \(did you mean \[effect\] method\?\)"),
    ("[mask]\nscal = 2", r"did you mean \[mask\] scale\?"),
    ("blocks = 'ten'", "option 'blocks' must be a whole number, got 'ten'"),
    ("strength = true", "option 'strength' must be a number"),
    ("draw_boxes = 'yes'", "option 'draw_boxes' must be true or false"),
    ("keep = 3", "option 'keep' must be a text or a list of texts"),
])
def test_from_toml_names_the_nearest_key_and_checks_types(tmp_path, text, match):
    """TOML keys and types are checked against the option table, in one line."""
    with pytest.raises(ConfigError, match=match) as info:
        PipelineConfig.from_toml(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_toml_accepts_every_pipeline_option_of_the_table(tmp_path):
    from faceveil.options import config_options

    assert set(PipelineConfig.option_names()) == {o.name for o in config_options()}
    cfg = PipelineConfig.from_toml(write(tmp_path, "keep = 'ann'\ncolor = [255, 0, 0]\nthreshold = 0.3"))
    assert cfg.identity.keep == ("ann",) and cfg.effect.color == (255, 0, 0)
    assert cfg.detector.threshold == 0.3
