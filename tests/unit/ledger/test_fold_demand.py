"""Demand events: submitted, amended, cancelled, and the rules that need the demand's state."""

from __future__ import annotations

import pytest

from ampc.contract import events as ev
from ampc.contract.events import RejectionCode
from ampc.contract.types import Priority
from ampc.ledger.fold import Applied, Duplicate, Rejected
from ampc.ledger.state import DemandStatus, EntityKind
from tests.unit.ledger.factory import (
    Feed,
    amended,
    cancelled,
    delivered,
    dispatched,
    snapshot,
    submitted,
    week,
)

pytestmark = pytest.mark.unit


def _rejected(outcome: object, code: RejectionCode, field_path: str) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.code is code, outcome
    assert outcome.field_path == field_path, outcome
    return outcome


def test_submitted_demand_is_open_with_everything_the_planner_needs() -> None:
    feed = Feed()
    event = submitted(
        requested_by="CZI",
        participants=[
            ev.JointShare(nation="DK", quantity=600),
            ev.JointShare(nation="NL", quantity=400),
        ],
        product=None,
        interop_group="IG-155-JBMOU",
        rules=ev.DemandRules(excluded_origins=["CH"]),
    )

    outcome = feed.send(event)

    assert isinstance(outcome, Applied)
    assert [(kind, entity_id) for kind, entity_id, _ in outcome.changed] == [
        (EntityKind.DEMANDS, "D-1")
    ]
    demand = feed.demand()
    assert demand.status is DemandStatus.OPEN
    assert (demand.quantity, demand.open_quantity, demand.delivered, demand.in_transit) == (
        1000,
        1000,
        0,
        0,
    )
    assert [(p.nation, p.quantity) for p in demand.participants] == [("DK", 600), ("NL", 400)]
    assert demand.interop_group == "IG-155-JBMOU"
    assert demand.rules.excluded_origins == ["CH"]
    assert (demand.recipient, demand.pool_id, demand.due_week) == ("UA", "POOL-1", week(10))
    assert demand.version == 1


def test_resubmission_with_the_same_content_is_a_duplicate() -> None:
    feed = Feed()
    feed.send(submitted())
    before = snapshot(feed.store)

    outcome = feed.send(submitted(), event_id="a-new-event-id")

    assert isinstance(outcome, Duplicate)
    assert snapshot(feed.store) == before


def test_resubmission_with_different_content_conflicts() -> None:
    feed = Feed()
    feed.send(submitted())
    before = snapshot(feed.store)

    outcome = feed.send(submitted(quantity=2000))

    rejected = _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "quantity")
    assert "D-1" in rejected.message and "DemandAmended" in rejected.message
    assert snapshot(feed.store) == before


def test_amendment_changes_quantity_due_week_and_priority() -> None:
    feed = Feed()
    feed.send(submitted())

    outcome = feed.send(
        amended(quantity=1500, due_week=week(6), priority=Priority.URGENT, reason="offensive")
    )

    assert isinstance(outcome, Applied)
    demand = feed.demand()
    assert (demand.quantity, demand.open_quantity) == (1500, 1500)
    assert (demand.due_week, demand.priority) == (week(6), Priority.URGENT)
    assert demand.amendment_reason == "offensive"
    assert demand.version == 2


def test_amendment_of_an_unknown_demand_is_rejected() -> None:
    outcome = Feed().send(amended(demand_id="D-404"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "demand_id")
    assert "D-404" in rejected.message


def test_amendment_of_a_cancelled_demand_conflicts() -> None:
    feed = Feed()
    feed.send_all(submitted(), cancelled(reason="war ended"))

    outcome = feed.send(amended())

    rejected = _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "demand_id")
    assert "cancelled" in rejected.message and "war ended" in rejected.message
    assert feed.demand().quantity == 1000


def test_amendment_by_another_party_is_not_authorised() -> None:
    feed = Feed()
    feed.send(submitted())

    outcome = feed.send(amended(requested_by="FR"))

    rejected = _rejected(outcome, RejectionCode.NOT_AUTHORISED, "requested_by")
    assert "PL" in rejected.message and "FR" in rejected.message
    assert feed.demand().quantity == 1000


def test_amendment_cannot_lower_quantity_below_what_is_delivered() -> None:
    feed = Feed()
    feed.send_all(submitted(), dispatched(quantity=400), delivered(quantity=400))

    outcome = feed.send(amended(quantity=300))

    rejected = _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "quantity")
    assert "300" in rejected.message and "400" in rejected.message
    assert feed.demand().quantity == 1000


def test_lowering_to_what_is_delivered_fulfils_and_raising_reopens() -> None:
    feed = Feed()
    feed.send_all(submitted(), dispatched(quantity=400), delivered(quantity=400))

    feed.send(amended(quantity=400))
    assert (feed.demand().status, feed.demand().open_quantity) == (DemandStatus.FULFILLED, 0)

    feed.send(amended(quantity=900))
    assert (feed.demand().status, feed.demand().open_quantity) == (DemandStatus.OPEN, 500)


def test_cancellation_closes_the_demand_with_its_reason() -> None:
    feed = Feed()
    feed.send(submitted())

    outcome = feed.send(cancelled(reason="covered bilaterally"))

    assert isinstance(outcome, Applied)
    demand = feed.demand()
    assert demand.status is DemandStatus.CANCELLED
    assert demand.cancellation_reason == "covered bilaterally"
    assert demand.open_quantity == 0


def test_cancellation_of_an_unknown_demand_is_rejected() -> None:
    outcome = Feed().send(cancelled(demand_id="D-404"))

    _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "demand_id")


def test_cancellation_of_a_cancelled_demand_conflicts() -> None:
    feed = Feed()
    feed.send_all(submitted(), cancelled(reason="first"))

    outcome = feed.send(cancelled(reason="second"))

    _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "demand_id")
    assert feed.demand().cancellation_reason == "first"


def test_cancellation_by_another_party_is_not_authorised() -> None:
    feed = Feed()
    feed.send(submitted())

    outcome = feed.send(cancelled(requested_by="HU"))

    _rejected(outcome, RejectionCode.NOT_AUTHORISED, "requested_by")
    assert feed.demand().status is DemandStatus.OPEN
