"""The README's main job, `ampc demo`, end to end on its own embedded broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ampc.optimizer.checker import check_plan
from ampc.optimizer.plan import Plan, SolverStatus
from ampc.optimizer.snapshot import Snapshot
from ampc.platform import broker

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]


def test_demo_streams_the_scenario_and_plans_from_the_ledger(tmp_path: Path) -> None:
    port = next(
        base
        for base in range(30100, 39000, 10)
        if not broker._port_in_use(base)
        and not broker._port_in_use(
            broker.DEFAULT_CONTROLLER_PORT + base - broker.DEFAULT_BROKER_PORT
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ampc",
            "demo",
            "--size",
            "small",
            "--port",
            str(port),
            "--time-limit",
            "15",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "AMPC_DATA_DIR": str(tmp_path), "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "79 events sent" in result.stdout
    assert "replayed from those offsets: the same plan" in result.stdout
    assert "broker stopped" in result.stdout
    plan = Plan.model_validate_json((tmp_path / "demo-plan.json").read_text())
    snapshot = Snapshot.model_validate_json((tmp_path / "demo-snapshot.json").read_text())
    assert plan.status in (SolverStatus.OPTIMAL, SolverStatus.FEASIBLE)
    assert len(snapshot.demands) == 30
    report = check_plan(snapshot, plan)
    assert report.ok, report.violations[:5]
    assert broker.read_state(tmp_path) is None
