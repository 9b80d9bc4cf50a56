"""The offline plan and scenario commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ampc.optimizer.cli import plan_app, scenario_app
from ampc.optimizer.plan import Plan
from tests.unit.optimizer.builders import demand, line, plant, snapshot

pytestmark = pytest.mark.unit

runner = CliRunner()


def test_generate_solve_explain_check(tmp_path: Path) -> None:
    snap_file = tmp_path / "small.json"
    result = runner.invoke(
        scenario_app, ["generate", "--size", "small", "--seed", "4", "--out", str(snap_file)]
    )
    assert result.exit_code == 0, result.output
    plan_file = tmp_path / "plan.json"
    result = runner.invoke(
        plan_app, ["solve", str(snap_file), "--out", str(plan_file), "--time-limit", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "status" in result.output and "coverage" in result.output
    plan = Plan.load(plan_file)
    short = next(d for d in plan.demands if d.shortfall > 0)
    result = runner.invoke(plan_app, ["explain", str(plan_file), "--demand", short.demand_id])
    assert result.exit_code == 0, result.output
    assert "short" in result.output and short.reasons[0].code in result.output
    result = runner.invoke(plan_app, ["check", str(snap_file), str(plan_file)])
    assert result.exit_code == 0, result.output


def test_check_names_the_violated_constraint(tmp_path: Path) -> None:
    snap = snapshot(
        plants=[plant("P", "DE", line("L", 10, {"155-HE": 100}))], demands=[demand("A", 100, 3)]
    )
    snap_file = tmp_path / "s.json"
    snap_file.write_text(snap.dump_json())
    plan_file = tmp_path / "p.json"
    assert (
        runner.invoke(plan_app, ["solve", str(snap_file), "--out", str(plan_file)]).exit_code == 0
    )
    data = json.loads(plan_file.read_text())
    data["allocations"][0]["quantity"] += 5
    plan_file.write_text(json.dumps(data))
    result = runner.invoke(plan_app, ["check", str(snap_file), str(plan_file)])
    assert result.exit_code == 1
    assert "line_capacity" in result.output


def test_bad_snapshot_gives_one_line_naming_the_field(tmp_path: Path) -> None:
    snap = json.loads(snapshot(demands=[]).dump_json())
    snap["horizon"]["weeks"] = "many"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(snap))
    result = runner.invoke(plan_app, ["solve", str(bad)])
    assert result.exit_code == 2
    assert "horizon.weeks" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(plan_app, ["solve", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_infeasible_input_gives_an_honest_plan_not_a_traceback(tmp_path: Path) -> None:
    # A committed order for more rounds than its demand asks: no plan can honour both.
    snap = snapshot(
        frozen_horizon_weeks=1,
        plants=[plant("P", "DE", line("L", 1000, {"155-HE": 100}))],
        demands=[demand("A", 100, 3)],
        committed_orders=[
            {
                "source_id": "L",
                "product": "155-HE",
                "production_week": "2027-01-04",
                "demand_id": "A",
                "quantity": 150,
            }
        ],
    )
    snap_file = tmp_path / "s.json"
    snap_file.write_text(snap.dump_json())
    plan_file = tmp_path / "p.json"
    result = runner.invoke(plan_app, ["solve", str(snap_file), "--out", str(plan_file)])
    assert result.exit_code == 1
    assert Plan.load(plan_file).status == "INFEASIBLE"
    assert "INFEASIBLE" in result.output


def test_time_limit_gives_a_plan_with_an_honest_status(tmp_path: Path) -> None:
    snap_file = tmp_path / "m.json"
    runner.invoke(
        scenario_app, ["generate", "--size", "medium", "--seed", "1", "--out", str(snap_file)]
    )
    plan_file = tmp_path / "p.json"
    result = runner.invoke(
        plan_app, ["solve", str(snap_file), "--out", str(plan_file), "--time-limit", "0.2"]
    )
    plan = Plan.load(plan_file)
    assert plan.status == "TIME_LIMIT", plan.status_message
    assert result.exit_code == 0
    assert plan.allocations  # the best solution known (here the greedy fallback)
    check = runner.invoke(plan_app, ["check", str(snap_file), str(plan_file)])
    assert check.exit_code == 0, check.output


def test_whatif_prints_the_deltas(tmp_path: Path) -> None:
    snap = snapshot(
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))], demands=[demand("A", 300, 3)]
    )
    snap_file = tmp_path / "s.json"
    snap_file.write_text(snap.dump_json())
    changes = tmp_path / "c.json"
    changes.write_text(
        json.dumps(
            {
                "changes": [
                    {
                        "kind": "plant_down",
                        "plant_id": "P",
                        "from_week": "2027-01-04",
                        "to_week": "2027-01-11",
                    }
                ]
            }
        )
    )
    result = runner.invoke(
        plan_app, ["whatif", str(snap_file), str(changes), "--out", str(tmp_path / "w.json")]
    )
    assert result.exit_code == 0, result.output
    assert "weighted_shortfall: +100" in result.output  # 200 rounds of capacity left for 300
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"changes": [{"kind": "plant_gone"}]}))
    result = runner.invoke(plan_app, ["whatif", str(snap_file), str(bad)])
    assert result.exit_code == 2 and "changes.0" in result.output
