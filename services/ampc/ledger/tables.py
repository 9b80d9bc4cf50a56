"""How the ledger's faust tables hold their values: as bytes, exactly as written.

Each value is already JSON (an entity's state, a key's parked events), so the tables use faust's
`raw` value serializer. Until 2026-11-29 they used its default `json` serializer over `str`
values, which wrapped every value in a JSON string: encoded twice, decoded twice, about 4 % of
the ledger's CPU. Changelogs and RocksDB stores written then still hold such wrapped values;
`table_bytes` unwraps them, so an upgraded ledger reads its old state without a migration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def ledger_table(app: Any, name: str, partitions: int) -> Any:
    """A faust table of the ledger: `str` keys (JSON-encoded, as before), JSON values stored
    as raw bytes (faust picks its `raw` serializer for a `bytes` value type)."""
    return app.Table(name, key_type=str, value_type=bytes, partitions=partitions)


def table_bytes(raw: bytes) -> bytes:
    """A table value's JSON, unwrapping a value written as a JSON string by an older ledger."""
    if raw[:1] == b'"':
        unwrapped: str = json.loads(raw)
        return unwrapped.encode()
    return raw


def table_value(table: Mapping[str, bytes], key: str) -> bytes | None:
    """The value under `key`, or None, in one read of the table's store.

    A faust table's `get` first asks its store whether the key is there and then reads it:
    two RocksDB reads and two key encodings for a key that is there (a missing key costs one
    read either way). Its store (`table.data`) reads once, from the same partition's database
    (the current event's). Only faust's sensors' get-counters are skipped; writes still go
    through the table, which writes the changelog. Not for a table with a `default`: this
    returns None where the table would make a default. A plain mapping (the tests' dict) is
    read as it is.
    """
    store: Mapping[str, bytes] = getattr(table, "data", table)
    try:
        return store[key]
    except KeyError:
        return None
