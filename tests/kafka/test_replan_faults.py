"""Re-planning when things go wrong: the active planner killed, a plant behind its plan."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request
from collections.abc import Callable

import pytest

from ampc.contract import events as ev
from ampc.platform.broker import free_port
from ampc.platform.processes import ServiceProcess
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings
from tests.kafka.records import read_until
from tests.kafka.replan_helpers import events_of, replan_settings, send, wait_for_plan
from tests.kafka.scenario_events import week
from tests.replan_world import demand_event, world

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

Services = Callable[..., ServiceProcess]


def readiness(port: int) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            answer: dict[str, object] = json.loads(response.read())
            return answer
    except OSError:
        return {}


async def active_one(ports: dict[str, int], timeout_s: float = 60) -> str:
    """The name of the instance that says it is the active planner."""
    for _ in range(int(timeout_s * 2)):
        answers = {name: await asyncio.to_thread(readiness, port) for name, port in ports.items()}
        active = [name for name, answer in answers.items() if answer.get("active")]
        if len(active) == 1:
            return active[0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"no single active planner: {answers}")


def mentions(plan: ev.PlanPublished, demand_id: str) -> bool:
    return any(d.demand_id == demand_id for d in plan.demands)


async def test_the_standby_takes_over_when_the_active_planner_is_killed(
    test_settings: Settings, services: Services
) -> None:
    settings = replan_settings(test_settings)
    await apply_topics(settings.bootstrap_servers or "", TopicRegistry(settings).specs)
    services("gateway", settings)
    services("ledger", settings)
    second = settings.model_copy(update={"optimizer_port": free_port()})
    planners = {
        "a": services("optimizer", settings, log_name="optimizer-a"),
        "b": services("optimizer", second, log_name="optimizer-b"),
    }
    ports = {"a": settings.optimizer_port, "b": second.optimizer_port}
    await send(settings, [*world(), ("CZ", demand_event("D-1", 2000, due=4))])
    await wait_for_plan(settings, lambda ps: any(mentions(p, "D-1") for p in ps))
    active = await active_one(ports)
    standby = "b" if active == "a" else "a"

    planners[active].kill9()
    await send(settings, [("PL", demand_event("D-2", 1500, due=5, requested_by="PL"))])
    plans = await wait_for_plan(
        settings, lambda ps: any(mentions(p, "D-2") for p in ps), timeout_s=90
    )
    assert await active_one({standby: ports[standby]}) == standby
    versions = [p.version for p in plans]
    assert versions == list(range(1, len(versions) + 1)), "a plan version is missing or doubled"
    # The trigger of D-2 was planned once: exactly one plan names it as (part of) its trigger.
    assert sum("D-2" in p.trigger for p in plans) <= 1
    assert (
        sum(
            mentions(p, "D-2") and not mentions(prev, "D-2")
            for prev, p in itertools.pairwise(plans)
        )
        == 1
    )
    served = next(d for d in plans[-1].demands if d.demand_id == "D-2")
    assert served.shortfall == 0


async def test_a_plant_behind_plan_raises_the_alert_and_a_re_plan(
    test_settings: Settings, services: Services
) -> None:
    settings = replan_settings(test_settings)
    registry = TopicRegistry(settings)
    await apply_topics(settings.bootstrap_servers or "", registry.specs)
    for name in ("gateway", "ledger", "optimizer", "tracker"):
        services(name, settings)
    await send(settings, [*world(), ("CZ", demand_event("D-1", 12_000, due=7, priority="HIGH"))])
    first = (await wait_for_plan(settings, lambda ps: any(mentions(p, "D-1") for p in ps)))[-1]
    planned_week0 = sum(
        a.quantity
        for a in first.allocations
        if a.source_id == "CZ-L1" and a.production_week == week(0)
    )
    assert planned_week0 > 0

    made = planned_week0 // 4
    report = ev.ProductionReported(
        report_id="R-1",
        plant_id="CZ-VLASIM",
        nation="CZ",
        line_id="CZ-L1",
        product="155-HE",
        week=week(0),
        quantity=made,
    )
    await send(settings, [("CZ", report)])
    alerts = await read_until(
        settings.bootstrap_servers or "",
        [registry.alerts],
        lambda rs: any(
            isinstance(a, ev.AlertRaised) and a.kind is ev.AlertKind.PLANT_BEHIND_PLAN
            for a in events_of(rs)
        ),
        timeout_s=90,
    )
    behind = next(
        a
        for a in events_of(alerts)
        if isinstance(a, ev.AlertRaised) and a.kind is ev.AlertKind.PLANT_BEHIND_PLAN
    )
    assert behind.subject_id == "CZ-VLASIM"
    assert behind.values["reported_rounds"] == made

    plans = await wait_for_plan(
        settings, lambda ps: any("behind" in p.trigger for p in ps), timeout_s=90
    )
    replanned = next(p for p in plans if "behind" in p.trigger)
    made_week0 = sum(
        a.quantity
        for a in replanned.allocations
        if a.source_id == "CZ-L1" and a.production_week == week(0)
    )
    assert made_week0 == made  # the re-plan counts what was made, not what was planned
