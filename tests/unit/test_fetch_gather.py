"""The services' consumers gather fetches as `Settings.fetch_gather_ms` says (faust fixes its
consumer's fetch settings, so ampc sets them on the consumer faust builds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ampc.platform.streaming import FETCH_MIN_BYTES, FetchGather, create_app
from ampc.settings import Settings


def _faust_consumer(settings: Settings) -> Any:
    app = create_app("gather-test", settings, web_port=6999, partitions=1)
    # the thread that owns faust's AIOKafkaConsumer
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    return app, thread._create_worker_consumer(app.transport)


@pytest.mark.parametrize(
    ("gather_ms", "expected"),
    [(20.0, FetchGather(FETCH_MIN_BYTES, 20)), (0.0, FetchGather(1, 1500))],
)
async def test_the_consumer_faust_builds_gathers_as_set(
    tmp_path: Path, gather_ms: float, expected: FetchGather
) -> None:
    settings = Settings(
        bootstrap_servers="127.0.0.1:9", data_dir=tmp_path, fetch_gather_ms=gather_ms
    )
    app, consumer = _faust_consumer(settings)
    assert app.fetch_gather == expected
    # what aiokafka's fetcher is started with
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (
        expected.min_bytes,
        expected.max_wait_ms,
    )
