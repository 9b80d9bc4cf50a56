"""A read replica of compacted topics: every partition, from the beginning, latest value per key.

Used where a service needs the whole of a keyed state rather than its own partitions (the
gateway's ownership book, the ledger's read API, the optimizer's snapshot). It records the
offsets it reflects, so a snapshot can say exactly which input it was taken from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, MutableMapping
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from ampc.platform.fetching import gather_while_busy, gathering
from ampc.platform.topics import partition_key

log = logging.getLogger(__name__)

V = TypeVar("V")


class CompactedReplica(Generic[V]):
    """Mirrors compacted topics into memory: `(topic, key) -> value` via `decode`.

    `ready` is set once every partition has been read up to the end offset it had when the
    replica started; later records keep flowing in. A tombstone (None value) removes the key.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: list[str],
        decode: Callable[[str, bytes], V],
        *,
        client_id: str = "ampc-replica",
        gather_ms: int = 0,
    ) -> None:
        """`gather_ms`: while records flow, let the broker gather them for up to this long (or
        1 MiB) before it answers a fetch; an idle replica's fetch is still answered at the first
        record (`ampc.platform.fetching`). 0 answers every fetch on the first record, for
        readers that act on each one; a replica behind a read API gathers, so that a stream of
        records costs a few fetches a second, not one per record."""
        self.gather_ms = gather_ms
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.decode = decode
        self.client_id = client_id
        self.values: dict[str, dict[str, V]] = {topic: {} for topic in topics}
        self.positions: dict[TopicPartition, int] = {}
        self.ready = asyncio.Event()
        self.changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            client_id=self.client_id,
            isolation_level="read_committed",
        )
        await consumer.start()
        busy = gathering(self.gather_ms, min_bytes=1024 * 1024)
        if busy is not None:
            gather_while_busy(consumer, busy)
        # An unsubscribed consumer knows no topics; ask the cluster for all of them.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, partition)
            for topic in self.topics
            for partition in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        missing = [t for t in self.topics if not cluster.partitions_for_topic(t)]
        if missing:
            await consumer.stop()
            raise RuntimeError(f"topics not found (run `ampc topics apply`): {missing}")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(ends), name=f"{self.client_id}-replica")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self, ends: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        pending = {tp for tp, end in ends.items() if end > 0}
        if not pending:
            self.ready.set()
        while True:
            # Small batches: decoding thousands of records at once would stall the event loop.
            batches = await self._consumer.getmany(timeout_ms=200, max_records=500)
            for tp, records in batches.items():
                table = self.values[tp.topic]
                for record in records:
                    key = (record.key or b"").decode()
                    if record.value is None:
                        table.pop(key, None)
                    else:
                        try:
                            table[key] = self.decode(tp.topic, record.value)
                        except Exception:  # a bad state record must not stop the replica
                            log.exception("unreadable record %s:%s", tp, record.offset)
                    self.positions[tp] = record.offset + 1
            if batches:
                async with self.changed:
                    self.changed.notify_all()
            if pending:
                for tp in list(pending):
                    position = await self._consumer.position(tp)
                    if position >= ends[tp]:
                        pending.discard(tp)
                if not pending:
                    self.ready.set()

    def offsets(self) -> dict[str, int]:
        """`"topic:partition" -> next offset` this replica reflects (for reproducible plans)."""
        return {partition_key(tp): offset for tp, offset in sorted(self.positions.items())}


class ReadYourWritesMap(MutableMapping[str, str]):
    """A replica's view of one topic that also sees this process's own writes at once.

    The writer sends each write to the compacted topic through `send`; until the replica reads
    it back, the local overlay answers, so a claim made by one event is visible to the next.
    """

    def __init__(
        self, replica: CompactedReplica[str], topic: str, send: Callable[[str, str], None]
    ):
        self._replica = replica
        self._topic = topic
        self._send = send
        self._overlay: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        if key in self._overlay:
            written = self._overlay[key]
            if self._replica.values[self._topic].get(key) == written:
                # The replica has read our write back: the overlay entry is no longer needed,
                # which keeps the overlay as small as the writes still in flight.
                del self._overlay[key]
            return written
        return self._replica.values[self._topic][key]

    @property
    def pending_writes(self) -> int:
        """Writes not yet seen (or not yet asked for) through the replica."""
        return len(self._overlay)

    def __setitem__(self, key: str, value: str) -> None:
        self._overlay[key] = value
        self._send(key, value)

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("ownership is never removed")

    def __iter__(self) -> Iterator[str]:
        return iter({**self._replica.values[self._topic], **self._overlay})

    def __len__(self) -> int:
        return len({**self._replica.values[self._topic], **self._overlay})
