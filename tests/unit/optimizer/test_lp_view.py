"""The LP view: lots relaxed into flows, capacity in whole lots, same LP optimum."""

from __future__ import annotations

import numpy as np
import pytest

from ampc.optimizer.model import RowKind, build_model
from ampc.optimizer.plan import SolverSettings
from ampc.optimizer.scenario import generate
from ampc.optimizer.solve import _run, _set_objective, build_proto
from tests.unit.optimizer.builders import demand, line, outcome, plant, snapshot, solve_checked

pytestmark = pytest.mark.unit


def _lot_case() -> object:
    # 120 rounds a week in lots of 50: only 100 a week can be made; two weeks -> 200 of 260
    return snapshot(
        horizon={"start_week": "2027-01-04", "weeks": 2},
        plants=[plant("P", "DE", line("L", 120, {"155-HE": 1_000}, lot=50))],
        demands=[demand("U", 260, 1, priority="URGENT")],
    )


@pytest.mark.parametrize("integrality", ["exact", "round"])
def test_capacity_of_a_lot_sized_line_is_whole_lots(integrality: str) -> None:
    plan = solve_checked(_lot_case(), integrality=integrality)  # type: ignore[arg-type]
    assert outcome(plan, "U").shortfall == 60
    assert plan.term("weighted_shortfall") == 6_000


def test_round_mode_bound_is_whole_lots_too() -> None:
    # the LP bound itself knows the line makes whole lots, so rounding loses nothing here
    plan = solve_checked(_lot_case(), integrality="round")  # type: ignore[arg-type]
    level = next(t for t in plan.objective if t.name == "weighted_shortfall")
    assert level.bound is None or level.bound == pytest.approx(6_000)
    assert plan.gap == pytest.approx(0.0)


def test_lp_view_leaves_out_lot_columns_and_lot_link_rows() -> None:
    model = build_model(generate("small", 1))
    assert model.lot_source.size > 0  # the scenario has lot-sized lines
    lots = np.arange(model.lot_offset, model.churn_offset)
    assert not np.isin(lots, model.lp_columns).any()
    assert not np.isin(model.lp_a_col, lots).any()
    link_rows = np.flatnonzero(model.row_kind == int(RowKind.LOT_LINK))
    assert not np.isin(model.lp_rows, link_rows).any()
    assert not np.isin(model.lp_a_row, link_rows).any()
    assert np.all(np.diff(model.lp_a_row) >= 0)  # row-major, as MathOpt wants


@pytest.mark.parametrize("seed", [1, 3])
def test_lp_view_has_the_lp_relaxation_optimum_of_every_level(seed: int) -> None:
    model = build_model(generate("small", seed))
    settings = SolverSettings()
    continuous = np.zeros(model.n_cols, bool)
    for k in range(3):
        values = []
        for relaxed in (False, True):
            proto = build_proto(model, continuous, relaxed_lots=relaxed)
            _set_objective(proto, model.objective(k, relaxed), 0.0)
            raw = _run(proto, "glop", settings, 30.0, None, model.n_cols, model.n_rows)
            assert raw.x is not None
            values.append(float(model.objective(k, relaxed) @ raw.x))
        assert values[1] == pytest.approx(values[0], rel=1e-7, abs=1e-6)


def test_filled_lots_make_an_lp_view_solution_feasible_for_the_full_model() -> None:
    model = build_model(generate("small", 2))
    proto = build_proto(model, np.zeros(model.n_cols, bool), relaxed_lots=True)
    _set_objective(proto, model.objectives[0], 0.0)
    raw = _run(proto, "highs", SolverSettings(), 30.0, None, model.n_cols, model.n_rows)
    assert raw.x is not None
    model.fill_relaxed_lots(raw.x)
    activity = np.bincount(model.a_row, weights=model.a_val * raw.x[model.a_col])
    assert np.all(activity <= model.row_ub + 1e-6)
    assert np.all(activity >= model.row_lb - 1e-6)
    # and the cost of the full model equals the LP view's cost on the same solution
    assert float(model.objectives[2] @ raw.x) == pytest.approx(float(model.lp_cost @ raw.x))


def test_level_rows_on_the_lp_view_give_the_face_fixing_optimum() -> None:
    # SCIP solving the LP levels fixes each optimum with a row (ids past the model's rows);
    # HiGHS restricts to the optimal face: the LP values of every level must agree
    from ampc.optimizer.solve import solve

    model = build_model(generate("small", 2))
    values = {}
    for backend in ("highs", "scip"):
        result = solve(model, SolverSettings(backend=backend, integrality="round"))
        assert len(result.levels) == 3
        values[backend] = [lv.bound if lv.bound is not None else lv.value for lv in result.levels]
    assert values["scip"] == pytest.approx(values["highs"], rel=1e-6)
