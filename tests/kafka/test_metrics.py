"""The services' /metrics pass `promtool check metrics` and carry the metrics the issue names."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from ampc.contract.envelope import encode
from ampc.ledger.state import EntityKind
from ampc.platform.processes import ServiceProcess
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings
from tests.kafka.records import produce, read_until
from tests.kafka.scenario_events import demand

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

SUBMITTED = 'type="ampc.demand.submitted.v1"'


def promtool() -> str:
    found = shutil.which("promtool") or os.path.expanduser(
        "~/.cache/ampc/prometheus/usr/bin/promtool"
    )
    if not Path(found).exists():
        pytest.fail("promtool is missing: run `bash deploy/setup.sh`")
    return found


def promtool_findings(tool: str, text: str) -> str:
    """What `promtool check metrics` says about an exposition (empty when clean)."""
    checked = subprocess.run(
        [tool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    return "" if checked.returncode == 0 and not checked.stdout.strip() else checked.stdout


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


async def test_metrics_follow_prometheus_rules(
    test_settings: Settings, services: Callable[[str], ServiceProcess]
) -> None:
    tool = promtool()
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    services("gateway")
    services("ledger")
    await produce(
        bootstrap,
        [(registry.inbox("CZ"), encode(demand("M-1"), source="/cz"))],
        raw=[(registry.inbox("PL"), b"k", b"not json", [])],
    )
    await read_until(bootstrap, [registry.state(EntityKind.DEMANDS.value)], lambda r: len(r) >= 1)
    await read_until(bootstrap, [registry.deadletter], lambda r: len(r) >= 1)

    for port, expected in [
        (
            test_settings.gateway_port,
            [
                f'ampc_events_in_total{{party="CZ",service="gateway",{SUBMITTED}}} 1.0',
                'ampc_events_rejected_total{party="PL",reason="MISSING_HEADER",'
                'service="gateway"} 1.0',
                "ampc_event_processing_seconds_bucket",
            ],
        ),
        (
            test_settings.ledger_port,
            [
                f'ampc_events_in_total{{party="CZ",service="ledger",{SUBMITTED}}} 1.0',
                f'ampc_events_out_total{{destination="state",service="ledger",{SUBMITTED}}} 1.0',
            ],
        ),
    ]:
        text = scrape(port)
        for line in expected:
            assert line in text, f"{line} not in metrics of port {port}"
        assert promtool_findings(tool, text) == ""
