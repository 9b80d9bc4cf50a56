"""Reading the plans topic: the plan in force, a plan by version, and a follower.

Plans are published in transactions (with their production orders), so every reader here reads
committed records only. A plan record can be several MiB: fetch sizes are raised to match.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from ampc.contract.envelope import ContractViolation, decode
from ampc.contract.events import PlanPublished
from ampc.platform.ranges import read_ranges

log = logging.getLogger(__name__)

PLAN_BYTES = 16 * 1024 * 1024
_PLAN_TYPES = frozenset({PlanPublished.event_type()})


def plan_consumer(bootstrap: str, client_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id=client_id,
        max_partition_fetch_bytes=PLAN_BYTES,
        fetch_max_bytes=PLAN_BYTES * 2,
    )


def read_plan_record(value: bytes | None, headers: list[tuple[str, bytes]]) -> PlanPublished | None:
    """The plan in a plans-topic record, or None (logged) when it is not a readable plan."""
    try:
        # Plans are ampc's own output and far larger than any national input event.
        envelope = decode(
            None, value, headers, allowed_types=_PLAN_TYPES, max_payload_bytes=PLAN_BYTES
        )
    except ContractViolation as violation:
        log.error("unreadable plan record: %s", violation)
        return None
    assert isinstance(envelope.payload, PlanPublished)
    return envelope.payload


@dataclass(frozen=True)
class RawPlan:
    """A plans-topic record as bytes, with the version its key names (`plan-00000042`).

    The optimizer service holds the plan in force this way: decoding a large plan is one long
    call that would hold its event loop, so only its solver process decodes it."""

    value: bytes
    headers: list[tuple[str, bytes]]
    version: int


def _version_of(key: bytes | None) -> int | None:
    match = re.fullmatch(rb"plan-(\d+)", key or b"")
    return int(match.group(1)) if match else None


def _raw_plan(record: ConsumerRecord[bytes, bytes]) -> RawPlan | None:
    """The plan record as bytes with its version, or None (logged) without a plan key."""
    version = _version_of(record.key)
    if version is None or record.value is None:
        log.error("plans topic record at offset %d has no plan key; skipped", record.offset)
        return None
    return RawPlan(value=record.value, headers=list(record.headers), version=version)


async def _read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
) -> list[RawPlan]:
    plans: list[RawPlan] = []
    consumer.resume(tp)
    # An open transaction holds the position back: give up after a few empty fetches.
    async for _tp, record in read_ranges(consumer, {tp: (start, end)}, give_up_after_idle=3):
        raw = _raw_plan(record)
        if raw is not None:
            plans.append(raw)
    return plans


async def latest_plan_record(
    bootstrap: str, topic: str, *, version: int | None = None
) -> RawPlan | None:
    """The last committed plan record on the topic (or the one of `version`), undecoded; None
    if there is none.

    Reads backwards in growing windows from the end, so the plan in force costs one small read
    however long the topic is.
    """
    consumer = plan_consumer(bootstrap, "ampc-plan-reader")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        beginning = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        window = 16
        upper = end
        while upper > beginning:
            lower = max(beginning, upper - window)
            plans = await _read_range(consumer, tp, lower, upper)
            if version is not None:
                found = [p for p in plans if p.version == version]
                if found:
                    return found[-1]
            elif plans:
                return max(plans, key=lambda p: p.version)
            upper, window = lower, window * 4
        return None
    finally:
        await consumer.stop()


async def latest_plan(
    bootstrap: str, topic: str, *, version: int | None = None
) -> PlanPublished | None:
    """The last committed plan on the topic (or the plan with `version`), decoded; None if
    there is none or it is unreadable (logged)."""
    raw = await latest_plan_record(bootstrap, topic, version=version)
    return None if raw is None else read_plan_record(raw.value, raw.headers)


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


P = TypeVar("P", bound=_Versioned)


class _Follower(Generic[P]):
    """Keeps the newest committed plan of the topic, as `read` makes it of the record; calls
    `on_plan` for each new one."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        on_plan: Callable[[P], None] | None = None,
        client_id: str = "ampc-plan-follower",
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_plan = on_plan
        self.client_id = client_id
        self.plan: P | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def read(self, raw: RawPlan) -> P | None:
        raise NotImplementedError

    async def start(self) -> None:
        consumer = plan_consumer(self.bootstrap, self.client_id)
        await consumer.start()
        tp = TopicPartition(self.topic, 0)
        consumer.assign([tp])
        # Follow from the end as it was before the plan in force is read: a plan published in
        # between is seen twice (and kept once), never missed.
        start = (await consumer.end_offsets([tp]))[tp]
        raw = await latest_plan_record(self.bootstrap, self.topic)
        self.plan = None if raw is None else self.read(raw)
        if self.plan is not None and self.on_plan is not None:
            self.on_plan(self.plan)
        self.ready.set()
        self._task = asyncio.create_task(self._follow(consumer, tp, start), name=self.client_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self, consumer: AIOKafkaConsumer, tp: TopicPartition, start: int) -> None:
        try:
            consumer.seek(tp, start)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    raw = _raw_plan(record)
                    if raw is None or (self.plan is not None and raw.version <= self.plan.version):
                        continue
                    plan = self.read(raw)
                    if plan is not None:
                        self.plan = plan
                        if self.on_plan is not None:
                            self.on_plan(plan)
        finally:
            await consumer.stop()


class PlanFollower(_Follower[PlanPublished]):
    """Follows the plans topic with every plan decoded (in this process)."""

    def read(self, raw: RawPlan) -> PlanPublished | None:
        return read_plan_record(raw.value, raw.headers)


class RawPlanFollower(_Follower[RawPlan]):
    """Follows the plans topic with plans kept as record bytes, for a service whose event loop
    must not decode a large plan (it hands the bytes to a child process)."""

    def read(self, raw: RawPlan) -> RawPlan | None:
        return raw
