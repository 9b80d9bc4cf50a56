"""Delivery events: production reports, shipments dispatched and delivered against demands."""

from __future__ import annotations

import datetime as dt

import pytest

from ampc.contract.events import RejectionCode
from ampc.ledger.fold import Applied, Duplicate, Rejected
from ampc.ledger.state import PRODUCTION_KEPT_WEEKS, DemandStatus, EntityKind, ShipmentStatus
from tests.unit.ledger.factory import (
    Feed,
    cancelled,
    delivered,
    dispatched,
    production,
    registered,
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


# --------------------------------------------------------------------------- production


def test_production_is_summed_per_line_product_and_week() -> None:
    feed = Feed()
    feed.send_all(
        registered(),
        production(report_id="R-1", quantity=450),
        production(report_id="R-2", quantity=50),
        production(report_id="R-3", product="155-CHARGE", quantity=900),
        production(report_id="R-4", week=week(2), quantity=480),
    )

    plant = feed.plant()
    assert plant.produced("L1", "155-HE", week(1)) == 500
    assert plant.weekly_production() == {
        ("L1", "155-HE", week(1)): 500,
        ("L1", "155-CHARGE", week(1)): 900,
        ("L1", "155-HE", week(2)): 480,
    }


def test_production_report_for_an_unknown_plant_is_rejected() -> None:
    _rejected(Feed().send(production()), RejectionCode.UNKNOWN_ENTITY, "plant_id")


def test_production_report_for_an_unknown_line_is_rejected() -> None:
    feed = Feed()
    feed.send(registered())

    _rejected(feed.send(production(line_id="L3")), RejectionCode.UNKNOWN_ENTITY, "line_id")


def test_production_report_of_a_product_the_line_does_not_make_is_rejected() -> None:
    feed = Feed()
    feed.send(registered())

    outcome = feed.send(production(line_id="L2", product="155-HE"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "product")
    assert "120-MORTAR" in rejected.message and "155-HE" in rejected.message
    assert feed.plant().reports == {}


def test_production_report_for_another_nations_plant_is_not_authorised() -> None:
    feed = Feed()
    feed.send(registered())

    _rejected(feed.send(production(nation="CZ")), RejectionCode.NOT_AUTHORISED, "nation")


def test_production_report_sent_again_is_a_duplicate_and_changed_is_a_conflict() -> None:
    feed = Feed()
    feed.send_all(registered(), production(quantity=450))
    before = snapshot(feed.store)

    again = feed.send(production(quantity=450))
    changed = feed.send(production(quantity=470))

    assert isinstance(again, Duplicate)
    _rejected(changed, RejectionCode.CONFLICTS_WITH_STATE, "report_id")
    assert snapshot(feed.store) == before


def _during(week_date: dt.date) -> dt.datetime:
    """Wednesday noon of a week: when its production report is sent."""
    return dt.datetime.combine(week_date + dt.timedelta(days=2), dt.time(12), tzinfo=dt.UTC)


def _weekly_reports(feed: Feed, weeks: range, lines: tuple[str, ...] = ("L1",)) -> None:
    for n in weeks:
        for line in lines:
            product = "155-HE" if line == "L1" else "120-MORTAR"
            report = production(
                report_id=f"R-{line}-{n}", line_id=line, product=product, week=week(n)
            )
            assert isinstance(feed.send(report, at=_during(week(n))), Applied)


def test_a_plant_keeps_only_its_last_weeks_of_production_reports() -> None:
    feed = Feed()
    feed.send(registered())

    _weekly_reports(feed, range(3 * 52), lines=("L1", "L2"))

    plant = feed.plant()
    newest = week(3 * 52 - 1)
    oldest = newest - dt.timedelta(weeks=PRODUCTION_KEPT_WEEKS)
    assert {r.week for r in plant.reports.values()} == {
        oldest + dt.timedelta(weeks=k) for k in range(PRODUCTION_KEPT_WEEKS + 1)
    }
    assert len(plant.reports) == 2 * (PRODUCTION_KEPT_WEEKS + 1)
    assert plant.produced("L2", "120-MORTAR", newest) == 450


def test_a_report_older_than_the_weeks_kept_is_refused_with_the_reason() -> None:
    feed = Feed()
    feed.send(registered())
    _weekly_reports(feed, range(40))
    before = snapshot(feed.store)

    late = feed.send(production(report_id="R-LATE", week=week(5)), at=_during(week(40)))

    rejected = _rejected(late, RejectionCode.CONFLICTS_WITH_STATE, "week")
    assert week(39 - PRODUCTION_KEPT_WEEKS).isoformat() in rejected.message
    assert snapshot(feed.store) == before


def test_a_clock_or_a_week_far_ahead_drops_no_recent_report() -> None:
    feed = Feed()
    feed.send(registered())
    _weekly_reports(feed, range(12))

    clock_ahead = production(report_id="R-CLOCK", week=week(12))
    typo_ahead = production(report_id="R-TYPO", week=week(12 + 5 * 52))
    assert isinstance(feed.send(clock_ahead, at=_during(week(12 + 4 * 52))), Applied)
    assert isinstance(feed.send(typo_ahead, at=_during(week(12))), Applied)

    assert len(feed.plant().reports) == 14


# --------------------------------------------------------------------------- shipments


def test_dispatch_then_delivery_updates_shipment_and_demand_together() -> None:
    feed = Feed()
    feed.send(submitted(quantity=1000))

    sent = feed.send(dispatched(quantity=400))

    assert isinstance(sent, Applied)
    assert {(kind, entity_id) for kind, entity_id, _ in sent.changed} == {
        (EntityKind.SHIPMENTS, "S-1"),
        (EntityKind.DEMANDS, "D-1"),
    }
    assert (feed.demand().in_transit, feed.demand().delivered) == (400, 0)
    assert feed.shipment().status is ShipmentStatus.DISPATCHED

    arrived = feed.send(delivered(quantity=400, delivered_week=week(4)))

    assert isinstance(arrived, Applied)
    assert len(arrived.changed) == 2
    shipment, demand = feed.shipment(), feed.demand()
    assert (shipment.status, shipment.delivered_quantity) == (ShipmentStatus.DELIVERED, 400)
    assert shipment.delivered_week == week(4)
    assert (demand.in_transit, demand.delivered, demand.open_quantity) == (0, 400, 600)
    assert demand.status is DemandStatus.OPEN
    # What changed is what the store now holds: the adapter publishes exactly these.
    assert dict(((k, i), s) for k, i, s in arrived.changed) == {
        (EntityKind.SHIPMENTS, "S-1"): shipment,
        (EntityKind.DEMANDS, "D-1"): demand,
    }


def test_demand_is_fulfilled_when_deliveries_cover_it() -> None:
    feed = Feed()
    feed.send_all(
        submitted(quantity=1000),
        dispatched(shipment_id="S-1", quantity=600),
        dispatched(shipment_id="S-2", quantity=400),
        delivered(shipment_id="S-1", quantity=600),
    )
    assert feed.demand().status is DemandStatus.OPEN

    feed.send(delivered(shipment_id="S-2", quantity=400))

    demand = feed.demand()
    assert (demand.status, demand.open_quantity, demand.in_transit) == (
        DemandStatus.FULFILLED,
        0,
        0,
    )


def test_short_delivery_counts_what_arrived_and_leaves_nothing_in_transit() -> None:
    feed = Feed()
    feed.send_all(submitted(quantity=1000), dispatched(quantity=400))

    feed.send(delivered(quantity=350))

    demand = feed.demand()
    assert (demand.delivered, demand.in_transit, demand.open_quantity) == (350, 0, 650)


def test_dispatch_for_an_unknown_demand_is_rejected() -> None:
    feed = Feed()

    outcome = feed.send(dispatched(demand_id="D-404"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "demand_id")
    assert "D-404" in rejected.message and "S-1" in rejected.message
    assert len(feed.store) == 0


def test_dispatch_for_a_cancelled_demand_conflicts() -> None:
    feed = Feed()
    feed.send_all(submitted(), cancelled())

    outcome = feed.send(dispatched())

    _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "demand_id")
    assert feed.store.get(EntityKind.SHIPMENTS, "S-1") is None


def test_dispatch_of_another_product_than_the_demand_names_conflicts() -> None:
    feed = Feed()
    feed.send(submitted(product="155-HE"))

    outcome = feed.send(dispatched(product="122-HE"))

    rejected = _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "product")
    assert "122-HE" in rejected.message and "155-HE" in rejected.message
    assert feed.demand().in_transit == 0


def test_dispatch_for_an_interop_group_demand_accepts_any_product() -> None:
    # The group's members live in ProductDefined states of other partitions: not checked here.
    feed = Feed()
    feed.send(submitted(product=None, interop_group="IG-155-JBMOU"))

    outcome = feed.send(dispatched(product="155-HE-DE"))

    assert isinstance(outcome, Applied)
    assert feed.demand().in_transit == 400


def test_dispatch_to_another_recipient_than_the_demands_conflicts() -> None:
    feed = Feed()
    feed.send(submitted(recipient="UA"))

    outcome = feed.send(dispatched(recipient="MD"))

    _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "recipient")


