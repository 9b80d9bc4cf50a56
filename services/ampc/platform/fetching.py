"""Fetches that gather records while a stream flows and long-poll while it is idle.

A Kafka fetch is answered once the broker has `fetch_min_bytes` for it or after
`fetch_max_wait_ms`. Answered at the first byte, a trickle of records costs a fetch (over every
assigned partition) per record or two, and each fetch costs the service and the broker more CPU
than the records in it. Asked to gather, the broker answers an idle consumer empty every
`max_wait_ms`: fifty empty fetches a second at 20 ms. So a consumer gathers only while the
previous fetch brought records, and otherwise waits for the first record as it was configured to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class FetchGather:
    """How a fetch is answered: once the broker has `min_bytes` for it or after
    `max_wait_ms`, whichever comes first."""

    min_bytes: int = 1
    max_wait_ms: int = 1500


FETCH_MIN_BYTES: Final = 64 * 1024
"""A gathering fetch waits (at most its `max_wait_ms`) for this much: a hundred events or so."""


def gathering(gather_ms: float, min_bytes: int = FETCH_MIN_BYTES) -> FetchGather | None:
    """The busy-time fetch for `Settings.fetch_gather_ms`; None when 0 (never gather)."""
    return FetchGather(min_bytes, round(gather_ms)) if gather_ms > 0 else None


def gather_while_busy(consumer: Any, busy: FetchGather) -> None:
    """Make a started `AIOKafkaConsumer` fetch as `busy` says after a fetch that brought
    records, and as it was configured after one that brought none.

    aiokafka (pinned with faust) builds each fetch request from its fetcher's `_fetch_min_bytes`
    and `_fetch_max_wait_ms`, and reports from `_proc_fetch_request` whether a response added
    records; both are private, so this is the one place that touches them. The fields serve
    the fetches to every broker: on a cluster, one broker's empty answer returns the consumer's
    next fetches to all of them to long-polling until records come again. No record waits
    longer for it; some fetches gather less.
    """
    fetcher = consumer._fetcher
    if fetcher is None:
        raise RuntimeError("gather_while_busy needs a started consumer")
    if getattr(fetcher, "_ampc_gathering", False):
        raise RuntimeError("this consumer already gathers while busy")
    fetcher._ampc_gathering = True  # a second wrap would take the busy mode for the idle one
    idle = FetchGather(fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms)
    fetch: Callable[..., Awaitable[bool]] = fetcher._proc_fetch_request

    async def fetch_then_adapt(assignment: Any, node_id: int, request: Any) -> bool:
        got_records = await fetch(assignment, node_id, request)
        mode = busy if got_records else idle
        fetcher._fetch_min_bytes = mode.min_bytes
        fetcher._fetch_max_wait_ms = mode.max_wait_ms
        return got_records

    fetcher._proc_fetch_request = fetch_then_adapt
