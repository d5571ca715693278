"""faceveil.paths.plan: inputs (files, folders, globs) -> (input, output) pairs. No pixels read."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from faceveil.paths import plan

P = Path


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    """Work inside an empty folder so inputs and outputs read as relative paths."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make(*names: str) -> None:
    """Create empty files; names ending in / are folders."""
    for name in names:
        path = Path(name)
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")


PHOTOS = ["photos/a.jpg", "photos/b.PNG", "photos/sub/c.jpeg", "photos/sub/deeper/d.webp",
          "photos/sub/e.tif"]


# --- no output given ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [
        ("a.jpg", ".anonymized", "a.anonymized.jpg"),
        ("sub/b.PNG", ".anonymized", "sub/b.anonymized.PNG"),
        ("x.tar.jpg", ".anonymized", "x.tar.anonymized.jpg"),
        ("a.jpg", ".blurred", "a.blurred.jpg"),
        ("scan.tiff", "_safe", "scan_safe.tiff"),
    ],
)
def test_single_file_goes_beside_it(cwd, name, suffix, expected):
    make(name)
    result = plan([name], None, suffix=suffix)
    assert result.pairs == [(P(name), P(expected))]
    assert result.errors == [] and result.skipped == 0


def test_explicit_file_is_taken_whatever_its_suffix(cwd):
    make("notes.txt")  # the reader refuses it later with a clear error; plan reads nothing
    assert plan(["notes.txt"], None).pairs == [(P("notes.txt"), P("notes.anonymized.txt"))]


@pytest.mark.parametrize("arg", ["photos", "photos/", "photos//"])
def test_folder_goes_to_a_sibling_folder(cwd, arg):
    make(*PHOTOS)
    result = plan([arg], None)
    expected = sorted((P(f), P("photos.anonymized") / P(f).relative_to("photos")) for f in PHOTOS)
    assert sorted(result.pairs) == expected
    assert result.errors == []


def test_folder_pairs_come_in_a_stable_order(cwd):
    make("photos/b.jpg", "photos/a.jpg", "photos/z/a.jpg", "photos/c.jpg")
    srcs = [src for src, _ in plan(["photos"], None).pairs]
    assert srcs == [P("photos/a.jpg"), P("photos/b.jpg"), P("photos/c.jpg"), P("photos/z/a.jpg")]


def test_absolute_folder(cwd):
    make(*PHOTOS)
    result = plan([str(cwd / "photos")], None)
    assert (cwd / "photos/sub/c.jpeg", cwd / "photos.anonymized/sub/c.jpeg") in result.pairs
    assert len(result.pairs) == len(PHOTOS)


def test_nested_folder_input(cwd):
    make("trips/2024/x.jpg")
    assert plan(["trips/2024"], None).pairs == [(P("trips/2024/x.jpg"), P("trips/2024.anonymized/x.jpg"))]


@pytest.mark.parametrize(("arg", "where"), [(".", "photos"), ("..", "photos/sub")])
def test_current_or_parent_folder_goes_to_a_sibling(tmp_path, monkeypatch, arg, where):
    monkeypatch.chdir(tmp_path)
    make("photos/a.jpg", "photos/sub/b.jpg")
    monkeypatch.chdir(tmp_path / where)
    result = plan([arg], None)
    got = sorted((s.resolve(), d.resolve()) for s, d in result.pairs)
    assert got == [
        (tmp_path / "photos/a.jpg", tmp_path / "photos.anonymized/a.jpg"),
        (tmp_path / "photos/sub/b.jpg", tmp_path / "photos.anonymized/sub/b.jpg"),
    ]


# --- globs -------------------------------------------------------------------------------------

def test_glob_without_output_goes_beside_each_file(cwd):
    make(*PHOTOS)
    result = plan(["photos/*.jpg"], None)
    assert result.pairs == [(P("photos/a.jpg"), P("photos/a.anonymized.jpg"))]


