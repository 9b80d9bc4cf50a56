"""An operator's (or the demo's) request for a re-plan, written to the trigger topic."""

from __future__ import annotations

import datetime as dt

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ampc.ledger.state import EntityKind
from ampc.platform.topics import TopicRegistry
from ampc.replan.triggers import requested
from ampc.settings import Settings


async def state_end_offsets(settings: Settings) -> dict[str, int]:
    """`topic:partition` -> end offset of every state topic partition, right now."""
    registry = TopicRegistry(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        # An unsubscribed consumer knows no topics; ask the cluster for all of them.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, partition)
            for topic in (registry.state(kind.value) for kind in EntityKind)
            for partition in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {f"{tp.topic}:{tp.partition}": offset for tp, offset in ends.items()}


async def request_plan(
    settings: Settings, reason: str, state_offsets: dict[str, int] | None = None
) -> int:
    """Write a manual trigger; returns its offset on the trigger topic."""
    offsets = state_offsets if state_offsets is not None else await state_end_offsets(settings)
    trigger = requested(reason, offsets, dt.datetime.now(dt.UTC))
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        metadata = await producer.send_and_wait(
            TopicRegistry(settings).optimizer_triggers,
            trigger.dump(),
            key=trigger.kind.value.encode(),
        )
    finally:
        await producer.stop()
    offset: int = metadata.offset
    return offset
