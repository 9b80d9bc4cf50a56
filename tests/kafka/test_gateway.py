"""The gateway as a running service against the real broker: routing, authority, duplicates,
and a thousand bad records interleaved with good ones."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampc.contract import events as ev
from ampc.contract.envelope import encode
from ampc.ledger.state import EntityKind
from ampc.platform.deadletter_reader import latest_rejections
from ampc.platform.processes import ServiceProcess
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings
from tests.kafka.bad_payloads import BadRecord, bad_record
from tests.kafka.records import produce, read_all, read_until
from tests.kafka.scenario_events import every_family

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

WEEK = dt.date(2026, 12, 7)


def demand(demand_id: str, requested_by: str = "CZ", quantity: int = 1000) -> ev.DemandSubmitted:
    return ev.DemandSubmitted.model_validate_json(
        json.dumps(
            {
                "demand_id": demand_id,
                "requested_by": requested_by,
                "recipient": "UA",
                "delivery_point": "Rzeszow",
                "product": "155-HE",
                "quantity": quantity,
                "due_week": WEEK.isoformat(),
                "priority": "URGENT",
                "pool_id": "P-1",
            }
        )
    )


async def test_gateway_routes_refuses_and_deduplicates(
    test_settings: Settings, services: Callable[[str], ServiceProcess]
) -> None:
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    gateway = services("gateway")

    first = encode(demand("D-1"), source="/nations/cz", event_id="E-1")
    spoof = encode(demand("D-2", requested_by="CZ"), source="/nations/pl", event_id="E-2")
    amended = ev.DemandAmended(demand_id="D-1", requested_by="CZ", quantity=1500)
    await produce(
        bootstrap,
        [
            (registry.inbox("CZ"), first),
            (registry.inbox("CZ"), first),  # a producer retry: exact re-send
            (registry.inbox("PL"), spoof),
            (registry.inbox("CZ"), encode(amended, source="/nations/cz", event_id="E-3")),
        ],
        raw=[(registry.inbox("DE"), b"k", b"definitely not json", [])],
    )
    out = await read_until(
        bootstrap,
        [registry.canonical(ev.Family.DEMAND), registry.deadletter],
        lambda records: len(records) >= 4,
    )
    canonical = [r for r in out if r.topic == registry.canonical(ev.Family.DEMAND)]
    dead = [r for r in out if r.topic == registry.deadletter]
    assert [r.headers["ce_id"] for r in canonical] == [b"E-1", b"E-3"], gateway.log_tail()
    assert all(r.key == b"D-1" for r in canonical)  # one entity, one partition, in order
    reasons = sorted(json.loads(r.value or b"{}")["error_code"] for r in dead)
    assert reasons == ["MISSING_HEADER", "NOT_AUTHORISED"]
    spoofed = next(r for r in dead if r.headers["ampc-error-code"] == b"NOT_AUTHORISED")
    body = json.loads(spoofed.value or b"{}")
    assert body["nation"] == "PL"
    assert body["field_path"] == "requested_by"
    assert base64.b64decode(body["original_value_base64"]) == spoof.value

    tail = await latest_rejections(bootstrap, registry.deadletter, 10)
    assert sorted(r.error_code.value for r in tail) == ["MISSING_HEADER", "NOT_AUTHORISED"]
    assert len(await latest_rejections(bootstrap, registry.deadletter, 1)) == 1


async def test_a_thousand_bad_records_never_stop_the_good_ones(
    test_settings: Settings, services: Callable[[str], ServiceProcess]
) -> None:
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    services("gateway")
    services("ledger")

    bad: list[BadRecord] = []

    @settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw_bad(data: st.DataObject) -> None:
        template = demand("D-T")
        foreign = demand("D-F", requested_by="PL")
        bad.extend(data.draw(bad_record(template, foreign)) for _ in range(1000))

    draw_bad()
    assert len(bad) == 1000
    good = [encode(demand(f"D-{i}"), source="/nations/cz") for i in range(200)]
    raw: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []
    for i, (key, value, headers, _kind) in enumerate(bad):
        raw.append((registry.inbox("CZ"), key, value, headers))
        if i % 5 == 0:
            record = good[i // 5]
            raw.append((registry.inbox("CZ"), record.key, record.value, list(record.headers)))
    await produce(bootstrap, [], raw=raw)

    out = await read_until(
        bootstrap,
        [registry.canonical(ev.Family.DEMAND), registry.deadletter],
        lambda records: len(records) >= 1200,
        timeout_s=120,
    )
    canonical = [r for r in out if r.topic == registry.canonical(ev.Family.DEMAND)]
    dead = [r for r in out if r.topic == registry.deadletter]
    assert len(canonical) == 200
    assert {r.headers["ce_id"] for r in canonical} == {dict(g.headers)["ce_id"] for g in good}
    assert len(dead) == 1000
    kinds = Counter(kind for *_, kind in bad)
    codes = Counter(r.headers["ampc-error-code"].decode() for r in dead)
    assert codes["NOT_AUTHORISED"] == kinds["foreign"]
    assert codes["UNSUPPORTED_VERSION"] == kinds["wrong-version"]
    assert codes["PAYLOAD_TOO_LARGE"] == kinds["oversized"]
    for rejected in dead:
        body = json.loads(rejected.value or b"{}")
        assert body["message"], body
        assert body["error_code"] != "PROCESSING_FAILED", body
    # ... and every valid one is applied by the ledger.
    states = await read_until(
        bootstrap,
        [registry.state(EntityKind.DEMANDS.value)],
        lambda records: len({r.key for r in records}) >= 200,
        timeout_s=120,
    )
    assert {r.key for r in states} == {g.key for g in good}


SPOOFS: list[tuple[str, str, str, ev.Event]] = [
    # (sending party, rule, expected field path, event)
    ("PL", "demand as another nation", "requested_by", demand("S-D1", requested_by="CZ")),
    (
        "PL",
        "amend another's demand",
        "demand_id",
        ev.DemandAmended(demand_id="OWN-D", requested_by="PL", quantity=1),
    ),
    (
        "PL",
        "cancel as another nation",
        "requested_by",
        ev.DemandCancelled(demand_id="OWN-D", requested_by="CZ", reason="spoof"),
    ),
    ("PL", "register a plant for another nation", "nation", every_family()[1][1]),
    (
        "PL",
        "declare capacity of another's plant",
        "plant_id",
        ev.CapacityDeclared(
            plant_id="CZ-VLASIM",
            nation="PL",
            line_id="L1",
            steps=[ev.CapacityStep(week=WEEK, capacity_percent=0)],
        ),
    ),
    (
        "PL",
        "disrupt another's plant",
        "plant_id",
        ev.PlantDisrupted(
            plant_id="CZ-VLASIM",
            nation="PL",
            disruption_id="X",
            from_week=WEEK,
            to_week=WEEK,
            capacity_lost_percent=100,
            cause="spoof",
        ),
    ),
    (
        "PL",
        "offer stock as another",
        "offered_by",
        ev.StockOffered(
            offer_id="S-O",
            offered_by="CZI",
            origin="KR",
            product="155-HE",
            quantity=1,
            available_week=WEEK,
            unit_price_cents=1,
        ),
    ),
    (
        "PL",
        "open a pool as another",
        "owner",
        ev.PoolOpened(pool_id="S-P", owner="CZI", pool_name="spoof"),
    ),
    (
        "PL",
        "pay another donor's contribution",
        "donor",
        ev.ContributionPaid(pool_id="P-CZI", contribution_id="DK-1", donor="DK", amount_cents=1),
    ),
    (
        "PL",
        "pledge as another donor",
        "donor",
        ev.ContributionPledged(pool_id="P-CZI", contribution_id="X", donor="DK", amount_cents=1),
    ),
    (
        "PL",
        "report production of another's plant",
        "plant_id",
        ev.ProductionReported(
            report_id="S-R",
            plant_id="CZ-VLASIM",
            nation="PL",
            line_id="L1",
            product="155-HE",
            week=WEEK,
            quantity=1,
        ),
    ),
    (
        "PL",
        "ship from another's plant",
        "source_id",
        ev.ShipmentDispatched(
            shipment_id="S-S",
            source_id="CZ-VLASIM",
            nation="PL",
            demand_id="OWN-D",
            product="155-HE",
            quantity=1,
            recipient="UA",
            dispatched_week=WEEK,
            expected_arrival_week=WEEK,
        ),
    ),
    (
        "PL",
        "confirm a delivery it neither sent nor received",
        "shipment_id",
        ev.ShipmentDelivered(
            shipment_id="OWN-S", nation="PL", demand_id="OWN-D", delivered_week=WEEK, quantity=1
        ),
    ),
    (
        "PL",
        "define products (an agency's job)",
        "product",
        ev.ProductDefined(product="155-HE", description="spoof"),
    ),
]


async def test_each_authority_rule_dead_letters_a_nation_speaking_for_another(
    test_settings: Settings, services: Callable[[str], ServiceProcess]
) -> None:
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    services("gateway")
    setup: list[tuple[str, ev.Event]] = [
        every_family()[1],  # CZ registers CZ-VLASIM
        ("CZ", demand("OWN-D")),
        (
            "CZ",
            ev.ShipmentDispatched(
                shipment_id="OWN-S",
                source_id="CZ-VLASIM",
                nation="CZ",
                demand_id="OWN-D",
                product="155-HE",
                quantity=1,
                recipient="UA",
                dispatched_week=WEEK,
                expected_arrival_week=WEEK,
            ),
        ),
    ]
    await produce(bootstrap, [(registry.inbox(p), encode(e, source="/setup")) for p, e in setup])
    await read_until(bootstrap, [registry.gateway_owners], lambda r: len(r) >= 3)
    spoofs = [
        (registry.inbox(party), encode(event, source="/spoof", event_id=f"SPOOF-{i}"))
        for i, (party, _rule, _path, event) in enumerate(SPOOFS)
    ]
    await produce(bootstrap, spoofs)
    dead = await read_until(
        bootstrap, [registry.deadletter], lambda r: len(r) >= len(SPOOFS), timeout_s=60
    )
    by_event_id = {
        json.loads(r.value or b"{}")["original_headers"]["ce_id"]: json.loads(r.value or b"{}")
        for r in dead
    }
    for i, (party, rule, path, _event) in enumerate(SPOOFS):
        body = by_event_id.get(f"SPOOF-{i}")
        assert body is not None, f"not dead-lettered: {rule}"
        assert body["error_code"] == "NOT_AUTHORISED", (rule, body)
        assert body["field_path"] == path, (rule, body)
        assert body["nation"] == party
        assert party in body["message"], (rule, body["message"])
    canonical = await read_all(bootstrap, [registry.canonical(f) for f in ev.INPUT_FAMILIES])
    assert len(canonical) == len(setup)
    assert not any(r.headers.get("ce_id", b"").startswith(b"SPOOF") for r in canonical)
