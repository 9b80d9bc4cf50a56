"""A generated scenario, sent as the nations' events and folded by the ledger, comes back as the
same planning problem (the demo's path, without Kafka)."""

from __future__ import annotations

import datetime as dt

import pytest

from ampc.demo.feed import scenario_feed
from ampc.ledger.fold import Applied, EventMeta, MemoryStore, apply_event
from ampc.ledger.state import EntityKind, EntityState
from ampc.optimizer.from_ledger import snapshot_from_states
from ampc.optimizer.scenario import generate

pytestmark = pytest.mark.unit


def folded(seed: int) -> dict[EntityKind, dict[str, EntityState]]:
    scenario = generate("small", seed)
    store = MemoryStore()
    for offset, (party, event) in enumerate(scenario_feed(scenario)):
        meta = EventMeta(f"e{offset}", party, "feed", 0, offset, dt.datetime.now(dt.UTC))
        outcome = apply_event(store, event, meta)
        assert isinstance(outcome, Applied), (type(event).__name__, outcome)
    states: dict[EntityKind, dict[str, EntityState]] = {}
    for kind, entity_id, state in store.items():
        states.setdefault(kind, {})[entity_id] = state
    return states


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_ledger_gives_back_the_scenario(seed: int) -> None:
    states = folded(seed)
    original = generate("small", seed)
    rebuilt = snapshot_from_states(
        states,
        start_week=original.horizon.start_week,
        weeks=original.horizon.weeks,
        transit=original.transit,
    )
    assert rebuilt.notes == []
    snap = rebuilt.snapshot
    assert {(d.id, d.quantity, d.due_week, d.priority) for d in snap.demands} == {
        (d.id, d.quantity, d.due_week, d.priority) for d in original.demands
    }
    assert {(p.id, p.paid_cents, p.pledged_cents) for p in snap.pools} == {
        (p.id, p.paid_cents, p.pledged_cents) for p in original.pools
    }
    assert {o.id: o.quantity for o in snap.stock_offers} == {
        o.id: o.quantity for o in original.stock_offers
    }
    assert {p.code: p.bill for p in snap.products} == {p.code: p.bill for p in original.products}
    original_lines = {ln.id: ln for plant in original.plants for ln in plant.lines}
    for plant in snap.plants:
        for line in plant.lines:
            want = original_lines[line.id]
            # Calendars travel in whole percent of the line's rate: at most 0.5% of it off.
            base = max(s.rounds_per_week for s in want.capacity_calendar)
            got = {s.from_week: s.rounds_per_week for s in line.capacity_calendar}
            for step in want.capacity_calendar:
                assert abs(got[step.from_week] - step.rounds_per_week) <= base * 0.005 + 1
    assert sum(len(p.disruptions) for p in snap.plants) == sum(
        len(p.disruptions) for p in original.plants
    )


def test_cancelled_and_unknown_pool_demands_are_left_out_with_a_note() -> None:
    states = folded(1)
    demands = states[EntityKind.DEMANDS]
    first, second = sorted(demands)[:2]
    cancelled = demands[first].model_copy(update={"status": "CANCELLED"})
    orphan = demands[second].model_copy(update={"pool_id": "NO-SUCH-POOL"})
    demands[first], demands[second] = cancelled, orphan
    original = generate("small", 1)
    rebuilt = snapshot_from_states(
        states, start_week=original.horizon.start_week, weeks=original.horizon.weeks
    )
    ids = {d.id for d in rebuilt.snapshot.demands}
    assert first not in ids and second not in ids
    assert rebuilt.notes == [f"demand {second} left out: pool NO-SUCH-POOL is unknown"]
