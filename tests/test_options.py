"""The option table (faceveil.options) against every real door.

Each door is read as a user meets it: the real argparse parsers of `run`, `render`, `live` and
`batch`, the real web app's `/api/options` answer, form parsing and OpenAPI schema, the real GUI
settings panel's controls (Qt offscreen or Xvfb, as tests/gui_display.py chooses), the keys a
TOML file and the Python API accept. A door that lacks an option the table says it offers, offers
one the table does not know, or lacks one without a declared reason fails here.
"""

from __future__ import annotations

import argparse
import os

import pytest

from faceveil.config import PipelineConfig
from faceveil.errors import ConfigError
from faceveil.options import BY_NAME, CLI_DOORS, COMMANDS, DOORS, OFFERED, TABLE, options_for


def offered(door: str) -> set[str]:
    return {o.name for o in options_for(door)}


def compare(where: str, found: set[str]) -> None:
    """The door's options are exactly the table's for it; says which ones differ and why.

    `where`: the door, maybe followed by the part of it read ("web (form)").
    """
    door = where.split(" ")[0]
    unknown = sorted(found - set(BY_NAME))
    assert not unknown, f"{where} offers options the table does not know: {unknown}"
    missing = sorted(offered(door) - found)
    assert not missing, f"{where} lacks options the table says it offers: {missing}"
    undeclared = sorted(found - offered(door))
    assert not undeclared, (f"{where} offers options the table says it does not "
                            f"({[(n, BY_NAME[n].reason(door)) for n in undeclared]})")


# ---------------------------------------------------------------- the table itself


@pytest.mark.parametrize("option", TABLE, ids=lambda o: o.name)
def test_every_door_offers_an_option_or_says_why_not(option):
    assert set(option.doors) == set(DOORS), f"doors not declared: {set(DOORS) - set(option.doors)}"
    for door in DOORS:
        reason = option.doors[door]
        assert reason == OFFERED or (isinstance(reason, str) and len(reason) >= 10), (door, reason)
    assert any(option.offered(d) for d in DOORS), "an option no door offers"
    assert option.help and option.section


def test_names_are_unique_and_pipeline_options_read_their_default_from_the_config():
    assert len(BY_NAME) == len(TABLE)
    base = PipelineConfig()
    for option in TABLE:
        if option.config is None:
            assert not option.offered("toml") and not option.offered("api"), option.name
            continue
        section, name = option.config
        assert option.default == getattr(base if section is None else getattr(base, section), name)
        assert option.offered("toml") and option.offered("api"), option.name


def test_help_says_the_config_default_not_a_copy_of_it():
    from faceveil.config import MaskConfig

    assert f"(default {MaskConfig().scale})" in BY_NAME["mask_scale"].help_text("run")
    assert "centerface:" in BY_NAME["detector"].help_text("run")  # choices from the registry


# ---------------------------------------------------------------- the command line


ALL_COMMANDS = (*CLI_DOORS, *COMMANDS)
WORDS = {**{d: (d,) for d in CLI_DOORS}, **COMMANDS}  # door -> the words that reach its parser


