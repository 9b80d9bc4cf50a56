"""The event contract: every model survives the CloudEvents envelope, bad input is refused with
the field path and a code the sender can act on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampc.contract import events as ev
from ampc.contract.envelope import (
    MAX_PAYLOAD_BYTES,
    ContractViolation,
    decode,
    encode,
)
from ampc.contract.events import RejectionCode
from tests.strategies import EVENT_STRATEGIES

pytestmark = pytest.mark.unit


def test_every_event_model_has_a_strategy() -> None:
    assert set(EVENT_STRATEGIES) == set(ev.EVENT_MODELS)


def test_event_types_are_unique_and_versioned() -> None:
    types = [model.event_type() for model in ev.EVENT_MODELS]
    assert len(set(types)) == len(types)
    assert all(t.startswith("ampc.") and t.endswith(".v1") for t in types)


@pytest.mark.parametrize("model", ev.EVENT_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_round_trip_through_envelope(model: type[ev.Event], data: st.DataObject) -> None:
    event = data.draw(EVENT_STRATEGIES[model])
    record = encode(event, source="/tests")
    headers = dict(record.headers)
    assert headers["ce_type"] == model.event_type().encode()
    assert headers["ce_subject"] == event.entity_id().encode()
    assert record.key == event.entity_id().encode()
    envelope = decode(record.key, record.value, record.headers)
    assert envelope.payload == event
    assert type(envelope.payload) is model
    assert envelope.event_id == headers["ce_id"].decode()


def _valid_demand() -> dict[str, Any]:
    return {
        "demand_id": "CZ-2026-0001",
        "requested_by": "CZ",
        "recipient": "UA",
        "delivery_point": "Rzeszow hub",
        "product": "155-HE",
        "quantity": 12_000,
        "due_week": "2026-12-07",
        "priority": "URGENT",
        "pool_id": "CZI-POOL",
    }


def _demand_record(body: Any, event_type: str | None = None) -> tuple[bytes, bytes, list[Any]]:
    event = ev.DemandSubmitted.model_validate_json(json.dumps(_valid_demand()))
    record = encode(event, source="/nations/cz")
    headers = [
        (k, (event_type.encode() if event_type and k == "ce_type" else v))
        for k, v in record.headers
    ]
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return record.key, value, headers


BAD_DEMANDS: list[tuple[str, dict[str, Any], str, str]] = [
    ("negative quantity", {"quantity": -5}, "quantity", "greater than 0"),
    ("zero quantity", {"quantity": 0}, "quantity", "greater than 0"),
    ("huge quantity", {"quantity": 10**12}, "quantity", "less than or equal"),
    ("quantity as text", {"quantity": "12000"}, "quantity", "valid integer"),
    ("fractional rounds", {"quantity": 12.5}, "quantity", "valid integer"),
    ("unknown priority", {"priority": "ASAP"}, "priority", "URGENT"),
    ("not a Monday", {"due_week": "2026-12-09"}, "due_week", "Monday"),
    ("week out of range", {"due_week": "2099-01-05"}, "due_week", "outside"),
    ("not a date", {"due_week": "next week"}, "due_week", "date"),
    ("unknown nation", {"recipient": "QZ"}, "recipient", "ISO 3166-1"),
    ("lower-case nation", {"recipient": "ua"}, "recipient", "pattern"),
    ("unknown party", {"requested_by": "ACME"}, "requested_by", "organisation"),
    ("extra field", {"colour": "green"}, "colour", "Extra inputs"),
    ("id with spaces", {"demand_id": "my demand"}, "demand_id", "pattern"),
    ("id too long", {"demand_id": "D" * 65}, "demand_id", "at most 64"),
    ("delivery point too long", {"delivery_point": "x" * 201}, "delivery_point", "at most 200"),
    ("bad product code", {"product": "HE155"}, "product", "pattern"),
    ("both product and group", {"interop_group": "IG-155-JBMOU"}, "value", "exactly one"),
]


@pytest.mark.parametrize(
    ("change", "path", "needle"),
    [(c, p, n) for _, c, p, n in BAD_DEMANDS],
    ids=[name for name, *_ in BAD_DEMANDS],
)
def test_malformed_payload_names_the_field(change: dict[str, Any], path: str, needle: str) -> None:
    body = {**_valid_demand(), **change}
    with pytest.raises(ContractViolation) as caught:
        decode(*_demand_record(body))
    assert caught.value.code is RejectionCode.SCHEMA_VIOLATION
    assert caught.value.field_path == path
    assert needle in caught.value.message


def test_missing_field_is_named() -> None:
    body = _valid_demand()
    del body["pool_id"]
    with pytest.raises(ContractViolation) as caught:
        decode(*_demand_record(body))
    assert caught.value.field_path == "pool_id"
    assert "required" in caught.value.message.lower()


def test_nested_field_path_is_named() -> None:
    body = {**_valid_demand(), "participants": [{"nation": "CZ", "quantity": 12_000}, {}]}
    with pytest.raises(ContractViolation) as caught:
        decode(*_demand_record(body))
    assert caught.value.field_path is not None
    assert caught.value.field_path.startswith("participants.1.")


def test_joint_shares_must_add_up() -> None:
    body = {
        **_valid_demand(),
        "participants": [{"nation": "CZ", "quantity": 10_000}, {"nation": "DK", "quantity": 1}],
    }
    with pytest.raises(ContractViolation) as caught:
        decode(*_demand_record(body))
    assert "add up to 10001" in caught.value.message


@pytest.mark.parametrize("body", [b"not json", b"{", b"\xff\xfe", b"[1,2,3]", b"null"])
def test_not_json_or_not_an_object(body: bytes) -> None:
    with pytest.raises(ContractViolation) as caught:
        decode(*_demand_record(body))
    assert caught.value.code in {RejectionCode.NOT_JSON, RejectionCode.SCHEMA_VIOLATION}
    assert caught.value.field_path is not None


def test_oversized_payload() -> None:
    body = json.dumps({**_valid_demand(), "pad": "x" * MAX_PAYLOAD_BYTES}).encode()
    with pytest.raises(ContractViolation) as caught:
        decode(*_demand_record(body))
    assert caught.value.code is RejectionCode.PAYLOAD_TOO_LARGE


def test_unknown_version_is_rejected_not_guessed() -> None:
    with pytest.raises(ContractViolation) as caught:
        decode(*_demand_record(_valid_demand(), "ampc.demand.submitted.v2"))
    assert caught.value.code is RejectionCode.UNSUPPORTED_VERSION
    assert "v1" in caught.value.message
    assert caught.value.field_path == "header.ce_type"


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ContractViolation) as caught:
        decode(*_demand_record(_valid_demand(), "ampc.demand.teleported.v1"))
    assert caught.value.code is RejectionCode.UNKNOWN_EVENT_TYPE


def test_type_not_allowed_on_topic() -> None:
    key, value, headers = _demand_record(_valid_demand())
    with pytest.raises(ContractViolation) as caught:
        decode(key, value, headers, allowed_types=frozenset({"ampc.funding.pool-opened.v1"}))
    assert caught.value.code is RejectionCode.UNKNOWN_EVENT_TYPE


@pytest.mark.parametrize("header", ["ce_id", "ce_source", "ce_type", "ce_specversion"])
def test_missing_required_header(header: str) -> None:
    key, value, headers = _demand_record(_valid_demand())
    with pytest.raises(ContractViolation) as caught:
        decode(key, value, [(k, v) for k, v in headers if k != header])
    assert caught.value.code is RejectionCode.MISSING_HEADER
    assert caught.value.field_path == f"header.{header}"


def test_wrong_specversion() -> None:
    key, value, headers = _demand_record(_valid_demand())
    headers = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in headers]
    with pytest.raises(ContractViolation) as caught:
        decode(key, value, headers)
    assert caught.value.code is RejectionCode.UNSUPPORTED_SPECVERSION


def test_bad_time_header() -> None:
    key, value, headers = _demand_record(_valid_demand())
    headers = [(k, b"yesterday" if k == "ce_time" else v) for k, v in headers]
    with pytest.raises(ContractViolation) as caught:
        decode(key, value, headers)
    assert caught.value.code is RejectionCode.BAD_HEADER


def test_wrong_content_type() -> None:
    key, value, headers = _demand_record(_valid_demand())
    headers = [(k, b"text/csv" if k == "content-type" else v) for k, v in headers]
    with pytest.raises(ContractViolation) as caught:
        decode(key, value, headers)
    assert caught.value.code is RejectionCode.BAD_HEADER
    assert caught.value.field_path == "header.content-type"


def test_amendment_must_change_something() -> None:
    with pytest.raises(ValueError, match="must change"):
        ev.DemandAmended(demand_id="D1", requested_by="CZ")


def test_capacity_steps_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        ev.CapacityDeclared.model_validate_json(
            json.dumps(
                {
                    "plant_id": "P1",
                    "nation": "CZ",
                    "line_id": "L1",
                    "steps": [
                        {"week": "2026-12-07", "capacity_percent": 50},
                        {"week": "2026-11-30", "capacity_percent": 100},
                    ],
                }
            )
        )


_PLAIN_HEADERS: dict[str, bytes] = {
    "ce_specversion": b"1.0",
    "ce_id": b"e-1",
    "ce_source": b"/nation/PL",
    "ce_type": b"ampc.demand.submitted.v1",
    "ce_subject": b"D-1",
    "ce_time": b"2026-11-29T14:03:58.945759Z",
    "content-type": b"application/json",
    "ampc-party": b"PL",
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"ce_time": b"2026-11-29T14:03:58Z"},
        {"ce_time": b"2026-11-29T14:03:58.9Z"},
        {"ce_time": b"2026-11-29T14:03:58.123Z"},
        {"ce_time": b"2026-11-29T14:03:58+01:00"},
        {"ce_time": b"2026-11-29T14:03:58.1234567Z"},
        {"ce_time": b"2026-11-29 14:03:58Z"},
        {"ce_time": b"2026-11-29"},
        {"ce_subject": None},
        {"ce_time": None},
        {"content-type": None},
        {"ampc-party": b"\xff\xfe"},
        {"ce_dataschema": b"https://example.org/s"},
        {"ce_traceparent": b"00-abc"},
        {"ce_Bad-Name": b"x"},
        {"ce_data": b"x"},
        {"ce_source": "/nation/PŁ".encode()},
        {"ce_subject": b""},
        {"content-type": b""},
    ],
)
@pytest.mark.parametrize("key", [b"D-1", None, b"\xff"])
def test_the_quick_attribute_road_agrees_with_cloudevents(
    change: dict[str, bytes | None], key: bytes | None
) -> None:
    """decode reads everyday headers without the cloudevents library; wherever it does, it must
    read exactly what the library would, and leave everything else to the library."""
    from cloudevents.core.bindings.kafka import KafkaMessage, from_binary

    from ampc.contract.envelope import _FORMAT, _plain_attributes

    headers = {
        name: value for name, value in {**_PLAIN_HEADERS, **change}.items() if value is not None
    }
    headers = {name.lower(): value for name, value in headers.items()}
    quick = _plain_attributes(headers, key)
    try:
        library: dict[str, Any] | None = from_binary(
            KafkaMessage(headers=headers, key=key, value=b"{}"), _FORMAT
        ).get_attributes()
    except Exception:
        library = None
    if quick is not None:
        assert library is not None
        if "ce_time" not in headers:
            # cloudevents stamps a missing time with its clock; decode does the same after
            assert "time" not in quick
            library.pop("time")
        assert quick == library
        assert type(quick.get("time")) is type(library.get("time"))
        if "time" in quick:
            assert quick["time"].tzinfo == library["time"].tzinfo
    if not change and key != b"\xff":
        assert quick is not None  # the everyday shape takes the quick road


def test_a_plain_time_that_is_no_date_is_left_to_cloudevents() -> None:
    key, value, headers = _demand_record(_valid_demand())
    headers = [(k, b"2026-13-40T14:03:58Z" if k == "ce_time" else v) for k, v in headers]
    with pytest.raises(ContractViolation) as caught:
        decode(key, value, headers)
    assert caught.value.code is RejectionCode.BAD_HEADER
    assert caught.value.message.startswith("invalid CloudEvents attributes: ")
