"""The Python API: anonymize or detect on one picture, or anonymize a video, in a line."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import PipelineConfig
from .errors import UnsafeOutputError
from .media.images import Picture, read_image
from .pipeline import Pipeline
from .types import Detections, Frame

if TYPE_CHECKING:
    from .pipeline.events import ProgressCallback
    from .pipeline.video import VideoReport

ImageLike = str | os.PathLike | np.ndarray | Any  # Any: a PIL.Image.Image


@lru_cache(maxsize=4)
def _cached(config: PipelineConfig) -> tuple[Pipeline, threading.Lock]:
    return Pipeline(config), threading.Lock()


def _pipeline(config: PipelineConfig | None, options: dict[str, Any]) -> tuple[Pipeline, Any]:
    return _cached((config or PipelineConfig()).replace(**options))


def _load(image: ImageLike) -> tuple[np.ndarray, Picture | None]:
    """RGB uint8 pixels from a path, an array (RGB, gray or RGBA) or a PIL image."""
    if isinstance(image, (str, os.PathLike)):
        picture = read_image(image)
        return picture.rgb, picture
    if not isinstance(image, np.ndarray) and hasattr(image, "convert"):  # PIL.Image
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    return np.ascontiguousarray(arr), None


def detect_faces(image: ImageLike, *, config: PipelineConfig | None = None,
                 **options: Any) -> Detections:
    """Faces in a picture (path, RGB array or PIL image), as Detections in its pixels.

    Options are flat: detector="centerface", quality="thorough", threshold=0.3, ...
    """
    rgb, _ = _load(image)
    pipeline, lock = _pipeline(config, options)
    with lock:
        return pipeline.detect(Frame(rgb))


def anonymize_image(image: ImageLike, output: str | os.PathLike | None = None, *,
                    config: PipelineConfig | None = None, image_quality: int | None = None,
                    keep_metadata: bool = False, **options: Any) -> np.ndarray:
    """Hide every face in a picture; returns the RGB result (RGBA with background="transparent")
    and writes it to `output` if given.

    `image` is a path, an RGB (or gray, or RGBA) uint8 array, or a PIL image. Options are the
    flat pipeline options: method="pixelate", blocks=10, shape="box", color="#000", ...
    """
    from .pipeline.job import WriteOptions, process_file

    rgb, picture = _load(image)
    if output is not None and isinstance(image, (str, os.PathLike)) and \
            Path(output).resolve() == Path(image).resolve():
        raise UnsafeOutputError(f"refusing to overwrite the input {image}")
    pipeline, lock = _pipeline(config, options)
    with lock:  # the file job, as every door runs it
        result = process_file(image if picture else "", output, pipeline,
                              write=WriteOptions(image_quality, keep_metadata), picture=picture,
                              pixels=None if picture else rgb, video=False)
    result.raise_for_error()
    assert result.image is not None
    return result.image


def anonymize_video(source: str | os.PathLike, output: str | os.PathLike, *,
                    config: PipelineConfig | None = None, faces_json: str | os.PathLike | None = None,
                    codec: str | None = None, crf: int = 20, preset: str = "medium",
                    keep_audio: bool = True, on_progress: ProgressCallback | None = None,
                    **options: Any) -> VideoReport:
    """Hide every face in a video file; audio and subtitles are copied unchanged.

    The container follows `output`'s extension (.mp4, .mov, .mkv, .webm, .avi). `faces_json`:
    also write the per-frame faces there. Options are the flat pipeline options, including the
    video ones: detect_every=3, detect_size=640, hold=8, lead=8, ... Returns a VideoReport
    (frames, counts: faces, face-frames, boxes and filled-in boxes as every door counts them;
    tracks, seconds, damage).
    """
    from .media.video import EncodeOptions
    from .pipeline.job import process_file

    if Path(output).resolve() == Path(source).resolve():
        raise UnsafeOutputError(f"refusing to overwrite the input {source}")
    pipeline = Pipeline((config or PipelineConfig()).replace(**options))
    result = process_file(source, output, pipeline, sidecar=faces_json, on_progress=on_progress,
                          encode=EncodeOptions(codec, crf, preset, keep_audio), video=True)
    return result.raise_for_error().report
