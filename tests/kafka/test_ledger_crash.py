"""kill -9 of the ledger in the middle of a stream: after a restart the state is the one a clean
run gives (same checksum), nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

import pytest

from ampc.contract import events as ev
from ampc.contract.envelope import encode
from ampc.contract.types import Priority
from ampc.ledger.fold import EventMeta, MemoryStore, apply_event, state_checksum, state_from_json
from ampc.ledger.state import EntityKind, EntityState
from ampc.platform.processes import ServiceProcess
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings
from tests.kafka.records import end_offsets, produce, read_all, read_until
from tests.kafka.scenario_events import demand, week

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

DONORS = ["DK", "NL", "SE", "NO", "FI", "DE", "CA", "PT"]
REQUESTERS = ["CZ", "PL", "DE", "NL", "LT", "EE", "LV", "RO"]


def stream_of_events(demands: int = 600) -> list[tuple[str, str, ev.Event]]:
    """(party, event id, event): pools and their money, demands with two amendments each."""
    events: list[tuple[str, str, ev.Event]] = []
    for p in range(10):
        pool = f"P-{p}"
        events.append(
            ("CZI", f"{pool}-open", ev.PoolOpened(pool_id=pool, owner="CZI", pool_name=pool))
        )
        for donor in DONORS:
            contribution = f"{pool}-{donor}"
            events.append(
                (
                    donor,
                    f"{contribution}-pledge",
                    ev.ContributionPledged(
                        pool_id=pool,
                        contribution_id=contribution,
                        donor=donor,
                        amount_cents=9_000_000,
                    ),
                )
            )
            for part in range(3):
                events.append(
                    (
                        donor,
                        f"{contribution}-pay-{part}",
                        ev.ContributionPaid(
                            pool_id=pool,
                            contribution_id=contribution,
                            donor=donor,
                            amount_cents=1_000_000,
                        ),
                    )
                )
    for i in range(demands):
        requester = REQUESTERS[i % len(REQUESTERS)]
        demand_id = f"D-{i:05d}"
        events.append(
            (
                requester,
                f"{demand_id}-submit",
                demand(demand_id, requested_by=requester, quantity=1000 + i, pool_id=f"P-{i % 10}"),
            )
        )
        events.append(
            (
                requester,
                f"{demand_id}-amend-1",
                ev.DemandAmended(demand_id=demand_id, requested_by=requester, quantity=2000 + i),
            )
        )
        events.append(
            (
                requester,
                f"{demand_id}-amend-2",
                ev.DemandAmended(
                    demand_id=demand_id,
                    requested_by=requester,
                    due_week=week(10 + i % 5),
                    priority=Priority.ROUTINE if i % 3 else Priority.HIGH,
                ),
            )
        )
    return events


States = dict[tuple[EntityKind, str], EntityState]


def clean_run(events: list[tuple[str, str, ev.Event]]) -> States:
    """The state a clean run must reach, folded in memory by the same pure fold."""
    store = MemoryStore()
    for offset, (party, event_id, event) in enumerate(events):
        meta = EventMeta(event_id, party, "clean", 0, offset, dt.datetime.now(dt.UTC))
        apply_event(store, event, meta)
    return {(kind, key): state for kind, key, state in store.items()}


def checksum(states: States) -> str:
    return state_checksum((kind, key, state) for (kind, key), state in states.items())


def differences(expected: States, actual: States, limit: int = 5) -> list[str]:
    lines = []
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key), actual.get(key)
        if want is None or got is None:
            lines.append(f"{key}: expected {want is not None}, published {got is not None}")
        elif want.model_dump(exclude={"applied"}) != got.model_dump(exclude={"applied"}):
            lines.append(f"{key}: expected v{want.version}, published v{got.version}")
    return lines[:limit]


async def states_from_topics(bootstrap: str, registry: TopicRegistry) -> States:
    """Latest state per entity as published on the compacted topics, checksummed."""
    topics = [registry.state(kind.value) for kind in EntityKind]
    kinds = {registry.state(kind.value): kind for kind in EntityKind}
    total = sum((await end_offsets(bootstrap, topics)).values())
    records = await read_until(bootstrap, topics, lambda r: len(r) >= total, timeout_s=30)
    latest: dict[tuple[EntityKind, str], EntityState] = {}
    for record in records:
        kind = kinds[record.topic]
        latest[(kind, (record.key or b"").decode())] = state_from_json(kind, record.value or b"")
    return latest


async def test_kill_9_of_the_ledger_mid_stream_loses_nothing(
    test_settings: Settings, services: Callable[[str], ServiceProcess]
) -> None:
    assert test_settings.canonical_partitions == 2
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    events = stream_of_events()
    assert len(events) >= 2000
    expected_states = clean_run(events)
    expected = checksum(expected_states)

    services("gateway")
    ledger = services("ledger")
    await produce(
        bootstrap,
        [
            (registry.inbox(party), encode(event, source=f"/{party}", event_id=event_id))
            for party, event_id, event in events
        ],
    )
    # Let the ledger get well into the stream, then kill it without warning.
    deadline = time.monotonic() + 120
    demands_topic = registry.state(EntityKind.DEMANDS.value)
    while time.monotonic() < deadline:
        written = sum((await end_offsets(bootstrap, [demands_topic])).values())
        if written >= 300:
            break
        await asyncio.sleep(0.05)
    ledger.kill9()
    partial = checksum(await states_from_topics(bootstrap, registry))
    assert partial != expected, "the ledger finished before it was killed; kill it earlier"

    restarted = services("ledger")
    deadline = time.monotonic() + 180
    actual, published = partial, {}
    while time.monotonic() < deadline:
        published = await states_from_topics(bootstrap, registry)
        actual = checksum(published)
        if actual == expected:
            break
        await asyncio.sleep(2)
    assert actual == expected, (differences(expected_states, published), restarted.log_tail(5))
    assert await read_all(bootstrap, [registry.deadletter]) == []
