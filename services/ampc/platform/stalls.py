"""How late a service's event loop runs, and where it was when it ran late.

A gauge alone says that the loop stalled, not what stalled it. A watchdog thread therefore
looks at the loop's heartbeat and, once the loop is late by more than `report_after`, samples
the stacks of the loop thread and of every busy thread and logs them: the frame that holds the
loop (or the GIL) is named in the log, and a stall is something to act on, not guess about.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback

from prometheus_client import Gauge

log = logging.getLogger(__name__)


class StallWatch:
    """Run `run()` as a task on the loop to watch; the worst lateness goes to `gauge`."""

    def __init__(self, gauge: Gauge, report_after: float = 0.25, interval: float = 0.05) -> None:
        self.gauge = gauge
        self.report_after = report_after
        self.interval = interval
        self.worst = 0.0
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._gc_started = 0.0

    async def run(self) -> None:
        gc.callbacks.append(self._on_gc)
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