def test_recursive_glob_without_output(cwd):
    make(*PHOTOS)
    result = plan(["photos/**/*.jp*g"], None)
    assert sorted(result.pairs) == [
        (P("photos/a.jpg"), P("photos/a.anonymized.jpg")),
        (P("photos/sub/c.jpeg"), P("photos/sub/c.anonymized.jpeg")),
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # mirrored relative to the part of the pattern before the first wildcard
        ("photos/**/*.jp*g", {"photos/a.jpg": "out/a.jpg", "photos/sub/c.jpeg": "out/sub/c.jpeg"}),
        ("photos/sub/**/*", {"photos/sub/c.jpeg": "out/c.jpeg", "photos/sub/e.tif": "out/e.tif",
                             "photos/sub/deeper/d.webp": "out/deeper/d.webp"}),
        ("**/*.webp", {"photos/sub/deeper/d.webp": "out/photos/sub/deeper/d.webp"}),
        ("photos/*/c.jpeg", {"photos/sub/c.jpeg": "out/sub/c.jpeg"}),
        ("photos/[ab].*", {"photos/a.jpg": "out/a.jpg", "photos/b.PNG": "out/b.PNG"}),
        ("photos/?.jpg", {"photos/a.jpg": "out/a.jpg"}),
    ],
)
def test_glob_with_output_folder_mirrors_from_the_glob_base(cwd, pattern, expected):
    make(*PHOTOS)
    result = plan([pattern], "out")
    assert dict(result.pairs) == {P(k): P(v) for k, v in expected.items()}
    assert result.errors == []


def test_absolute_glob(cwd):
    make(*PHOTOS)
    result = plan([f"{cwd}/photos/**/*.tif"], "out")
    assert result.pairs == [(cwd / "photos/sub/e.tif", P("out/sub/e.tif"))]


def test_glob_skips_hidden_files(cwd):
    make("photos/a.jpg", "photos/.secret.jpg", "photos/.cache/b.jpg")
    assert plan(["photos/**/*.jpg"], "out").pairs == [(P("photos/a.jpg"), P("out/a.jpg"))]


# --- output given ------------------------------------------------------------------------------

@pytest.mark.parametrize("output", ["blurred.jpg", "out/blurred.png", "a.anonymized.jpg", "x.JPG"])
def test_output_file_for_one_input(cwd, output):
    make("a.jpg")
    result = plan(["a.jpg"], output)
    assert result.pairs == [(P("a.jpg"), P(output))]
    assert result.errors == []


def test_output_file_for_a_glob_matching_one_file(cwd):
    make("photos/a.jpg", "photos/b.png")
    assert plan(["photos/*.jpg"], "one.jpg").pairs == [(P("photos/a.jpg"), P("one.jpg"))]


@pytest.mark.parametrize(
    ("output", "setup"),
    [
        ("out", None),  # no media suffix: a folder, created later
        ("out/", None),  # trailing slash
        (f"out{os.sep}", None),
        ("export.jpg", "export.jpg/"),  # an existing folder, even with a picture-like name
        ("out", "out/"),  # existing
    ],
)
def test_output_folder_for_one_file(cwd, output, setup):
    make("photos/a.jpg")
    if setup:
        make(setup)
    result = plan(["photos/a.jpg"], output)
    assert result.pairs == [(P("photos/a.jpg"), P(output) / "a.jpg")]


def test_several_files_into_an_output_folder(cwd):
    make("a.jpg", "x/b.png")
    result = plan(["a.jpg", "x/b.png"], "out")
    assert result.pairs == [(P("a.jpg"), P("out/a.jpg")), (P("x/b.png"), P("out/b.png"))]


@pytest.mark.parametrize("output", ["out", "out/"])
def test_folder_into_an_output_folder_is_mirrored(cwd, output):
    make(*PHOTOS)
    result = plan(["photos"], output)
    assert sorted(result.pairs) == sorted((P(f), P("out") / P(f).relative_to("photos")) for f in PHOTOS)


def test_output_folder_inside_the_input_is_not_scanned(cwd):
    make(*PHOTOS, "photos/out/a.jpg", "photos/out/sub/c.jpeg")  # outputs of an earlier run
    for inputs in (["photos"], [str(cwd / "photos")]):
        result = plan(inputs, "photos/out")
        srcs = {s.relative_to(cwd) if s.is_absolute() else s for s, _ in result.pairs}
        assert srcs == {P(f) for f in PHOTOS}, inputs
        assert result.errors == []


def test_stdout_output_writes_nothing(cwd):
    make(*PHOTOS, "single.png")
    result = plan(["photos", "single.png"], "-")
    assert sorted(result.pairs) == sorted((P(f), None) for f in [*PHOTOS, "single.png"])
    assert result.errors == []


# --- what is left out --------------------------------------------------------------------------

