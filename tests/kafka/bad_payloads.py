"""Hypothesis strategies for bad inbox records of every shape SPEC section 7 names."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from ampc.contract import events as ev
from ampc.contract.envelope import MAX_PAYLOAD_BYTES, encode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)

BadRecord = tuple[bytes | None, bytes, list[tuple[str, bytes]], str]
"""key, value, headers, and what kind of badness it is (for the failure message)."""


def _headers_for(event: ev.Event) -> list[tuple[str, bytes]]:
    return list(encode(event, source="/fuzz").headers)


@st.composite
def bad_record(draw: st.DrawFn, template: ev.Event, foreign: ev.Event) -> BadRecord:
    """One bad record derived from a valid `template` (sent on the template party's inbox);
    `foreign` is a valid event that this party is not allowed to send."""
    body: dict[str, Any] = json.loads(template.model_dump_json())
    headers = _headers_for(template)
    key = template.entity_id().encode()
    kind = draw(
        st.sampled_from(
            [
                "not-json",
                "json-not-object",
                "wrong-type",
                "unknown-enum",
                "negative",
                "huge",
                "bad-date",
                "extra-field",
                "missing-field",
                "wrong-version",
                "unknown-type",
                "oversized",
                "no-headers",
                "foreign",
            ]
        )
    )
    fields = sorted(body)
    match kind:
        case "not-json":
            value = draw(st.binary(min_size=1, max_size=64).filter(lambda b: not _is_json(b)))
        case "json-not-object":
            value = json.dumps(draw(st.lists(json_values, max_size=3) | st.integers())).encode()
        case "wrong-type":
            name = draw(st.sampled_from(fields))
            body[name] = draw(st.sampled_from([[1, 2], {"x": 1}, True, 3.5, "text", None]))
            if name in {"quantity", "amount_cents"}:
                body[name] = str(body[name])
            value = json.dumps(body).encode()
        case "unknown-enum":
            body["priority"] = draw(
                st.text(min_size=1, max_size=8).filter(
                    lambda s: s not in {"URGENT", "HIGH", "ROUTINE"}
                )
            )
            value = json.dumps(body).encode()
        case "negative":
            body["quantity"] = draw(st.integers(max_value=0))
            value = json.dumps(body).encode()
        case "huge":
            body["quantity"] = draw(st.integers(min_value=50_000_001))
            value = json.dumps(body).encode()
        case "bad-date":
            body["due_week"] = draw(
                st.sampled_from(
                    ["2026-12-08", "1999-01-04", "2099-01-05", "tomorrow", "2026-13-01"]
                )
            )
            value = json.dumps(body).encode()
        case "extra-field":
            body[draw(st.text(min_size=1, max_size=10).filter(lambda s: s not in body))] = 1
            value = json.dumps(body).encode()
        case "missing-field":
            body.pop("demand_id")
            value = json.dumps(body).encode()
        case "wrong-version":
            headers = [
                (k, v.replace(b".v1", b".v" + str(draw(st.integers(2, 99))).encode()))
                if k == "ce_type"
                else (k, v)
                for k, v in headers
            ]
            value = json.dumps(body).encode()
        case "unknown-type":
            headers = [
                (k, b"ampc.demand." + draw(st.sampled_from([b"exploded", b"x"])) + b".v1")
                if k == "ce_type"
                else (k, v)
                for k, v in headers
            ]
            value = json.dumps(body).encode()
        case "oversized":
            body["delivery_point"] = "x" * (MAX_PAYLOAD_BYTES + 10)
            value = json.dumps(body).encode()
        case "no-headers":
            headers = []
            value = json.dumps(body).encode()
        case "foreign":
            foreign_record = encode(foreign, source="/fuzz")
            return foreign_record.key, foreign_record.value, list(foreign_record.headers), kind
        case _:
            raise AssertionError(kind)
    return key, value, headers, kind


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True
