"""Session-wide fixtures: one real Kafka broker for the whole run, and per-test isolation.

The broker is started only when a test asks for it (kafka/e2e tests), once per session, and
stopped at the end even when tests fail. Set AMPC_TEST_BOOTSTRAP to run against an external
cluster instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ampc.platform import broker
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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


class ServiceProcess:
    """An ampc service running as its own OS process (`python -m ampc serve NAME`), so tests can
    SIGTERM or kill -9 it like an operator (or a crash) would."""

    def __init__(self, name: str, settings: Settings, log_path: Path) -> None:
        self.name = name
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        values = {
            "AMPC_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers or "",
            "AMPC_TOPIC_PREFIX": self.settings.topic_prefix,
            "AMPC_INBOX_PARTITIONS": str(self.settings.inbox_partitions),
            "AMPC_CANONICAL_PARTITIONS": str(self.settings.canonical_partitions),
            "AMPC_DATA_DIR": str(self.settings.data_dir),
            "AMPC_GATEWAY_PORT": str(self.settings.gateway_port),
            "AMPC_LEDGER_PORT": str(self.settings.ledger_port),
            "AMPC_PARK_TIMEOUT_S": str(self.settings.park_timeout_s),
        }
        return {**os.environ, **values}

    def start(self) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ampc", "serve", self.name],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
        )
        log.close()
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace")
        return (
            "\n".join(line for line in text.splitlines() if line.strip())[-lines:] if text else ""
        )


@pytest.fixture
def services(test_settings: Settings, tmp_path: Path) -> Iterator[Callable[[str], ServiceProcess]]:
    """Start ampc services for this test (with free HTTP ports); all stopped at the end."""
    started: list[ServiceProcess] = []

    def start(name: str) -> ServiceProcess:
        service = ServiceProcess(name, test_settings, tmp_path / f"{name}.log").start()
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in started:
            service.stop()
