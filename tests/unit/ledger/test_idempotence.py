"""Idempotence (SPEC section 7): a replay after a crash changes nothing, and the state checksum
the kill -9 test compares sees business state only."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ampc.contract.events import Event, PlanPublished, RejectionCode
from ampc.ledger.fold import (
    Applied,
    Duplicate,
    EventMeta,
    MemoryStore,
    Rejected,
    apply_event,
    state_checksum,
)
from ampc.ledger.state import RECENT_EVENT_IDS, AppliedLog, EntityKind, PoolState
from ampc.platform.topics import INPUT_EVENTS
from tests.unit.ledger.factory import (
    Feed,
    amended,
    delivered,
    dispatched,
    pledged,
    pool_opened,
    scenario,
    snapshot,
    submitted,
)

pytestmark = pytest.mark.unit


def _copy(store: MemoryStore) -> MemoryStore:
    copy = MemoryStore()
    for kind, entity_id, state in store.items():
        copy.put(kind, entity_id, state.model_copy(deep=True))
    return copy


def _without(store: MemoryStore, kind: EntityKind, entity_id: str) -> MemoryStore:
    copy = MemoryStore()
    for k, i, state in store.items():
        if (k, i) != (kind, entity_id):
            copy.put(k, i, state.model_copy(deep=True))
    return copy


def test_scenario_covers_every_input_event_of_the_contract() -> None:
    # A new input event in the contract fails here until the ledger folds it (and this
    # scenario sends it).
    assert {type(event) for event in scenario()} == set(INPUT_EVENTS)


def test_scenario_applies_every_event() -> None:
    feed = Feed()

    outcomes = feed.send_all(*scenario())

    assert all(isinstance(outcome, Applied) for outcome in outcomes), outcomes
    assert {kind for kind, _, _ in feed.store.items()} == set(EntityKind)


def test_same_offset_again_is_a_duplicate_even_with_another_event_id() -> None:
    feed = Feed()
    feed.send(submitted())
    before = snapshot(feed.store)

    outcome = feed.send(amended(), offset=0, event_id="never-seen")

    assert isinstance(outcome, Duplicate)
    assert "ampc.events.demand:0@0" in outcome.reason
    assert snapshot(feed.store) == before


def test_same_event_id_at_a_later_offset_is_a_duplicate() -> None:
    feed = Feed()
    feed.send(submitted())
    feed.send(amended(quantity=1500), event_id="amend-1")
    before = snapshot(feed.store)

    outcome = feed.send(amended(quantity=1500), event_id="amend-1")

    assert isinstance(outcome, Duplicate)
    assert snapshot(feed.store) == before
    assert feed.demand().quantity == 1500


def test_replay_of_the_whole_sequence_changes_nothing() -> None:
    feed = Feed()
    feed.send_all(*scenario())
    before = snapshot(feed.store)

    outcomes = feed.replay()

    assert all(isinstance(outcome, Duplicate) for outcome in outcomes), outcomes
    assert snapshot(feed.store) == before


def test_recovery_from_an_earlier_commit_ends_in_the_clean_state() -> None:
    clean = Feed()
    clean.send_all(*scenario())
    crashed = Feed()
    crashed.send_all(*scenario()[:12])

    # At-least-once: the consumer resumes from an older committed offset and re-reads.
    for event, meta in clean.sent[5:]:
        apply_event(crashed.store, event, meta)

    assert state_checksum(crashed.store.items()) == state_checksum(clean.store.items())
    assert snapshot(crashed.store) == snapshot(clean.store)


def test_checksum_ignores_the_applied_log() -> None:
    # The same events at other offsets and ids: business state equal, applied logs not.
    one, other = Feed(), Feed(first_offset=1000)
    one.send_all(*scenario())
    other.send_all(*scenario())
    assert snapshot(one.store) != snapshot(other.store)

    assert state_checksum(one.store.items()) == state_checksum(other.store.items())


def test_checksum_differs_when_business_state_differs() -> None:
    one, other = Feed(), Feed()
    one.send_all(*scenario())
    other.send_all(*scenario()[:-1], dispatched(shipment_id="S-2", quantity=301))

    assert state_checksum(one.store.items()) != state_checksum(other.store.items())


def test_checksum_is_independent_of_store_order() -> None:
    feed = Feed()
    feed.send_all(*scenario())
    items = list(feed.store.items())

    assert state_checksum(reversed(items)) == state_checksum(items)
    assert len(state_checksum(items)) == 64


def test_lost_demand_write_is_completed_by_the_replay_of_a_dispatch() -> None:
    clean = Feed()
    clean.send_all(submitted(), dispatched(quantity=400))
    crashed = Feed()
    crashed.send(submitted())
    demand_before = crashed.demand()
    crashed.send(dispatched(quantity=400))
    crashed.store.put(EntityKind.DEMANDS, "D-1", demand_before)  # the demand write was lost

    outcome = crashed.replay()[-1]

    assert isinstance(outcome, Applied)
    assert [(k, i) for k, i, _ in outcome.changed] == [(EntityKind.DEMANDS, "D-1")]
    assert crashed.demand().in_transit == 400
    assert snapshot(crashed.store) == snapshot(clean.store)


def test_lost_shipment_write_is_completed_by_the_replay_of_a_dispatch() -> None:
    clean = Feed()
    clean.send_all(submitted(), dispatched(quantity=400))
    crashed = Feed()
    crashed.send_all(submitted(), dispatched(quantity=400))
    crashed.store = _without(crashed.store, EntityKind.SHIPMENTS, "S-1")

    outcome = crashed.replay()[-1]

    assert isinstance(outcome, Applied)
    assert [(k, i) for k, i, _ in outcome.changed] == [(EntityKind.SHIPMENTS, "S-1")]
    assert snapshot(crashed.store) == snapshot(clean.store)


def test_lost_demand_write_is_completed_by_the_replay_of_a_delivery() -> None:
    clean = Feed()
    clean.send_all(submitted(), dispatched(quantity=400), delivered(quantity=400))
    crashed = Feed()
    crashed.send_all(submitted(), dispatched(quantity=400))
    demand_before = crashed.demand()
    crashed.send(delivered(quantity=400))
    crashed.store.put(EntityKind.DEMANDS, "D-1", demand_before)

    outcome = crashed.replay()[-1]

    assert isinstance(outcome, Applied)
    assert (crashed.demand().delivered, crashed.demand().in_transit) == (400, 0)
    assert snapshot(crashed.store) == snapshot(clean.store)


def test_lost_shipment_write_is_completed_by_the_replay_of_a_delivery() -> None:
    clean = Feed()
    clean.send_all(submitted(), dispatched(quantity=400), delivered(quantity=400))
    crashed = Feed()
    crashed.send_all(submitted(), dispatched(quantity=400))
    shipment_before = crashed.shipment()
    crashed.send(delivered(quantity=400))
    crashed.store.put(EntityKind.SHIPMENTS, "S-1", shipment_before)

    outcome = crashed.replay()[-1]

    assert isinstance(outcome, Applied)
    assert [(k, i) for k, i, _ in outcome.changed] == [(EntityKind.SHIPMENTS, "S-1")]
    assert snapshot(crashed.store) == snapshot(clean.store)


def test_rejected_event_changes_nothing() -> None:
    feed = Feed()
    feed.send_all(*scenario())
    before = _copy(feed.store)

    outcome = feed.send(delivered(shipment_id="S-2", quantity=999))

    assert isinstance(outcome, Rejected)
    assert snapshot(feed.store) == snapshot(before)


def test_applied_log_keeps_recent_event_ids_and_the_highest_offset() -> None:
    log = AppliedLog()
    for offset in range(RECENT_EVENT_IDS + 1):
        log.record("ampc.events.demand:3", offset, f"e{offset}")

    assert log.offsets == {"ampc.events.demand:3": RECENT_EVENT_IDS}
    assert len(log.event_ids) == RECENT_EVENT_IDS
    assert not log.has_applied("ampc.events.demand:4", 0, "e0")  # forgotten id, other partition
    assert log.has_applied("ampc.events.demand:4", 0, "e1")
    assert log.has_applied("ampc.events.demand:3", 0, "fresh-id")
    assert not log.has_applied("ampc.events.demand:3", RECENT_EVENT_IDS + 1, "fresh-id")


def test_every_entity_written_by_a_shipment_records_the_event() -> None:
    feed = Feed()
    feed.send_all(submitted(), dispatched())

    for state in (feed.demand(), feed.shipment()):
        assert state.applied.offsets["ampc.events.delivery:0"] == 0
        assert "ampc.events.delivery/0" in state.applied.event_ids


def test_output_events_are_not_folded() -> None:
    plan = PlanPublished.model_validate_json(
        json.dumps(
            {
                "plan_id": "PLAN-1",
                "version": 1,
                "trigger": "test",
                "input_offsets": {},
                "solver_status": "OPTIMAL",
                "objective": {
                    "weighted_shortfall": 0,
                    "weighted_lateness": 0,
                    "cost_cents": 0,
                    "churn_units": 0,
                },
                "demands": [],
            }
        )
    )
    feed = Feed()

    outcome = feed.send(plan)

    assert isinstance(outcome, Rejected)
    assert outcome.code is RejectionCode.UNKNOWN_EVENT_TYPE
    assert len(feed.store) == 0


def _retried(feed: Feed, event: Event, offset: int) -> EventMeta:
    """The meta of an event applied from the parking lot (read at `offset` long before)."""
    meta = feed.meta(event, offset=offset)
    return dataclasses.replace(meta, event_id=f"parked/{offset}", retried=True)


def test_events_applied_from_the_parking_lot_do_not_grow_the_applied_log() -> None:
    feed = Feed()
    feed.send(pool_opened())
    for k in range(3):
        event = pledged(contribution_id=f"C-{k}", amount_cents=100_000)
        assert isinstance(apply_event(feed.store, event, _retried(feed, event, 1000 + k)), Applied)

    pool = feed.state(EntityKind.POOLS, "POOL-1", PoolState)
    assert pool.applied.offsets == {"ampc.events.funding:0": 0}  # the pool's opening only
    assert len(pool.contributions) == 3
    # an event read after the parked ones, at an earlier offset, is still applied
    assert isinstance(feed.send(pledged(contribution_id="C-9", amount_cents=1), offset=1), Applied)
    # retried again (a crash before its release from the parking lot): known by its id
    again = pledged(contribution_id="C-2", amount_cents=100_000)
    assert isinstance(apply_event(feed.store, again, _retried(feed, again, 1002)), Duplicate)


def test_sources_older_ledgers_kept_for_parked_events_are_dropped() -> None:
    log = AppliedLog(
        offsets={"ampc.events.funding:0": 7, "parked:ampc.events.funding:3:41": 0},
        event_ids=["a"],
    )

    log.record("ampc.events.funding:0", 8, "b")

    assert log.offsets == {"ampc.events.funding:0": 8}
    assert log.event_ids == ["a", "b"]


def test_a_parked_event_is_still_known_after_many_ordinary_ones() -> None:
    feed = Feed()
    feed.send(pool_opened())
    parked = pledged(contribution_id="C-P", amount_cents=100_000)
    meta = _retried(feed, parked, 500)
    assert isinstance(apply_event(feed.store, parked, meta), Applied)
    for k in range(RECENT_EVENT_IDS + 5):  # the pool moves on before the retry comes round
        assert isinstance(feed.send(pledged(contribution_id=f"C-{k}", amount_cents=1)), Applied)

    assert isinstance(apply_event(feed.store, parked, meta), Duplicate)
