"""The CloudEvents 1.0 envelope in Kafka binary content mode.

Attributes travel as `ce_*` headers, the payload is the event's JSON body, the key is the
entity id. Decoding never guesses: a missing header, an unknown type or an unsupported version
is a `ContractViolation` with a code, the field path and a message a person can act on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from ampc.contract.events import EVENTS_BY_TYPE, Event, RejectionCode

CONTENT_TYPE: Final = "application/json"
MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""Inbound payload limit: the largest legitimate event (a plant with 50 lines) is far smaller."""

REQUIRED_HEADERS: Final = ("ce_specversion", "ce_id", "ce_source", "ce_type")

Headers = list[tuple[str, bytes]]


class ContractViolation(Exception):
    """An inbound record that breaks the contract, with what the sender must fix."""

    def __init__(self, code: RejectionCode, message: str, field_path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field_path = field_path

    def __str__(self) -> str:
        where = f" at {self.field_path}" if self.field_path else ""
        return f"{self.code.value}{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded, validated event with its CloudEvents attributes."""

    event_id: str
    source: str
    time: dt.datetime
    subject: str | None
    payload: Event

    @property
    def event_type(self) -> str:
        return self.payload.event_type()


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What goes onto the wire: key, value and headers."""

    key: bytes
    value: bytes
    headers: Headers


class _RawJSON(JSONFormat):
    """Leaves the body as bytes: pydantic parses it once, strictly, with field paths."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> bytes:
        return body


_FORMAT: Final = _RawJSON()


def encode(
    event: Event,
    *,
    source: str,
    event_id: str | None = None,
    time: dt.datetime | None = None,
) -> KafkaRecord:
    """Wrap an event in a CloudEvents binary-mode Kafka record keyed by its entity id."""
    attributes: dict[str, Any] = {
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event.event_type(),
        "subject": event.entity_id(),
        "datacontenttype": CONTENT_TYPE,
        "time": time or dt.datetime.now(dt.UTC),
    }
    message = to_binary(
        CloudEvent(attributes, event.model_dump_json().encode()),
        _FORMAT,
        key_mapper=lambda _event: event.entity_id().encode(),
    )
    key = message.key if isinstance(message.key, bytes) else str(message.key).encode()
    return KafkaRecord(key=key, value=message.value, headers=sorted(message.headers.items()))


def event_class_for(event_type: str) -> type[Event]:
    """The model for a CloudEvents type, or a violation that says what is supported."""
    model = EVENTS_BY_TYPE.get(event_type)
    if model is not None:
        return model
    base, _, version = event_type.rpartition(".")
    known_versions = sorted(
        known.rpartition(".")[2] for known in EVENTS_BY_TYPE if known.rpartition(".")[0] == base
    )
    if known_versions and version.startswith("v"):
        raise ContractViolation(
            RejectionCode.UNSUPPORTED_VERSION,
            f"event type '{event_type}' has version '{version}'; "
            f"this ampc accepts {', '.join(known_versions)}",
            "header.ce_type",
        )
    raise ContractViolation(
        RejectionCode.UNKNOWN_EVENT_TYPE,
        f"unknown event type '{event_type}'; see schemas/asyncapi.yaml for the accepted types",
        "header.ce_type",
    )


def _header_map(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, bytes]:
    mapped: dict[str, bytes] = {}
    for name, value in headers:
        if value is None:
            continue
        mapped[name.lower()] = value
    return mapped


_PLAIN_ATTRIBUTE_HEADERS: Final = frozenset(
    ("ce_id", "ce_source", "ce_type", "ce_specversion", "ce_subject", "ce_time")
)
_PLAIN_UTC_TIME: Final = re.compile(
    rb"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z"
)

# The tzinfo `from_binary` gives a UTC time (dateutil's), so that both roads build equal events.
_FROM_BINARY_UTC: Final = (
    from_binary(
        KafkaMessage(
            headers={
                "ce_specversion": b"1.0",
                "ce_id": b"utc",
                "ce_source": b"/ampc",
                "ce_type": b"utc",
                "ce_time": b"2000-01-01T00:00:00Z",
            },
            key=None,
            value=b"{}",
        ),
        _RawJSON(),
    )
    .get_attributes()["time"]
    .tzinfo
)


def _plain_attributes(mapped: Mapping[str, bytes], key: bytes | None) -> dict[str, Any] | None:
    """The attributes `from_binary` reads from a record of the everyday shape (only the usual
    `ce_*` headers, none empty, every header UTF-8, a UTC time in the common ISO form), built
    the way it builds them; None for anything else, which `from_binary` then judges with its own
    messages. (`from_binary` spends most of its time in dateutil's general ISO parser.)"""
    attributes: dict[str, Any] = {}
    try:
        for name, value in mapped.items():
            if name.startswith("ce_"):
                if name not in _PLAIN_ATTRIBUTE_HEADERS or not value:
                    return None
                if name == "ce_time":
                    found = _PLAIN_UTC_TIME.fullmatch(value)
                    if found is None:
                        return None
                    year, month, day, hour, minute, second, fraction = found.groups()
                    attributes["time"] = dt.datetime(
                        int(year),
                        int(month),
                        int(day),
                        int(hour),
                        int(minute),
                        int(second),
                        int(fraction) * 10 ** (6 - len(fraction)) if fraction else 0,
                        tzinfo=_FROM_BINARY_UTC,
                    )
                else:
                    attributes[name[3:]] = value.decode("utf-8")
            elif name == "content-type":
                if not value:
                    return None
                attributes["datacontenttype"] = value.decode("utf-8")
            else:
                value.decode("utf-8")  # from_binary decodes every header
        if key is not None:
            attributes["partitionkey"] = key.decode("utf-8")
    except ValueError:  # not UTF-8, or not a date (month 13, hour 24...)
        return None
    return attributes


def _text_header(headers: Mapping[str, bytes], name: str) -> str:
    try:
        return headers[name].decode("utf-8")
    except UnicodeDecodeError as error:
        raise ContractViolation(
            RejectionCode.BAD_HEADER, f"header {name} is not UTF-8 text", f"header.{name}"
        ) from error


def decode(
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    *,
    allowed_types: frozenset[str] | None = None,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> Envelope:
    """Validate a binary-mode record's envelope and payload; raise ContractViolation if not."""
    mapped = _header_map(headers)
    for name in REQUIRED_HEADERS:
        if name not in mapped:
            raise ContractViolation(
                RejectionCode.MISSING_HEADER,
                f"CloudEvents binary mode needs header {name}",
                f"header.{name}",
            )
    specversion = _text_header(mapped, "ce_specversion")
    if specversion != "1.0":
        raise ContractViolation(
            RejectionCode.UNSUPPORTED_SPECVERSION,
            f"CloudEvents specversion '{specversion}' is not supported; send 1.0",
            "header.ce_specversion",
        )
    model = event_class_for(_text_header(mapped, "ce_type"))
    if allowed_types is not None and model.event_type() not in allowed_types:
        raise ContractViolation(
            RejectionCode.UNKNOWN_EVENT_TYPE,
            f"event type '{model.event_type()}' is not accepted on this topic",
            "header.ce_type",
        )
    if value is None:
        raise ContractViolation(RejectionCode.NOT_JSON, "the record has no value", "value")
    if len(value) > max_payload_bytes:
        raise ContractViolation(
            RejectionCode.PAYLOAD_TOO_LARGE,
            f"payload is {len(value)} bytes; the limit is {max_payload_bytes}",
            "value",
        )
    content_type = mapped.get("content-type")
    if content_type is not None and not content_type.startswith(CONTENT_TYPE.encode()):
        raise ContractViolation(
            RejectionCode.BAD_HEADER,
            f"content-type must be {CONTENT_TYPE}, not '{content_type.decode(errors='replace')}'",
            "header.content-type",
        )
    attributes = _plain_attributes(mapped, key)
    if attributes is None:
        try:
            cloud_event = from_binary(KafkaMessage(headers=mapped, key=key, value=value), _FORMAT)
        except (BaseCloudEventException, ValueError, OverflowError) as error:
            raise ContractViolation(
                RejectionCode.BAD_HEADER, f"invalid CloudEvents attributes: {error}", "header"
            ) from error
        attributes = cloud_event.get_attributes()
    try:
        payload = model.model_validate_json(value)
    except ValidationError as error:
        raise violation_from(error) from error
    time = attributes.get("time")
    if not isinstance(time, dt.datetime):
        time = dt.datetime.now(dt.UTC)
    subject = attributes.get("subject")
    return Envelope(
        event_id=str(attributes["id"]),
        source=str(attributes["source"]),
        time=time,
        subject=str(subject) if subject is not None else None,
        payload=payload,
    )


def violation_from(error: ValidationError) -> ContractViolation:
    """Turn pydantic's errors into one violation naming the first bad field."""
    errors = error.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return ContractViolation(
            RejectionCode.NOT_JSON, f"payload is not valid JSON: {first['msg']}", "value"
        )
    path = ".".join(str(part) for part in first["loc"]) or "value"
    message = first["msg"]
    if len(errors) > 1:
        others = ", ".join(".".join(str(part) for part in e["loc"]) or "value" for e in errors[1:6])
        message = f"{message} (and {len(errors) - 1} more: {others})"
    return ContractViolation(RejectionCode.SCHEMA_VIOLATION, message, path)


def payload_json(event: Event) -> dict[str, Any]:
    """The event's JSON body as a plain dict (for logs and APIs)."""
    result: dict[str, Any] = json.loads(event.model_dump_json())
    return result
