"""tests/ mirrors src/faceveil/ (GUIDE.md, "Tests"), so a module's tests are where its name says.

A test module is `tests/<package>/test_<module>.py` for `src/faceveil/<package>/<module>.py`, or
`test_<room>.py` for a package tested as a whole (tests/web/test_web.py); a suffix names an
aspect (tests/cli/test_main_hardening.py). Every src module with real logic (a function or a class) has
one, unless it is declared below with the test module that covers it and why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

SRC = REPO / "src" / "faceveil"
TESTS = REPO / "tests"

# Test modules about the whole tool rather than one module or room: they sit at the top.
WHOLE_TOOL = {
    "test_readme.py": "runs the README's examples, which go through several doors",
    "test_parity.py": "the same input through every door (run, batch, API, web, GUI export)",
    "test_layout.py": "checks the layout of tests/ itself",
}

# Files of tests/ that are not test modules.
HELPERS = {
    "__init__.py": "tests/ and its folders are packages (test modules may share a name)",
    "conftest.py": "shared fixtures and builders",
    "gui_display.py": "where the GUI tests open their windows (Xvfb or Qt offscreen)",
}

# src modules with real logic that have no test module of their own:
# path under src/faceveil -> (the test module that covers them, why there).
TESTED_ELSEWHERE = {
    "__init__.py": ("test_api.py", "the flat public API; its cheap import and lazy names in "
                    "test_config.py"),
    "_files.py": ("cli/test_main_hardening.py", "atomic outputs and the sweep of a killed run's "
                  "leftovers, through the CLI"),
    "errors.py": ("cli/test_main.py", "the classes are raised and checked by the modules that raise "
                  "them; their plain-words messages through the CLI's exit codes"),
    "evaluation.py": ("pipeline/test_pipeline_recall.py", "the coverage metric that scores recall"),
    "sidecar.py": ("pipeline/test_video.py", "the faces file, written beside a video and read back"),
    "segmentation/base.py": ("anonymization/test_background.py", "tested through the background "
                             "effects it serves"),
    "segmentation/selfie.py": ("anonymization/test_background.py", "real portraits and clips; its "
                               "ONNX sessions in models/test_models.py"),
}


def has_logic(path: Path) -> bool:
    """A function or a class at the top of the module (not only imports, names and constants)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
               for node in tree.body)


def src_modules() -> list[Path]:
    return sorted(p.relative_to(SRC) for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def layout_tests() -> list[Path]:
    return sorted(p.relative_to(TESTS) for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)


def names(test: Path, name: str) -> bool:
    """Whether the test module's name says it tests `name` (test_<name>.py or test_<name>_*.py)."""
    return test.stem == f"test_{name}" or test.stem.startswith(f"test_{name}_")


def has_tests(module: Path, tests: list[Path]) -> bool:
    """Its own test module, or a test module of its room (or of a room around it)."""
    folder = module.parent
    if module.stem != "__init__" and any(t.parent == folder and names(t, module.stem) for t in tests):
        return True
    while folder.parts:
        if any(t.parent == folder and names(t, folder.name) for t in tests):
            return True
        folder = folder.parent
    return False


def test_every_folder_of_tests_mirrors_a_package():
    for folder in sorted(p for p in TESTS.rglob("*") if p.is_dir() and p.name != "__pycache__"
                         and not p.name.startswith(".")):
        rel = folder.relative_to(TESTS)
        assert (SRC / rel / "__init__.py").is_file(), f"tests/{rel}/: no package src/faceveil/{rel}/"
        assert (folder / "__init__.py").is_file(), f"tests/{rel}/ needs an __init__.py (a package)"


def test_every_test_module_is_named_after_a_module_or_room_of_its_folder():
    misplaced = []
    for test in layout_tests():
        folder = SRC / test.parent
        own = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        if test.parent.parts:
            own.add(test.parent.name)  # the room as a whole
        if not any(names(test, name) for name in own) and str(test) not in WHOLE_TOOL:
            misplaced.append(f"tests/{test}")
    assert misplaced == [], (f"{misplaced}: no module of that name in src/faceveil/ beside them; "
                             "move them where their module is, or declare them in WHOLE_TOOL")


def test_only_test_modules_and_declared_helpers_in_tests():
    others = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py")
                    if "__pycache__" not in p.parts and not p.name.startswith("test_")
                    and p.name != "__init__.py" and p.name not in HELPERS)
    assert others == [], f"{others}: declare helper modules in HELPERS (or name tests test_*.py)"


def test_every_module_with_real_logic_has_a_test_module():
    tests = layout_tests()
    missing = [str(m) for m in src_modules()
               if has_logic(SRC / m) and not has_tests(m, tests) and str(m) not in TESTED_ELSEWHERE]
    assert missing == [], (f"{missing}: no test module named after them (tests/<package>/"
                           "test_<module>.py); add one, or declare them in TESTED_ELSEWHERE")


@pytest.mark.parametrize("module", sorted(TESTED_ELSEWHERE))
def test_declared_exceptions_are_still_needed_and_point_at_real_tests(module):
    covered_by, why = TESTED_ELSEWHERE[module]
    assert why
    assert (TESTS / covered_by).is_file(), f"{module}: {covered_by} is not a test module"
    assert (SRC / module).is_file(), f"{module} is gone from src/faceveil/: drop its entry"
    assert has_logic(SRC / module), f"{module} has no logic left: drop its entry"
    assert not has_tests(Path(module), layout_tests()), f"{module} has its own tests now: drop its entry"


@pytest.mark.parametrize("module", ["__main__.py", "_version.py"])
def test_modules_without_logic_need_no_tests(module):
    assert not has_logic(SRC / module)


def test_the_checks_see_a_misplaced_module_and_an_untested_one():
    tests = [Path("web/test_web.py"), Path("test_config.py"), Path("pipeline/test_step.py")]
    assert has_tests(Path("web/jobs.py"), tests)  # the web room is tested as a whole
    assert has_tests(Path("config.py"), tests)
    assert not has_tests(Path("pipeline/job.py"), tests)  # pipeline has no room test module
    assert not has_tests(Path("geometry.py"), tests)
    assert names(Path("media/test_video_hardening.py"), "video")
    assert not names(Path("media/test_videos.py"), "video")
