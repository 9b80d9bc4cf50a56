"""An operator's (or the demo's) request for a re-plan, written to the trigger topic, and
waiting for the planner to have planned every trigger written so far."""

from __future__ import annotations

import asyncio
import datetime as dt

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ampc.contract.events import PlanPublished
from ampc.ledger.state import EntityKind
from ampc.platform.topics import TopicRegistry, partition_key
from ampc.replan.plans_topic import PlanFollower
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
    return {partition_key(tp): offset for tp, offset in ends.items()}


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


def trigger_partition(settings: Settings) -> TopicPartition:
    """The trigger topic's only partition."""
    return TopicPartition(TopicRegistry(settings).optimizer_triggers, 0)


async def trigger_end_offset(settings: Settings) -> int:
    """How many triggers have been written so far."""
    tp = trigger_partition(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


def triggers_covered(settings: Settings, plan: PlanPublished) -> int:
    """The trigger offset a plan says it covers (every trigger below it is planned)."""
    return plan.input_offsets.get(partition_key(trigger_partition(settings)), 0)


async def wait_until_settled(settings: Settings, timeout_s: float) -> PlanPublished:
    """Wait until the plan in force covers every trigger written so far and no new one came
    for two coalescing windows: the planner is idle. Returns that plan; raises TimeoutError
    after `timeout_s` in all.

    A plan that covers the state a caller waited for may not be the last one: triggers routed
    while it was solved are planned next, and work queued there delays whatever comes after.
    """
    new_plan = asyncio.Event()
    follower = PlanFollower(
        settings.bootstrap_servers or "",
        TopicRegistry(settings).plans,
        on_plan=lambda _plan: new_plan.set(),
        client_id="ampc-settle",
    )

    def covers(end: int) -> bool:
        plan = follower.plan
        return plan is not None and triggers_covered(settings, plan) >= end

    try:
        async with asyncio.timeout(timeout_s):
            await follower.start()
            while True:
                end = await trigger_end_offset(settings)
                while True:
                    new_plan.clear()  # before looking: a plan published meanwhile wakes us
                    if covers(end):
                        break
                    await new_plan.wait()
                await asyncio.sleep(2 * settings.replan_window_s)  # anything still routed
                if await trigger_end_offset(settings) == end and follower.plan is not None:
                    return follower.plan
    finally:
        await follower.stop()
