"""Reading bounded ranges of partitions: what replay, the plan reader and the tracker's start-up
each need (every record from a start offset up to an end offset, then stop)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord


async def read_ranges(
    consumer: AIOKafkaConsumer,
    ranges: Mapping[TopicPartition, tuple[int | None, int]],
    *,
    give_up_after_idle: int | None = None,
) -> AsyncIterator[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]]:
    """Every record of each assigned partition from `start` (None: the beginning) up to `end`.

    Under read_committed the position stops before an open transaction; with
    `give_up_after_idle`, the read ends after that many empty fetches of half a second instead
    of waiting for it.
    """
    for tp, (start, _end) in ranges.items():
        if start is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, start)
    pending = {tp for tp, (_start, end) in ranges.items() if end > 0}
    idle = 0
    while pending and (give_up_after_idle is None or idle < give_up_after_idle):
        batches = await consumer.getmany(*pending, timeout_ms=500)
        idle = 0 if batches else idle + 1
        for tp, records in batches.items():
            for record in records:
                if record.offset >= ranges[tp][1]:
                    break
                yield tp, record
        for tp in list(pending):
            if await consumer.position(tp) >= ranges[tp][1]:
                pending.discard(tp)
                consumer.pause(tp)
