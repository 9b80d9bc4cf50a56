"""Solving off the event loop: the optimizer runs in a child process, so heartbeats, replicas
and HTTP answers never wait for a solve. The child also reads and writes the (large) plans:
see `jobs`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ampc.contract.events import PlanPublished
from ampc.platform.children import ChildPool
from ampc.replan.jobs import (
    ReplanJob,
    ReplanOutcome,
    WhatIfJob,
    plan_head,
    replan,
    what_if_answer,
)
from ampc.replan.plans_topic import RawPlan

T = TypeVar("T")

GRACE_S = 60.0
"""Beyond the solver's own time limit, how long a solve may take before it is abandoned."""


def _warm_up() -> bool:
    import ampc.optimizer.planner  # noqa: F401  (the first import costs about a second)

    return True


class SolverPool(ChildPool):
    """The optimizer's child process and its jobs. With `keep_spare`, a second child waits
    with the solver imported, so that a restart (an abandoned solve, a lost role, a stuck
    solver) costs no start-up: about a second on this machine (a plan after a restart spent
    1.5 s beside its solver levels against 0.5 s, in the optimizer's log)."""

    def __init__(self, keep_spare: bool = False) -> None:
        super().__init__(spare=_warm_up if keep_spare else None)

    async def warm_up(self) -> None:
        await self.run(GRACE_S, _warm_up)
        self.start_spare()

    async def replan(self, job: ReplanJob) -> ReplanOutcome:
        limit = job.settings.time_limit_seconds + GRACE_S
        outcome: ReplanOutcome = await self.run(limit, replan, job)
        return outcome

    async def what_if(self, job: WhatIfJob) -> bytes:
        limit = 2 * job.settings.time_limit_seconds + GRACE_S
        body: bytes = await self.run(limit, what_if_answer, job)
        return body

    async def plan_head(self, raw: RawPlan) -> tuple[PlanPublished, int] | None:
        """The head of a plan record and its number of allocations (decoded in the child)."""
        found = await self.run(GRACE_S, plan_head, raw)
        if found is None:
            return None
        head_json, allocations = found
        return PlanPublished.model_validate_json(head_json), allocations


class Preempted(Exception):
    """A solve was abandoned because something more urgent arrived."""


async def unless_preempted(
    solve: Awaitable[T], preempt: asyncio.Event, abandon: Callable[[], None]
) -> T:
    """Await `solve`, unless `preempt` is set first: then `abandon()` it (restart the child
    process: a solver does not stop on a polite request), wait for it to end, and raise
    `Preempted`. A solve that ends first, with a result or an error, is returned or raised."""
    solving = asyncio.ensure_future(solve)
    waiting = asyncio.ensure_future(preempt.wait())
    try:
        done, _ = await asyncio.wait({solving, waiting}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        solving.cancel()
        raise
    finally:
        waiting.cancel()
    if solving in done:
        return solving.result()
    abandon()
    with contextlib.suppress(Exception):  # the job dropped with the child, as it should be
        await solving
    raise Preempted
