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
from ampc.platform.deadletter_reader import latest_rejections
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings
from tests.conftest import ServiceProcess
from tests.kafka.bad_payloads import BadRecord, bad_record
from tests.kafka.records import produce, read_until

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
