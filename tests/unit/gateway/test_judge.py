"""The gateway's judgement without Kafka: authority rules one by one, duplicates, routing."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from ampc.contract import events as ev
from ampc.contract.envelope import encode
from ampc.contract.events import RejectionCode
from ampc.gateway.judge import Judge, RecentEventIds, Verdict
from ampc.platform.deadletter import SourceRecord
from ampc.platform.topics import TopicRegistry
from ampc.settings import Settings

pytestmark = pytest.mark.unit

WEEK = dt.date(2026, 12, 7)


class Inbox:
    """Feeds events to a judge as if read from a party's inbox."""

    def __init__(self) -> None:
        self.registry = TopicRegistry(Settings())
        self.owners: dict[str, str] = {}
        self.judge = Judge(self.registry, self.owners)
        self.offset = 0

    def send(self, party: str, event: ev.Event, event_id: str | None = None) -> Any:
        record = encode(event, source=f"/nations/{party.lower()}", event_id=event_id)
        self.offset += 1
        return self.judge.judge(
            SourceRecord(
                self.registry.inbox(party),
                0,
                self.offset,
                record.key,
                record.value,
                tuple(record.headers),
            )
        )


def demand(**changes: Any) -> ev.DemandSubmitted:
    body = {
        "demand_id": "D-1",
        "requested_by": "CZ",
        "recipient": "UA",
        "delivery_point": "Rzeszow",
        "product": "155-HE",
        "quantity": 1000,
        "due_week": WEEK.isoformat(),
        "priority": "URGENT",
        "pool_id": "P-1",
        **changes,
    }
    return ev.DemandSubmitted.model_validate_json(json.dumps(body))


def plant(plant_id: str = "PL-1", nation: str = "CZ") -> ev.PlantRegistered:
    return ev.PlantRegistered(
        plant_id=plant_id,
        nation=nation,
        operator="CSG",
        plant_name="Vlasim",
        lines=[
            ev.ProductionLine(
                line_id="L1",
                products=[
                    ev.LineProduct(product="155-HE", units_per_week=1000, unit_price_cents=400_000)
                ],
            )
        ],
    )


def assert_refused(decision: Any, code: RejectionCode, path: str) -> None:
    assert decision.verdict is Verdict.REJECTED, decision
    assert decision.reason is code
    body = json.loads(decision.record.value)
    assert body["error_code"] == code.value
    assert body["field_path"] == path
    assert body["message"]
    headers = dict(decision.record.headers)
    assert headers["__connect.errors.exception.class.name"] == code.value.encode()


def test_valid_demand_is_routed_to_the_canonical_topic_with_its_party() -> None:
    inbox = Inbox()
    decision = inbox.send("CZ", demand())
    assert decision.verdict is Verdict.ROUTED
    assert decision.topic == "ampc.events.demand"
    assert decision.record.key == b"D-1"
    headers = dict(decision.record.headers)
    assert headers["ampc-party"] == b"CZ"
    assert headers["ce_type"] == b"ampc.demand.submitted.v1"
    assert inbox.owners["demand:D-1"] == "CZ"


def test_a_nation_may_not_submit_a_demand_as_another() -> None:
    assert_refused(Inbox().send("PL", demand()), RejectionCode.NOT_AUTHORISED, "requested_by")


def test_a_declared_participant_may_submit_a_joint_demand() -> None:
    joint = demand(
        requested_by="CZI",
        participants=[{"nation": "CZ", "quantity": 600}, {"nation": "DK", "quantity": 400}],
    )
    inbox = Inbox()
    assert inbox.send("DK", joint).verdict is Verdict.ROUTED
    assert inbox.owners["demand:D-1"] == "CZI,CZ,DK"
    assert_refused(Inbox().send("PL", joint), RejectionCode.NOT_AUTHORISED, "requested_by")


def test_only_the_requester_amends_or_cancels() -> None:
    inbox = Inbox()
    inbox.send("CZ", demand())
    cancel_as_pl = ev.DemandCancelled(demand_id="D-1", requested_by="PL", reason="mine now")
    assert_refused(inbox.send("PL", cancel_as_pl), RejectionCode.NOT_AUTHORISED, "demand_id")
    lying = ev.DemandCancelled(demand_id="D-1", requested_by="CZ", reason="spoof")
    assert_refused(inbox.send("PL", lying), RejectionCode.NOT_AUTHORISED, "requested_by")
    own = ev.DemandCancelled(demand_id="D-1", requested_by="CZ", reason="no longer needed")
    assert inbox.send("CZ", own).verdict is Verdict.ROUTED


def test_capacity_only_for_own_plants() -> None:
    inbox = Inbox()
    assert_refused(inbox.send("PL", plant(nation="CZ")), RejectionCode.NOT_AUTHORISED, "nation")
    assert inbox.send("CZ", plant()).verdict is Verdict.ROUTED
    # Poland registering a plant id that Czechia owns:
    assert_refused(inbox.send("PL", plant(nation="PL")), RejectionCode.NOT_AUTHORISED, "plant_id")
    disruption = ev.PlantDisrupted(
        plant_id="PL-1",
        nation="PL",
        disruption_id="X",
        from_week=WEEK,
        to_week=WEEK,
        capacity_lost_percent=100,
        cause="spoof",
    )
    assert_refused(inbox.send("PL", disruption), RejectionCode.NOT_AUTHORISED, "plant_id")


