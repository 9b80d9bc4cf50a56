"""Heavy work off a service's event loop: one spawned child process, niced below the service.

A thread does not help with work that holds the GIL in long calls (parsing a 10 MB plan with
pydantic, a full rule evaluation over tens of thousands of allocations): the event loop waits
for the GIL all the same. A child process does not share it. The child is started with `spawn`
(a fork of a process with live Kafka clients and an event loop is not safe) and runs at lower
CPU priority, so on a busy machine it takes only what the service leaves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CHILD_NICENESS = 10
"""How much lower the child's CPU priority is than the service's: a solve that takes every core
otherwise starves the service's event loop (heartbeats, HTTP) for a quarter second and more."""


class ChildRestarted(Exception):
    """The job was dropped because the child process was restarted under it."""


ORPHAN_CHECK_S = 1.0
"""How often a child checks that the service that started it is still its parent."""
EXIT_ORPHANED = 75
"""Exit status of a child whose service died under it."""


def _start_child(service_pid: int) -> None:
    """Set up a new child: lower its priority, and end it once the service is gone.

    A service killed with SIGKILL cannot stop its children, and a spawned child does not die
    with its parent: it would keep the solver's memory for good. A thread (the solver releases
    the GIL) sees the child re-parented and exits; a parent-death signal would not do, since
    Linux sends it when the thread that started the child ends, not the process.
    """
    os.nice(CHILD_NICENESS)
    threading.Thread(
        target=_exit_when_orphaned, args=(service_pid,), name="ampc-orphan-watch", daemon=True
    ).start()


def _exit_when_orphaned(service_pid: int) -> None:
    while os.getppid() == service_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(EXIT_ORPHANED)


class ChildPool:
    """One child process; `run` awaits a job in it from the event loop.

    With `spare`, a second child is started beside it and made ready with `spare()` (e.g. the
    imports a job needs): a restart then swaps the spare in at once instead of starting and
    importing anew, and starts the next spare.
    """

    def __init__(self, spare: Callable[[], object] | None = None) -> None:
        self._pool = self._new_pool()
        self._running = 0
        self._prepare = spare
        self._spare: concurrent.futures.ProcessPoolExecutor | None = None
        self.spare_ready: concurrent.futures.Future[object] | None = None
        """The spare's preparation (its result is `spare()`'s), None without a spare."""
        self._closed = False

    @staticmethod
    def _new_pool() -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_child,
            initargs=(os.getpid(),),
        )

    @property
    def busy(self) -> bool:
        return self._running > 0

    async def run(self, timeout_s: float, fn: Any, *args: Any) -> Any:
        """`fn(*args)` in the child; a job that takes longer than `timeout_s` is abandoned and
        the child replaced (a stuck solver does not stop on a polite request)."""
        pool = self._pool
        try:
            if not self._alive(pool):  # seen before the executor itself may have noticed
                raise concurrent.futures.process.BrokenProcessPool("the child process died")
            future = pool.submit(fn, *args)
        except concurrent.futures.process.BrokenProcessPool:
            # The idle child died (killed for memory, say): nothing was lost, start another.
            log.error("the child process had died; restarting it")
            self._replace(pool)
            pool = self._pool
            future = pool.submit(fn, *args)
        self._running += 1
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except TimeoutError:
            log.error("a job in the child process overran %.0f s; restarting it", timeout_s)
            self._replace(pool)
            raise
        except concurrent.futures.process.BrokenProcessPool:
            if pool is self._pool:  # else `restart` ended it on purpose
                log.error("the child process died; restarting it")
            self._replace(pool)
            raise
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                # The job was dropped by `restart`, not this task cancelled: an error to handle.
                name = getattr(fn, "__name__", fn)
                raise ChildRestarted(f"{name} dropped: the child process was restarted") from None
            raise
        finally:
            self._running -= 1

    def _replace(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        """Restart, unless the pool that failed was replaced already: an old job's failure
        must not kill the jobs of the pool that replaced it."""
        if pool is self._pool:
            self.restart()

    def start_spare(self) -> None:
        """Start the spare child (if this pool keeps one and has none running)."""
        if self._prepare is None or self._spare is not None or self._closed:
            return
        self._spare = self._new_pool()
        self.spare_ready = self._spare.submit(self._prepare)  # spawns it and prepares it

    def _spare_usable(self) -> bool:
        """Whether the spare is alive and its preparation did not fail (it may still run)."""
        spare, ready = self._spare, self.spare_ready
        if spare is None or not self._alive(spare):
            return False
        failed = ready is not None and ready.done() and (ready.cancelled() or ready.exception())
        return not failed

    @staticmethod
    def _alive(pool: concurrent.futures.ProcessPoolExecutor) -> bool:
        """Whether no child of the pool has died (the executor notices a dead worker a moment
        later; the process itself knows at once)."""
        if getattr(pool, "_broken", False):
            return False
        # a copy in one step: the executor's own thread changes the dict
        processes = list((getattr(pool, "_processes", None) or {}).values())
        return all(process.is_alive() for process in processes)

    @staticmethod
    def _end(pool: concurrent.futures.ProcessPoolExecutor) -> None:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def restart(self) -> None:
        if self._closed:
            return
        self._end(self._pool)
        if self._spare is not None and self._spare_usable():
            self._pool = self._spare
        else:
            if self._spare is not None:  # died idle, or its preparation failed
                self._end(self._spare)
            self._pool = self._new_pool()
        self._spare = None
        self.start_spare()

    def close(self) -> None:
        """End the child (and the spare) at once, a job in progress with it."""
        self._closed = True
        self._end(self._pool)
        if self._spare is not None:
            self._end(self._spare)