def test_hidden_files_and_folders_are_skipped(cwd):
    make("photos/a.jpg", "photos/.b.jpg", "photos/.thumbs/c.jpg", "photos/sub/.d.png",
         "photos/sub/.git/e.jpg", "photos/sub/f.png")
    result = plan(["photos"], "out")
    assert [s for s, _ in result.pairs] == [P("photos/a.jpg"), P("photos/sub/f.png")]


@pytest.mark.parametrize("other", ["notes.txt", "clip.flv", "anim.gif", "README", "raw.cr2", "x.jpg.bak",
                                   "sidecar.json"])
def test_non_media_files_in_folders_are_skipped(cwd, other):
    """Pictures and videos are picked up; everything else in a folder is left alone."""
    make("photos/a.jpg", f"photos/{other}", f"photos/sub/{other}")
    result = plan(["photos"], None)
    assert [s for s, _ in result.pairs] == [P("photos/a.jpg")]
    assert result.errors == [] and result.skipped == 0


@pytest.mark.parametrize("name", ["UPPER.JPG", "mixed.JpEg", "scan.TIFF", "x.jfif", "y.jpe", "z.bmp"])
def test_media_suffixes_any_case(cwd, name):
    make(f"photos/{name}")
    assert [s for s, _ in plan(["photos"], None).pairs] == [P(f"photos/{name}")]


def test_earlier_outputs_are_skipped_and_counted(cwd):
    make("photos/a.jpg", "photos/a.anonymized.jpg", "photos/sub/b.png", "photos/sub/b.anonymized.png",
         "photos/sub/c.anonymized.JPG")
    result = plan(["photos"], None)
    assert [s for s, _ in result.pairs] == [P("photos/a.jpg"), P("photos/sub/b.png")]
    assert result.skipped == 3
    # the same for globs and files named on the command line
    result = plan(["photos/*.jpg", "photos/sub/c.anonymized.JPG"], None)
    assert result.pairs == [(P("photos/a.jpg"), P("photos/a.anonymized.jpg"))]
    assert result.skipped == 2


def test_custom_suffix_skips_its_own_outputs_only(cwd):
    make("a.jpg", "a.blurred.jpg", "b.anonymized.jpg")
    result = plan(["a.jpg", "a.blurred.jpg", "b.anonymized.jpg"], None, suffix=".blurred")
    assert [s for s, _ in result.pairs] == [P("a.jpg"), P("b.anonymized.jpg")]
    assert result.skipped == 1


def test_skip_existing(cwd):
    make(*PHOTOS, "photos.anonymized/a.jpg", "photos.anonymized/sub/c.jpeg")
    result = plan(["photos"], None, skip_existing=True)
    assert len(result.pairs) == len(PHOTOS) - 2
    assert result.skipped == 2
    assert all(not dst.exists() for _, dst in result.pairs)
    # without the flag existing outputs are planned (to be replaced)
    assert len(plan(["photos"], None).pairs) == len(PHOTOS)


# --- refusals and errors -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("inputs", "output"),
    [
        (["a.jpg"], "a.jpg"),
        (["a.jpg"], "./a.jpg"),  # the same file spelt differently
        (["a.jpg"], "sub/../a.jpg"),
    ],
)
def test_output_equal_to_input_is_refused(cwd, inputs, output):
    make("a.jpg", "sub/")
    result = plan(inputs, output)
    assert result.pairs == []
    assert len(result.errors) == 1
    what, why = result.errors[0]
    assert what == "a.jpg" and "is an input" in why


def test_folder_into_itself_is_refused(cwd):
    make("photos/a.jpg", "photos/sub/b.jpg")
    result = plan(["photos"], "photos")
    assert result.pairs == []
    assert sorted(what for what, _ in result.errors) == ["photos/a.jpg", "photos/sub/b.jpg"]


def test_output_that_is_another_input_is_refused(cwd):
    make("x/a.jpg", "out/a.jpg")
    result = plan(["x/a.jpg", "out/a.jpg"], "out")
    # x/a.jpg would overwrite the input out/a.jpg, out/a.jpg would overwrite itself
    assert result.pairs == []
    assert len(result.errors) == 2


def test_two_inputs_with_the_same_output(cwd):
    make("a/x.jpg", "b/x.jpg", "c/y.jpg")
    result = plan(["a/x.jpg", "b/x.jpg", "c/y.jpg"], "out")
    assert result.pairs == [(P("a/x.jpg"), P("out/x.jpg")), (P("c/y.jpg"), P("out/y.jpg"))]
    assert len(result.errors) == 1
    what, why = result.errors[0]
    assert what == "b/x.jpg" and "a/x.jpg" in why  # names the file it collides with


