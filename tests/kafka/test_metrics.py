"""The services' /metrics pass `promtool check metrics` and carry the metrics the issue names."""

from __future__ import annotations

import asyncio
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
from tests.kafka.replan_helpers import replan_settings, send, wait_for_plan
from tests.kafka.scenario_events import demand
from tests.replan_world import demand_event, world

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
                # the collection that settles the heap once the service runs, measured
                'ampc_gc_pause_seconds_count{generation="2",service="gateway"}',
            ],
        ),
        (
            test_settings.ledger_port,
            [
                f'ampc_events_in_total{{party="CZ",service="ledger",{SUBMITTED}}} 1.0',
                f'ampc_events_out_total{{destination="state",service="ledger",{SUBMITTED}}} 1.0',
                'ampc_gc_pause_seconds_count{generation="2",service="ledger"}',
            ],
        ),
    ]:
        text = scrape(port)
        for line in expected:
            assert line in text, f"{line} not in metrics of port {port}"
        assert promtool_findings(tool, text) == ""


async def test_optimizer_and_tracker_metrics_follow_prometheus_rules(
    test_settings: Settings, services: Callable[..., ServiceProcess]
) -> None:
    tool = promtool()
    settings = replan_settings(test_settings)
    await apply_topics(settings.bootstrap_servers or "", TopicRegistry(settings).specs)
    for name in ("gateway", "ledger", "optimizer", "tracker"):
        services(name, settings)
    await send(settings, [*world(), ("CZ", demand_event("D-1", 50_000, due=2))])
    await wait_for_plan(
        settings, lambda ps: any(d.demand_id == "D-1" for p in ps for d in p.demands)
    )
    optimizer = scrape(settings.optimizer_port)
    for line in [
        "ampc_optimizer_plans_published_total 1.0",
        'ampc_optimizer_plan_status{status="OPTIMAL"} 1.0',
        'ampc_optimizer_shortfall_rounds{product="155-HE",recipient="UA"}',
        'ampc_pool_money_cents{pool="P-CZI",state="paid"} 1e+11',
        "ampc_optimizer_active 1.0",
        'ampc_optimizer_solve_seconds_bucket{le="0.05",level="1"}',
        'ampc_event_loop_max_stall_seconds{service="optimizer"}',
        'ampc_gc_pause_seconds_count{generation="0",service="optimizer"}',
    ]:
        assert line in optimizer, f"{line} not in the optimizer's metrics"
    assert promtool_findings(tool, optimizer) == ""
    # The tracker alerts the urgent demand the plan leaves short.
    for _ in range(60):
        tracker = scrape(settings.tracker_port)
        if 'kind="URGENT_DEMAND_SHORT",service="tracker"} 1.0' in tracker:
            break
        await asyncio.sleep(0.5)
    assert 'ampc_alerts_raised_total{kind="URGENT_DEMAND_SHORT",service="tracker"} 1.0' in tracker
    assert promtool_findings(tool, tracker) == ""
