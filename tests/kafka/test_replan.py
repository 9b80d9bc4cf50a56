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
    wait_for_plan,
)
from tests.kafka.scenario_events import week
from tests.replan_world import demand_event, world

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
    await send(settings, [("CZ", demand_event("D-1", quantity=1500, due=2))])
    plans = await wait_for_plan(
        settings, lambda ps: any(any(d.demand_id == "D-1" for d in p.demands) for p in ps)
    )
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
    assert any("CZ-VLASIM" in order_id for order_id in moved)
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
