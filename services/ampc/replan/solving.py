"""Solving off the event loop: the optimizer runs in a child process, so heartbeats, replicas
and HTTP answers never wait for a solve. The child also reads and writes the (large) plans:
see `jobs`.

The child is started with `spawn` (a fork of a process with live Kafka clients and an event loop
is not safe) and imports the optimizer once; a solve that overruns its time limit by far is
ended by replacing the pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
from typing import Any

from ampc.contract.events import PlanPublished
from ampc.replan.jobs import (
    ReplanJob,
    ReplanOutcome,
    WhatIfJob,
    plan_head,
    replan,
    what_if_answer,
)
from ampc.replan.plans_topic import RawPlan

log = logging.getLogger(__name__)

GRACE_S = 60.0
"""Beyond the solver's own time limit, how long a solve may take before it is abandoned."""


SOLVER_NICENESS = 10
"""How much lower the solver's CPU priority is than the service's: on a busy machine a solve
that takes every core otherwise starves the service's event loop (heartbeats, HTTP) of the CPU
for a quarter second and more; niced, it only takes what the others leave."""


class SolverRestarted(Exception):
    """The job was dropped because the solver process was restarted under it."""


def _lower_priority() -> None:
    os.nice(SOLVER_NICENESS)


def _warm_up() -> bool:
    import ampc.optimizer.planner  # noqa: F401  (the first import costs about a second)

    return True


class SolverPool:
    """One child process that solves and decodes plans; its jobs are awaited from the event
    loop."""

    def __init__(self) -> None:
        self._pool = self._new_pool()
        self._running = 0

    @staticmethod
    def _new_pool() -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_lower_priority,
        )

    async def warm_up(self) -> None:
        await asyncio.wrap_future(self._pool.submit(_warm_up))

    @property
    def busy(self) -> bool:
        return self._running > 0

    async def _run(self, limit_s: float, fn: Any, *args: Any) -> Any:
        pool = self._pool
        future = pool.submit(fn, *args)
        self._running += 1
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), limit_s + GRACE_S)
        except TimeoutError:
            log.error("a solve overran its time limit by %.0f s; restarting the solver", GRACE_S)
            self._replace(pool)
            raise
        except concurrent.futures.process.BrokenProcessPool:
            if pool is self._pool:  # else `restart` ended it on purpose
                log.error("the solver process died; restarting it")
            self._replace(pool)
            raise
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                # The job was dropped by `restart`, not this task cancelled: an error to handle.
                name = getattr(fn, "__name__", fn)
                raise SolverRestarted(f"{name} dropped: the solver was restarted") from None
            raise
        finally:
            self._running -= 1

    def _replace(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        """Restart, unless the pool that failed was replaced already: an old job's failure
        must not kill the jobs of the pool that replaced it."""
        if pool is self._pool:
            self.restart()

    async def replan(self, job: ReplanJob) -> ReplanOutcome:
        outcome: ReplanOutcome = await self._run(job.settings.time_limit_seconds, replan, job)
        return outcome

    async def what_if(self, job: WhatIfJob) -> bytes:
        body: bytes = await self._run(2 * job.settings.time_limit_seconds, what_if_answer, job)
        return body

    async def plan_head(self, raw: RawPlan) -> tuple[PlanPublished, int] | None:
        """The head of a plan record and its number of allocations (decoded in the child)."""
        found = await self._run(0.0, plan_head, raw)
        if found is None:
            return None
        head_json, allocations = found
        return PlanPublished.model_validate_json(head_json), allocations

    def restart(self) -> None:
        old = self._pool
        for process in list(getattr(old, "_processes", {}).values()):
            process.kill()  # a stuck solver does not stop on a polite request
        old.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