def test_stock_only_for_own_offers() -> None:
    offer = ev.StockOffered(
        offer_id="O-1",
        offered_by="CZI",
        origin="KR",
        product="155-HE",
        quantity=5000,
        available_week=WEEK,
        unit_price_cents=300_000,
    )
    inbox = Inbox()
    assert_refused(inbox.send("CZ", offer), RejectionCode.NOT_AUTHORISED, "offered_by")
    assert inbox.send("CZI", offer).verdict is Verdict.ROUTED
    assert inbox.owners["offer:O-1"] == "CZI"


def test_pools_are_opened_by_their_owner_and_donors_pay_only_their_own() -> None:
    inbox = Inbox()
    pool = ev.PoolOpened(pool_id="P-1", owner="CZI", pool_name="Ammunition initiative")
    assert_refused(inbox.send("CZ", pool), RejectionCode.NOT_AUTHORISED, "owner")
    assert inbox.send("CZI", pool).verdict is Verdict.ROUTED
    paid = ev.ContributionPaid(pool_id="P-1", contribution_id="C-1", donor="DK", amount_cents=10**9)
    assert_refused(inbox.send("NL", paid), RejectionCode.NOT_AUTHORISED, "donor")
    assert inbox.send("DK", paid).verdict is Verdict.ROUTED


def test_production_and_shipments_only_from_own_plants() -> None:
    inbox = Inbox()
    inbox.send("CZ", plant())
    report = ev.ProductionReported(
        report_id="R-1",
        plant_id="PL-1",
        nation="PL",
        line_id="L1",
        product="155-HE",
        week=WEEK,
        quantity=100,
    )
    assert_refused(inbox.send("PL", report), RejectionCode.NOT_AUTHORISED, "plant_id")
    shipment = ev.ShipmentDispatched(
        shipment_id="S-1",
        source_id="PL-1",
        nation="PL",
        demand_id="D-1",
        product="155-HE",
        quantity=100,
        recipient="UA",
        dispatched_week=WEEK,
        expected_arrival_week=WEEK,
    )
    assert_refused(inbox.send("PL", shipment), RejectionCode.NOT_AUTHORISED, "source_id")
    unknown_source = shipment.model_copy(update={"source_id": "NOWHERE"})
    assert_refused(inbox.send("PL", unknown_source), RejectionCode.UNKNOWN_ENTITY, "source_id")
    own = shipment.model_copy(update={"nation": "CZ"})
    decision = inbox.send("CZ", own)
    assert decision.verdict is Verdict.ROUTED
    assert decision.record.key == b"D-1"  # keyed by demand: shipment and demand share a partition


def test_delivery_confirmed_by_dispatcher_or_recipient_only() -> None:
    inbox = Inbox()
    inbox.send("CZ", plant())
    inbox.send(
        "CZ",
        ev.ShipmentDispatched(
            shipment_id="S-1",
            source_id="PL-1",
            nation="CZ",
            demand_id="D-1",
            product="155-HE",
            quantity=100,
            recipient="UA",
            dispatched_week=WEEK,
            expected_arrival_week=WEEK,
        ),
    )
    delivered = ev.ShipmentDelivered(
        shipment_id="S-1", nation="PL", demand_id="D-1", delivered_week=WEEK, quantity=100
    )
    assert_refused(inbox.send("PL", delivered), RejectionCode.NOT_AUTHORISED, "shipment_id")
    by_recipient = delivered.model_copy(update={"nation": "UA"})
    assert inbox.send("UA", by_recipient).verdict is Verdict.ROUTED


def test_products_are_defined_by_an_agency() -> None:
    product = ev.ProductDefined(product="155-HE", description="155 mm HE")
    assert_refused(Inbox().send("CZ", product), RejectionCode.NOT_AUTHORISED, "product")
    assert Inbox().send("NSPA", product).verdict is Verdict.ROUTED


def test_outputs_are_never_accepted_from_an_inbox() -> None:
    alert = ev.AlertRaised(
        alert_id="A",
        kind=ev.AlertKind.URGENT_DEMAND_SHORT,
        severity=ev.Severity.INFO,
        subject_id="D-1",
        message="fake",
    )
    decision = Inbox().send("CZ", alert)
    assert_refused(decision, RejectionCode.UNKNOWN_EVENT_TYPE, "header.ce_type")


def test_exact_resend_is_dropped_and_reused_id_with_other_content_is_refused() -> None:
    inbox = Inbox()
    assert inbox.send("CZ", demand(), event_id="E-1").verdict is Verdict.ROUTED
    assert inbox.send("CZ", demand(), event_id="E-1").verdict is Verdict.DUPLICATE
    assert_refused(
        inbox.send("CZ", demand(quantity=2000), event_id="E-1"),
        RejectionCode.CONFLICTS_WITH_STATE,
        "header.ce_id",
    )
    assert inbox.send("CZ", demand(), event_id="E-2").verdict is Verdict.ROUTED


def test_recent_ids_are_bounded() -> None:
    recent = RecentEventIds(capacity=3)
    for i in range(10):
        recent.remember(f"E-{i}", b"x")
    assert len(recent) == 3
    assert recent.check("E-0", b"x") is None
    assert recent.check("E-9", b"x") is True
    assert recent.check("E-9", b"y") is False


def test_garbage_is_dead_lettered_with_the_original_bytes() -> None:
    inbox = Inbox()
    decision = inbox.judge.judge(
        SourceRecord("ampc.inbox.cz", 2, 7, b"k", b"\x00\xffnot json", (("ce_type", b"x"),))
    )
    assert decision.verdict is Verdict.REJECTED
    assert decision.record is not None
    body = json.loads(decision.record.value)
    assert body["original_topic"] == "ampc.inbox.cz"
    assert (body["original_partition"], body["original_offset"]) == (2, 7)
    assert base64.b64decode(body["original_value_base64"]) == b"\x00\xffnot json"
    assert body["nation"] == "CZ"
