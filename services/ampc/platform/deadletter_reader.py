"""Reading the dead-letter topic back: the latest rejections, for `ampc dlq tail`."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from ampc.contract.events import EventRejected


async def latest_rejections(bootstrap_servers: str, topic: str, count: int) -> list[EventRejected]:
    """The last `count` dead letters across all partitions, oldest first."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(topic, p) for p in cluster.partitions_for_topic(topic) or ()]
        if not partitions:
            raise LookupError(f"topic {topic} does not exist (run `ampc topics apply`)")
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(starts[tp], ends[tp] - count))
        found: list[EventRejected] = []
        remaining = {tp for tp in partitions if ends[tp] > max(starts[tp], ends[tp] - count)}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches:
                break
            for tp, records in batches.items():
                for record in records:
                    try:
                        found.append(EventRejected.model_validate_json(record.value or b""))
                    except ValidationError:
                        continue  # not ours; the topic is ampc's, but be tolerant when reading
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        found.sort(key=lambda rejected: rejected.rejected_at)
        return found[-count:]
    finally:
        await consumer.stop()
