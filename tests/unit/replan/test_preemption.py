"""A routine solve is abandoned when an urgent trigger arrives, not waited for."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from ampc.ledger.state import EntityKind
from ampc.platform.children import ChildRestarted
from ampc.replan import service as service_module
from ampc.replan.service import OptimizerService
from ampc.replan.solving import Preempted, unless_preempted
from ampc.replan.triggers import Trigger, TriggerKind
from ampc.settings import Settings

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
    assert child.restarted.is_set()
    assert child.ended


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


# ------------------------------------------------------------------ in the planner


class _Solver:
    """The planner's solver pool: a re-plan that runs until told to fail or restarted."""

    def __init__(self) -> None:
        self.child = _Child()
        self.started = 0
        self.restarts = 0

    async def replan(self, job: object) -> object:
        self.started += 1
        await self.child.solve()
        raise RuntimeError("this test never publishes")

    def restart(self) -> None:
        self.restarts += 1
        self.child.restart()


def _trigger(n: int, urgent: bool) -> Trigger:
    return Trigger(
        trigger_id=f"t{n}",
        kind=TriggerKind.EVENT,
        urgent=urgent,
        reason=f"trigger {n}",
        created_at=dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
    )


def _planner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **settings: Any) -> OptimizerService:
    service = OptimizerService(
        Settings(bootstrap_servers="127.0.0.1:9", data_dir=tmp_path, **settings)
    )
    solver = _Solver()
    service.solver = solver  # type: ignore[assignment]
    service.active = True

    async def nothing(*args: object) -> None:
        return None

    monkeypatch.setattr(service, "_await_state", nothing)
    monkeypatch.setattr(service, "_publish_alerts", nothing)
    everything = {kind: {"x": object()} for kind in EntityKind}
    monkeypatch.setattr(service_module, "states_of", lambda replica, registry: everything)
    return service


def _preempted() -> float:
    return REGISTRY.get_sample_value("ampc_optimizer_preempted_total") or 0.0


async def test_a_routine_replan_is_abandoned_and_its_triggers_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = _planner(monkeypatch, tmp_path)
    solver: Any = service.solver
    batch = [(7, _trigger(7, urgent=False)), (8, _trigger(8, urgent=False))]
    before = _preempted()
    replanning = asyncio.create_task(service._replan(batch, service.generation))
    await asyncio.sleep(0.01)
    assert solver.started == 1
    service.coalescer.add(9, _trigger(9, urgent=True), 0.0)  # as the trigger reader does
    service.urgent_waiting.set()
    await replanning
    assert solver.restarts == 1
    assert _preempted() == before + 1
    # planned next, all three together, at once (an urgent one is among them)
    assert sorted(offset for offset, _ in service.coalescer.take()) == [7, 8, 9]


async def test_an_urgent_trigger_during_the_state_wait_starts_no_solve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = _planner(monkeypatch, tmp_path)
    solver: Any = service.solver
    service.urgent_waiting.set()
    await service._replan([(7, _trigger(7, urgent=False))], service.generation)
    assert (solver.started, solver.restarts) == (0, 0)
    assert [offset for offset, _ in service.coalescer.take()] == [7]


@pytest.mark.parametrize(
    ("urgent_batch", "preempt"), [(True, True), (False, False)], ids=["urgent", "switched-off"]
)
async def test_no_abandoning_an_urgent_batch_or_with_preemption_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, urgent_batch: bool, preempt: bool
) -> None:
    service = _planner(monkeypatch, tmp_path, replan_preempt=preempt)
    solver: Any = service.solver
    replanning = asyncio.create_task(
        service._replan([(7, _trigger(7, urgent=urgent_batch))], service.generation)
    )
    await asyncio.sleep(0.01)
    service.urgent_waiting.set()
    await asyncio.sleep(0.01)
    assert not replanning.done()  # still solving: not abandoned
    solver.child.finish.set()  # the solve ends (here with an error: nothing to publish)
    await replanning
    assert solver.restarts == 0


async def test_an_abandoned_replan_of_a_lost_role_keeps_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = _planner(monkeypatch, tmp_path)
    replanning = asyncio.create_task(
        service._replan([(7, _trigger(7, urgent=False))], service.generation)
    )
    await asyncio.sleep(0.01)
    service.generation += 1  # deactivated meanwhile: the next holder reads the triggers again
    service.urgent_waiting.set()
    await replanning
    assert service.coalescer.take() == []


async def test_a_batch_waiting_for_state_when_the_role_changed_is_dropped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = _planner(monkeypatch, tmp_path)
    solver: Any = service.solver
    state_shown = asyncio.Event()

    async def state_wait(*args: object) -> None:
        await state_shown.wait()

    monkeypatch.setattr(service, "_await_state", state_wait)
    replanning = asyncio.create_task(
        service._replan([(7, _trigger(7, urgent=False))], service.generation)
    )
    await asyncio.sleep(0.01)
    service.generation += 2  # lost and regained the role: the new holder re-reads from its offset
    service.urgent_waiting.set()
    state_shown.set()
    await replanning
    assert service.coalescer.take() == []
    assert solver.started == 0
