"""Dead-letter records: the original bytes, where they came from, and why they were refused.

Headers follow Kafka Connect's dead-letter vocabulary (`__connect.errors.*`) so that tools built
for Connect's DLQs can read ours; the body is an `EventRejected` CloudEvent for people and APIs.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from ampc.contract.envelope import ContractViolation, KafkaRecord, encode
from ampc.contract.events import EventRejected, RejectionCode

MAX_KEPT_VALUE_BYTES = 2_000_000
"""Original values above this are truncated in the dead letter (the payload limit is far lower,
but a rejected oversized record must still fit in the dead-letter topic)."""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A record as it was read from Kafka, before anything was decoded."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def source_record(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | None,
) -> SourceRecord:
    """Normalise a consumer's record (headers may be a list, a dict, or hold None values)."""
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    clean = tuple((str(name), value or b"") for name, value in items)
    return SourceRecord(topic, partition, offset, key, value, clean)


def dead_letter(
    source: SourceRecord,
    violation: ContractViolation,
    *,
    party: str | None,
    rejected_by: str,
    now: dt.datetime | None = None,
) -> KafkaRecord:
    """The dead-letter record for a refused source record."""
    value = source.value or b""
    rejected = EventRejected(
        rejection_id=f"{source.topic}:{source.partition}:{source.offset}"[:64],
        original_topic=source.topic,
        original_partition=source.partition,
        original_offset=source.offset,
        original_key_base64=(
            base64.b64encode(source.key[:3000]).decode() if source.key is not None else None
        ),
        original_value_base64=base64.b64encode(value[:MAX_KEPT_VALUE_BYTES]).decode(),
        original_headers={
            name: header.decode("utf-8", errors="replace")[:500]
            for name, header in source.headers[:64]
        },
        nation=party,
        error_code=violation.code,
        field_path=(violation.field_path or None) and violation.field_path[:500],
        message=violation.message[:2000],
        rejected_at=now or dt.datetime.now(dt.UTC),
        rejected_by=rejected_by,
    )
    record = encode(rejected, source=f"/ampc/{rejected_by}")
    connect_headers = [
        ("__connect.errors.topic", source.topic.encode()),
        ("__connect.errors.partition", str(source.partition).encode()),
        ("__connect.errors.offset", str(source.offset).encode()),
        ("__connect.errors.exception.class.name", violation.code.value.encode()),
        ("__connect.errors.exception.message", violation.message[:1000].encode()),
        ("__connect.errors.stage", rejected_by.encode()),
        ("ampc-error-code", violation.code.value.encode()),
        ("ampc-field-path", (violation.field_path or "").encode()),
    ]
    if party:
        connect_headers.append(("ampc-party", party.encode()))
    return KafkaRecord(key=record.key, value=record.value, headers=record.headers + connect_headers)


def rejection(
    code: RejectionCode, message: str, field_path: str | None = None
) -> ContractViolation:
    """Shorthand for a refusal decided after decoding (authority, context)."""
    return ContractViolation(code, message, field_path)
