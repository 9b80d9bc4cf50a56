"""How late a service's event loop runs, and where it was when it ran late.

A gauge alone says that the loop stalled, not what stalled it. A watchdog thread therefore
looks at the loop's heartbeat and, once the loop is late by more than `report_after`, samples
the stacks of the loop thread and of every busy thread and logs them: the frame that holds the
loop (or the GIL) is named in the log, and a stall is something to act on, not guess about.

Garbage collections hold every thread too; their pauses are measured (`ampc_gc_pause_seconds`),
and `settle_heap` takes what a service built at start-up out of the collector's scans.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

from prometheus_client import Gauge

from ampc.platform.metrics import GC_PAUSE, LOOP_STALL

log = logging.getLogger(__name__)


def settle_heap(*, release_frozen: bool = True) -> None:
    """Collect, then take every object alive now out of the garbage collector's scans.

    A full collection walks every tracked object with every thread held. What a service holds
    after start-up (its modules, classes, faust's and aiokafka's machinery; the optimizer's
    replica) is most of them and lives as long as the process: in the ledger, 120,000 objects
    made each full collection 70 to 150 ms, frozen 35 to 45 ms (pipeline benchmark's mix,
    2026-11-30). Frozen objects are still freed when their last reference goes, but a
    reference cycle among them is not. `release_frozen` first unfreezes what earlier calls
    froze, so that such cycles, dead since, are collected; that makes this collection a full
    one over everything (about 70 ms per 100,000 objects here), so a caller that settles often
    (the optimizer, after every plan) releases only now and then.
    """
    if release_frozen:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


class StallWatch:
    """Run `run()` as a task on the loop to watch; the worst lateness goes to `gauge`, each
    garbage collection's pause to `gc_pause(generation, seconds)`."""

    def __init__(
        self,
        gauge: Gauge,
        report_after: float = 0.25,
        interval: float = 0.05,
        gc_pause: Callable[[int, float], None] | None = None,
    ) -> None:
        self.gauge = gauge
        self.report_after = report_after
        self.interval = interval
        self.gc_pause = gc_pause
        self.worst = 0.0
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._gc_started = 0.0

    @classmethod
    def for_service(cls, service: str) -> StallWatch:
        """A watch reporting to the service's `ampc_event_loop_max_stall_seconds` and
        `ampc_gc_pause_seconds`."""

        # Made here, not in the callback: `labels` takes a lock that a collection may interrupt
        # the same thread holding (a scrape copies the children under it), a deadlock.
        pauses = [GC_PAUSE.labels(service, str(generation)) for generation in range(3)]

        def gc_pause(generation: int, seconds: float) -> None:
            pauses[generation].observe(seconds)

        return cls(LOOP_STALL.labels(service), gc_pause=gc_pause)

    async def run(self, settle_heap_first: bool = False) -> None:
        """Watch until cancelled; `settle_heap_first`: settle the heap once watching (a
        service's start-up is done by the time it runs its tasks), so that collection is
        measured too."""
        gc.callbacks.append(self._on_gc)
        if settle_heap_first:
            settle_heap()
        loop_thread = threading.get_ident()
        watchdog = threading.Thread(
            target=self._watch, args=(loop_thread,), name="stall-watch", daemon=True
        )
        watchdog.start()
        try:
            while True:
                self._beat = time.monotonic()
                await asyncio.sleep(self.interval)
                late = time.monotonic() - self._beat - self.interval
                if late > self.worst:
                    self.worst = late
                    self.gauge.set(late)
        finally:
            self._stop.set()
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """A full collection walks every tracked object and holds every thread meanwhile."""
        if phase == "start":
            self._gc_started = time.monotonic()
            return
        took = time.monotonic() - self._gc_started
        if self.gc_pause is not None:
            self.gc_pause(info["generation"], took)
        if took > self.report_after:
            log.warning(
                "garbage collection of generation %d held every thread for %.2f s "
                "(%d objects tracked)",
                info["generation"],
                took,
                len(gc.get_objects(info["generation"])),
            )

    def _watch(self, loop_thread: int) -> None:
        reported = 0.0  # the heartbeat already reported: one log line per stall
        while not self._stop.wait(self.interval / 2):
            beat = self._beat
            late = time.monotonic() - beat - self.interval
            if late <= self.report_after or beat == reported:
                continue
            reported = beat
            log.warning("event loop late by %.2f s so far:\n%s", late, _stacks(loop_thread))


def _stacks(loop_thread: int) -> str:
    """The loop thread's stack and every other busy thread's: a loop thread waiting in
    `select` is waiting for the GIL, and the thread that holds it is the one to look at."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue  # the watchdog itself
        stack = traceback.format_stack(frame, limit=8)
        idle = ident != loop_thread and any(w in stack[-1] for w in _IDLE)
        if not idle:
            role = "event loop" if ident == loop_thread else "thread"
            parts.append(f"{role} {names.get(ident, ident)}:\n{''.join(stack)}")
    return "\n".join(parts)


_IDLE = ("in wait\n", "in _wait_for_tstate_lock", "in select\n", "in poll\n", "in get\n")
