"""Events that arrived before the entity they refer to wait here instead of being refused.

Inboxes of different nations are not ordered with respect to each other, and a ledger reading
several canonical topics interleaves them as it likes: a pledge can be read before the pool is
opened, a production report before its plant is registered. Such an event is parked under its
key (the same key, so the same partition, as the entity it waits for) and re-applied when that
entity next changes. A key holds at most `MAX_PER_KEY` waiting events; beyond that the oldest is
refused, so a stream of events for an entity that never comes cannot grow without bound.
"""

from __future__ import annotations

import base64
import json
from collections.abc import MutableMapping
from typing import Final

from ampc.ledger.tables import table_bytes, table_value
from ampc.platform.deadletter import SourceRecord
from ampc.platform.metrics import PARKED_EVENTS, RELEASED_EVENTS

MAX_PER_KEY: Final = 200


def _encode(source: SourceRecord, parked_at: float) -> dict[str, object]:
    return {
        "parked_at": parked_at,
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "key": base64.b64encode(source.key).decode() if source.key is not None else None,
        "value": base64.b64encode(source.value or b"").decode(),
        "headers": [[name, base64.b64encode(value).decode()] for name, value in source.headers],
    }


def _decode(entry: dict[str, object]) -> SourceRecord:
    key = entry["key"]
    headers = entry["headers"]
    assert isinstance(headers, list)
    return SourceRecord(
        topic=str(entry["topic"]),
        partition=int(str(entry["partition"])),
        offset=int(str(entry["offset"])),
        key=base64.b64decode(str(key)) if key is not None else None,
        value=base64.b64decode(str(entry["value"])),
        headers=tuple((str(name), base64.b64decode(str(value))) for name, value in headers),
    )


def _is_record(entry: dict[str, object], source: SourceRecord) -> bool:
    """Whether a parked entry is this record (by its place in its topic)."""
    return (
        entry["topic"] == source.topic
        and entry["partition"] == source.partition
        and entry["offset"] == source.offset
    )


class ParkingLot:
    """Waiting events per canonical key, in a faust table (a dict in tests)."""

    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        self.table = table

    def _entries(self, key: str) -> list[dict[str, object]]:
        raw = table_value(self.table, key)
        entries: list[dict[str, object]] = json.loads(table_bytes(raw)) if raw else []
        return entries

    def park(self, source: SourceRecord, now: float) -> bool:
        """Park a record under its key; False if the key's lot is full (refuse it instead)."""
        key = (source.key or b"").decode()
        entries = self._entries(key)
        waiting = any(_is_record(e, source) for e in entries)
        # A replay after a crash finds it already waiting: not refused even in a full lot
        # (that would dead-letter an event that stays parked), and written again all the same,
        # as the crash may have come before the table's changelog record was sent, and a
        # worker recovering this partition elsewhere reads only that.
        if not waiting:
            if len(entries) >= MAX_PER_KEY:
                return False
            entries.append(_encode(source, now))
            PARKED_EVENTS.inc()
        self.table[key] = json.dumps(entries).encode()
        return True

    def waiting(self, key: str) -> list[SourceRecord]:
        """The records waiting under `key`, oldest first."""
        return [_decode(entry) for entry in self._entries(key)]

    def release(self, key: str, source: SourceRecord) -> None:
        """Forget a record that was applied or finally judged."""
        entries = [e for e in self._entries(key) if not _is_record(e, source)]
        if entries:
            self.table[key] = json.dumps(entries).encode()
        else:
            self.table.pop(key, None)
        RELEASED_EVENTS.inc()

    def expired(self, partition: int, parked_before: float) -> list[tuple[str, SourceRecord]]:
        """(key, record) of this partition's records parked before the given time."""
        found: list[tuple[str, SourceRecord]] = []
        for key in list(self.table):
            for entry in self._entries(key):
                waited_since = float(str(entry.get("parked_at", 0.0)))
                if entry["partition"] == partition and waited_since < parked_before:
                    found.append((key, _decode(entry)))
        return found