def _commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """Every command under `parser`, as (the words that reach it, its parser); the commands with
    subcommands (`faceveil people`) themselves have no flag of their own."""
    sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if words and not sub:
        yield words, parser
    for action in sub:
        for name, child in action.choices.items():
            yield from _commands(child, (*words, name))
    if words and sub:
        own = [a.dest for a in parser._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
        assert not own, f"faceveil {' '.join(words)} has flags of its own: {own}"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    """door -> its parser, for every command of the real `faceveil` parser."""
    from faceveil.cli import build_parser

    doors = {words: door for door, words in WORDS.items()}
    found = dict(_commands(build_parser()))
    unknown = sorted(" ".join(w) for w in set(found) - set(doors))
    assert not unknown, f"commands the option table has no door for: {unknown}"
    return {doors[words]: parser for words, parser in found.items()}


def test_every_command_is_a_door():
    assert set(_subparsers()) == set(ALL_COMMANDS)


@pytest.mark.parametrize("door", ALL_COMMANDS)
def test_cli_command_offers_the_table_options(door):
    parser = _subparsers()[door]
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    compare(door, {a.dest for a in actions})
    for action in actions:
        option = BY_NAME[action.dest]
        if option.config is not None:  # the config (and a --config TOML file) gives the default
            assert action.default is None, (door, action.dest, action.default)
        names = option.choice_names()
        if names is not None and action.choices is not None:
            assert list(action.choices) == names, (door, action.dest)
        if option.type in (int, float) and action.nargs is None and action.const is None:
            # the type converts and checks the row's range (argparse names it in its errors)
            assert action.type.__name__ == option.type.__name__, (door, action.dest)


def test_cli_flags_reach_the_pipeline_config():
    """Every pipeline flag of `run` changes the config _config() builds (nothing dropped)."""
    from faceveil.cli.run import _config

    parser = _subparsers()["run"]
    values = {"quality": "thorough", "threshold": 0.3, "threads": 2, "detect_every": 3,
              "detect_size": 320, "scan_every": 4, "hold": 3, "lead": 2, "keep": ["ann"],
              "keep_distance": 0.5, "keep_margin": 0.1, "only_distance": 0.5, "min_face": 40,
              "gallery": "g.db", "method": "pixelate", "strength": 2.0, "blocks": 12,
              "color": "white", "image": "x.png", "shape": "box", "mask_scale": 1.5,
              "feather": 0.2, "draw_boxes": True, "background": "blur",
              "background_strength": 2.0, "background_threshold": 0.4,
              "background_feather": 0.05, "background_smooth": 0.5}
    argv = ["x.jpg"]
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, value[0]]
        else:
            argv += [flag, str(value)]
    args = parser.parse_args(argv)
    config = _config(args)
    for name, value in values.items():
        section, field = BY_NAME[name].config
        got = getattr(config if section is None else getattr(config, section), field)
        want = {"keep": ("ann",), "color": (255, 255, 255), "background": "blur"}.get(name, value)
        assert got == want, name
    pipeline_flags = {o.name for o in options_for("run") if o.config is not None}
    assert pipeline_flags - {"detector", "device", "only", "segmenter"} == set(values)


# ---------------------------------------------------------------- ranges, the same at every door

RANGED = [o for o in TABLE if o.range is not None]
_PREFIX = {"run": ["x.jpg"], "render": ["x.jpg", "--faces", "x.faces.json"], "live": ["0"],
           "batch": ["x", "-o", "y"], "people_discover": ["x", "-o", "y"],
           "people_remove": ["x"]}  # what each command needs besides the flag


def _ends(option) -> tuple[list, list]:
    """(values just inside the row's range, values just outside it), of the row's type."""
    (low, high), (no_low, no_high) = option.range, option.exclusive
    step = 1 if option.type is int else (high - low) / 100
    inside = [low + step if no_low else low, high - step if no_high else high]
    outside = [low if no_low else low - step, high if no_high else high + step]
    return [option.type(v) for v in inside], [option.type(v) for v in outside]


def test_every_number_row_has_a_range_and_spin_boxes_get_closed_ones():
    numbers = [o for o in TABLE if o.type in (int, float) and o.cli.get("action") != "count"]
    ranged = {o.name for o in RANGED}
    unranged = sorted(o.name for o in numbers if o.name not in ranged)
    assert set(unranged) <= {"max_pixels"}, unranged  # a count of pixels: any size
    for option in RANGED:
        low, high = option.range
        assert low < high, option.name
        if option.offered("web") or option.offered("gui"):  # a spin box's min/max are allowed
            assert option.exclusive == (False, False), option.name


