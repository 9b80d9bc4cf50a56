"""Gathering on a real consumer: a replica's fetches gather while records flow and go back to
answering at the first record once the topic is quiet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ampc.platform.fetching import FetchGather
from ampc.platform.replica import CompactedReplica

pytestmark = pytest.mark.kafka

GATHER_MS = 3000  # long enough that the fetch after the records is surely still gathering


def _mode(replica: CompactedReplica[str]) -> FetchGather:
    fetcher = replica._consumer._fetcher  # type: ignore[union-attr]
    return FetchGather(fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms)


async def _until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    for _ in range(round(seconds / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def test_a_replica_gathers_while_records_flow(bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}-gathering"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    replica: CompactedReplica[str] = CompactedReplica(
        bootstrap, [topic], lambda _topic, value: value.decode(), gather_ms=GATHER_MS
    )
    await replica.start()
    try:
        await replica.ready.wait()
        idle = FetchGather(1, 500)  # aiokafka's defaults, as the replica configures it
        assert await _until(lambda: _mode(replica) == idle)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for n in range(3):
                await producer.send_and_wait(topic, key=f"k{n}".encode(), value=b"v")
        finally:
            await producer.stop()
        assert await _until(lambda: len(replica.values[topic]) == 3)
        assert _mode(replica) == FetchGather(1024 * 1024, GATHER_MS)
        # the gathering fetch comes back empty after GATHER_MS: long-polling again
        assert await _until(lambda: _mode(replica) == idle)
        assert replica.values[topic] == {"k0": "v", "k1": "v", "k2": "v"}
    finally:
        await replica.stop()
