"""Large LPs by column generation: the first level over a growing set of columns, the later
levels priced the same way; the optimum of each level is that of the whole LP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ampc.optimizer.solve as solve_module
from ampc.optimizer.checker import check_plan
from ampc.optimizer.explain import explain
from ampc.optimizer.model import PlanningModel, build_model
from ampc.optimizer.plan import SolverSettings, SolverStatus
from ampc.optimizer.planner import to_plan
from ampc.optimizer.scenario import generate
from ampc.optimizer.snapshot import Snapshot
from ampc.optimizer.solve import Result, solve

pytestmark = pytest.mark.unit

ROUND = SolverSettings(integrality="round")


def _lp_optima(result: Result) -> list[float]:
    """Each level's LP optimum (its bound once rounding moved the value)."""
    return [lv.value if lv.bound is None else lv.bound for lv in result.levels]


def _restricted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solve_module, "RESTRICTED_ABOVE_COLUMNS", 0)


def _checked(snap: Snapshot, result: Result) -> None:
    header = {
        "horizon_start": snap.horizon.start_week,
        "weeks": snap.horizon.weeks,
        "frozen_horizon_weeks": snap.frozen_horizon_weeks,
        "settings": result.settings,
    }
    report = check_plan(snap, to_plan(result, explain(result), header))
    assert report.ok, report.summary()


@pytest.mark.parametrize("seed", [1, 4])
def test_every_level_reaches_the_whole_lps_optimum(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    snap = generate("small", seed)
    whole = solve(build_model(snap), ROUND)
    _restricted(monkeypatch)
    model = build_model(snap)

    restricted = solve(model, ROUND)

    assert "column generation" in restricted.message
    assert [lv.bound is not None for lv in restricted.levels] == [True] * 3
    assert _lp_optima(restricted) == pytest.approx(_lp_optima(whole), rel=1e-6)
    assert restricted.reduced_costs is not None  # priced, for explanations
    assert int(np.count_nonzero(restricted.reduced_costs)) > 0
    _checked(snap, restricted)


def test_the_first_restricted_lp_has_a_flow_per_demand_and_source() -> None:
    snap = generate("small", 2)
    model = build_model(snap)
    seeded = solve_module._seed_columns(model, None)
    flows = seeded[: model.n_flows]
    pairs = {(int(d), int(s)) for d, s in zip(model.flow_demand, model.flow_source, strict=True)}

    in_view = np.zeros(model.n_cols, bool)
    in_view[model.lp_columns] = True
    assert 0 < int(flows.sum()) <= len(pairs) + int(model.flow_fixed.sum())
    assert (seeded[model.n_flows :] == in_view[model.n_flows :]).all()  # every other column


def test_pricing_stopped_by_the_budget_leaves_the_levels_unproven_but_the_plan_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _restricted(monkeypatch)
    monkeypatch.setattr(solve_module, "_PRICING_SHARE", 0.0)  # one restricted LP, no pricing
    snap = generate("small", 1)
    model = build_model(snap)

    result = solve(model, ROUND)

    first = result.levels[0]
    assert first.status is SolverStatus.FEASIBLE and first.bound is None
    assert "stopped at its time budget after 1 rounds" in result.message
    assert result.status is SolverStatus.FEASIBLE
    _checked(snap, result)


def test_columns_are_added_per_demand_and_within_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(solve_module, "_PRICED_PER_DEMAND", 3)
    model: PlanningModel = build_model(generate("small", 3))
    reduced = np.zeros(model.n_cols)
    reduced[: model.n_flows] = -1.0 - np.arange(model.n_flows) % 7
    chosen = np.zeros(model.n_cols, bool)

    picked = solve_module._most_negative(model, reduced, chosen, cap=10**9)
    per_demand = np.bincount(model.flow_demand[picked], minlength=model.n_demands)
    capped = solve_module._most_negative(model, reduced, chosen, cap=5)

    assert per_demand.max() == 3
    assert capped.size == 5 and reduced[capped].max() <= np.sort(reduced[picked])[4]


def test_a_re_plan_seeded_from_the_last_basis_reaches_the_cold_optimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _restricted(monkeypatch)
    snap = generate("small", 1)
    before = solve(build_model(snap), ROUND)
    warm_start = before.warm_start()
    assert warm_start is not None
    first = snap.demands[0]
    urgent = first.model_copy(update={"id": "D-NEW", "priority": "URGENT"})
    changed = snap.model_copy(update={"demands": [*snap.demands, urgent]})

    cold = solve(build_model(changed), ROUND)
    warm = solve(build_model(changed), ROUND, warm_start=warm_start)

    assert _lp_optima(warm) == pytest.approx(_lp_optima(cold), rel=1e-6)
    _checked(changed, warm)


def test_a_growth_round_that_fails_leaves_the_last_optimum_and_holds_the_new_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _restricted(monkeypatch)
    snap = generate("small", 1)
    model = build_model(snap)
    whole = solve(build_model(snap), ROUND)
    real_run = solve_module._run
    calls: list[bool] = []  # per call: does its objective weigh flows (level 2 on)?

    def run_failing_levels_second_round(proto: Any, *args: Any, **kwargs: Any) -> Any:
        weighs_flows = any(c < model.n_flows for c in proto.objective.linear_coefficients.ids)
        calls.append(weighs_flows)
        if weighs_flows and calls.count(True) == 2:  # level 2's first growth round
            return solve_module._Raw(SolverStatus.TIME_LIMIT, "cut", None, None, None, 0.0)
        return real_run(proto, *args, **kwargs)

    monkeypatch.setattr(solve_module, "_run", run_failing_levels_second_round)

    result = solve(model, ROUND)

    assert calls.count(True) >= 3  # level 2 twice, then level 3
    second = result.levels[1]
    assert second.status is SolverStatus.FEASIBLE and second.bound is None
    assert result.levels[0].bound == pytest.approx(whole.levels[0].bound, rel=1e-9)
    _checked(snap, result)