@pytest.mark.parametrize("option", RANGED, ids=lambda o: o.name)
def test_a_value_outside_a_rows_range_is_refused_the_same_way_at_every_door(option, capsys,
                                                                            tmp_path):
    """One rule (Option.range_error) for argparse, TOML, the Python API, the web form and a config
    dataclass built directly: the ends of the range pass, a step beyond them is refused with the
    same words."""
    from faceveil.cli import main

    inside, outside = _ends(option)
    parsers = _subparsers()
    flag = (option.flags or ("--" + option.name.replace("_", "-"),))[0]
    for bad in outside:
        why = option.range_error(bad)
        assert why is not None and why.endswith(f"got {bad:g}"), (bad, why)
        for door in ALL_COMMANDS:
            if option.offered(door):  # argparse's one-line error, exit 2
                words = WORDS[door]
                assert main([*words, *_PREFIX.get(door, []), flag, str(bad)]) == 2
                err = capsys.readouterr().err.strip().splitlines()
                assert err[-1] == f"faceveil {' '.join(words)}: error: argument {flag}: {why}"
        if option.config is not None:
            with pytest.raises(ConfigError) as api:
                PipelineConfig().replace(**{option.name: bad})
            assert str(api.value) == f"{option.name} {why}"
            with pytest.raises(ConfigError) as built:  # e.g. EffectConfig(strength=25)
                _stage(option)(**{option.config[1]: bad})
            assert str(built.value) == f"{option.name} {why}"
            toml = tmp_path / "bad.toml"
            toml.write_text(f"{option.name} = {_toml_value(bad)}\n")
            with pytest.raises(ConfigError, match=f"^{option.name} "):
                PipelineConfig.from_toml(toml)
        if option.offered("web"):
            from faceveil.web.options import parse

            with pytest.raises(ConfigError) as web:
                parse({option.name: [str(bad)]}, PipelineConfig())
            assert str(web.value) == f"{option.name} {why}"
    for good in inside:
        assert option.range_error(good) is None, good
        for door in ALL_COMMANDS:
            if option.offered(door):
                args = parsers[door].parse_args([*_PREFIX.get(door, []), flag, str(good)])
                assert getattr(args, option.name) == good
        if option.config is not None:  # the config's own checks agree with the table
            PipelineConfig().replace(**{option.name: good})
            _stage(option)(**{option.config[1]: good})
        if option.offered("web"):
            from faceveil.web.options import parse

            parse({option.name: [str(good)]}, PipelineConfig())


def _stage(option):
    """The config dataclass that holds `option` (EffectConfig for strength)."""
    return type(getattr(PipelineConfig(), option.config[0]))


@pytest.mark.parametrize("value", ["2", [2], True])
def test_a_config_dataclass_refuses_a_number_that_is_not_one_in_one_line(value):
    from faceveil.config import EffectConfig

    with pytest.raises(ConfigError, match=r"^strength must be a number, got "):
        EffectConfig(strength=value)


@pytest.mark.parametrize("crf", [-1, 64])
def test_encode_options_refuse_a_crf_in_the_flags_words(crf):
    from faceveil.media.video import EncodeOptions

    with pytest.raises(ConfigError) as built:
        EncodeOptions(crf=crf)
    assert str(built.value) == f"crf {BY_NAME['crf'].range_error(crf)}"


def test_the_pixel_limit_flag_defaults_to_the_librarys_one_limit():
    from faceveil.media.images import DEFAULT_MAX_PIXELS

    assert BY_NAME["max_pixels"].default == DEFAULT_MAX_PIXELS


