"""The local engine: N worker processes on this machine, each with its own loaded models.

Workers are started with the ``spawn`` method (no forked copies of threads or model sessions)
and talk to the parent over one pipe each: the parent hands an item to a worker when it is idle,
the worker answers with the item's record. A worker that dies (a crash in native code, the OOM
killer) costs only the item it held: that item is recorded as failed and a new worker takes its
place. Each worker runs inference on `threads` cores, so N workers do not fight over them.

Stopping (Ctrl-C, SIGTERM): workers ignore SIGINT; the parent sends them SIGTERM, which stops the
item in progress by raising inside it, so the media writers remove their temporary files. On
Linux a worker also gets SIGTERM when the parent dies without warning (SIGKILL).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from ..config import PipelineConfig
from ..errors import FaceveilError
from ..models.runtime import usable_cores
from .plan import Item
from .segments import Segment
from .work import ItemOptions

log = logging.getLogger(__name__)

MAX_RESTARTS = 8  # worker deaths tolerated in one run before giving up
_STOP_GRACE = 10.0  # seconds a worker has to clean up after SIGTERM


class WorkerStartError(FaceveilError, RuntimeError):
    """A worker process could not load the models (or died doing so)."""


class _Stop(BaseException):
    """Raised inside a worker by SIGTERM: unwinds the item (temporary files are removed)."""


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """Inference threads for each of `workers` processes: the cores shared out, at least one."""
    return threads or max(1, usable_cores() // max(1, workers))


# ------------------------------------------------------------------------------- the worker side


class _PipeLog(logging.Handler):
    """Hands the worker's log records to the parent, which logs them as its own."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("log", record.levelno, record.name, record.getMessage()))


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the parent dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker_main(conn: Connection, slot: int, config: PipelineConfig, options: ItemOptions,
                 run: str, level: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us

    def on_term(*_: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, on_term)
    _die_with_parent()
    if os.getppid() != parent:  # the parent was gone before the line above took effect
        return
    root = logging.getLogger()
    root.handlers[:] = [_PipeLog(conn)]
    root.setLevel(level)
    from .segments import run_task
    from .work import ItemWorker

    worker = None
    try:
        try:
            worker = ItemWorker(config, options, engine="local",
                                name=f"local-{slot} pid {os.getpid()}")
        except Exception as exc:
            try:
                conn.send(("failed", exc))
            except Exception:  # the exception does not pickle: its text does
                conn.send(("failed", WorkerStartError(f"{type(exc).__name__}: {exc}")))
            return
        conn.send(("ready", os.getpid()))
        while True:
            message = conn.recv()
            if message is None:
                return
            conn.send(("record", run_task(worker, message, run)))
    except (_Stop, EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    finally:
        if worker is not None:
            worker.close()


# ------------------------------------------------------------------------------- the parent side


@dataclass
class _Slot:
    index: int
    proc: Any  # multiprocessing.Process
    conn: Connection
    ready: bool = False
    item: Item | Segment | None = None
    since: float = 0.0


class LocalEngine:
    """Runs items on `workers` processes; `on_record` is called in this process per item."""

    name = "local"

    def __init__(self, config: PipelineConfig, options: ItemOptions, *, workers: int,
                 run: str = "") -> None:
        self.config, self.options, self.workers, self.run_id = config, options, max(1, workers), run
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Slot] = []
        self._restarts = 0

    def _start(self, index: int) -> _Slot:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main, name=f"faceveil-batch-{index}", daemon=True,
            args=(child_conn, index, self.config, self.options, self.run_id,
                  logging.getLogger("faceveil").getEffectiveLevel(), os.getpid()))
        proc.start()
        child_conn.close()
        return _Slot(index, proc, parent_conn)

    def run(self, items: Iterable[Item | Segment],
            on_record: Callable[[dict[str, Any]], None]) -> None:
        """Run the tasks (whole items, or segments of long videos) in the order given."""
        queue = deque(items)
        if not queue:
            return
        self._slots = [self._start(i) for i in range(min(self.workers, len(queue)))]
        try:
            while queue or any(s.item is not None for s in self._slots):
                for slot in self._slots:
                    if slot.ready and slot.item is None and queue:
                        item = queue.popleft()
                        try:
                            slot.conn.send(item)
                        except OSError:  # it died idle: the item goes to the next worker
                            queue.appendleft(item)
                            continue
                        slot.item, slot.since = item, time.perf_counter()
                by_handle: dict[Any, _Slot] = {}
                for slot in self._slots:
                    by_handle[slot.conn] = by_handle[slot.proc.sentinel] = slot
                for handle in wait(list(by_handle), timeout=1.0):
                    slot = by_handle[handle]
                    if slot not in self._slots:
                        continue  # replaced earlier in this round
                    if handle is slot.conn:
                        self._receive(slot, on_record)
                    else:
                        self._drain(slot, on_record)
                        self._died(slot, on_record, bool(queue))
            self._shutdown()
        except BaseException:
            self._abort(on_record)
            raise

    def _receive(self, slot: _Slot, on_record: Callable[[dict[str, Any]], None]) -> bool:
        """Handle one message; False when the worker's end is closed (its sentinel says why)."""
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):
            return False
        kind = message[0]
        if kind == "record":
            slot.item = None
            on_record(message[1])
        elif kind == "ready":
            slot.ready = True
            log.debug("worker %d ready (pid %d)", slot.index, message[1])
        elif kind == "log":
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
        elif kind == "failed":
            raise message[1]
        return True

    def _drain(self, slot: _Slot, on_record: Callable[[dict[str, Any]], None]) -> None:
        """Take what a worker sent before it exited (a finished record may be waiting)."""
        with contextlib.suppress(EOFError, OSError):
            while slot.conn.poll() and self._receive(slot, on_record):
                pass

    def _died(self, slot: _Slot, on_record: Callable[[dict[str, Any]], None], more: bool) -> None:
        slot.proc.join(1)
        code = slot.proc.exitcode
        why = f"exit code {code}"
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                why = f"killed by {signal.Signals(-code).name}"
        if not slot.ready:
            raise WorkerStartError(f"a worker process died while loading the models ({why})")
        if slot.item is not None:
            item = slot.item
            log.info("%s: the worker process died (%s)", item.input, why)
            on_record({"input": item.input, "size": None, "sha256": None,
                       "output": item.output_name, "kind": "video" if item.video else "picture",
                       "faces": 0, "kept": 0, "status": "error",
                       "error": f"the worker process died while processing it ({why})",
                       "seconds": round(time.perf_counter() - slot.since, 3), "engine": self.name,
                       "worker": f"local-{slot.index} pid {slot.proc.pid}", "run": self.run_id,
                       **(item.tag() if isinstance(item, Segment) else {})})
            slot.item = None
        slot.conn.close()
        position = self._slots.index(slot)
        if not more:
            del self._slots[position]
            return
        self._restarts += 1
        if self._restarts > MAX_RESTARTS:
            raise FaceveilError(f"worker processes died {self._restarts} times; giving up")
        self._slots[position] = self._start(slot.index)

    def _shutdown(self) -> None:
        for slot in self._slots:
            with contextlib.suppress(OSError):
                slot.conn.send(None)
        for slot in self._slots:
            slot.proc.join(_STOP_GRACE)
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join(1)
            slot.conn.close()
        self._slots = []

    def _abort(self, on_record: Callable[[dict[str, Any]], None]) -> None:
        """Stop every worker now; keep the records of items that finished meanwhile."""
        for slot in self._slots:
            if slot.proc.is_alive():
                with contextlib.suppress(OSError):
                    os.kill(slot.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        for slot in self._slots:
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join(1)
            try:
                while slot.conn.poll():
                    message = slot.conn.recv()
                    if message[0] == "record":
                        on_record(message[1])
            except BaseException:  # already stopping; the first reason is re-raised
                log.debug("while stopping worker %d", slot.index, exc_info=True)
            slot.conn.close()
        self._slots = []
