"""LP mode (rounding), warm starts and the greedy baseline."""

from __future__ import annotations

import pytest

from ampc.optimizer.checker import check_plan
from ampc.optimizer.explain import Explanation
from ampc.optimizer.greedy import greedy_baseline
from ampc.optimizer.model import build_model
from ampc.optimizer.plan import SolverSettings
from ampc.optimizer.planner import plan_snapshot, to_plan
from ampc.optimizer.scenario import generate
from ampc.optimizer.snapshot import Demand
from ampc.optimizer.solve import solve
from ampc.optimizer.whatif import DemandAdded, apply_changes
from tests.unit.optimizer.builders import demand, line, plant, pool, snapshot, week

pytestmark = pytest.mark.unit


def test_lp_mode_matches_the_exact_optimum_when_the_lp_is_integral() -> None:
    snap = snapshot(
        max_late_weeks=2,
        transit={"default_weeks": 1},
        pools=[pool(paid=10**12)],
        plants=[
            plant("P", "DE", line("L1", 70, {"155-HE": 500, "155-ER": 900})),
            plant("Q", "PL", line("L2", 40, {"155-HE": 300})),
        ],
        demands=[
            demand("U", 200, 2, priority="URGENT"),
            demand("R", 300, 3),
            demand("E", 100, 3, product="155-ER", priority="HIGH"),
        ],
    )
    exact = plan_snapshot(snap, SolverSettings(integrality="exact"))
    lp = plan_snapshot(snap, SolverSettings(integrality="round"))
    for name in ("weighted_shortfall", "weighted_lateness", "cost_cents"):
        assert lp.term(name) == pytest.approx(exact.term(name), rel=1e-9)
    assert check_plan(snap, lp).ok and check_plan(snap, exact).ok


def test_rounded_plan_of_a_scenario_is_valid_and_no_worse_than_greedy() -> None:
    snap = generate("small", 2)
    model = build_model(snap)
    result = solve(model, SolverSettings(integrality="round"))
    assert result.x is not None
    header = {
        "horizon_start": snap.horizon.start_week,
        "weeks": snap.horizon.weeks,
        "frozen_horizon_weeks": snap.frozen_horizon_weeks,
        "settings": result.settings,
    }
    plan = to_plan(result, Explanation(), header)
    assert check_plan(snap, plan).ok
    greedy = greedy_baseline(model)
    ours = tuple(float(model.objectives[k] @ result.x) for k in range(3))
    theirs = tuple(float(model.objectives[k] @ greedy) for k in range(3))
    assert ours <= theirs
    assert plan.gap is not None and plan.gap < 0.1  # within 10 % of the LP bound


def test_greedy_baseline_respects_every_constraint() -> None:
    snap = generate("small", 5)
    model = build_model(snap)
    result = solve(model, SolverSettings(integrality="round"))
    result.x = greedy_baseline(model)
    header = {
        "horizon_start": snap.horizon.start_week,
        "weeks": snap.horizon.weeks,
        "frozen_horizon_weeks": snap.frozen_horizon_weeks,
        "settings": result.settings,
    }
    report = check_plan(snap, to_plan(result, Explanation(), header))
    assert report.ok, report.summary()


def test_warm_start_after_an_urgent_demand_gives_the_cold_optimum() -> None:
    snap = generate("small", 1)
    settings = SolverSettings(integrality="round")
    before = solve(build_model(snap), settings)
    assert before.warm_start() is not None
    urgent = Demand.model_validate(
        demand(
            "D-NEW", 500, 6, priority="URGENT", product=snap.products[0].code, pool=snap.pools[0].id
        )
    )
    changed = apply_changes(snap, [DemandAdded(demand=urgent)])
    cold = solve(build_model(changed), settings)
    warm = solve(build_model(changed), settings, warm_start=before.warm_start())
    # the LP optimum of every level is unique in value, whatever the starting basis
    assert warm.levels[0].bound == pytest.approx(cold.levels[0].bound, rel=1e-9)
    assert warm.status == cold.status


def test_time_limit_is_honest() -> None:
    model = build_model(generate("medium", 1))
    result = solve(model, SolverSettings(time_limit_seconds=0.05))
    assert result.status == "TIME_LIMIT"


def test_frozen_week_capacity_left_over_may_still_be_used() -> None:
    snap = snapshot(
        frozen_horizon_weeks=4,
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 300, 3)],
        committed_orders=[
            {
                "source_id": "L",
                "product": "155-HE",
                "production_week": week(0),
                "demand_id": "A",
                "quantity": 30,
            }
        ],
    )
    plan = plan_snapshot(snap, SolverSettings(integrality="round"))
    assert check_plan(snap, plan).ok
    assert sum(a.quantity for a in plan.allocations) == 300


def test_warm_start_survives_a_cancelled_demand() -> None:
    from ampc.optimizer.whatif import DemandCancelled

    snap = generate("small", 4)
    settings = SolverSettings(integrality="round")
    before = solve(build_model(snap), settings)
    changed = apply_changes(snap, [DemandCancelled(demand_id=snap.demands[0].id)])
    cold = solve(build_model(changed), settings)
    warm = solve(build_model(changed), settings, warm_start=before.warm_start())
    assert warm.x is not None and cold.x is not None
    assert warm.levels[0].bound == pytest.approx(cold.levels[0].bound, rel=1e-9)


def test_solve_snapshot_hands_back_a_warm_start_for_the_next_replan() -> None:
    from ampc.optimizer.planner import solve_snapshot

    snap = generate("small", 6)
    settings = SolverSettings(integrality="round")
    first, warm = solve_snapshot(snap, settings, version=1)
    assert warm is not None
    urgent = Demand.model_validate(
        demand(
            "D-NEW", 300, 5, priority="URGENT", product=snap.products[0].code, pool=snap.pools[0].id
        )
    )
    changed = apply_changes(snap, [DemandAdded(demand=urgent)])
    second, _ = solve_snapshot(changed, settings, version=2, warm_start=warm)
    assert second.version == 2
    assert check_plan(changed, second).ok
    assert first.input_reference["snapshot_sha256"] != second.input_reference["snapshot_sha256"]


def test_a_bound_above_a_feasible_value_is_not_reported() -> None:
    from ampc.optimizer.solve import proven_bound

    assert proven_bound(22.8e6, 17.8e6) is None  # what an interrupted Glop handed back
    assert proven_bound(17.0e6, 17.8e6) == 17.0e6
    assert proven_bound(17.8e6 + 1.0, 17.8e6) == 17.8e6 + 1.0  # within solver tolerance
    assert proven_bound(None, 5.0) is None


def test_a_level_stopped_without_a_bound_makes_the_gap_unknown() -> None:
    from ampc.optimizer.plan import SolverStatus

    snap = generate("small", 1)
    result = solve(build_model(snap), SolverSettings(integrality="round"))
    header = {
        "horizon_start": snap.horizon.start_week,
        "weeks": snap.horizon.weeks,
        "frozen_horizon_weeks": snap.frozen_horizon_weeks,
        "settings": result.settings,
    }
    assert to_plan(result, Explanation(), header).gap is not None
    # what an interrupted LP leaves: a feasible iterate, no proven bound
    result.levels[0].status, result.levels[0].bound = SolverStatus.TIME_LIMIT, None
    assert to_plan(result, Explanation(), header).gap is None
