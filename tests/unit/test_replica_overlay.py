"""The gateway's view of its ownership book sees its own writes at once and forgets them once
the replica has read them back."""

from __future__ import annotations

import pytest

from ampc.platform.replica import CompactedReplica, ReadYourWritesMap

pytestmark = pytest.mark.unit


def test_own_writes_are_seen_at_once_and_trimmed_when_read_back() -> None:
    replica: CompactedReplica[str] = CompactedReplica(
        "unused:9092", ["owners"], lambda t, v: v.decode()
    )
    sent: list[tuple[str, str]] = []
    book = ReadYourWritesMap(replica, "owners", lambda key, value: sent.append((key, value)))
    book["plant:P-1"] = "CZ"
    assert sent == [("plant:P-1", "CZ")]
    assert book["plant:P-1"] == "CZ"
    assert book.pending_writes == 1
    replica.values["owners"]["plant:P-1"] = "CZ"  # the replica reads the write back
    assert book["plant:P-1"] == "CZ"
    assert book.pending_writes == 0
    assert book["plant:P-1"] == "CZ"
    assert book.get("plant:P-2") is None
    replica.values["owners"]["plant:P-2"] = "PL"  # written by another gateway worker
    assert book.get("plant:P-2") == "PL"
    assert set(book) == {"plant:P-1", "plant:P-2"}
