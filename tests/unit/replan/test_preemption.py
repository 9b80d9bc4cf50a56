"""A routine solve is abandoned when an urgent trigger arrives, not waited for."""

from __future__ import annotations

import asyncio

import pytest

from ampc.platform.children import ChildRestarted
from ampc.replan.solving import Preempted, unless_preempted

pytestmark = pytest.mark.unit


class _Child:
    """A solve that runs until it finishes or the child process is restarted under it."""

    def __init__(self) -> None:
        self.finish = asyncio.Event()
        self.restarted = asyncio.Event()
        self.ended = False

    async def solve(self) -> str:
        try:
            finished = asyncio.ensure_future(self.finish.wait())
            restarted = asyncio.ensure_future(self.restarted.wait())
            await asyncio.wait({finished, restarted}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            restarted.cancel()
            if self.restarted.is_set():
                raise ChildRestarted("replan dropped: the child process was restarted")
            return "plan"
        finally:
            self.ended = True

    def restart(self) -> None:
        self.restarted.set()


async def test_a_solve_that_ends_first_gives_its_plan() -> None:
    child, urgent = _Child(), asyncio.Event()
    running = asyncio.ensure_future(unless_preempted(child.solve(), urgent, child.restart))
    await asyncio.sleep(0)
    child.finish.set()
    assert await running == "plan"
    assert not child.restarted.is_set()


async def test_an_urgent_trigger_abandons_the_solve() -> None:
    child, urgent = _Child(), asyncio.Event()
    running = asyncio.ensure_future(unless_preempted(child.solve(), urgent, child.restart))
    await asyncio.sleep(0)
    urgent.set()
    with pytest.raises(Preempted):
        await running
    assert child.restarted.is_set()
    assert child.ended  # the abandoned solve is over before the caller plans again


async def test_an_urgent_trigger_already_waiting_abandons_at_once() -> None:
    child, urgent = _Child(), asyncio.Event()
    urgent.set()
    with pytest.raises(Preempted):
        await unless_preempted(child.solve(), urgent, child.restart)


async def test_a_failed_solve_raises_its_own_error() -> None:
    async def failing() -> str:
        raise RuntimeError("solver died")

    with pytest.raises(RuntimeError, match="solver died"):
        await unless_preempted(failing(), asyncio.Event(), lambda: None)


async def test_cancelling_the_caller_cancels_the_solve() -> None:
    child, urgent = _Child(), asyncio.Event()
    running = asyncio.ensure_future(unless_preempted(child.solve(), urgent, child.restart))
    await asyncio.sleep(0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.sleep(0)
    assert child.ended
