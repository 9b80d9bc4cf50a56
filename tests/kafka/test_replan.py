"""The optimizer service against the real broker: urgent demand to plan and orders, disruption,
coalescing, what-if, replay."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from ampc.contract import events as ev
from ampc.optimizer.checker import check_plan
from ampc.platform.processes import ServiceProcess
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.replan.replay import replay
from ampc.settings import Settings
from tests.kafka.records import read_all
from tests.kafka.replan_helpers import (
    events_of,
    outlook,
    replan_settings,
    send,
    settled_plans,
    wait_for_plan,
)
from tests.kafka.scenario_events import week
from tests.replan_world import demand_event, plant_fire, world

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

Services = Callable[..., ServiceProcess]


async def start_stack(settings: Settings, services: Services) -> None:
    await apply_topics(settings.bootstrap_servers or "", TopicRegistry(settings).specs)
    services("gateway", settings)
    services("ledger", settings)
    services("optimizer", settings)


def http_body(request: urllib.request.Request, timeout: float) -> bytes:
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
        return body


async def orders_for(settings: Settings, nations: list[str]) -> list[ev.Event]:
    registry = TopicRegistry(settings)
    records = await read_all(
        settings.bootstrap_servers or "", [registry.orders(n) for n in nations]
    )
    return events_of(records)


async def test_urgent_demand_gets_a_plan_and_production_orders(
    test_settings: Settings, services: Services
) -> None:
    settings = replan_settings(test_settings)
    await start_stack(settings, services)
    await send(settings, world())
    await send(settings, [("CZ", demand_event("D-URGENT", quantity=3000, due=3))])

    plans = await wait_for_plan(
        settings,
        lambda ps: any(p.demands and any(d.demand_id == "D-URGENT" for d in p.demands) for p in ps),
    )
    plan = next(p for p in plans if any(d.demand_id == "D-URGENT" for d in p.demands))
    served = outlook(plan, "D-URGENT")
    assert served.planned == 3000 and served.shortfall == 0
    assert plan.solver_status in (ev.SolverStatus.OPTIMAL, ev.SolverStatus.FEASIBLE)
    assert plan.input_offsets and plan.snapshot_sha256

    orders = await orders_for(settings, ["CZ", "PL"])
    issued = [o for o in orders if isinstance(o, ev.ProductionOrderIssued)]
    assert issued, "the plan issued no production orders"
    for_demand = sum(
        ref.quantity for o in issued for ref in o.demand_refs if ref.demand_id == "D-URGENT"
    )
    assert for_demand == 3000
    # The cheaper Czech line is preferred where it can make the rounds in time.
    assert {o.plant_id for o in issued} <= {"CZ-VLASIM", "PL-NIWKA"}
    assert all(o.week <= week(3) for o in issued)

    # Replay from the recorded offsets: the same snapshot (digest), the same plan; the checker
    # passes it (and so the plan that was published).
    result = await replay(settings, plan.version)
    assert result.digest_matches, result.differences
    assert result.same, result.differences
    assert result.plan is not None
    report = check_plan(result.snapshot, result.plan)
    assert report.ok, report.violations[:5]


async def test_what_if_over_http_changes_nothing_published(
    test_settings: Settings, services: Services
) -> None:
    settings = replan_settings(test_settings)
    await start_stack(settings, services)
    await send(settings, world())
    await send(settings, [("CZ", demand_event("D-1", quantity=6000, due=8))])
    # Inboxes are not ordered with each other: wait for a plan that knows both plants, then
    # until the planner has planned every trigger (later plans are not the what-if's doing).
    await wait_for_plan(
        settings, lambda ps: any({a.source_id for a in p.allocations} >= {"CZ-L1"} for p in ps)
    )
    plans = await settled_plans(settings)
    changes = {
        "changes": [
            {
                "kind": "plant_down",
                "plant_id": "CZ-VLASIM",
                "from_week": week(0).isoformat(),
                "to_week": week(11).isoformat(),
            }
        ]
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.optimizer_port}/whatif?time_limit=10",
        data=json.dumps(changes).encode(),
        method="POST",
    )
    answer = json.loads(await asyncio.to_thread(http_body, request, 180))
    assert answer["base"]["coverage"] == pytest.approx(1.0)
    moved = {m["order_id"] for m in answer["orders_that_would_move"]}
    assert any("CZ-VLASIM" in order_id for order_id in moved), answer
    assert answer["changed"]["objective"]["cost_cents"] > answer["base"]["objective"]["cost_cents"]

    bad = urllib.request.Request(
        f"http://127.0.0.1:{settings.optimizer_port}/whatif",
        data=b'{"changes": [{"kind": "plant_down", "plant_id": "NOPE"}]}',
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(http_body, bad, 60)
    assert refused.value.code == 400

    after = await read_all(settings.bootstrap_servers or "", [TopicRegistry(settings).plans])
    assert len(after) == len(plans), "a what-if published a plan"


async def test_a_disruption_re_plans_around_it_and_frozen_orders_do_not_move(
    test_settings: Settings, services: Services
) -> None:
    settings = replan_settings(test_settings)
    await start_stack(settings, services)
    await send(settings, [*world(), ("CZ", demand_event("D-1", 12_000, due=7, priority="HIGH"))])
    first = (
        await wait_for_plan(
            settings, lambda ps: any(any(d.demand_id == "D-1" for d in p.demands) for p in ps)
        )
    )[-1]
    frozen_end = week(2)
    frozen_first = sorted(
        (a.source_id, a.production_week, a.demand_id, a.quantity)
        for a in first.allocations
        if a.production_week < frozen_end
    )
    assert any(source == "CZ-L1" for source, *_ in frozen_first)

    await send(settings, [("CZ", plant_fire("fire in the filling hall"))])
    plans = await wait_for_plan(settings, lambda ps: any("disrupted" in p.trigger for p in ps))
    second = next(p for p in plans if "disrupted" in p.trigger)
    assert second.version > first.version
    frozen_second = sorted(
        (a.source_id, a.production_week, a.demand_id, a.quantity)
        for a in second.allocations
        if a.production_week < frozen_end
        and (a.source_id, a.production_week) in {(s, w) for s, w, *_ in frozen_first}
    )
    assert frozen_second == frozen_first
    assert not [
        a for a in second.allocations if a.source_id == "CZ-L1" and a.production_week >= frozen_end
    ]

    orders = await orders_for(settings, ["CZ", "PL"])
    moved = [
        o for o in orders if isinstance(o, ev.ProductionOrderRevised | ev.ProductionOrderCancelled)
    ]
    assert moved, "the disruption moved no order"
    issued_weeks = {o.order_id: o.week for o in orders if isinstance(o, ev.ProductionOrderIssued)}
    assert all(issued_weeks[o.order_id] >= frozen_end for o in moved)
    assert any(
        isinstance(o, ev.ProductionOrderCancelled) and o.plant_id == "CZ-VLASIM" for o in moved
    )


async def test_a_burst_of_routine_demands_costs_a_handful_of_solves(
    test_settings: Settings, services: Services
) -> None:
    settings = replan_settings(test_settings, replan_window_s=2.0)
    await start_stack(settings, services)
    await send(settings, world())
    burst = [
        ("CZ", demand_event(f"D-{n:03d}", 100, due=4 + n % 6, priority="ROUTINE"))
        for n in range(200)
    ]
    await send(settings, burst)
    plans = await wait_for_plan(
        settings, lambda ps: any(len(p.demands) == 200 for p in ps), timeout_s=180
    )
    assert 1 <= len(plans) <= 5, [p.trigger for p in plans]
    assert [p.version for p in plans] == list(range(1, len(plans) + 1))
