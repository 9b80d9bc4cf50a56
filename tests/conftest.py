"""Session-wide fixtures: one real Kafka broker for the whole run, and per-test isolation.

The broker is started only when a test asks for it (kafka/e2e tests), once per session, and
stopped at the end even when tests fail. Set AMPC_TEST_BOOTSTRAP to run against an external
cluster instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ampc.platform import broker
from ampc.platform.broker import free_port
from ampc.platform.processes import ServiceProcess
from ampc.settings import Settings


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.ClusterInfo | None]:
    """The session's broker (None when an external one is configured)."""
    if os.environ.get("AMPC_TEST_BOOTSTRAP"):
        yield None
        return
    data_dir = tmp_path_factory.mktemp("kafka")
    info = broker.start(data_dir, Settings().cache_dir, nodes=1, broker_port=None)
    try:
        yield info
    finally:
        broker.stop(data_dir, grace_s=15)


@pytest.fixture(scope="session")
def bootstrap(kafka_cluster: broker.ClusterInfo | None) -> str:
    """The bootstrap address of the broker the tests run against."""
    if kafka_cluster is None:
        return os.environ["AMPC_TEST_BOOTSTRAP"]
    return kafka_cluster.bootstrap_servers


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so tests never see each other's records."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def test_settings(topic_prefix: str, bootstrap: str, tmp_path: Path) -> Settings:
    """Settings pointing at the session broker with this test's own topics, data and ports."""
    return Settings(
        bootstrap_servers=bootstrap,
        topic_prefix=topic_prefix,
        inbox_partitions=1,
        canonical_partitions=2,
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        ledger_port=free_port(),
        park_timeout_s=30.0,
    )


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """The Maven-resolved Kafka jars, for driving Kafka's own tools from tests."""
    return broker.resolve_kafka(Settings().cache_dir)


@pytest.fixture
def services(test_settings: Settings, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ampc services for this test (with free HTTP ports); all stopped at the end."""
    started: list[ServiceProcess] = []

    def start(name: str, settings: Settings | None = None, log_name: str = "") -> ServiceProcess:
        log = tmp_path / f"{log_name or name}.log"
        service = ServiceProcess(name, settings or test_settings, log).start()
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in started:
            service.stop()
