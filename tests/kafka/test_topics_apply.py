"""The topic registry applied to a real broker: idempotent, visible to Kafka's own tools."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings

pytestmark = pytest.mark.kafka


def _kafka_topics_tool(libs: Path, bootstrap: str, *args: str) -> str:
    """Kafka's own kafka-topics tool (not ampc's client)."""
    result = subprocess.run(
        [
            "java",
            "-cp",
            f"{libs}/*",
            "org.apache.kafka.tools.TopicCommand",
            "--bootstrap-server",
            bootstrap,
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


async def test_apply_twice_gives_the_same_result(test_settings: Settings, kafka_libs: Path) -> None:
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    first = await apply_topics(bootstrap, registry.specs)
    assert set(first.created) == {spec.name for spec in registry.specs}
    described_before = _kafka_topics_tool(
        kafka_libs, bootstrap, "--describe", "--topic", f"{test_settings.topic_prefix}\\..*"
    )

    second = await apply_topics(bootstrap, registry.specs)
    assert second.created == ()
    assert second.updated == ()
    assert set(second.unchanged) == {spec.name for spec in registry.specs}

    listed = set(_kafka_topics_tool(kafka_libs, bootstrap, "--list").split())
    assert {spec.name for spec in registry.specs} <= listed
    described_after = _kafka_topics_tool(
        kafka_libs, bootstrap, "--describe", "--topic", f"{test_settings.topic_prefix}\\..*"
    )
    assert _without_ids(described_before) == _without_ids(described_after)
    demands_state = next(s for s in registry.specs if s.name.endswith(".state.demands"))
    assert "cleanup.policy=compact" in _kafka_topics_tool(
        kafka_libs, bootstrap, "--describe", "--topic", demands_state.name
    )


async def _configs(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {entry[0]: entry[1] for entry in described[0].resources[0][4]}


def _without_ids(description: str) -> list[str]:
    return sorted(
        " ".join(part for part in line.split() if not part.startswith("TopicId"))
        for line in description.splitlines()
    )


async def test_apply_repairs_drift(test_settings: Settings) -> None:
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    deadletter = registry.deadletter
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    deadletter,
                    configs={"cleanup.policy": "compact", "retention.ms": "1000"},
                )
            ]
        )
        # Config changes reach the brokers' metadata a moment after the controller accepts them.
        for _ in range(100):
            if (await _configs(admin, deadletter))["cleanup.policy"] == "compact":
                break
            await asyncio.sleep(0.1)
        grown = Settings(**{**test_settings.model_dump(), "canonical_partitions": 3})
        report = await apply_topics(bootstrap, TopicRegistry(grown).specs)
        canonical = {s.name for s in TopicRegistry(grown).specs if ".events." in s.name}
        grown_topics = {
            new.name
            for new, old in zip(TopicRegistry(grown).specs, registry.specs, strict=True)
            if new.partitions > old.partitions
        }
        assert canonical <= grown_topics
        assert set(report.updated) == {deadletter} | grown_topics
        for _ in range(100):
            if (await _configs(admin, deadletter))["cleanup.policy"] == "delete":
                break
            await asyncio.sleep(0.1)
        entries = await _configs(admin, deadletter)
        assert entries["cleanup.policy"] == "delete"
        assert entries["retention.ms"] == str(90 * 24 * 3600 * 1000)
        topics = await admin.describe_topics(sorted(canonical))
        assert all(len(t["partitions"]) == 3 for t in topics)
    finally:
        await admin.close()
