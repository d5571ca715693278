"""The Ray engine: the same per-item function on Ray Data, over a pool of actors holding the models.

Needs the ``cluster`` extra (``pip install 'faceveil[cluster]'``). Items become rows of a Ray
dataset (one block each, so a finished item is reported at once); `map_batches` runs them one at
a time on a fixed-size `ActorPoolStrategy` pool whose actors each build one `ItemWorker` (models
loaded once per actor) and reserve `threads` CPUs. Records stream back to the driver, which
appends them to the manifest as they come.

Paths must be readable and writable from every node: on a one-machine cluster any local path
works; across machines use a shared mount or a URI such as s3://bucket/raw (faceveil must be
installed on every node, with the same version).

Without `address` a local Ray is started for the run and stopped after it; with one
(``auto``, ``ray://host:10001``, ``host:6379``) the run joins that cluster. When Ray is already
initialised in this process (tests, notebooks), that session is used and left running.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from ..config import PipelineConfig
from ..errors import FaceveilError, MissingDependencyError
from .plan import Item
from .segments import Segment, task_to_dict
from .work import ItemOptions

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingDependencyError(
            "--engine ray needs Ray Data: pip install 'faceveil[cluster]'") from exc
    return ray


class RayItemWorker:
    """A Ray Data callable class: one per actor, models loaded in the constructor."""

    def __init__(self, config: PipelineConfig, options: ItemOptions, run: str) -> None:
        from .work import ItemWorker

        self.run = run
        self.worker = ItemWorker(config, options, engine="ray",
                                 name=f"ray {socket.gethostname()} pid {os.getpid()}")

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from .segments import run_task, task_from_dict

        records = [json.dumps(run_task(self.worker, task_from_dict(json.loads(str(text))), self.run))
                   for text in batch["item"]]
        return {"record": np.array(records, dtype=object)}


class RayEngine:
    name = "ray"

    def __init__(self, config: PipelineConfig, options: ItemOptions, *, workers: int | None,
                 threads: int, address: str | None = None, run: str = "") -> None:
        self.config, self.options, self.run_id = config, options, run
        self.workers, self.threads, self.address = workers, max(1, threads), address

    def run(self, items: Iterable[Item | Segment], on_record: Callable[[dict[str, Any]], None]) -> None:
        items = list(items)
        if not items:
            return
        ray = _ray()
        # Ray's own messages, and the actors' output (which Ray copies to this process's stdout,
        # where --json data goes), only when faceveil is asked for more than warnings (-v). What
        # an item needs to say is in its record.
        level = logging.getLogger("faceveil").getEffectiveLevel()
        verbose = level < logging.WARNING
        ray_level = level if verbose else logging.ERROR
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(ray_level)
        owned = False
        if not ray.is_initialized():
            if self.address:
                log.info("joining the Ray cluster at %s", self.address)
                ray.init(address=self.address, logging_level=ray_level, log_to_driver=verbose)
            else:
                from .local import usable_cores

                log.info("starting a local Ray with %d CPUs", usable_cores())
                ray.init(num_cpus=usable_cores(), include_dashboard=False, logging_level=ray_level,
                         log_to_driver=verbose)
            owned = True
        try:
            cpus = float(ray.cluster_resources().get("CPU", 1))
            size = self.workers or max(1, int(cpus // self.threads))
            size = min(size, len(items))
            log.info("Ray: %d actor(s) with %d thread(s) each, %.0f CPU(s) in the cluster",
                     size, self.threads, cpus)
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            rows = [{"item": json.dumps(task_to_dict(item))} for item in items]
            ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                RayItemWorker,
                fn_constructor_kwargs={"config": self.config, "options": self.options,
                                       "run": self.run_id},
                batch_size=1, batch_format="numpy", num_cpus=self.threads,
                compute=ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=2))
            try:
                for row in ds.iter_rows():
                    on_record(json.loads(str(row["record"])))
            except (KeyboardInterrupt, FaceveilError):
                raise
            except ray.exceptions.RayError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise FaceveilError(f"the Ray run failed: {first}") from exc
        finally:
            if owned:
                ray.shutdown()
