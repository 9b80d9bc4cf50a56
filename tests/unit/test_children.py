"""The child process for heavy work: below the service's CPU priority, restarted cleanly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from ampc.platform.children import CHILD_NICENESS, ChildPool, ChildRestarted

pytestmark = pytest.mark.unit


async def test_the_child_process_is_niced_below_the_service() -> None:
    pool = ChildPool()
    try:
        child = await pool.run(10.0, os.nice, 0)  # os.nice(0) reads the niceness
        assert not pool.busy
    finally:
        pool.close()
    assert child == min(19, os.nice(0) + CHILD_NICENESS)


async def test_a_restart_fails_the_old_jobs_and_spares_the_new_pool() -> None:
    pool = ChildPool()
    try:
        await pool.run(30.0, os.getpid)  # the child is up
        running = asyncio.create_task(pool.run(30.0, time.sleep, 20))
        queued = asyncio.create_task(pool.run(30.0, time.sleep, 20))
        await asyncio.sleep(0.5)
        assert pool.busy
        pool.restart()  # e.g. the planner lost its role mid-solve
        # A job submitted to the new pool right away is not killed by the old jobs' failures.
        fresh = asyncio.create_task(pool.run(30.0, os.getpid))
        outcomes = await asyncio.gather(running, queued, return_exceptions=True)
        # Errors the planner handles, never a CancelledError that would end its task.
        assert all(isinstance(o, BrokenProcessPool | ChildRestarted) for o in outcomes), outcomes
        assert isinstance(await fresh, int)
        assert not pool.busy
    finally:
        pool.close()


async def _ready_spare(pool: ChildPool) -> object:
    """Start the pool's spare and wait until it is prepared; its preparation's result."""
    pool.start_spare()
    assert pool.spare_ready is not None
    return await asyncio.wrap_future(pool.spare_ready)


async def test_a_restart_swaps_in_the_spare_child_already_prepared() -> None:
    pool = ChildPool(spare=os.getpid)  # "preparing" a child here: telling its pid
    try:
        first = await pool.run(30.0, os.getpid)
        spare = await _ready_spare(pool)
        assert spare != first
        pool.restart()
        assert await pool.run(30.0, os.getpid) == spare  # no start-up: the spare took over
        assert pool.spare_ready is not None  # and the next spare is on its way
        assert await asyncio.wrap_future(pool.spare_ready) not in (first, spare)
    finally:
        pool.close()


async def test_a_pool_without_a_spare_starts_a_fresh_child_on_restart() -> None:
    pool = ChildPool()
    try:
        first = await pool.run(30.0, os.getpid)
        pool.start_spare()
        assert pool.spare_ready is None
        pool.restart()
        assert await pool.run(30.0, os.getpid) != first
    finally:
        pool.close()


def _kill_children(pool: ChildPool, which: str) -> None:
    for process in list(getattr(pool, which)._processes.values()):
        process.kill()
        process.join(10)


async def test_a_spare_that_died_idle_is_not_swapped_in(caplog: pytest.LogCaptureFixture) -> None:
    pool = ChildPool(spare=os.getpid)
    try:
        await pool.run(30.0, os.getpid)
        spare = await _ready_spare(pool)
        _kill_children(pool, "_spare")  # e.g. killed for memory while it waited
        pool.restart()
        assert await pool.run(30.0, os.getpid) != spare  # a fresh child, not the dead one
        assert "had died" not in caplog.text  # known dead at the restart, not at the next job
    finally:
        pool.close()


async def test_a_child_that_died_idle_is_replaced_on_the_next_job() -> None:
    pool = ChildPool()
    try:
        first = await pool.run(30.0, os.getpid)
        _kill_children(pool, "_pool")
        assert await pool.run(30.0, os.getpid) != first
    finally:
        pool.close()


async def test_close_ends_a_running_job_and_starts_no_spare() -> None:
    pool = ChildPool(spare=os.getpid)
    running = asyncio.create_task(pool.run(30.0, time.sleep, 20))
    await asyncio.sleep(1.0)
    pool.close()
    with pytest.raises((BrokenProcessPool, ChildRestarted)):
        await running
    pool.restart()  # e.g. a deactivation after the service closed its solver
    pool.start_spare()
    assert pool.spare_ready is None


_SERVICE = """
import asyncio, os, sys, time
from ampc.platform.children import ChildPool

async def main() -> None:
    pool = ChildPool(spare=os.getpid)
    pool.start_spare()
    child = await pool.run(60.0, os.getpid)
    spare = await asyncio.wrap_future(pool.spare_ready)
    print(child, spare, flush=True)
    time.sleep(600)

asyncio.run(main())
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] in "ZX"  # a zombie has ended
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_children_end_when_their_service_is_killed() -> None:
    service = subprocess.Popen([sys.executable, "-c", _SERVICE], stdout=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None
        children = [int(pid) for pid in service.stdout.readline().split()]
        assert len(children) == 2 and not any(_gone(pid) for pid in children)
    finally:
        service.kill()  # SIGKILL: the service can clean nothing up
        service.wait()
    deadline = time.monotonic() + 15
    while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(pid) for pid in children)