def test_shipment_id_reused_for_another_shipment_conflicts() -> None:
    feed = Feed()
    feed.send_all(submitted(), dispatched(quantity=400))

    same = feed.send(dispatched(quantity=400))
    other = feed.send(dispatched(quantity=100))

    assert isinstance(same, Duplicate)
    _rejected(other, RejectionCode.CONFLICTS_WITH_STATE, "shipment_id")
    assert feed.demand().in_transit == 400


def test_delivery_for_an_unknown_shipment_is_rejected() -> None:
    feed = Feed()
    feed.send(submitted())

    outcome = feed.send(delivered(shipment_id="S-404"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "shipment_id")
    assert "S-404" in rejected.message
    assert feed.demand().delivered == 0


def test_delivery_above_what_was_dispatched_conflicts() -> None:
    feed = Feed()
    feed.send_all(submitted(), dispatched(quantity=400))
    before = snapshot(feed.store)

    outcome = feed.send(delivered(quantity=401))

    rejected = _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "quantity")
    assert "401" in rejected.message and "400" in rejected.message
    assert snapshot(feed.store) == before


def test_delivery_for_another_demand_than_the_shipments_conflicts() -> None:
    feed = Feed()
    feed.send_all(submitted(), submitted(demand_id="D-2"), dispatched())

    outcome = feed.send(delivered(demand_id="D-2"))

    _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "demand_id")
    assert feed.demand("D-2").delivered == 0


def test_second_delivery_of_a_shipment_conflicts_unless_identical() -> None:
    feed = Feed()
    feed.send_all(submitted(), dispatched(quantity=400), delivered(quantity=400))

    same = feed.send(delivered(quantity=400))
    other = feed.send(delivered(quantity=300))

    assert isinstance(same, Duplicate)
    _rejected(other, RejectionCode.CONFLICTS_WITH_STATE, "shipment_id")
    assert feed.demand().delivered == 400


def test_delivery_before_dispatch_week_conflicts() -> None:
    feed = Feed()
    feed.send_all(submitted(), dispatched(dispatched_week=week(2)))

    outcome = feed.send(delivered(delivered_week=week(1)))

    _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "delivered_week")


def test_delivery_after_cancellation_still_counts() -> None:
    feed = Feed()
    feed.send_all(submitted(), dispatched(quantity=400), cancelled())

    outcome = feed.send(delivered(quantity=400))

    assert isinstance(outcome, Applied)
    demand = feed.demand()
    assert (demand.status, demand.delivered, demand.open_quantity) == (
        DemandStatus.CANCELLED,
        400,
        0,
    )
