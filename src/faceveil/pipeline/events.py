"""Progress events: the library calls a callback; each front end shows them its own way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    stage: str  # "start", "file", "done"
    done: int  # items finished so far
    total: int | None  # items in all, when known
    path: str = ""  # the item this event is about
    ok: bool = True  # False when the item failed
    message: str = ""  # the reason, when it failed


ProgressCallback = Callable[[Progress], None]
