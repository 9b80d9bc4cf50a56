"""The parking lot for events that came before their entity."""

from __future__ import annotations

import pytest

from ampc.ledger import parking
from ampc.ledger.parking import ParkingLot
from ampc.platform.deadletter import SourceRecord
from tests.unit.ledger.factory import WriteCountingTable

pytestmark = pytest.mark.unit


def record(offset: int, key: bytes = b"P-1", partition: int = 0) -> SourceRecord:
    return SourceRecord(
        "ampc.events.funding", partition, offset, key, b'{"x":1}', (("ce_id", b"e"),)
    )


def test_waiting_records_come_back_oldest_first_and_leave_when_released() -> None:
    lot = ParkingLot({})
    assert lot.park(record(5), now=100.0)
    assert lot.park(record(7), now=101.0)
    assert [r.offset for r in lot.waiting("P-1")] == [5, 7]
    assert lot.waiting("P-1")[0] == record(5)
    lot.release("P-1", record(5))
    assert [r.offset for r in lot.waiting("P-1")] == [7]
    lot.release("P-1", record(7))
    assert lot.table == {}


def test_a_replayed_record_is_parked_once_and_written_again() -> None:
    table = WriteCountingTable()
    lot = ParkingLot(table)
    assert lot.park(record(5), now=1.0)
    stored, writes = table["P-1"], table.writes
    assert lot.park(record(5), now=2.0)
    assert len(lot.waiting("P-1")) == 1
    # the crash may have come before the first write's changelog record was sent
    assert table.writes == writes + 1
    assert table["P-1"] == stored


def test_a_full_lot_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parking, "MAX_PER_KEY", 2)
    lot = ParkingLot({})
    assert lot.park(record(1), now=0.0)
    assert lot.park(record(2), now=0.0)
    assert not lot.park(record(3), now=0.0)
    assert lot.park(record(2), now=1.0)  # a replay of one that waits is not refused
    assert [r.offset for r in lot.waiting("P-1")] == [1, 2]


def test_expired_only_in_the_given_partition_and_before_the_time() -> None:
    lot = ParkingLot({})
    lot.park(record(1, key=b"A", partition=0), now=10.0)
    lot.park(record(2, key=b"B", partition=1), now=10.0)
    lot.park(record(3, key=b"A", partition=0), now=50.0)
    expired = lot.expired(partition=0, parked_before=20.0)
    assert [(key, r.offset) for key, r in expired] == [("A", 1)]
    assert lot.expired(partition=1, parked_before=5.0) == []
