"""Solving off the event loop: the optimizer runs in a child process, so heartbeats, replicas
and HTTP answers never wait for a solve.

The child is started with `spawn` (a fork of a process with live Kafka clients and an event loop
is not safe) and imports the optimizer once; a solve that overruns its time limit by far is
ended by replacing the pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
from typing import Any

from ampc.optimizer.plan import Plan, SolverSettings
from ampc.optimizer.snapshot import Snapshot
from ampc.optimizer.solve import WarmStart
from ampc.optimizer.whatif import ChangeSet, WhatIf, what_if

log = logging.getLogger(__name__)

GRACE_S = 60.0
"""Beyond the solver's own time limit, how long a solve may take before it is abandoned."""


def _warm_up() -> bool:
    import ampc.optimizer.planner  # noqa: F401  (the first import costs about a second)

    return True


def _solve(
    snapshot_json: str,
    settings_json: str,
    header: dict[str, Any],
    warm_start: WarmStart | None,
) -> tuple[str, WarmStart | None]:
    from ampc.optimizer.planner import solve_snapshot

    plan, warm = solve_snapshot(
        Snapshot.model_validate_json(snapshot_json),
        SolverSettings.model_validate_json(settings_json),
        warm_start=warm_start,
        **header,
    )
    return plan.dump_json(), warm


def _what_if(snapshot_json: str, changes_json: str, settings_json: str) -> str:
    result = what_if(
        Snapshot.model_validate_json(snapshot_json),
        ChangeSet.model_validate_json(changes_json),
        SolverSettings.model_validate_json(settings_json),
    )
    return result.model_dump_json()


class SolverPool:
    """One child process that solves; `solve` and `what_if` are awaited from the event loop."""

    def __init__(self) -> None:
        self._pool = self._new_pool()

    @staticmethod
    def _new_pool() -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )

    async def warm_up(self) -> None:
        await asyncio.wrap_future(self._pool.submit(_warm_up))

    async def _run(self, limit_s: float, fn: Any, *args: Any) -> Any:
        future = self._pool.submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), limit_s + GRACE_S)
        except TimeoutError:
            log.error("a solve overran its time limit by %.0f s; restarting the solver", GRACE_S)
            self.restart()
            raise
        except concurrent.futures.process.BrokenProcessPool:
            log.error("the solver process died; restarting it")
            self.restart()
            raise

    async def solve(
        self,
        snapshot: Snapshot,
        settings: SolverSettings,
        header: dict[str, Any],
        warm_start: WarmStart | None,
    ) -> tuple[Plan, WarmStart | None]:
        plan_json, warm = await self._run(
            settings.time_limit_seconds,
            _solve,
            snapshot.dump_json(),
            settings.model_dump_json(),
            header,
            warm_start,
        )
        # A medium plan is ~1 MB of JSON: parse it off the event loop.
        return await asyncio.to_thread(Plan.model_validate_json, plan_json), warm

    async def what_if(
        self, snapshot: Snapshot, changes: ChangeSet, settings: SolverSettings
    ) -> WhatIf:
        result_json = await self._run(
            2 * settings.time_limit_seconds,
            _what_if,
            snapshot.dump_json(),
            changes.model_dump_json(),
            settings.model_dump_json(),
        )
        return await asyncio.to_thread(WhatIf.model_validate_json, result_json)

    def restart(self) -> None:
        old = self._pool
        for process in list(getattr(old, "_processes", {}).values()):
            process.kill()  # a stuck solver does not stop on a polite request
        old.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
