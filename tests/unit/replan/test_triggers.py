"""Which events trigger a re-plan, which are urgent, and how routine ones are coalesced."""

from __future__ import annotations

import datetime as dt

import pytest

from ampc.contract import events as ev
from ampc.contract.types import Priority
from ampc.replan.triggers import (
    Coalescer,
    Trigger,
    TriggerKind,
    describe,
    requested,
    trigger_for,
)
from tests.kafka.scenario_events import every_family
from tests.replan_world import demand_event

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def triggered(event: ev.Event, priority: Priority | None = None) -> Trigger | None:
    return trigger_for(
        event,
        event_id="e-1",
        source="ampc.events.demand:0",
        offset=7,
        now=NOW,
        priority_of=lambda _demand_id: priority,
    )


def routine(n: int) -> Trigger:
    return Trigger(
        trigger_id=f"t{n}", kind=TriggerKind.EVENT, urgent=False, reason=f"r{n}", created_at=NOW
    )


def test_urgent_demands_and_disruptions_are_urgent_routine_ones_wait() -> None:
    urgent = triggered(demand_event("D-1", 100, due=3, priority="URGENT"))
    assert urgent is not None and urgent.urgent
    assert urgent.awaits[0].entity_id == "D-1" and urgent.awaits[0].offset == 7
    high = triggered(demand_event("D-2", 100, due=3, priority="HIGH"))
    assert high is not None and not high.urgent
    disruption = next(e for _, e in every_family() if isinstance(e, ev.PlantDisrupted))
    hit = triggered(disruption)
    assert hit is not None and hit.urgent and "disrupted" in hit.reason


def test_amending_or_cancelling_an_urgent_demand_is_urgent_by_its_current_priority() -> None:
    amended = ev.DemandAmended(demand_id="D-1", requested_by="CZ", quantity=5)
    assert not triggered(amended, Priority.ROUTINE).urgent  # type: ignore[union-attr]
    assert triggered(amended, Priority.URGENT).urgent  # type: ignore[union-attr]
    cancelled = ev.DemandCancelled(demand_id="D-1", requested_by="CZ", reason="covered")
    assert triggered(cancelled, Priority.URGENT).urgent  # type: ignore[union-attr]


def test_events_that_cannot_change_the_plan_trigger_nothing() -> None:
    silent = {type(e).__name__ for _, e in every_family() if triggered(e) is None}
    assert silent == {
        "PoolOpened",
        "ContributionPledged",
        "ProductionReported",
        "ShipmentDispatched",
        "ShipmentDelivered",
    }


def test_routine_triggers_wait_for_the_window_an_urgent_one_goes_at_once() -> None:
    coalescer = Coalescer(window_s=2.0)
    assert coalescer.deadline() is None and not coalescer.due(100.0)
    coalescer.add(0, routine(0), now=100.0)
    coalescer.add(1, routine(1), now=101.5)
    assert coalescer.deadline() == 102.0
    assert not coalescer.due(101.9)
    assert coalescer.due(102.0)
    urgent = routine(2).model_copy(update={"urgent": True, "reason": "URGENT demand D-9"})
    coalescer.add(2, urgent, now=101.6)
    assert coalescer.due(101.6)
    batch = coalescer.take()
    assert [offset for offset, _ in batch] == [0, 1, 2]
    assert describe(batch) == "URGENT demand D-9 and 2 more"
    assert coalescer.pending == 0 and coalescer.deadline() is None


def test_a_burst_of_two_hundred_routine_triggers_is_one_solve() -> None:
    coalescer = Coalescer(window_s=1.0)
    solves = 0
    for n in range(200):
        now = n * 0.005  # 200 triggers in one second
        coalescer.add(n, routine(n), now)
        if coalescer.due(now):
            coalescer.take()
            solves += 1
    if coalescer.due(2.0):
        coalescer.take()
        solves += 1
    assert solves == 1


def test_a_trigger_survives_its_own_serialisation() -> None:
    trigger = triggered(demand_event("D-1", 100, due=3))
    assert trigger is not None
    assert Trigger.load(trigger.dump()) == trigger
    assert trigger.awaits[0].source == "ampc.events.demand:0"


def test_an_operator_request_is_urgent_and_names_the_state_it_needs() -> None:
    request = requested("after the scenario", {"ampc.state.pools:0": 42}, NOW)
    assert request.urgent and request.kind is TriggerKind.MANUAL
    assert Trigger.load(request.dump()).state_offsets == {"ampc.state.pools:0": 42}
    coalescer = Coalescer(window_s=60)
    coalescer.add(5, request, now=10.0)
    assert coalescer.due(10.0)
