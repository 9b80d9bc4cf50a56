"""The ledger's tables hold each value's JSON once, and still read what an older ledger wrote
(JSON wrapped in a JSON string) without a migration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ampc.ledger.app import TableStore, build_ledger
from ampc.ledger.fold import Rejected, apply_event, state_json
from ampc.ledger.parking import ParkingLot
from ampc.ledger.state import EntityKind
from ampc.ledger.tables import ledger_table, table_value
from ampc.platform.deadletter import SourceRecord
from ampc.platform.streaming import create_app
from ampc.settings import Settings
from tests.unit.ledger.factory import (
    Feed,
    WriteCountingTable,
    amended,
    cancelled,
    production,
    scenario,
)

pytestmark = pytest.mark.unit


def _wrapped(value: bytes) -> bytes:
    """A value as the ledger's tables held it until 2026-11-29: a JSON string."""
    return json.dumps(value.decode()).encode()


def test_every_ledger_table_stores_raw_bytes(tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:9", data_dir=tmp_path)
    tables = build_ledger(settings).tables.values()
    assert tables
    assert {(table.value_type, table.value_serializer) for table in tables} == {(bytes, "raw")}


def test_states_are_stored_once_encoded_and_old_wrapped_ones_still_read() -> None:
    feed = Feed()
    feed.send_all(*scenario())
    states = list(feed.store.items())
    assert {kind for kind, _, _ in states} >= {EntityKind.DEMANDS, EntityKind.POOLS}
    new: dict[EntityKind, dict[str, bytes]] = {kind: {} for kind in EntityKind}
    old: dict[EntityKind, dict[str, bytes]] = {kind: {} for kind in EntityKind}
    store = TableStore(new)
    for kind, entity_id, state in states:
        store.put(kind, entity_id, state)
        assert new[kind][entity_id] == state_json(state)
        old[kind][entity_id] = _wrapped(state_json(state))
    assert sorted(TableStore(old).items()) == sorted(TableStore(new).items()) == sorted(states)
    kind, entity_id, state = states[0]
    assert TableStore(old).get(kind, entity_id) == state


def test_old_wrapped_parked_events_still_come_back() -> None:
    record = SourceRecord("ampc.events.funding", 0, 5, b"P-1", b'{"x":1}', (("ce_id", b"e"),))
    lot = ParkingLot({})
    assert lot.park(record, now=1.0)
    assert lot.table["P-1"][:1] == b"["  # a JSON list, not a string holding one
    old = ParkingLot({"P-1": _wrapped(lot.table["P-1"])})
    assert old.waiting("P-1") == [record]
    assert old.park(record, now=2.0)  # recognised as already waiting
    assert len(old.waiting("P-1")) == 1


def test_a_state_taken_for_change_never_changes_the_table_before_put() -> None:
    feed = Feed()
    feed.send_all(*scenario())
    kind, entity_id, state = next(s for s in feed.store.items() if s[0] is EntityKind.PLANTS)
    table: dict[str, bytes] = {}
    store = TableStore({EntityKind.PLANTS: table})
    store.put(kind, entity_id, state)
    stored = table[entity_id]

    read = store.get(kind, entity_id)
    taken = store.get_for_change(kind, entity_id)
    assert taken is read  # decoded once for the applied-log check and the change
    assert taken is not None
    taken.version += 100

    assert table[entity_id] == stored
    assert store.get(kind, entity_id) == state
    again = store.get_for_change(kind, entity_id)
    assert again == state and again is not taken

    store.get(kind, entity_id)
    newer = state.model_copy(update={"version": state.version + 1})
    store.put(kind, entity_id, newer)
    assert store.get_for_change(kind, entity_id) == newer  # not what was read before the put
    store.get(kind, entity_id)
    table[entity_id] = stored  # written behind the store's back, as a recovery would
    assert store.get_for_change(kind, entity_id) == state


def test_folding_over_the_tables_gives_what_folding_in_memory_gives() -> None:
    feed = Feed()
    events = [
        *scenario(),
        production(quantity=470),  # the same report id, changed: refused
        cancelled(),
        amended(quantity=5),  # a cancelled demand: refused
    ]
    memory = feed.send_all(*events)
    memory += feed.replay()
    tables = TableStore({kind: {} for kind in EntityKind})
    outcomes = []
    for event, meta in feed.sent + feed.sent:
        tables.forget_written()
        outcomes.append(apply_event(tables, event, meta))

    assert [type(o) for o in outcomes] == [type(o) for o in memory]
    assert any(isinstance(o, Rejected) for o in outcomes)
    assert sorted(tables.items()) == sorted(feed.store.items())


class _CountingStore(dict[str, bytes]):
    """A table's store that counts its reads."""

    reads = 0

    def __getitem__(self, key: str) -> bytes:
        self.reads += 1
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.reads += 1
        return super().__contains__(key)


class _FaustLikeTable(dict[str, bytes]):
    """Reads as faust's tables do: asks its store whether the key is there, then reads it."""

    def __init__(self, store: _CountingStore) -> None:
        super().__init__()
        self.data = store

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        return self.data[key] if key in self.data else default  # noqa: SIM401 (two reads)


def test_a_table_value_is_read_from_the_store_once() -> None:
    store = _CountingStore({"D-1": b'{"version":1}'})
    table = _FaustLikeTable(store)
    assert table_value(table, "D-1") == b'{"version":1}'
    assert store.reads == 1
    assert table_value(table, "D-2") is None
    assert store.reads == 2
    assert table_value({"D-1": b"{}"}, "D-1") == b"{}"  # a plain mapping, as the tests use
    assert table_value({}, "D-1") is None

    store["D-3"] = b"[]"
    lot = ParkingLot(table)
    reads = store.reads
    assert lot.waiting("D-3") == []
    assert store.reads == reads + 1  # the parking lot reads its table once too


def test_table_value_reads_a_faust_table_as_its_get_does(tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:9", data_dir=tmp_path)
    app = create_app("probe", settings, web_port=1, partitions=2)  # faust's in-memory store
    table = ledger_table(app, "probe", 2)
    table.data["D-1"] = b'{"version":1}'  # into the store itself: no changelog, no event
    assert table_value(table, "D-1") == table.get("D-1") == b'{"version":1}'
    assert table_value(table, "D-2") is table.get("D-2") is None


def test_rewriting_an_entity_writes_its_state_again_unchanged() -> None:
    feed = Feed()
    feed.send_all(*scenario())
    kind, entity_id, state = next(s for s in feed.store.items() if s[0] is EntityKind.PLANTS)
    table = WriteCountingTable()
    store = TableStore({EntityKind.PLANTS: table})
    store.put(kind, entity_id, state)
    stored, writes = table[entity_id], table.writes

    assert store.rewrite(kind, entity_id) == state
    assert table.writes == writes + 1  # so the changelog gets the record again
    assert table[entity_id] == stored
    assert store.rewrite(kind, "no-such-plant") is None
    assert table.writes == writes + 1
