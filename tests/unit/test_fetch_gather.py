"""Consumers gather fetches while records flow and long-poll while idle, as
`Settings.fetch_gather_ms` says (faust fixes its consumer's fetch settings, so ampc adapts the
consumer faust builds)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver

from ampc.platform.fetching import FETCH_MIN_BYTES, FetchGather, gather_while_busy
from ampc.platform.streaming import create_app
from ampc.settings import Settings


class _Fetcher:
    """The two fields and the one method of aiokafka's fetcher that gathering uses."""

    def __init__(self, answers: list[bool]) -> None:
        self._fetch_min_bytes = 1
        self._fetch_max_wait_ms = 500
        self.answers = answers

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        return self.answers.pop(0)

    def mode(self) -> FetchGather:
        return FetchGather(self._fetch_min_bytes, self._fetch_max_wait_ms)


async def test_fetches_gather_after_records_and_long_poll_after_none() -> None:
    fetcher = _Fetcher([True, True, False, True])
    busy = FetchGather(FETCH_MIN_BYTES, 20)
    gather_while_busy(SimpleNamespace(_fetcher=fetcher), busy)
    seen = []
    for _ in range(4):
        got = await fetcher._proc_fetch_request(None, 0, None)
        seen.append((got, fetcher.mode()))
    idle = FetchGather(1, 500)
    assert seen == [(True, busy), (True, busy), (False, idle), (True, busy)]


def test_a_consumer_is_wrapped_once() -> None:
    consumer = SimpleNamespace(_fetcher=_Fetcher([True]))
    gather_while_busy(consumer, FetchGather(FETCH_MIN_BYTES, 20))
    with pytest.raises(RuntimeError, match="already gathers"):
        gather_while_busy(consumer, FetchGather(FETCH_MIN_BYTES, 20))


def test_an_unstarted_consumer_is_refused() -> None:
    with pytest.raises(RuntimeError, match="started consumer"):
        gather_while_busy(SimpleNamespace(_fetcher=None), FetchGather(FETCH_MIN_BYTES, 20))


@pytest.mark.parametrize(
    ("gather_ms", "expected"), [(20.0, FetchGather(FETCH_MIN_BYTES, 20)), (0.0, None)]
)
async def test_the_consumer_faust_starts_gathers_as_set(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gather_ms: float,
    expected: FetchGather | None,
) -> None:
    settings = Settings(
        bootstrap_servers="127.0.0.1:9", data_dir=tmp_path, fetch_gather_ms=gather_ms
    )
    app = create_app("gather-test", settings, web_port=6999, partitions=1)
    assert app.fetch_gather == expected
    fetcher = _Fetcher([True])
    fetcher._fetch_max_wait_ms = 1500  # faust's

    async def start_without_a_broker(thread: Any) -> None:
        thread._consumer = SimpleNamespace(_fetcher=fetcher)

    monkeypatch.setattr(aiokafka_driver.AIOKafkaConsumerThread, "on_start", start_without_a_broker)
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    await thread.on_start()
    await fetcher._proc_fetch_request(None, 0, None)
    assert fetcher.mode() == (expected or FetchGather(1, 1500))
