"""Shared pieces of the re-planning integration tests: a small world, settings, plan readers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ampc.contract import events as ev
from ampc.contract.envelope import decode, encode
from ampc.platform.broker import free_port
from ampc.platform.topics import TopicRegistry
from ampc.replan.plans_topic import PLAN_BYTES
from ampc.replan.requests import wait_until_settled
from ampc.settings import Settings
from tests.kafka.records import Read, produce, read_until
from tests.kafka.scenario_events import WEEK


def replan_settings(settings: Settings, **more: Any) -> Settings:
    """The test's settings with a short horizon that starts at the test world's first week."""
    return settings.model_copy(
        update={
            "optimizer_port": free_port(),
            "tracker_port": free_port(),
            "plan_start_week": WEEK,
            "plan_weeks": 12,
            "frozen_horizon_weeks": 2,
            "replan_window_s": 1.0,
            "replan_time_limit_s": 20.0,
            "state_wait_s": 20.0,
            **more,
        }
    )


async def send(settings: Settings, events: Sequence[tuple[str, ev.Event]]) -> None:
    registry = TopicRegistry(settings)
    await produce(
        settings.bootstrap_servers or "",
        [
            (registry.inbox(party), encode(event, source=f"/nations/{party.lower()}/test"))
            for party, event in events
        ],
    )


def plans_of(records: list[Read]) -> list[ev.PlanPublished]:
    plans = []
    for r in records:
        payload = decode(
            r.key, r.value, list(r.headers.items()), max_payload_bytes=PLAN_BYTES
        ).payload
        assert isinstance(payload, ev.PlanPublished)
        plans.append(payload)
    return plans


def events_of(records: list[Read]) -> list[ev.Event]:
    return [decode(r.key, r.value, list(r.headers.items())).payload for r in records]


async def wait_for_plan(
    settings: Settings,
    done: Any,
    timeout_s: float = 120.0,
) -> list[ev.PlanPublished]:
    """Read the plans topic until `done(plans)` holds; returns every plan read."""
    topic = TopicRegistry(settings).plans
    records = await read_until(
        settings.bootstrap_servers or "",
        [topic],
        lambda rs: bool(done(plans_of(rs))),
        timeout_s=timeout_s,
    )
    return plans_of(records)


async def settled_plans(settings: Settings, timeout_s: float = 120.0) -> list[ev.PlanPublished]:
    """Wait until the planner is idle (`wait_until_settled`); returns every plan published."""
    last = await wait_until_settled(settings, timeout_s)
    return await wait_for_plan(settings, lambda ps: bool(ps) and ps[-1].version >= last.version)


def outlook(plan: ev.PlanPublished, demand_id: str) -> ev.DemandOutlook:
    return next(d for d in plan.demands if d.demand_id == demand_id)
