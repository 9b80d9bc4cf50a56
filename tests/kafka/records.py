"""Helpers for integration tests: write to inboxes, read topics until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ampc.contract.envelope import KafkaRecord
from ampc.platform.ranges import read_ranges


@dataclass(frozen=True)
class Read:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


async def produce(
    bootstrap: str,
    records: Iterable[tuple[str, KafkaRecord]],
    *,
    raw: Iterable[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = (),
) -> int:
    """Write records (idempotent, acks=all); returns how many were written."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    count = 0
    try:
        futures = []
        for topic, record in records:
            futures.append(
                await producer.send(topic, record.value, key=record.key, headers=record.headers)
            )
            count += 1
        for topic, key, value, headers in raw:
            futures.append(await producer.send(topic, value, key=key, headers=headers))
            count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


async def read_until(
    bootstrap: str,
    topics: list[str],
    done: Callable[[list[Read]], bool],
    *,
    timeout_s: float = 60.0,
) -> list[Read]:
    """Read topics from the beginning until `done(records)` holds; fail with what was read."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        # Plans and orders are written in transactions: never count an aborted one.
        isolation_level="read_committed",
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Read] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"condition not met within {timeout_s:.0f} s; read {len(records)} records"
                )
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                for m in messages:
                    records.append(
                        Read(tp.topic, tp.partition, m.offset, m.key, m.value, dict(m.headers))
                    )
    finally:
        await consumer.stop()
    return records


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of the topics (how many records each holds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in cluster.partitions_for_topic(topic) or ()
        ]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topics: list[str], timeout_s: float = 60.0) -> list[Read]:
    """Every committed record the topics hold right now (read until each partition's position
    reaches its end offset: transaction markers take offsets but are no records)."""
    ends = await end_offsets(bootstrap, topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Read] = []
    try:
        consumer.assign(list(ends))
        async with asyncio.timeout(timeout_s):
            async for tp, m in read_ranges(consumer, {tp: (None, end) for tp, end in ends.items()}):
                records.append(
                    Read(tp.topic, tp.partition, m.offset, m.key, m.value, dict(m.headers))
                )
    except TimeoutError as error:
        raise AssertionError(
            f"could not read {topics} to their end in {timeout_s:.0f} s"
        ) from error
    finally:
        await consumer.stop()
    return records