# ---------------------------------------------------------------- the web app


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    pytest.importorskip("fastapi", reason="needs the web extra")
    from fastapi.testclient import TestClient

    from faceveil.web import WebConfig, create_app

    app = create_app(WebConfig(workers=1, warm=False,
                               data_dir=tmp_path_factory.mktemp("options") / "data"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield client


def test_web_options_answer_and_openapi_match_the_table(web):
    answer = web.get("/api/options").json()
    compare("web", {o["name"] for o in answer["options"]})
    schema = web.get("/api/openapi.json").json()
    for path, field in (("/api/anonymize", "file"), ("/api/jobs", "files")):
        form = schema["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        compare(f"web (OpenAPI {path})", set(form["schema"]["properties"]) - {field})


def test_web_form_accepts_exactly_the_table_options():
    from faceveil.web.options import parse

    base = PipelineConfig()
    accepted = set()
    for option in TABLE:
        try:
            parse({option.name: []}, base)
        except ConfigError as exc:
            assert "unknown option" in str(exc), (option.name, exc)
        else:
            accepted.add(option.name)
    compare("web (form)", accepted)
    with pytest.raises(ConfigError, match="unknown option 'radius'"):
        parse({"radius": ["3"]}, base)


# ---------------------------------------------------------------- the desktop app


@pytest.fixture(scope="module")
def qapp():
    from gui_display import qt_platform

    os.environ.update(qt_platform())
    pytest.importorskip("PySide6.QtWidgets", reason="needs the gui extra (PySide6) and Qt's "
                        "system libraries")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def test_gui_settings_panel_shows_the_table_options(qapp):
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QFormLayout, QLineEdit

    from faceveil.gui.settings import SettingsPanel

    panel = SettingsPanel()
    try:
        # every control in the panel, found through its layout, belongs to one table row
        form: QFormLayout = panel.layout()
        controls = [form.itemAt(i).widget() for i in range(form.count())]
        controls = [w for w in controls if isinstance(w, (QComboBox, QAbstractSpinBox, QLineEdit))]
        by_widget = {id(w): name for name, w in panel.widgets.items()}
        assert all(id(w) in by_widget for w in controls), "a control the table does not know"
        compare("gui", {by_widget[id(w)] for w in controls})
        compare("gui (options())", set(panel.options()))
        # what the panel gives is a valid config, equal to the defaults when nothing was touched
        assert PipelineConfig.from_options(**panel.options()) == PipelineConfig()
        # a control whose row says `when` is enabled only then
        panel.widgets["method"].setCurrentText("pixelate")
        assert panel.widgets["blocks"].isEnabled() and not panel.widgets["strength"].isEnabled()
        assert PipelineConfig.from_options(**panel.options()).effect.method == "pixelate"
    finally:
        panel.deleteLater()


# ---------------------------------------------------------------- TOML and the Python API


def test_toml_keys_are_the_table_options(tmp_path):
    """Each table row offered to TOML loads from a file (its default written back), flat and in
    its table; nothing else does."""
    import tomllib

    base = PipelineConfig()
    lines_flat, sections = [], {}
    for option in options_for("toml"):
        value = option.default
        if value is None:
            continue
        text = _toml_value(value)
        lines_flat.append(f"{option.name} = {text}")
        section, name = option.config
        if section is not None:
            sections.setdefault(section, []).append(f"{name} = {text}")
    flat = tmp_path / "flat.toml"
    flat.write_text("\n".join(lines_flat) + "\n")
    tabled = tmp_path / "tabled.toml"
    tabled.write_text("\n".join(f"[{s}]\n" + "\n".join(v) for s, v in sections.items()) + "\n")
    for path in (flat, tabled):
        tomllib.loads(path.read_text())
        assert PipelineConfig.from_toml(path) == base
    accepted = set()
    for option in TABLE:
        path = tmp_path / f"{option.name}.toml"
        path.write_text(f"{option.name} = {_toml_value(option.default)}\n")
        try:
            PipelineConfig.from_toml(path)
        except ConfigError as exc:
            if "unknown option" in str(exc):
                continue
        accepted.add(option.name)
    compare("toml", accepted)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value if value is not None else "x") + '"'


def test_api_keywords_are_the_table_options():
    accepted = set()
    for option in TABLE:
        try:
            PipelineConfig().replace(**{option.name: option.default})
        except ConfigError as exc:
            if "unknown option" in str(exc):
                continue
        accepted.add(option.name)
    compare("api", accepted)
