"""`ampc broker start|status|stop` and `ampc topics apply` as a person runs them, including a
three-node cluster with replication 3 for the fault tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ampc.platform import broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _ampc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ampc", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize("nodes", [1, 3])
def test_cli_starts_applies_and_stops(tmp_path: Path, nodes: int, kafka_libs: Path) -> None:
    env = {"AMPC_DATA_DIR": str(tmp_path), "AMPC_REPLICATION_FACTOR": str(3 if nodes == 3 else 1)}
    port = _free_base_port(nodes)
    started = _ampc("broker", "start", "--nodes", str(nodes), "--port", str(port), env=env)
    try:
        assert started.returncode == 0, started.stderr
        info = broker.read_state(tmp_path)
        assert info is not None
        assert f"bootstrap: {info.bootstrap_servers}" in started.stdout
        assert len(info.alive_nodes()) == nodes
        status = _ampc("broker", "status", env=env)
        assert status.returncode == 0
        assert f"{nodes} of {nodes} node(s) running" in status.stdout

        applied = _ampc("topics", "apply", env=env)
        assert applied.returncode == 0, applied.stderr
        described = subprocess.run(
            [
                "java",
                "-cp",
                f"{kafka_libs}/*",
                "org.apache.kafka.tools.TopicCommand",
                "--bootstrap-server",
                info.bootstrap_servers,
                "--describe",
                "--topic",
                "ampc.events.demand",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        assert f"ReplicationFactor: {nodes}" in described
        if nodes == 3:
            assert "min.insync.replicas=2" in described
    finally:
        stopped = _ampc("broker", "stop", env=env)
    assert stopped.returncode == 0
    assert all(not broker._alive(node.pid) for node in info.nodes)
    assert _ampc("broker", "status", env=env).returncode == 3


def _free_base_port(count: int) -> int:
    """A broker port whose neighbours and controller ports are free too."""
    for base in range(20100, 29000, 10):
        ports = [base + i for i in range(count)]
        ports += [
            broker.DEFAULT_CONTROLLER_PORT + (base - broker.DEFAULT_BROKER_PORT) + i
            for i in range(count)
        ]
        if not any(broker._port_in_use(p) for p in ports):
            return base
    raise RuntimeError("no free ports")
