"""Large LPs by column generation: the first level over a growing set of columns, the later
levels priced the same way; the optimum of each level is that of the whole LP."""

from __future__ import annotations

import time
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


def _lp_solution(monkeypatch: pytest.MonkeyPatch, model: PlanningModel) -> Result:
    """Solve, keeping the last level's LP solution (no rounding, no greedy comparison)."""
    with monkeypatch.context() as patch:
        patch.setattr(solve_module, "_make_integral", lambda result: None)
        patch.setattr(solve_module, "_keep_greedy_if_better", lambda result, greedy: None)
        return solve(model, ROUND)


def _level_values(model: PlanningModel, x: Any) -> list[float]:
    return [float(model.objective(k, True) @ x) + model.objective_offsets[k] for k in range(3)]


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


def test_columns_added_for_a_failed_round_stay_at_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    _restricted(monkeypatch)
    model = build_model(generate("small", 1))
    real_run, real_grow = solve_module._run, solve_module._grow_proto
    grown: list[Any] = []
    calls: list[bool] = []

    def grow(proto: Any, m: PlanningModel, columns: Any, new: Any) -> None:
        grown.append(new.copy())
        real_grow(proto, m, columns, new)

    def run(proto: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(any(c < model.n_flows for c in proto.objective.linear_coefficients.ids))
        if calls[-1] and calls.count(True) == 2:  # level 2's first growth round fails
            return solve_module._Raw(SolverStatus.TIME_LIMIT, "cut", None, None, None, 0.0)
        return real_run(proto, *args, **kwargs)

    monkeypatch.setattr(solve_module, "_grow_proto", grow)
    monkeypatch.setattr(solve_module, "_run", run)
    result = _lp_solution(monkeypatch, model)

    assert result.x is not None and grown
    assert result.x[grown[-1]].max() == 0.0


def test_a_later_level_never_gives_back_an_earlier_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in (2, 6):
        model = build_model(generate("small", seed))
        whole = _lp_solution(monkeypatch, model)
        _restricted(monkeypatch)
        real_run = solve_module._solve_once
        rejected: list[int] = []

        def run(
            proto: Any,
            backend: str,
            *args: Any,
            rejected: list[int] = rejected,
            real_run: Any = real_run,
            **kwargs: Any,
        ) -> Any:
            basis = args[-1] if len(args) >= 6 else kwargs.get("basis")
            if basis is not None and not rejected:  # the first carried-over basis is refused
                rejected.append(1)
                return solve_module._Raw(SolverStatus.ERROR, "bad basis", None, None, None, 0.0)
            return real_run(proto, backend, *args, **kwargs)

        monkeypatch.setattr(solve_module, "_solve_once", run)
        restricted = _lp_solution(monkeypatch, build_model(generate("small", seed)))
        monkeypatch.undo()

        assert rejected and whole.x is not None and restricted.x is not None
        assert _level_values(model, restricted.x) == pytest.approx(
            _level_values(model, whole.x), rel=1e-6
        )
        assert restricted.levels[1].bound is not None  # priced to the end, proven


def test_left_out_columns_carry_no_reduced_cost_when_pricing_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _restricted(monkeypatch)
    monkeypatch.setattr(solve_module, "_PRICING_SHARE", 0.0)
    real = solve_module._column_generation
    seen: list[Any] = []

    def keep(*args: Any) -> Any:
        seen.append(real(*args))
        return seen[-1]

    monkeypatch.setattr(solve_module, "_column_generation", keep)
    model = build_model(generate("small", 4))

    result = solve(model, ROUND)

    assert "stopped at its time budget" in result.message
    (restricted, _proto), reduced = seen[0], result.reduced_costs
    assert reduced is not None
    left_out = ~restricted.columns
    assert (restricted.reduced_costs[left_out] < -1e-7).any()  # they would price out...
    assert (reduced[left_out] == 0.0).all()  # ...but are not in the LP the duals come from


def test_level_one_solved_at_the_deadline_still_gives_a_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _restricted(monkeypatch)
    real = solve_module._column_generation

    def slow(model: PlanningModel, settings: SolverSettings, deadline: float, *rest: Any) -> Any:
        out = real(model, settings, deadline, *rest)
        while time.perf_counter() < deadline:  # as if its LP took the whole budget
            time.sleep(0.01)
        return out

    monkeypatch.setattr(solve_module, "_column_generation", slow)
    model = build_model(generate("small", 1))

    result = solve(model, SolverSettings(integrality="round", time_limit_seconds=0.3))

    assert result.x is not None and result.levels
    assert result.levels[0].name == "weighted_shortfall" and result.levels[0].value > 0
    assert "before level 1" not in result.message
