"""Capacity events: plants, calendars, disruptions, offers, materials, products, export policy."""

from __future__ import annotations

import pytest

from ampc.contract import events as ev
from ampc.contract.events import RejectionCode
from ampc.ledger.fold import Applied, Duplicate, Rejected, apply_offer_dispatch
from ampc.ledger.state import (
    EntityKind,
    ExportPolicyState,
    MaterialSupplyState,
    ProductState,
)
from tests.unit.ledger.factory import (
    Feed,
    capacity,
    dispatched,
    disrupted,
    export_policy,
    line,
    material_supply,
    offered,
    product_defined,
    registered,
    restored,
    snapshot,
    week,
)

pytestmark = pytest.mark.unit


def _rejected(outcome: object, code: RejectionCode, field_path: str) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.code is code, outcome
    assert outcome.field_path == field_path, outcome
    return outcome


def test_registered_plant_has_its_lines_products_rates_prices_and_lot_sizes() -> None:
    feed = Feed()

    outcome = feed.send(registered())

    assert isinstance(outcome, Applied)
    plant = feed.plant()
    assert (plant.nation, plant.operator, plant.plant_name) == ("DE", "Rheinmetall", "Unterluess")
    assert sorted(plant.lines) == ["L1", "L2"]
    assert [p.product for p in plant.lines["L1"].products] == ["155-HE", "155-CHARGE"]
    assert plant.lines["L1"].products[0].units_per_week == 500
    assert plant.lines["L1"].products[0].unit_price_cents == 350_000
    assert plant.lines["L2"].lot_size == 100
    assert plant.lines["L1"].calendar == []


def test_re_registration_replaces_lines_and_keeps_calendars_of_lines_still_there() -> None:
    feed = Feed()
    feed.send_all(registered(), capacity(line_id="L1"), capacity(line_id="L2"))

    outcome = feed.send(registered(operator="Rheinmetall Waffe", lines=[line("L1", "155-HE")]))

    assert isinstance(outcome, Applied)
    plant = feed.plant()
    assert plant.operator == "Rheinmetall Waffe"
    assert sorted(plant.lines) == ["L1"]
    assert [step.capacity_percent for step in plant.lines["L1"].calendar] == [50, 120]
    assert plant.version == 4


def test_re_registration_by_another_nation_conflicts() -> None:
    feed = Feed()
    feed.send(registered())
    before = snapshot(feed.store)

    outcome = feed.send(registered(nation="FR", operator="KNDS"))

    rejected = _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "plant_id")
    assert "P-1" in rejected.message and "DE" in rejected.message and "FR" in rejected.message
    assert snapshot(feed.store) == before


def test_capacity_declared_sets_the_line_calendar() -> None:
    feed = Feed()
    feed.send_all(registered(), capacity())

    outcome = feed.send(capacity(steps=[ev.CapacityStep(week=week(4), capacity_percent=200)]))

    assert isinstance(outcome, Applied)
    calendar = feed.plant().lines["L1"].calendar
    assert [(step.week, step.capacity_percent) for step in calendar] == [(week(4), 200)]
    assert feed.plant().lines["L2"].calendar == []


def test_capacity_for_an_unknown_plant_is_rejected() -> None:
    outcome = Feed().send(capacity(plant_id="P-404"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "plant_id")
    assert "P-404" in rejected.message


def test_capacity_for_an_unknown_line_is_rejected() -> None:
    feed = Feed()
    feed.send(registered())

    outcome = feed.send(capacity(line_id="L9"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "line_id")
    assert "L9" in rejected.message and "L1, L2" in rejected.message


def test_capacity_for_another_nations_plant_is_not_authorised() -> None:
    feed = Feed()
    feed.send(registered())

    outcome = feed.send(capacity(nation="FR"))

    _rejected(outcome, RejectionCode.NOT_AUTHORISED, "nation")
    assert feed.plant().lines["L1"].calendar == []


def test_disruption_is_recorded_by_id() -> None:
    feed = Feed()
    feed.send(registered())

    outcome = feed.send(disrupted())

    assert isinstance(outcome, Applied)
    fire = feed.plant().disruptions["FIRE-1"]
    assert (fire.line_id, fire.from_week, fire.to_week) == ("L1", week(2), week(7))
    assert (fire.capacity_lost_percent, fire.cause) == (80, "fire in the filling hall")
    assert fire.restored_week is None


def test_disruption_of_an_unknown_plant_is_rejected() -> None:
    _rejected(Feed().send(disrupted()), RejectionCode.UNKNOWN_ENTITY, "plant_id")


def test_disruption_of_an_unknown_line_is_rejected() -> None:
    feed = Feed()
    feed.send(registered())

    outcome = feed.send(disrupted(line_id="L7"))

    _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "line_id")
    assert feed.plant().disruptions == {}


def test_plant_wide_disruption_needs_no_line() -> None:
    feed = Feed()
    feed.send(registered())

    assert isinstance(feed.send(disrupted(line_id=None)), Applied)
    assert feed.plant().disruptions["FIRE-1"].line_id is None


def test_restore_sets_the_restored_week() -> None:
    feed = Feed()
    feed.send_all(registered(), disrupted())

    outcome = feed.send(restored(restored_week=week(4)))

    assert isinstance(outcome, Applied)
    assert feed.plant().disruptions["FIRE-1"].restored_week == week(4)


def test_restore_of_an_unknown_plant_is_rejected() -> None:
    _rejected(Feed().send(restored()), RejectionCode.UNKNOWN_ENTITY, "plant_id")


def test_restore_of_an_unknown_disruption_is_rejected() -> None:
    feed = Feed()
    feed.send_all(registered(), disrupted())

    outcome = feed.send(restored(disruption_id="FLOOD-2"))

    rejected = _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "disruption_id")
    assert "FLOOD-2" in rejected.message and "FIRE-1" in rejected.message


