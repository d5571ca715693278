"""The model files faceveil ships in this folder, each checked against manifest.json.

Every file here is small, permissively licensed and listed in manifest.json with its sha256,
its licence file and where it came from (scripts/convert_models.py made the folder from the
registry packages that carry them). Nothing is downloaded, ever; a file whose checksum does not
match is refused (reinstall faceveil).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .._files import sha256_file
from ..errors import ConfigError, ModelError

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    sha256: str
    source: str  # where the file came from: "package==version:path" or the OpenCV wheel
    licence: str = ""
    runtime: str = ""  # onnxruntime | opencv
    provider: str = ""  # where it runs: an ONNX Runtime execution provider, or OpenCV's CPU DNN


@functools.cache
def manifest() -> dict[str, dict]:
    path = MODELS_DIR / "manifest.json"
    try:
        return json.loads(path.read_text())["models"]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot read {path} ({exc}); reinstall faceveil") from exc


@functools.cache
def model_file(key: str) -> Path:
    """The path of shipped model `key` (a manifest key), its sha256 checked once per process."""
    try:
        entry = manifest()[key]
    except KeyError:
        raise ModelError(f"no model {key!r} in {MODELS_DIR / 'manifest.json'}") from None
    path = MODELS_DIR / entry["file"]
    if not path.is_file():
        raise ModelError(f"the model file {path} is missing; reinstall faceveil")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ModelError(f"the model file {path} is damaged (sha256 {digest[:12]}, expected "
                         f"{entry['sha256'][:12]}); reinstall faceveil")
    return path


def describe(device: str = "cpu") -> list[ModelInfo]:
    """The models faceveil can use here, checked, with where each runs for `device`.

    For a device other than the CPU each ONNX model is loaded once, so the provider named is the
    one ONNX Runtime really started (a GPU build without its CUDA libraries runs nothing on CUDA).
    """
    from .runtime import CPU, DEVICES, OPENCV_PROVIDER, ort_session, resolve_providers, warn_clash_once

    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r} (choose from: {', '.join(DEVICES)})")
    ort_provider = None
    try:
        ort_provider = resolve_providers(device)[0]
    except Exception as exc:  # no onnxruntime, or no such provider: said once, marked per model
        log.warning("%s", exc)
    else:
        warn_clash_once()  # the error above already says it when it applies
    out = []
    failed = False
    for key, entry in manifest().items():
        src = entry["source"]
        runtime = entry.get("runtime", "")
        path = model_file(key)
        if runtime != "onnxruntime":
            provider = OPENCV_PROVIDER
        elif ort_provider is None:
            provider = f"{device}: unavailable"
        elif ort_provider == CPU:
            provider = ort_provider
        else:
            try:
                provider = ort_session(str(path), threads=1, device=device).get_providers()[0]
            except ModelError as exc:
                if not failed:
                    log.warning("%s", exc)
                failed = True
                provider = f"{device}: failed"
        out.append(ModelInfo(key, path, entry["sha256"], f"{src['package']}:{src['path']}",
                             entry.get("licence", ""), runtime, provider))
    import cv2

    for name in ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml"):
        path = Path(cv2.data.haarcascades) / name
        if path.is_file():
            out.append(ModelInfo(f"haar/{name}", path, sha256_file(path), "opencv-python-headless",
                                 "BSD-3-Clause (OpenCV)", "opencv", OPENCV_PROVIDER))
    return out
