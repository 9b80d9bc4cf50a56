"""Inbox to state through the running gateway and ledger, against the real broker."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ampc.cli import app
from ampc.contract import events as ev
from ampc.contract.envelope import encode
from ampc.ledger.fold import state_from_json
from ampc.ledger.state import DemandState, EntityKind
from ampc.platform.processes import ServiceProcess
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings
from tests.kafka.records import produce, read_until
from tests.kafka.scenario_events import every_family, week

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def http_json(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


async def wait_http(port: int, path: str, ok: Callable[[Any], bool], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            status, body = http_json(port, path)
            last = (status, body)
            if status == 200 and ok(body):
                return body
        except OSError as error:
            last = error
        await asyncio.sleep(0.5)
    raise AssertionError(f"{path} never satisfied the condition; last answer {last}")


async def test_every_family_reaches_state_and_context_errors_are_dead_lettered(
    test_settings: Settings, services: Callable[[str], ServiceProcess]
) -> None:
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    services("gateway")
    ledger = services("ledger")

    traffic = every_family()
    late_amendment = ev.DemandAmended(demand_id="D-2", requested_by="CZ", quantity=10)
    stray_delivery = ev.ShipmentDelivered(
        shipment_id="S-404", nation="UA", demand_id="D-404", delivered_week=week(3), quantity=5
    )
    traffic += [("CZ", late_amendment), ("UA", stray_delivery)]
    records = [
        (registry.inbox(party), encode(event, source=f"/{party}")) for party, event in traffic
    ]
    await produce(bootstrap, records)

    port = test_settings.ledger_port
    demand = await wait_http(port, "/demands/D-1", lambda body: body.get("delivered") == 900)
    assert demand["quantity"] == 6000
    assert demand["open_quantity"] == 5100
    assert demand["status"] == "OPEN"
    cancelled = await wait_http(port, "/demands/D-2", lambda body: True)
    assert cancelled["status"] == "CANCELLED"
    pool = await wait_http(port, "/pools/P-CZI", lambda body: body.get("paid_cents", 0) > 0)
    assert (pool["pledged_cents"], pool["paid_cents"]) == (100_000_000_00, 40_000_000_00)
    plant = await wait_http(port, "/plants/CZ-VLASIM", lambda body: body.get("version") == 5)
    assert plant["nation"] == "CZ"
    shipment = await wait_http(port, "/shipments/S-1", lambda body: body["status"] == "DELIVERED")
    assert shipment["delivered_quantity"] == 900
    for kind, entity_id in [
        ("offers", "OFFER-KR-1"),
        ("materials", "NC:EU-NORTH"),
        ("products", "155-HE"),
        ("export-policies", "DE"),
    ]:
        await wait_http(port, f"/{kind}/{entity_id}", lambda body: body.get("version", 0) >= 1)

    listing = await wait_http(port, "/demands?status=OPEN&nation=CZ", lambda body: True)
    assert [item["demand_id"] for item in listing["items"]] == ["D-1"]
    status, error = http_json(port, "/demands?colour=red")
    assert status == 400 and "unknown filter" in error["error"]
    assert http_json(port, "/demands/NOPE")[0] == 404

    dead = await read_until(bootstrap, [registry.deadletter], lambda r: len(r) >= 2)
    reasons = {
        json.loads(r.value or b"{}")["error_code"]: json.loads(r.value or b"{}") for r in dead
    }
    assert set(reasons) == {"CONFLICTS_WITH_STATE", "UNKNOWN_ENTITY"}, ledger.log_tail()
    assert "cancelled" in reasons["CONFLICTS_WITH_STATE"]["message"]
    assert (
        "D-404" in reasons["UNKNOWN_ENTITY"]["message"]
        or "S-404" in reasons["UNKNOWN_ENTITY"]["message"]
    )

    summary = await wait_http(port, "/deadletters/summary", lambda body: body["total"] >= 2)
    assert summary["by_reason"]["UNKNOWN_ENTITY"] == 1
    shown = CliRunner().invoke(
        app,
        ["demands", "--status", "OPEN", "--ledger-url", f"http://127.0.0.1:{port}"],
        env={"COLUMNS": "200"},
    )
    assert shown.exit_code == 0, shown.output
    assert "D-1" in shown.output and "5100" in shown.output and "D-2" not in shown.output
    openapi = http_json(port, "/openapi.json")[1]
    assert "/demands/{entity_id}" in openapi["paths"]

    states = await read_until(
        bootstrap, [registry.state(EntityKind.DEMANDS.value)], lambda r: len(r) >= 1
    )
    parsed = state_from_json(EntityKind.DEMANDS, states[0].value or b"")
    assert isinstance(parsed, DemandState)
    assert parsed.demand_id in {"D-1", "D-2"}


async def test_same_event_twice_is_applied_once(
    test_settings: Settings, services: Callable[[str], ServiceProcess]
) -> None:
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    services("gateway")
    services("ledger")
    paid = ev.ContributionPaid(pool_id="P-1", contribution_id="C-1", donor="DK", amount_cents=500)
    pool = ev.PoolOpened(pool_id="P-1", owner="CZI", pool_name="Pool")
    pledge = ev.ContributionPledged(
        pool_id="P-1", contribution_id="C-1", donor="DK", amount_cents=5000
    )
    payment = encode(paid, source="/dk", event_id="PAY-1")
    await produce(
        bootstrap,
        [
            (registry.inbox("CZI"), encode(pool, source="/czi")),
            (registry.inbox("DK"), encode(pledge, source="/dk")),
            (registry.inbox("DK"), payment),
            (registry.inbox("DK"), payment),  # the producer retried
        ],
    )
    # A re-send long after (the gateway's memory of ids is bounded): a new producer, same event.
    await asyncio.sleep(2)
    await produce(bootstrap, [(registry.inbox("DK"), payment)])
    body = await wait_http(test_settings.ledger_port, "/pools/P-1", lambda b: b["paid_cents"] > 0)
    await asyncio.sleep(3)
    body = http_json(test_settings.ledger_port, "/pools/P-1")[1]
    assert body["paid_cents"] == 500
    assert body["version"] == 3


async def test_events_parked_as_the_ledger_starts_are_applied(
    test_settings: Settings, tmp_path: Path
) -> None:
    # The demo bug: faust created the parking table's changelog itself as the ledger joined
    # its group, the join's metadata could miss it, and then every event that had to wait for
    # its pool was lost (faust acks the record an agent crashed on). The registry now creates
    # every changelog beforehand, and a record that cannot be processed is dead-lettered.
    # Six partitions as in the demo: more partitions to create made the race likelier.
    test_settings = test_settings.model_copy(update={"canonical_partitions": 6})
    bootstrap = test_settings.bootstrap_servers or ""
    registry = TopicRegistry(test_settings)
    await apply_topics(bootstrap, registry.specs)
    gateway = ServiceProcess("gateway", test_settings, tmp_path / "gateway.log").start()
    ledger = ServiceProcess("ledger", test_settings, tmp_path / "ledger.log").start()
    try:
        await _park_then_open_the_pool(test_settings, registry, ledger)
    finally:
        gateway.stop()
        ledger.stop()


async def _park_then_open_the_pool(
    test_settings: Settings, registry: TopicRegistry, ledger: ServiceProcess
) -> None:
    bootstrap = test_settings.bootstrap_servers or ""
    early = []
    for donor in ("DK", "NL", "SE"):
        contribution = f"P-EARLY-{donor}"
        early += [
            (
                registry.inbox(donor),
                encode(
                    ev.ContributionPledged(
                        pool_id="P-EARLY",
                        contribution_id=contribution,
                        donor=donor,
                        amount_cents=1000,
                    ),
                    source=f"/{donor}",
                ),
            ),
            (
                registry.inbox(donor),
                encode(
                    ev.ContributionPaid(
                        pool_id="P-EARLY",
                        contribution_id=contribution,
                        donor=donor,
                        amount_cents=400,
                    ),
                    source=f"/{donor}",
                ),
            ),
        ]
    await produce(bootstrap, early)
    # Only once the donors' events are routed does the owner open the pool: all six wait.
    funding = registry.canonical(ev.Family.FUNDING)
    await read_until(bootstrap, [funding], lambda records: len(records) >= 6)
    opened = ev.PoolOpened(pool_id="P-EARLY", owner="CZI", pool_name="Early")
    await produce(bootstrap, [(registry.inbox("CZI"), encode(opened, source="/czi"))])

    pool = await wait_http(
        test_settings.ledger_port, "/pools/P-EARLY", lambda body: body["version"] == 7, 90
    )
    assert (pool["pledged_cents"], pool["paid_cents"]) == (3000, 1200)
    log = ledger.log_path.read_text(errors="replace")
    assert "Crashed" not in log and "PartitionsMismatch" not in log, ledger.log_tail()
