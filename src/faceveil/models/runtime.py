"""ONNX Runtime sessions on a chosen device (`--device`), shared by detectors and segmenters.

`cpu` is the default and always works. `auto` takes the first accelerator ONNX Runtime offers
here and otherwise the CPU. A named device that this onnxruntime build does not offer is a clear
error, never a silent CPU run: the GPU build is the `gpu` extra (onnxruntime-gpu).
"""

from __future__ import annotations

import contextlib
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

# ONNX Runtime's builds are separate distributions that all write the one `onnxruntime` folder, and
# pip cannot let an extra replace a dependency (PEP 771's default extras are a draft): installed
# together, the files of whichever pip wrote last are in place. Each accelerated build, and the
# provider whose presence shows that its files are the ones in place:
BUILDS = {
    "onnxruntime-gpu": "CUDAExecutionProvider",
    "onnxruntime-directml": "DmlExecutionProvider",
    "onnxruntime-openvino": "OpenVINOExecutionProvider",
    "onnxruntime-rocm": "ROCMExecutionProvider",
}


def installed_builds() -> dict[str, str]:
    """The ONNX Runtime distributions installed here, CPU and accelerated: name -> version."""
    from importlib import metadata

    out = {}
    for name in ("onnxruntime", *BUILDS):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def clash(providers: list[str] | None = None) -> str | None:
    """One line saying how to fix the install when an accelerated ONNX Runtime build is installed
    but another build wrote over its files (its provider is missing); None when all is well."""
    builds = installed_builds()
    if len(builds) < 2:
        return None
    if providers is None:
        try:
            providers = available_providers()
        except MissingDependencyError:
            providers = []
    for name, provider in BUILDS.items():
        if name in builds and provider not in providers:
            others = ", ".join(sorted(set(builds) - {name}))
            return (f"{name} {builds[name]} is installed but {others} wrote over its files (they share "
                    f"the onnxruntime folder), so {provider} is missing; fix: "
                    f"pip install --force-reinstall --no-deps {name}=={builds[name]}")
    return None


_checked = False
_quiet = False


def warn_clash_once(providers: list[str] | None = None) -> None:
    """`clash`, said once per process (at the first session): the run goes on, on the CPU."""
    global _checked
    if not _checked:
        _checked = True
        line = clash(providers)
        if line:
            log.warning("%s", line)


def _ort():
    try:
        import onnxruntime as ort

        ort.InferenceSession  # noqa: B018 (what another build's uninstall leaves imports empty)
    except (ImportError, AttributeError) as exc:
        builds = installed_builds()
        if builds:  # installed, but its files went with another build's uninstall
            name = next((n for n in BUILDS if n in builds), "onnxruntime")
            version = builds[name]
            raise MissingDependencyError(
                f"onnxruntime cannot be imported although {', '.join(builds)} is installed (another "
                f"build's uninstall removed the shared files?); fix: "
                f"pip install --force-reinstall --no-deps {name}=={version}") from exc
        raise MissingDependencyError("the ONNX models need onnxruntime: pip install onnxruntime") from exc
    global _quiet
    if not _quiet:
        # ORT's own logger writes to stderr (a GPU build without its CUDA libraries prints coloured
        # error lines per session); faceveil says what failed in one line of its own instead.
        _quiet = True
        ort.set_default_logger_severity(4)
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
        hint = clash(have) or GPU_HINT
        raise ConfigError(f"device {device!r} is not available: this onnxruntime offers "
                          f"{', '.join(have)}; {hint}")
    return [want, CPU]


#: Inference threads of the small models (BlazeFace short and full, the selfie segmenters) when
#: the caller names none. Their calls take 0.7-2 ms on this 2-core machine; a second thread costs
#: more in hand-overs than it saves: one thread ran them in 0.72-0.91x the time of two, same outputs
#: (bench/ort_settings.py; bench/README.md, "ORT session settings, session s5"). CenterFace (50-90 ms
#: a picture) keeps all cores.
SMALL_MODEL_THREADS = 1


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None):
    """The SessionOptions every model gets: `threads` intra-op (None: all cores), run in
    sequence, all graph optimisations, quiet, and no busy-waiting (bench/ort_settings.py)."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Do not busy-wait between runs: decode and encode threads need the cores.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: ORT's warnings would reach stderr
    return opts


def ort_session(path: str, threads: int | None = None, device: str = "cpu"):
    """An InferenceSession for the model at `path` on `device`, quiet and without busy-waiting."""
    ort = _ort()
    providers = resolve_providers(device)
    warn_clash_once(available_providers())
    opts = session_options(threads)
    try:
        session = ort.InferenceSession(path, sess_options=opts, providers=providers)
    except Exception as exc:
        raise ModelError(f"cannot load {path} on {device}: {exc}") from exc
    used = session.get_providers()
    if device not in ("cpu", "auto") and used[0] != providers[0]:
        raise ModelError(f"device {device!r}: ONNX Runtime could not start {providers[0]} "
                         f"(driver, or the CUDA and cuDNN libraries this onnxruntime build needs, "
                         f"missing?) and would run on {used[0]}")
    log.debug("%s runs on %s", os.path.basename(path), used[0])
    return session
