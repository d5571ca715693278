"""Batch runs at scale: folders, zips and URIs; parallel workers or a Ray cluster; resumable.

    >>> from faceveil.batch import BatchOptions, run_batch
    >>> report = run_batch(["archive/"], "clean/", options=BatchOptions(workers=2, resume=True))

Every item is one input file -> one output file -> one line in a JSON-lines manifest. See
`runner` for the flow, `work` for the per-item function, `local` and `ray_engine` for the two
engines. Importing this package loads no models and no Ray.
"""

from __future__ import annotations

from .manifest import read_manifest
from .plan import BatchPlan, Item, plan_batch
from .runner import ENGINES, BatchOptions, BatchReport, run_batch
from .work import ItemOptions, ItemWorker
from .zips import UnsafeArchiveError, ZipLimits

__all__ = [
    "ENGINES", "BatchOptions", "BatchPlan", "BatchReport", "Item", "ItemOptions", "ItemWorker",
    "UnsafeArchiveError", "ZipLimits", "plan_batch", "read_manifest", "run_batch",
]
