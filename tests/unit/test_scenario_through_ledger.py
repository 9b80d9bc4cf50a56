"""A generated scenario, sent as the nations' events and folded by the ledger, comes back as the
same planning problem (the demo's path, without Kafka)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable

import numpy as np
import pytest

from ampc.contract.events import Event, ShipmentDispatched
from ampc.demo.feed import scenario_feed
from ampc.ledger.fold import Applied, EventMeta, MemoryStore, apply_event
from ampc.ledger.state import EntityKind, EntityState, PoolState
from ampc.optimizer.from_ledger import snapshot_from_states
from ampc.optimizer.model import build_model
from ampc.optimizer.scenario import generate
from ampc.optimizer.snapshot import Demand, Plant
from ampc.optimizer.solve import solve

pytestmark = pytest.mark.unit


def folded(
    seed: int, then: Iterable[tuple[str, Event]] = ()
) -> dict[EntityKind, dict[str, EntityState]]:
    """The ledger's states after the small scenario's feed and then `then` (party, event)."""
    scenario = generate("small", seed)
    store = MemoryStore()
    for offset, (party, event) in enumerate(itertools.chain(scenario_feed(scenario), then)):
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


def line_price(plant: Plant, product: str | None) -> int:
    return next(
        made.unit_price_cents
        for line in plant.lines
        for made in line.products
        if made.product == product
    )


def shipment(
    shipment_id: str, source_id: str, nation: str, demand: Demand, quantity: int
) -> ShipmentDispatched:
    product = demand.product
    assert product is not None
    return ShipmentDispatched(
        shipment_id=shipment_id,
        source_id=source_id,
        nation=nation,
        demand_id=demand.id,
        product=product,
        quantity=quantity,
        recipient=demand.recipient,
        dispatched_week=dt.date(2026, 11, 23),
        expected_arrival_week=dt.date(2026, 11, 30),
    )


def test_money_spent_on_shipped_rounds_is_committed_in_the_demands_pool() -> None:
    original = generate("small", 1)
    demands = {d.id: d for d in original.demands}
    plant = next(p for p in original.plants if p.id == "P000-DE")
    offer = next(o for o in original.stock_offers if o.product == demands["D00001"].product)
    states = folded(
        1,
        [
            (plant.nation, shipment("S-1", plant.id, plant.nation, demands["D00000"], 1000)),
            (offer.origin, shipment("S-2", offer.id, offer.origin, demands["D00001"], 500)),
        ],
    )

    rebuilt = snapshot_from_states(
        states, start_week=original.horizon.start_week, weeks=original.horizon.weeks
    )

    assert rebuilt.notes == []
    pools = {p.id: p for p in rebuilt.snapshot.pools}
    assert pools[demands["D00000"].pool_id].committed_cents == 1000 * line_price(
        plant, demands["D00000"].product
    )
    assert pools[demands["D00001"].pool_id].committed_cents == 500 * offer.unit_price_cents
    quantities = {d.id: d.quantity for d in rebuilt.snapshot.demands}
    # the rounds in transit are not bought again, and their money is not spent again
    assert quantities["D00000"] == demands["D00000"].quantity - 1000
    assert quantities["D00001"] == demands["D00001"].quantity - 500


def test_a_pool_spent_beyond_its_payments_buys_nothing_more_and_says_so() -> None:
    original = generate("small", 1)
    target = original.demands[0]
    plant = next(p for p in original.plants if p.id == "P000-DE")
    states = folded(1, [(plant.nation, shipment("S-1", plant.id, plant.nation, target, 1000))])
    pool = states[EntityKind.POOLS][target.pool_id]
    assert isinstance(pool, PoolState)
    # the donors paid a cent less than the shipment cost: without it, enough to buy rounds
    cost = 1000 * line_price(plant, target.product)
    for k, contribution in enumerate(pool.contributions.values()):
        contribution.paid_cents = cost - 1 if k == 0 else 0
    pool.refresh_totals()

    rebuilt = snapshot_from_states(
        states, start_week=original.horizon.start_week, weeks=original.horizon.weeks
    )

    assert any(note.startswith(f"pool {target.pool_id}: shipments worth") for note in rebuilt.notes)
    model = build_model(rebuilt.snapshot)
    result = solve(model)
    assert result.x is not None
    in_pool = [i for i, d in enumerate(rebuilt.snapshot.demands) if d.pool_id == target.pool_id]
    flows = result.x[: model.n_flows]
    assert in_pool and not flows[np.isin(model.flow_demand, in_pool)].any()
