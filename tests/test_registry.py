"""faceveil.registry: the one small lazy Registry behind detectors, effects, masks and trackers."""

from __future__ import annotations

import pytest

from faceveil.errors import ConfigError, MissingDependencyError
from faceveil.registry import Registry

# --- registry ----------------------------------------------------------------------------------

def make_registry() -> Registry:
    reg: Registry = Registry("widget")
    reg.register("ordered", "collections:OrderedDict", help="stdlib")
    reg.register("counter", "collections:Counter")
    reg.register("fancy", "faceveil_no_such_module:X", extra="demo", help="needs the demo extra")
    reg.register("core", "faceveil_no_such_module_either:Y")
    return reg


def test_registry_names_and_entries_in_registration_order():
    reg = make_registry()
    assert reg.names() == ["ordered", "counter", "fancy", "core"]
    assert [e.name for e in reg.entries()] == reg.names()
    assert reg.entry("fancy").extra == "demo" and reg.entry("ordered").help == "stdlib"


def test_registry_load_and_create():
    import collections

    reg = make_registry()
    assert reg.load("counter") is collections.Counter
    assert reg.create("counter", "aab") == collections.Counter(a=2, b=1)


@pytest.mark.parametrize("method", ["entry", "load", "create"])
def test_registry_unknown_name_lists_choices(method):
    choices = r"unknown widget 'nope' \(choose from: ordered, counter, fancy, core\)"
    with pytest.raises(ConfigError, match=choices):
        getattr(make_registry(), method)("nope")


@pytest.mark.parametrize("method", ["load", "create"])
def test_registry_missing_optional_module_names_the_extra(method):
    with pytest.raises(MissingDependencyError) as info:
        getattr(make_registry(), method)("fancy")
    msg = str(info.value)
    assert "pip install 'faceveil[demo]'" in msg
    assert "faceveil_no_such_module" in msg and "'fancy'" in msg
    assert isinstance(info.value, ImportError)  # catchable as the builtin


def test_registry_missing_core_module_is_a_plain_import_error():
    with pytest.raises(ImportError) as info:
        make_registry().load("core")
    assert not isinstance(info.value, MissingDependencyError)  # a broken install, not an extra


def test_registry_duplicate_registration_raises():
    reg = make_registry()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("counter", "collections:Counter")
    assert reg.names().count("counter") == 1


def test_builtin_registries_list_their_choices():
    from faceveil.anonymization import effects, masks

    assert set(effects.names()) == {"blur", "pixelate", "solid", "image", "none"}
    assert set(masks.names()) == {"ellipse", "box"}