def test_stock_offer_is_recorded_with_all_of_it_remaining() -> None:
    feed = Feed()

    assert isinstance(feed.send(offered()), Applied)

    offer = feed.offer()
    assert (offer.origin, offer.product, offer.quantity) == ("ZA", "155-HE", 20_000)
    assert (offer.available_week, offer.unit_price_cents) == (week(3), 400_000)
    assert (offer.dispatched, offer.remaining) == (0, 20_000)


def test_re_offer_by_another_party_conflicts() -> None:
    feed = Feed()
    feed.send(offered())

    outcome = feed.send(offered(offered_by="SK"))

    _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "offer_id")
    assert feed.offer().offered_by == "CZ"


def test_shipments_from_an_offer_draw_it_down() -> None:
    feed = Feed()
    feed.send(offered())
    shipment = dispatched(source_id="O-1", quantity=5_000)

    outcome = apply_offer_dispatch(feed.store, shipment, feed.meta(shipment))

    assert isinstance(outcome, Applied)
    assert (feed.offer().dispatched, feed.offer().remaining) == (5_000, 15_000)
    assert feed.offer().drawn_by == {"S-1": 5_000}


def test_a_shipment_draws_from_an_offer_once_whatever_offset_it_comes_at() -> None:
    feed = Feed()
    feed.send(offered())
    shipment = dispatched(source_id="O-1", quantity=5_000)
    apply_offer_dispatch(feed.store, shipment, feed.meta(shipment))
    before = snapshot(feed.store)

    at_same_offset = apply_offer_dispatch(feed.store, shipment, feed.meta(shipment, offset=0))
    at_new_offset = apply_offer_dispatch(feed.store, shipment, feed.meta(shipment))

    assert isinstance(at_same_offset, Duplicate)
    assert isinstance(at_new_offset, Duplicate)
    assert snapshot(feed.store) == before


def test_re_offer_cannot_drop_below_what_is_dispatched() -> None:
    feed = Feed()
    feed.send(offered())
    shipment = dispatched(source_id="O-1", quantity=5_000)
    apply_offer_dispatch(feed.store, shipment, feed.meta(shipment))

    outcome = feed.send(offered(quantity=4_000))

    _rejected(outcome, RejectionCode.CONFLICTS_WITH_STATE, "quantity")
    assert isinstance(feed.send(offered(quantity=6_000)), Applied)
    assert (feed.offer().quantity, feed.offer().remaining) == (6_000, 1_000)


def test_offer_dispatch_from_a_plant_is_not_an_offer() -> None:
    feed = Feed()
    shipment = dispatched(source_id="P-1")

    outcome = apply_offer_dispatch(feed.store, shipment, feed.meta(shipment))

    _rejected(outcome, RejectionCode.UNKNOWN_ENTITY, "source_id")
    assert len(feed.store) == 0


def test_material_supply_is_keyed_by_material_and_region() -> None:
    feed = Feed()

    assert isinstance(feed.send(material_supply()), Applied)

    supply = feed.state(EntityKind.MATERIALS, "NC:EU-WEST", MaterialSupplyState)
    assert [(s.week, s.kilograms_per_week) for s in supply.steps] == [(week(0), 40_000)]
    assert supply.declared_by == "FR"


def test_product_definition_is_replaced_by_a_later_one() -> None:
    feed = Feed()
    feed.send(product_defined())

    feed.send(product_defined(interop_groups=[], bill=[]))

    product = feed.state(EntityKind.PRODUCTS, "155-HE", ProductState)
    assert (product.interop_groups, product.bill, product.version) == ([], [], 2)


def test_export_policy_names_refused_recipients() -> None:
    feed = Feed()

    assert isinstance(feed.send(export_policy()), Applied)

    policy = feed.state(EntityKind.EXPORT_POLICIES, "CH", ExportPolicyState)
    assert policy.refused_recipients == ["UA"]
