"""ONNX Runtime sessions on a chosen device (`--device`), shared by detectors and segmenters.

`cpu` is the default and always works. `auto` takes the first accelerator ONNX Runtime offers
here and otherwise the CPU. A named device that this onnxruntime build does not offer is a clear
error, never a silent CPU run: the GPU build is the `gpu` extra (onnxruntime-gpu).
"""

from __future__ import annotations

import logging
import os

from ..errors import ConfigError, MissingDependencyError, ModelError

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
#: --device name -> ONNX Runtime execution provider
PROVIDERS = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
DEVICES = ("auto", *PROVIDERS)
AUTO_ORDER = ("cuda", "rocm", "migraphx", "directml", "coreml")  # TensorRT builds engines: opt-in
OPENCV_PROVIDER = "OpenCV DNN (CPU)"
GPU_HINT = "for NVIDIA GPUs: pip install 'faceveil[gpu]' (onnxruntime-gpu)"
# onnxruntime and onnxruntime-gpu write the same folder: with both installed, the last one wins
SWAP_HINT = ("onnxruntime-gpu is installed but the CPU wheel's files are in place: "
             "pip install --force-reinstall --no-deps onnxruntime-gpu")


def _gpu_build_installed() -> bool:
    from importlib import metadata

    try:
        metadata.version("onnxruntime-gpu")
    except metadata.PackageNotFoundError:
        return False
    return True


def _ort():
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError("the ONNX models need onnxruntime: pip install onnxruntime") from exc
    return ort


def available_providers() -> list[str]:
    return list(_ort().get_available_providers())


def resolve_providers(device: str) -> list[str]:
    """The ONNX Runtime providers, in order, that `device` means here."""
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r} (choose from: {', '.join(DEVICES)})")
    have = available_providers()
    if device == "cpu":
        return [CPU]
    if device == "auto":
        for name in AUTO_ORDER:
            if PROVIDERS[name] in have:
                return [PROVIDERS[name], CPU]
        return [CPU]
    want = PROVIDERS[device]
    if want not in have:
        hint = SWAP_HINT if device == "cuda" and _gpu_build_installed() else GPU_HINT
        raise ConfigError(f"device {device!r} is not available: this onnxruntime offers "
                          f"{', '.join(have)}; {hint}")
    return [want, CPU]


def ort_session(path: str, threads: int | None = None, device: str = "cpu"):
    """An InferenceSession for the model at `path` on `device`, quiet and without busy-waiting."""
    ort = _ort()
    providers = resolve_providers(device)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Do not busy-wait between runs: decode and encode threads need the cores.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: ORT's warnings would reach stderr
    try:
        session = ort.InferenceSession(path, sess_options=opts, providers=providers)
    except Exception as exc:
        raise ModelError(f"cannot load {path} on {device}: {exc}") from exc
    used = session.get_providers()
    if device not in ("cpu", "auto") and used[0] != providers[0]:
        raise ModelError(f"device {device!r}: ONNX Runtime could not start {providers[0]} "
                         f"(driver or CUDA/cuDNN libraries missing?) and would run on {used[0]}")
    log.debug("%s runs on %s", os.path.basename(path), used[0])
    return session
