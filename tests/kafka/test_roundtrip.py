"""A real produce/consume round trip through the broker, with the CloudEvents envelope."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampc.contract import events as ev
from ampc.contract.envelope import decode, encode
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings
from tests.strategies import EVENT_STRATEGIES

pytestmark = pytest.mark.kafka

INPUT_MODELS = [m for m in ev.EVENT_MODELS if m.family in ev.INPUT_FAMILIES]


async def test_every_input_event_survives_the_broker(test_settings: Settings) -> None:
    registry = TopicRegistry(test_settings)
    inbox = registry.inbox("CZ")
    await apply_topics(test_settings.bootstrap_servers or "", registry.specs)

    sample = st.tuples(*(EVENT_STRATEGIES[model] for model in INPUT_MODELS))
    events: list[ev.Event] = []

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
    @given(sample)
    def collect(drawn: tuple[ev.Event, ...]) -> None:
        events.extend(drawn)

    collect()
    records = [encode(event, source="/nations/cz/test") for event in events]

    producer = AIOKafkaProducer(
        bootstrap_servers=test_settings.bootstrap_servers, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        for record in records:
            await producer.send(inbox, record.value, key=record.key, headers=record.headers)
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        inbox,
        bootstrap_servers=test_settings.bootstrap_servers,
        group_id=f"{test_settings.topic_prefix}-reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[ev.Event] = []
    try:
        while len(received) < len(records):
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"timed out after {len(received)} of {len(records)} records"
            for messages in batch.values():
                for message in messages:
                    envelope = decode(message.key, message.value, message.headers)
                    assert message.key == envelope.payload.entity_id().encode()
                    received.append(envelope.payload)
    finally:
        await consumer.stop()

    # One inbox partition: order is kept end to end.
    assert received == events
    assert {type(e) for e in received} == set(INPUT_MODELS)