def test_same_input_twice(cwd):
    make("a.jpg")
    result = plan(["a.jpg", "a.jpg"], None)
    assert result.pairs == [(P("a.jpg"), P("a.anonymized.jpg"))]
    assert len(result.errors) == 1


@pytest.mark.parametrize(
    ("arg", "why"),
    [
        ("missing.jpg", "no such file or folder"),
        ("missing/", "no such file or folder"),
        ("photos/*.gif", "no files match"),
        ("nowhere/**/*.jpg", "no files match"),
        ("empty", "no pictures or videos found"),
    ],
)
def test_missing_inputs_are_errors_and_the_rest_goes_on(cwd, arg, why):
    make("photos/a.jpg", "empty/", "empty/notes.txt")
    result = plan([arg, "photos/a.jpg"], None)
    assert result.pairs == [(P("photos/a.jpg"), P("photos/a.anonymized.jpg"))]
    assert len(result.errors) == 1
    assert result.errors[0][0] == arg and why in result.errors[0][1]


def test_only_missing_inputs(cwd):
    result = plan(["nope.jpg", "*.png"], "out")
    assert result.pairs == []
    assert [what for what, _ in result.errors] == ["nope.jpg", "*.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs symlinks and FIFOs")
@pytest.mark.parametrize("kind", ["broken link", "fifo"])
def test_special_files_are_errors(cwd, kind):
    if kind == "fifo":
        os.mkfifo("pipe.jpg")
    else:
        os.symlink("gone.jpg", "pipe.jpg")
    result = plan(["pipe.jpg"], None)
    assert result.pairs == []
    why = ("a symbolic link to nothing (its target is missing); left out" if kind == "broken link"
           else "not a regular file or folder")
    assert result.errors == [("pipe.jpg", why)]


# --- hostile names -----------------------------------------------------------------------------

HOSTILE = [
    "my holiday photo.jpg",
    "  leading and trailing  .jpg",
    "ünïcødé 照片 🙂.png",
    "-rf.jpg",
    "--output=x.jpg",
    "-",
    "a[1].jpg",  # glob characters in a real name
    "*.jpg",
    "what?.jpg",
    "quote's \"here\".jpg",
    "semi;colon $(x) `y`.jpg",
]
if sys.platform.startswith("linux"):
    HOSTILE += ["new\nline.jpg", "tab\there.jpg", "back\\slash.jpg"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_file_names(cwd, name):
    if name == "-":
        name = "-.jpg"
    make(name)
    stem, suffix = os.path.splitext(name)
    result = plan([name], None)
    assert result.pairs == [(P(name), P(f"{stem}.anonymized{suffix}"))]
    assert result.errors == []
    # inside a folder the name is mirrored unchanged
    make(f"photos/{name}")
    result = plan(["photos"], "out")
    assert result.pairs == [(P("photos") / name, P("out") / name)]


def test_hostile_names_in_a_folder_all_come_through(cwd):
    names = [n if n != "-" else "-.jpg" for n in HOSTILE]
    make(*(f"photos/{n}" for n in names), "photos/-dash folder/x.jpg", "photos/[2024] trip/y.jpg")
    result = plan(["photos"], None)
    dsts = {d for _, d in result.pairs}
    assert len(result.pairs) == len(names) + 2 and len(dsts) == len(result.pairs)
    assert P("photos.anonymized/[2024] trip/y.jpg") in dsts
    assert P("photos.anonymized/-dash folder/x.jpg") in dsts
    assert all(s.exists() for s, _ in result.pairs)


def test_folder_with_glob_characters_is_taken_literally(cwd):
    make("[2024] trip/a.jpg", "2 trip/b.jpg")  # as a pattern "[2024] trip" would match "2 trip"
    result = plan(["[2024] trip"], None)
    assert result.pairs == [(P("[2024] trip/a.jpg"), P("[2024] trip.anonymized/a.jpg"))]


def test_videos_in_folders_are_picked_up(cwd):
    make("media/a.jpg", "media/clip.mp4", "media/sub/talk.MOV", "media/sub/x.webm")
    result = plan(["media"], "out")
    assert [d for _, d in result.pairs] == [P("out/a.jpg"), P("out/clip.mp4"), P("out/sub/talk.MOV"),
                                            P("out/sub/x.webm")]
