"""Solve the planning model lexicographically through MathOpt's low-level proto interface.

The model arrays go straight into a ``ModelProto`` (no Python object per variable). Each level
is minimised, then fixed as ``objective_k . x <= optimum_k * (1 + rel) + abs`` (the tolerance is
in ``SolverSettings``, default 1e-9 relative plus 1e-6 absolute: far below one round or one
cent) before the next level, so cost and churn never buy back shortfall or lateness.

Large models are solved with continuous flows (the LP of this network is integral except where
a money or material row binds) on the model's LP view, where lots are relaxed into the flows
they carry (see ``ampc.optimizer.model``); then flows are rounded down, lots to whole lots, and
short demands topped up greedily; the plan then says FEASIBLE and reports the gap to the LP
bound. Small models use integer flows and integer lots.

Proto variable and constraint ids are the model's column and row indices, so a view that
leaves some out still maps solutions, duals and bases back by id.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from ampc.optimizer.greedy import greedy_baseline, top_up
from ampc.optimizer.model import (
    LEVEL_NAMES,
    BoolArray,
    FloatArray,
    IntArray,
    PlanningModel,
    RowKind,
    recompute_dependent,
)
from ampc.optimizer.plan import SolverSettings, SolverStatus

try:  # the ortools wheel carries these; keep import errors readable
    from ortools.math_opt import (
        callback_pb2,
        model_parameters_pb2,
        model_pb2,
        parameters_pb2,
        result_pb2,
        solution_pb2,
    )
    from ortools.math_opt.core.python import solver as mathopt_solver
except ImportError as exc:  # pragma: no cover - the dependency is pinned
    raise ImportError("ampc.optimizer needs ortools (MathOpt)") from exc


def _floats(values: Collection[float]) -> FloatArray:
    """A repeated double field of a proto as an array (``np.fromiter`` with the length known
    converts a upb field in about two thirds of the time ``np.asarray`` takes)."""
    return np.fromiter(values, np.float64, len(values))


def _ints(values: Collection[int]) -> IntArray:
    """A repeated integer field of a proto as an int64 array."""
    return np.fromiter(values, np.int64, len(values))


def _ids(ids: Sequence[int], n: int) -> IntArray:
    """The ids of a MathOpt sparse vector over ``n`` columns. They are strictly increasing and
    non-negative, so ``n`` of them ending at ``n - 1`` are exactly 0..n-1 (a full vector over
    the whole model), which then need no conversion."""
    if len(ids) == n and (n == 0 or ids[n - 1] == n - 1):
        return np.arange(n, dtype=np.int64)
    return _ints(ids)


def _put(field: Any, values: npt.NDArray[Any]) -> None:
    """Append an array to a repeated proto field, through a list: upb converts Python numbers
    far faster than numpy scalars (about 9 against 14 ms per 65,000 doubles)."""
    field.extend(values.tolist())


BACKENDS = {
    "highs": parameters_pb2.SOLVER_TYPE_HIGHS,
    "scip": parameters_pb2.SOLVER_TYPE_GSCIP,
    "cpsat": parameters_pb2.SOLVER_TYPE_CP_SAT,
    "glop": parameters_pb2.SOLVER_TYPE_GLOP,
    "pdlp": parameters_pb2.SOLVER_TYPE_PDLP,
}
LP_ONLY = frozenset({"glop", "pdlp"})


@dataclass
class LevelResult:
    """One lexicographic level as solved (values in model units: EUR for cost)."""

    name: str
    value: float
    bound: float | None
    status: SolverStatus
    seconds: float
    detail: str = ""


@dataclass
class Result:
    """What ``solve`` found: the solution vector and how each level ended."""

    model: PlanningModel
    settings: SolverSettings
    status: SolverStatus
    message: str
    x: FloatArray | None
    levels: list[LevelResult] = field(default_factory=list)
    duals: FloatArray | None = None
    """Row duals of the LP relaxation at the shortfall level (d objective / d rhs)."""
    reduced_costs: FloatArray | None = None
    """Column reduced costs of the same LP (a flow at its bound carries the price there)."""
    integral_flows: bool = True
    basis: solution_pb2.BasisProto | None = None
    """Level-1 LP basis (LP mode), for warm-starting the next solve."""
    lot_basis: solution_pb2.BasisProto | None = None
    """Kept for callers of the earlier two-pass LP mode; always None now (lots are relaxed in
    the one LP pass)."""
    rounded_units: float = 0.0
    """Rounds moved by rounding fractional LP flows (0 when the LP solution was integral)."""
    solve_seconds: float = 0.0
    greedy_x: FloatArray | None = None
    """The greedy plan, computed beside the solver in LP mode (None after a MIP solve)."""

    def warm_start(self) -> WarmStart | None:
        """A warm start for the next solve of a changed snapshot (None after a MIP solve)."""
        if self.basis is None:
            return None
        return WarmStart(self.model, self.basis, self.lot_basis)


def _status_of(term: result_pb2.TerminationProto) -> SolverStatus:
    reason = term.reason
    if reason == result_pb2.TERMINATION_REASON_OPTIMAL:
        return SolverStatus.OPTIMAL
    if reason == result_pb2.TERMINATION_REASON_FEASIBLE:
        if term.limit == result_pb2.LIMIT_TIME:
            return SolverStatus.TIME_LIMIT
        return SolverStatus.FEASIBLE
    if reason == result_pb2.TERMINATION_REASON_NO_SOLUTION_FOUND:
        return SolverStatus.TIME_LIMIT
    if reason in (
        result_pb2.TERMINATION_REASON_INFEASIBLE,
        result_pb2.TERMINATION_REASON_INFEASIBLE_OR_UNBOUNDED,
    ):
        return SolverStatus.INFEASIBLE
    return SolverStatus.ERROR


def build_proto(
    model: PlanningModel,
    integer: np.ndarray,
    lower: FloatArray | None = None,
    upper: FloatArray | None = None,
    relaxed_lots: bool = False,
    columns: BoolArray | None = None,
) -> model_pb2.ModelProto:
    """The model (without objective) as a MathOpt ``ModelProto`` (optionally other bounds);
    ``relaxed_lots``: the LP view without lot columns and lot link rows; ``columns``: only
    these of its columns (a mask over the model's columns), the rest held at zero."""
    proto = model_pb2.ModelProto(name="ampc-plan")
    lb = model.col_lb if lower is None else lower
    ub = model.col_ub if upper is None else upper
    if relaxed_lots:
        cols, rows = model.lp_columns, model.lp_rows
        a_row, a_col, a_val = model.lp_a_row, model.lp_a_col, model.lp_a_val
    else:
        cols, rows = np.arange(model.n_cols, dtype=np.int64), np.arange(model.n_rows)
        a_row, a_col, a_val = model.a_row, model.a_col, model.a_val
    if columns is not None:
        cols = cols[columns[cols]]
        keep = columns[a_col]
        a_row, a_col, a_val = a_row[keep], a_col[keep], a_val[keep]
    v = proto.variables
    _put(v.ids, cols)
    _put(v.lower_bounds, lb[cols])
    _put(v.upper_bounds, ub[cols])
    _put(v.integers, integer[cols])
    c = proto.linear_constraints
    _put(c.ids, rows)
    _put(c.lower_bounds, model.row_lb[rows])
    _put(c.upper_bounds, model.row_ub[rows])
    m = proto.linear_constraint_matrix
    _put(m.row_ids, a_row)
    _put(m.column_ids, a_col)
    _put(m.coefficients, a_val)
    return proto


def _set_objective(
    proto: model_pb2.ModelProto,
    objective: FloatArray,
    offset: float,
    columns: BoolArray | None = None,
) -> None:
    proto.objective.Clear()
    nz = np.flatnonzero(objective if columns is None else objective * columns)
    proto.objective.maximize = False
    proto.objective.offset = offset
    _put(proto.objective.linear_coefficients.ids, nz)
    _put(proto.objective.linear_coefficients.values, objective[nz])


def _fix_level(
    proto: model_pb2.ModelProto,
    objective: FloatArray,
    offset: float,
    value: float,
    settings: SolverSettings,
    n_model_rows: int = 0,
    columns: BoolArray | None = None,
) -> None:
    """Append ``objective . x <= value * (1 + rel) + abs`` as a new (last) row, with an id
    past every model row (a view may leave the model's last rows out)."""
    nz = np.flatnonzero(objective if columns is None else objective * columns)
    ids = proto.linear_constraints.ids
    row = max(ids[-1] + 1 if len(ids) else 0, n_model_rows)
    limit = value + abs(value) * settings.level_tolerance_relative
    limit += settings.level_tolerance_absolute - offset
    proto.linear_constraints.ids.append(row)
    proto.linear_constraints.lower_bounds.append(-math.inf)
    proto.linear_constraints.upper_bounds.append(limit)
    mat = proto.linear_constraint_matrix
    _put(mat.row_ids, np.full(nz.size, row, np.int64))
    _put(mat.column_ids, nz)
    _put(mat.coefficients, objective[nz])


_CS_TOLERANCE = 1e-7


def _fix_optimal_face(proto: model_pb2.ModelProto, duals: FloatArray, reduced: FloatArray) -> None:
    """Restrict an LP to the optimal face of the level just solved.

    By complementary slackness, x is optimal for the level iff it is feasible, every column
    with a non-zero reduced cost sits at the bound it sat at, and every row with a non-zero dual
    is tight. Fixing exactly that keeps all optimal solutions and adds no dense row, so the
    next level cannot trade any of this level's value away (up to solver tolerances).
    """
    lb = _floats(proto.variables.lower_bounds)
    ub = _floats(proto.variables.upper_bounds)
    rc = reduced[_ints(proto.variables.ids)]
    at_lower = rc > _CS_TOLERANCE
    at_upper = (rc < -_CS_TOLERANCE) & np.isfinite(ub)
    new_ub = np.where(at_lower, lb, ub)
    new_lb = np.where(at_upper, ub, lb)
    del proto.variables.lower_bounds[:]
    _put(proto.variables.lower_bounds, new_lb)
    del proto.variables.upper_bounds[:]
    _put(proto.variables.upper_bounds, new_ub)
    row_ids = _ints(proto.linear_constraints.ids)
    row_lb = _floats(proto.linear_constraints.lower_bounds)
    row_ub = _floats(proto.linear_constraints.upper_bounds)
    model_row = row_ids < duals.size  # rows appended by level fixing have no model dual
    y = np.zeros(row_ids.size)
    y[model_row] = duals[row_ids[model_row]]
    # minimisation: a tight upper bound has y < 0, a tight lower bound y > 0
    tight_upper = (y < -_CS_TOLERANCE) & np.isfinite(row_ub)
    tight_lower = (y > _CS_TOLERANCE) & np.isfinite(row_lb)
    new_row_lb = np.where(tight_upper, row_ub, row_lb)
    new_row_ub = np.where(tight_lower, row_lb, row_ub)
    del proto.linear_constraints.lower_bounds[:]
    _put(proto.linear_constraints.lower_bounds, new_row_lb)
    del proto.linear_constraints.upper_bounds[:]
    _put(proto.linear_constraints.upper_bounds, new_row_ub)


@dataclass
class _Raw:
    status: SolverStatus
    detail: str
    x: FloatArray | None
    bound: float | None
    duals: FloatArray | None
    seconds: float
    reduced_costs: FloatArray | None = None
    basis: solution_pb2.BasisProto | None = None


_BASIC = solution_pb2.BASIS_STATUS_BASIC
_AT_LOWER = solution_pb2.BASIS_STATUS_AT_LOWER_BOUND
_AT_UPPER = solution_pb2.BASIS_STATUS_AT_UPPER_BOUND
_FIXED = solution_pb2.BASIS_STATUS_FIXED_VALUE
_FREE = solution_pb2.BASIS_STATUS_FREE


def _statuses_for_bounds(status: IntArray, lb: FloatArray, ub: FloatArray) -> IntArray:
    """Make non-basic statuses agree with (possibly changed) bounds, as MathOpt requires."""
    nonbasic = status != _BASIC
    out = status.copy()
    fixed = lb == ub
    has_lb, has_ub = np.isfinite(lb), np.isfinite(ub)
    out[nonbasic & fixed] = _FIXED
    loose = nonbasic & ~fixed
    want_upper = loose & (status == _AT_UPPER) & has_ub
    out[loose] = np.where(has_lb[loose], _AT_LOWER, np.where(has_ub[loose], _AT_UPPER, _FREE))
    out[want_upper] = _AT_UPPER
    return out


def _consistent_basis(
    proto: model_pb2.ModelProto, basis: solution_pb2.BasisProto
) -> solution_pb2.BasisProto:
    """A copy of ``basis`` whose statuses fit the bounds now in ``proto``."""
    out = solution_pb2.BasisProto()
    var_ids = _ints(proto.variables.ids)
    con_ids = _ints(proto.linear_constraints.ids)
    var = _statuses_by_id(basis.variable_status, var_ids, _AT_LOWER)
    con = _statuses_by_id(basis.constraint_status, con_ids, _BASIC)
    var = _statuses_for_bounds(
        var, _floats(proto.variables.lower_bounds), _floats(proto.variables.upper_bounds)
    )
    con = _statuses_for_bounds(
        con,
        _floats(proto.linear_constraints.lower_bounds),
        _floats(proto.linear_constraints.upper_bounds),
    )
    _put(out.variable_status.ids, var_ids)
    _put(out.variable_status.values, var)
    _put(out.constraint_status.ids, con_ids)
    _put(out.constraint_status.values, con)
    return out


def _statuses_by_id(
    statuses: solution_pb2.SparseBasisStatusVector, ids: IntArray, default: int
) -> IntArray:
    """The status of each of ``ids`` in a sparse status vector (``default`` where absent)."""
    have = _ints(statuses.ids)
    values = _ints(statuses.values)
    out = np.full(ids.size, default, np.int64)
    if have.size:
        pos = np.minimum(np.searchsorted(have, ids), have.size - 1)
        found = have[pos] == ids
        out[found] = values[pos[found]]
    return out


def map_basis(
    old: PlanningModel, basis: solution_pb2.BasisProto, new: PlanningModel
) -> solution_pb2.BasisProto | None:
    """Carry a level-1 basis of ``old`` over to ``new`` (same plants and offers; demands may
    come and go). Columns and rows are matched by meaning: flows by (demand id, source, week),
    shortfall and demand rows by demand id, the rest by (kind, subject, week). New columns
    start at their lower bound, new rows with a basic slack; a new demand starts with its
    shortfall basic. Returns None when the sources differ (then solve cold)."""
    if [(s.source_id, s.product) for s in old.sources] != [
        (s.source_id, s.product) for s in new.sources
    ] or old.weeks != new.weeks:
        return None
    new_demand = {d.id: i for i, d in enumerate(new.snapshot.demands)}
    d_map = np.array([new_demand.get(d.id, -1) for d in old.snapshot.demands], np.int64).reshape(
        len(old.snapshot.demands)
    )
    n_src, weeks = len(new.sources), new.weeks
    old_var = np.full(old.n_cols, _AT_LOWER, np.int64)
    old_var[_ints(basis.variable_status.ids)] = _ints(basis.variable_status.values)
    old_con = np.full(old.n_rows, _BASIC, np.int64)
    old_con[_ints(basis.constraint_status.ids)] = _ints(basis.constraint_status.values)

    def col_keys(m: PlanningModel, demand_of: IntArray) -> IntArray:
        flows = (demand_of[m.flow_demand] * n_src + m.flow_source) * weeks + m.flow_week
        flows = np.where(demand_of[m.flow_demand] < 0, -1, flows)
        big = (len(new.snapshot.demands) + len(old.snapshot.demands) + 1) * n_src * weeks
        shortfall = np.where(demand_of >= 0, big + demand_of, -1)
        lots = 2 * big + m.lot_source * weeks + m.lot_week
        churn = np.full(m.churn_flow.size, -1, np.int64)  # churn columns never carry over
        return np.concatenate([flows, shortfall, lots, churn]).astype(np.int64)

    def row_keys(m: PlanningModel, demand_of: IntArray) -> IntArray:
        subject = np.where(
            m.row_kind == int(RowKind.DEMAND),
            demand_of[np.clip(m.row_subject, 0, max(demand_of.size - 1, 0))]
            if demand_of.size
            else -1,
            m.row_subject,
        )
        keys = (m.row_kind * (1 << 40)) + (subject + 1) * (weeks + 2) + (m.row_week + 1)
        bad = (subject < 0) | (m.row_kind == int(RowKind.CHURN))
        return np.where(bad, -1, keys).astype(np.int64)

    identity = np.arange(len(new.snapshot.demands), dtype=np.int64)
    new_var = np.full(new.n_cols, _AT_LOWER, np.int64)
    new_con = np.full(new.n_rows, _BASIC, np.int64)
    for old_keys, new_keys, old_status, new_status in (
        (col_keys(old, d_map), col_keys(new, identity), old_var, new_var),
        (row_keys(old, d_map), row_keys(new, identity), old_con, new_con),
    ):
        valid = old_keys >= 0
        order = np.argsort(old_keys[valid], kind="stable")
        sorted_keys = old_keys[valid][order]
        sorted_status = old_status[valid][order]
        pos = np.searchsorted(sorted_keys, new_keys)
        pos = np.minimum(pos, max(sorted_keys.size - 1, 0))
        found = (new_keys >= 0) & (sorted_keys.size > 0)
        if sorted_keys.size:
            found &= sorted_keys[pos] == new_keys
            new_status[found] = sorted_status[pos[found]]
    # churn columns are basic, held by their "U + F >= previous" row (U = previous - F)
    if new.churn_flow.size:
        new_var[new.churn_offset :] = _BASIC
        churn_rows = np.flatnonzero(new.row_kind == int(RowKind.CHURN))
        new_con[churn_rows[new.churn_flow.size :]] = _AT_LOWER
    # a demand the old model did not know: its shortfall carries it (basic), its row is tight
    known = set(d_map[d_map >= 0].tolist())
    for d in range(len(new.snapshot.demands)):
        if d not in known:
            new_var[new.shortfall_offset + d] = _BASIC
            new_con[d] = _FIXED  # demand rows come first and are equalities
    out = solution_pb2.BasisProto()
    _put(out.variable_status.ids, np.arange(new.n_cols, dtype=np.int64))
    _put(out.variable_status.values, new_var)
    _put(out.constraint_status.ids, np.arange(new.n_rows, dtype=np.int64))
    _put(out.constraint_status.values, new_con)
    return out


def _run(
    proto: model_pb2.ModelProto,
    backend: str,
    settings: SolverSettings,
    time_limit: float,
    hint: FloatArray | None,
    n_cols: int,
    n_rows: int,
    basis: solution_pb2.BasisProto | None = None,
) -> _Raw:
    """One solve of ``proto``, from ``basis`` if given; a carried-over basis the solver
    rejects is no reason to fail, so the solve is then run again cold in the time left."""
    raw = _solve_once(proto, backend, settings, time_limit, hint, n_cols, n_rows, basis)
    if raw.x is None and basis is not None and raw.status is SolverStatus.ERROR:
        cold = _solve_once(proto, backend, settings, time_limit - raw.seconds, hint, n_cols, n_rows)
        cold.seconds += raw.seconds
        return cold
    return raw


def _solve_once(
    proto: model_pb2.ModelProto,
    backend: str,
    settings: SolverSettings,
    time_limit: float,
    hint: FloatArray | None,
    n_cols: int,
    n_rows: int,
    basis: solution_pb2.BasisProto | None = None,
) -> _Raw:
    params = parameters_pb2.SolveParametersProto()
    params.time_limit.FromTimedelta(timedelta(seconds=max(time_limit, 0.01)))
    if backend in ("scip", "cpsat"):  # HiGHS and Glop take no thread count through MathOpt
        params.threads = settings.threads
    if backend in ("highs", "scip", "cpsat"):  # the others reject a seed
        params.random_seed = 7
    has_integers = any(proto.variables.integers)
    if has_integers:
        params.relative_gap_tolerance = settings.relative_gap
        params.absolute_gap_tolerance = 1e-6
    model_params = model_parameters_pb2.ModelSolveParametersProto()
    if hint is not None and has_integers and backend in ("highs", "scip", "cpsat"):
        h = model_params.solution_hints.add()
        _put(h.variable_values.ids, np.arange(n_cols, dtype=np.int64))
        _put(h.variable_values.values, hint)
    if basis is not None and not has_integers and backend in ("highs", "glop"):
        model_params.initial_basis.CopyFrom(_consistent_basis(proto, basis))
        if backend == "highs":  # HiGHS drops a starting basis when it presolves
            params.presolve = parameters_pb2.EMPHASIS_OFF
    started = time.perf_counter()
    try:
        res = mathopt_solver.solve(
            proto,
            BACKENDS[backend],
            parameters_pb2.SolverInitializerProto(),
            params,
            model_params,
            None,
            callback_pb2.CallbackRegistrationProto(),
            None,
            None,
        )
    except Exception as exc:  # the solver reports bad input by raising; keep the plan honest
        return _Raw(
            SolverStatus.ERROR, f"{backend}: {exc}", None, None, None, time.perf_counter() - started
        )
    seconds = time.perf_counter() - started
    status = _status_of(res.termination)
    x: FloatArray | None = None
    duals: FloatArray | None = None
    if res.solutions and res.solutions[0].HasField("primal_solution"):
        sol = res.solutions[0].primal_solution
        x = np.zeros(n_cols)
        x[_ids(sol.variable_values.ids, n_cols)] = _floats(sol.variable_values.values)
    if res.solutions and res.solutions[0].HasField("dual_solution"):
        dual = res.solutions[0].dual_solution.dual_values
        dual_ids = _ints(dual.ids)
        duals = np.zeros(n_rows)
        model_row = dual_ids < n_rows  # rows appended by level fixing are not model rows
        duals[dual_ids[model_row]] = _floats(dual.values)[model_row]
    reduced: FloatArray | None = None
    if res.solutions and res.solutions[0].HasField("dual_solution"):
        rc = res.solutions[0].dual_solution.reduced_costs
        reduced = np.zeros(n_cols)
        reduced[_ids(rc.ids, n_cols)] = _floats(rc.values)
    bound = res.termination.objective_bounds.dual_bound
    detail = res.termination.detail
    final_basis = (
        res.solutions[0].basis if res.solutions and res.solutions[0].HasField("basis") else None
    )
    return _Raw(
        status,
        detail,
        x,
        float(bound) if math.isfinite(bound) else None,
        duals,
        seconds,
        reduced,
        final_basis,
    )


GLOP_COLD_ABOVE_COLUMNS = 500_000
"""Above this size a cold LP goes to Glop: interrupted by the time limit, HiGHS (through
MathOpt) returned no solution on the large scenario while Glop returned a feasible one."""


def _backend_for(settings: SolverSettings, exact: bool, has_basis: bool, n_cols: int = 0) -> str:
    """The solver that runs the levels. ``auto``: HiGHS for MIPs and for LPs solved from
    scratch (the faster cold LP solver on the medium scenario), Glop for LPs that start from a
    known basis (HiGHS through MathOpt ignores a starting basis) and for very large cold LPs."""
    if settings.backend == "auto":
        if exact:
            return "highs"
        return "glop" if has_basis or n_cols > GLOP_COLD_ABOVE_COLUMNS else "highs"
    return settings.backend


RESTRICTED_ABOVE_COLUMNS = GLOP_COLD_ABOVE_COLUMNS
"""Above this many columns a cold LP is solved over a restricted set of columns, grown by
pricing (column generation), instead of whole: on the large scenario no backend solved the
whole first level in 120 s, while a restricted LP of 5 % of its columns solved in about 4 s."""
_PRICED_PER_DEMAND = 100
"""At most this many columns added per demand and pricing round (the most negative reduced
costs), so that no demand's columns crowd out the others'."""
_GROWTH_PER_ROUND = 0.5
"""At most this share of the restricted LP's size added per round, the most negative reduced
costs first. On the large scenario (2026-11-30, 30 s budget) adding half per round gave a
weighted shortfall of 17.8M in two rounds, adding ten per demand 19.0M in one; a restricted LP
grown threefold at once took HiGHS minutes instead of seconds."""
_PRICING_SHARE = 0.6
"""Share of the time budget the pricing rounds of the first level may use; the later levels
and the rounding need the rest."""


@dataclass
class _Restricted:
    """The first level solved by column generation over the LP view."""

    columns: BoolArray
    """The columns of the final restricted LP (a mask over the model's columns)."""
    raw: _Raw
    """Its first-level solve."""
    reduced_costs: FloatArray
    """Reduced costs of every LP-view column at its duals (0 outside the LP view)."""
    rounds: int
    priced_out: int
    """Columns with a negative reduced cost left out when pricing stopped."""
    used: int = 0
    """Columns of the restricted LP at the end of level 1 (later levels may add more)."""

    def __post_init__(self) -> None:
        self.used = int(self.columns.sum())

    @property
    def converged(self) -> bool:
        """No column prices out: the restricted optimum is the whole LP's optimum."""
        return self.priced_out == 0

    def summary(self) -> str:
        used = self.used
        if self.converged:
            return f"first level by column generation: {self.rounds} rounds, {used:,} columns"
        return (
            f"first level by column generation stopped at its time budget after {self.rounds} "
            f"rounds: optimal over {used:,} columns, {self.priced_out:,} more would improve it"
        )


def _lp_reduced_costs(model: PlanningModel, objective: FloatArray, duals: FloatArray) -> FloatArray:
    """``objective - A^T duals`` over the LP view (0 for columns outside it)."""
    priced = objective - np.bincount(
        model.lp_a_col, weights=model.lp_a_val * duals[model.lp_a_row], minlength=model.n_cols
    )
    out = np.zeros(model.n_cols)
    out[model.lp_columns] = priced[model.lp_columns]
    return out


def _seed_columns(model: PlanningModel, seed: FloatArray | None) -> BoolArray:
    """The first restricted LP: every column but the flows, the committed flows, the flows
    of ``seed`` (a feasible plan), and for each (demand, source) the flow arriving nearest
    before the due week (or nearest after it, when none arrives in time)."""
    chosen = np.zeros(model.n_cols, bool)
    chosen[model.n_flows :] = True
    chosen[: model.n_flows] = model.flow_fixed
    if seed is not None:
        chosen[: model.n_flows] |= seed[: model.n_flows] > 0.5
    if model.n_flows:
        due = np.array([model.snapshot.week_index(d.due_week) for d in model.snapshot.demands])
        late = model.flow_arrival - due[model.flow_demand]
        preference = np.where(late <= 0, -late, model.weeks + late)
        pair = model.flow_demand * (len(model.sources) + 1) + model.flow_source
        order = np.lexsort((preference, pair))
        first = np.ones(order.size, bool)
        first[1:] = pair[order][1:] != pair[order][:-1]
        chosen[order[first]] = True
    in_view = np.zeros(model.n_cols, bool)
    in_view[model.lp_columns] = True
    return chosen & in_view


def _most_negative(
    model: PlanningModel, reduced: FloatArray, chosen: BoolArray, cap: int
) -> IntArray:
    """Columns to add: per demand the ``_PRICED_PER_DEMAND`` flows with the most negative
    reduced cost, at most ``cap`` in all (the most negative first)."""
    flows = np.flatnonzero(~chosen[: model.n_flows] & (reduced[: model.n_flows] < -_CS_TOLERANCE))
    if flows.size == 0:
        return flows
    demand = model.flow_demand[flows]
    order = np.lexsort((reduced[flows], demand))
    flows, demand = flows[order], demand[order]
    starts = np.flatnonzero(np.r_[True, demand[1:] != demand[:-1]])
    rank = np.arange(flows.size) - np.repeat(starts, np.diff(np.r_[starts, flows.size]))
    flows = flows[rank < _PRICED_PER_DEMAND]
    if flows.size > cap:
        flows = flows[np.argpartition(reduced[flows], cap)[:cap]]
    return flows


def _column_generation(
    model: PlanningModel,
    settings: SolverSettings,
    deadline: float,
    seed: FloatArray | None,
) -> tuple[_Restricted, model_pb2.ModelProto] | None:
    """Solve the first level over a growing set of columns (``_solve_priced_level``, every
    left-out column a candidate) until none prices out or the pricing share of the time
    budget is spent; the result and the restricted proto, for the later levels. None when
    the first restricted LP has no solution (the caller then solves the whole LP)."""
    chosen = _seed_columns(model, seed)
    proto = build_proto(model, np.zeros(model.n_cols, bool), relaxed_lots=True, columns=chosen)
    priced = _solve_priced_level(proto, model, 0, chosen, ~chosen, settings, deadline, None, None)
    raw = priced.raw
    if raw.x is None or raw.duals is None or raw.status is not SolverStatus.OPTIMAL:
        return None
    restricted = _Restricted(chosen, raw, priced.reduced, priced.rounds, priced.improving)
    return restricted, proto


def _integrality(model: PlanningModel, settings: SolverSettings) -> tuple[np.ndarray, bool]:
    """Integer flags per column, and whether the model is solved exactly (as a MIP)."""
    size = model.n_flows + int(model.lot_source.size)
    exact = settings.integrality == "exact" or (
        settings.integrality == "auto" and size <= settings.exact_size_limit
    )
    if settings.backend == "cpsat":
        return np.ones(model.n_cols, bool), True  # CP-SAT takes integer variables only
    if settings.backend in LP_ONLY:
        exact = False
    integer = np.zeros(model.n_cols, bool)
    if exact:
        integer[: model.n_flows] = True
        integer[model.lot_offset : model.churn_offset] = True
    return integer, exact


def _grow_proto(
    proto: model_pb2.ModelProto, model: PlanningModel, columns: BoolArray, new: IntArray
) -> None:
    """Add LP-view columns to a restricted ``proto`` (at their model bounds); the columns and
    rows it has keep the bounds the earlier levels' optimal faces gave them."""
    lower, upper = model.col_lb.copy(), model.col_ub.copy()
    ids = _ints(proto.variables.ids)
    lower[ids] = _floats(proto.variables.lower_bounds)
    upper[ids] = _floats(proto.variables.upper_bounds)
    columns[new] = True
    grown = build_proto(
        model, np.zeros(model.n_cols, bool), lower, upper, relaxed_lots=True, columns=columns
    )
    # restricted protos are face-fixed, never given level rows: the rows are the same
    grown.linear_constraints.CopyFrom(proto.linear_constraints)
    proto.CopyFrom(grown)


@dataclass
class _Priced:
    """A level solved over restricted columns, grown by pricing."""

    raw: _Raw
    """The last restricted LP solved (its ``seconds``: the level's, pricing included)."""
    improving: int
    """Left-out candidate columns that still price out (0: the whole LP's optimum)."""
    reduced: FloatArray
    """Reduced costs of every LP-view column at its duals."""
    rounds: int


def _solve_priced_level(
    proto: model_pb2.ModelProto,
    model: PlanningModel,
    level: int,
    columns: BoolArray,
    on_face: BoolArray,
    settings: SolverSettings,
    deadline: float,
    start_from: FloatArray | None,
    basis: solution_pb2.BasisProto | None,
) -> _Priced:
    """Solve a level over the restricted columns of ``proto``, adding left-out candidate
    columns (``on_face``, updated: for a later level, those still on the earlier levels'
    optimal faces) that price out, until none does or the budget left for pricing is spent.
    A growth round that fails leaves the last optimum, with the columns it added at zero."""
    obj, off = model.objective(level, True), model.objective_offsets[level]
    started = time.perf_counter()
    stop_pricing = started + (deadline - started) * _PRICING_SHARE
    last: _Priced | None = None
    new = np.zeros(0, np.int64)
    while True:
        _set_objective(proto, obj, off, columns)
        # the first round may use what is left of the budget, a growth round only what is
        # left of the pricing share (if it runs over, the last optimum stands)
        until = deadline if last is None else stop_pricing
        raw = _run(
            proto,
            "highs",
            settings,
            until - time.perf_counter(),
            start_from,
            model.n_cols,
            model.n_rows,
            basis,
        )
        if raw.x is None or raw.duals is None or raw.status is not SolverStatus.OPTIMAL:
            if last is None:
                raw.seconds = time.perf_counter() - started
                return _Priced(raw, 0, np.zeros(model.n_cols), 0)
            # the columns added after the last optimum are left out again (held at zero in
            # the proto): the later levels must not use columns it has not priced
            _hold_at_zero(proto, new)
            columns[new], on_face[new] = False, True
            last.raw.seconds = time.perf_counter() - started
            return last
        reduced = _lp_reduced_costs(model, obj, raw.duals)
        candidates = np.where(on_face, reduced, 0.0)
        improving = int(np.count_nonzero(candidates < -_CS_TOLERANCE))
        last = _Priced(raw, improving, reduced, 1 if last is None else last.rounds + 1)
        new = np.zeros(0, np.int64)
        if improving and time.perf_counter() < stop_pricing:
            new = _most_negative(
                model, candidates, columns, max(1, int(_GROWTH_PER_ROUND * columns.sum()))
            )
        if new.size == 0:  # converged, out of pricing time, or only non-flows price out
            raw.seconds = time.perf_counter() - started
            return last
        on_face[new] = False
        _grow_proto(proto, model, columns, new)
        basis = raw.basis


def _hold_at_zero(proto: model_pb2.ModelProto, columns: IntArray) -> None:
    """Fix these columns of ``proto`` (by model column index) at zero."""
    ids = _ints(proto.variables.ids)
    for position in np.searchsorted(ids, columns).tolist():
        proto.variables.lower_bounds[position] = 0.0
        proto.variables.upper_bounds[position] = 0.0


@dataclass
class _Pass:
    levels: list[LevelResult]
    x: FloatArray | None
    status: SolverStatus
    message: str
    duals: FloatArray | None = None
    reduced_costs: FloatArray | None = None
    first_basis: solution_pb2.BasisProto | None = None


def _primal_feasible(model: PlanningModel, proto: model_pb2.ModelProto, x: FloatArray) -> bool:
    """Whether ``x`` meets the model's bounds and rows (with the bounds in ``proto`` where it
    has them) within 1e-6; an LP-view ``x`` needs its lots filled in first."""
    lb, ub = model.col_lb.copy(), model.col_ub.copy()
    var_ids = _ints(proto.variables.ids)
    lb[var_ids] = _floats(proto.variables.lower_bounds)
    ub[var_ids] = _floats(proto.variables.upper_bounds)
    tol = 1e-6 * np.maximum(1.0, np.abs(x))
    if np.any(x < lb - tol) or np.any(x > ub + tol):
        return False
    activity = np.bincount(
        model.a_row, weights=model.a_val * x[model.a_col], minlength=model.n_rows
    )
    row_lb, row_ub = model.row_lb.copy(), model.row_ub.copy()
    con_ids = _ints(proto.linear_constraints.ids)
    own = con_ids < model.n_rows
    row_lb[con_ids[own]] = _floats(proto.linear_constraints.lower_bounds)[own]
    row_ub[con_ids[own]] = _floats(proto.linear_constraints.upper_bounds)[own]
    row_tol = 1e-6 * np.maximum(1.0, np.abs(activity))
    return bool(np.all(activity >= row_lb - row_tol) and np.all(activity <= row_ub + row_tol))


def proven_bound(bound: float | None, value: float) -> float | None:
    """The solver's lower bound of a minimised level, or None when it cannot be one: an
    interrupted simplex may report its iterate's objective, which can exceed a feasible value."""
    if bound is not None and bound > value + 1e-6 * max(1.0, abs(value)):
        return None
    return bound


def _solve_levels(
    model: PlanningModel,
    proto: model_pb2.ModelProto,
    settings: SolverSettings,
    deadline: float,
    hint: FloatArray | None,
    face_fixing: bool,
    basis: solution_pb2.BasisProto | None = None,
    backend: str = "highs",
    relaxed_lots: bool = False,
    restricted: _Restricted | None = None,
) -> _Pass:
    """Minimise each level in turn on ``proto`` (which is modified), fixing each optimum.
    ``relaxed_lots``: ``proto`` is the LP view; solutions get their lot columns filled in.
    ``restricted``: ``proto`` holds only its columns, and its level 1 is already solved."""
    out = _Pass([], None, SolverStatus.OPTIMAL, "")
    n_levels = 4 if model.has_previous_plan else 3
    columns = None if restricted is None else restricted.columns
    proven, on_face, unproven = True, np.zeros(0, bool), list[str]()
    for k in range(n_levels):
        remaining = deadline - time.perf_counter()
        if remaining <= 0 and not (k == 0 and restricted is not None):  # level 1 is solved
            out.status = SolverStatus.TIME_LIMIT
            out.message = f"time budget spent before level {k + 1}"
            break
        obj, off = model.objective(k, relaxed_lots), model.objective_offsets[k]
        _set_objective(proto, obj, off, columns)
        start_from = out.x if out.x is not None else hint
        improving = 0
        if k == 0 and restricted is not None:
            raw = restricted.raw
        elif restricted is not None and proven:
            assert columns is not None
            priced_level = _solve_priced_level(
                proto, model, k, columns, on_face, settings, deadline, start_from, basis
            )
            raw, improving = priced_level.raw, priced_level.improving
        else:
            raw = _run(
                proto,
                backend,
                settings,
                remaining,
                start_from,
                model.n_cols,
                model.n_rows,
                basis,
            )
        if raw.x is not None and relaxed_lots:
            model.fill_relaxed_lots(raw.x)
        if (
            raw.x is not None
            and raw.status is not SolverStatus.OPTIMAL
            and not _primal_feasible(model, proto, raw.x)
        ):
            # an interrupted simplex may hand back an iterate that breaks rows: never plan on it
            raw.x, raw.bound = None, None
            raw.detail = f"{raw.detail} (interrupted iterate not feasible; discarded)".strip()
        if raw.x is None:
            failed = raw.status if raw.status is not SolverStatus.OPTIMAL else SolverStatus.ERROR
            out.status = failed
            out.message = f"level {k + 1} ({LEVEL_NAMES[k]}): {failed.value} {raw.detail}"
            out.levels.append(
                LevelResult(LEVEL_NAMES[k], math.nan, raw.bound, failed, raw.seconds, raw.detail)
            )
            break
        out.x = raw.x
        basis = raw.basis  # the next level starts where this one ended
        if k == 0:
            out.duals, out.reduced_costs = raw.duals, raw.reduced_costs
            out.first_basis = raw.basis
        value = float(obj @ raw.x) + off
        # an interrupted LP proves nothing (Glop reports its iterate's objective as the bound)
        has_integers = any(proto.variables.integers)
        lp_proved = raw.status is SolverStatus.OPTIMAL or has_integers
        bound = proven_bound(raw.bound, value) if lp_proved else None
        status = raw.status
        if restricted is not None and raw.duals is not None:
            if k == 0:
                proven = restricted.converged
                out.reduced_costs = restricted.reduced_costs.copy()
                if not proven:
                    # explanations read a flow with a negative reduced cost as one held at a
                    # bound; left-out columns are not in the LP whose duals they are
                    out.reduced_costs[~restricted.columns] = 0.0
                # the columns left out that are still on the optimal face of level 1
                on_face = ~restricted.columns & (restricted.reduced_costs <= _CS_TOLERANCE)
                on_face[: model.n_flows] &= ~model.flow_fixed
            elif proven:
                # priced like level 1, within what is left of the budget: a left-out column
                # that would still improve this level leaves its optimum unproven
                proven = improving == 0
                on_face &= priced_level.reduced <= _CS_TOLERANCE
                if improving:
                    unproven.append(
                        f"level {k + 1} stopped pricing: {improving:,} left-out columns would "
                        "improve it"
                    )
            if not proven:
                # optimal over the restricted columns, not over all: no bound
                status, bound = SolverStatus.FEASIBLE, None
        out.levels.append(
            LevelResult(LEVEL_NAMES[k], value, bound, status, raw.seconds, raw.detail)
        )
        if raw.status is not SolverStatus.OPTIMAL:
            out.status = raw.status
            out.message = f"level {k + 1} ({LEVEL_NAMES[k]}) stopped: {raw.status.value} "
            out.message += raw.detail
            break
        if face_fixing and raw.duals is not None and raw.reduced_costs is not None:
            _fix_optimal_face(proto, raw.duals, raw.reduced_costs)
        else:
            _fix_level(proto, obj, off, value, settings, model.n_rows, columns)
            proven = False  # pricing regrows the proto from the model's rows: no more of it
    if restricted is not None:
        unsure = any(level.status is SolverStatus.FEASIBLE for level in out.levels)
        if unsure and out.status is SolverStatus.OPTIMAL:
            out.status = SolverStatus.FEASIBLE
        notes = [restricted.summary(), *unproven, out.message]
        out.message = "; ".join(note for note in notes if note)
    out.message = out.message.strip("; ")
    return out


@dataclass
class WarmStart:
    """What a previous solve leaves for the next: its model and level-1 LP basis."""

    model: PlanningModel
    basis: solution_pb2.BasisProto
    lot_basis: solution_pb2.BasisProto | None = None
    """Unused since lots are relaxed in the one LP pass; kept so callers need not change."""


def solve(
    model: PlanningModel,
    settings: SolverSettings | None = None,
    hint: FloatArray | None = None,
    warm_start: WarmStart | None = None,
) -> Result:
    """Minimise the four objectives in order; never raises for solver trouble.

    Exact mode solves a MIP per level and fixes each optimum with a row. LP mode solves an LP
    per level on the model's LP view (lots relaxed) and restricts the next level to the
    optimal face, then rounds flows down, lots to whole lots (the capacity rows already allow
    whole lots only) and tops up greedily. The greedy plan is kept instead if it is
    lexicographically better. ``hint`` is a solution vector of the same model used to
    warm-start MIP levels; ``warm_start`` (``Result.warm_start()`` of an earlier solve, e.g.
    before an urgent demand arrived) starts the LP levels from that basis.
    """
    settings = settings or SolverSettings()
    started = time.perf_counter()
    deadline = started + settings.time_limit_seconds
    integer, exact = _integrality(model, settings)
    basis = None
    if warm_start is not None and not exact and settings.backend in ("auto", "glop"):
        basis = map_basis(warm_start.model, warm_start.basis, model)
    relaxed = not exact
    greedy_x: FloatArray | None
    if (
        relaxed
        and model.n_cols > RESTRICTED_ABOVE_COLUMNS
        and settings.backend == "auto"  # a backend asked for by name solves the whole LP
    ):
        first, greedy_x = _solve_restricted(model, settings, deadline, hint, basis)
    else:
        backend = _backend_for(settings, exact, basis is not None, model.n_cols)
        face_fixing = not exact and backend in ("highs", "glop")
        # Built before the greedy starts: two Python threads would share the GIL, and the
        # proto is on the way to the first solve, the greedy is not.
        proto = build_proto(model, integer, relaxed_lots=relaxed)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ampc-greedy") as meanwhile:
            # The rounded LP plan is compared with the greedy plan; the solvers release the
            # GIL, so the greedy runs on another core while they work instead of after them.
            greedy = meanwhile.submit(greedy_baseline, model) if relaxed else None
            first = _solve_levels(
                model,
                proto,
                settings,
                deadline,
                hint,
                face_fixing,
                basis,
                backend,
                relaxed,
            )
            greedy_x = greedy.result() if greedy is not None else None
    result = Result(
        model,
        settings,
        first.status,
        first.message,
        first.x,
        first.levels,
        duals=None if exact else first.duals,
        reduced_costs=None if exact else first.reduced_costs,
        integral_flows=exact,
        basis=first.first_basis,
        greedy_x=greedy_x,
    )
    if result.x is not None:
        _make_integral(result)
        if greedy_x is not None:
            _keep_greedy_if_better(result, greedy_x)
    result.solve_seconds = time.perf_counter() - started
    return result


def _solve_restricted(
    model: PlanningModel,
    settings: SolverSettings,
    deadline: float,
    hint: FloatArray | None,
    basis: solution_pb2.BasisProto | None,
) -> tuple[_Pass, FloatArray]:
    """A large LP's levels over restricted columns: the greedy plan first (its flows seed
    the columns: a first restricted LP without them took HiGHS 18 s instead of 4 s on the
    large scenario), then column generation for the first level, then the other levels,
    priced the same way. Falls back to the whole LP (Glop) if the first restricted LP fails."""
    greedy_x = greedy_baseline(model)
    seed = greedy_x.copy()
    if basis is not None:  # a re-plan: the columns basic in the last plan's basis too
        ids = _ints(basis.variable_status.ids)
        basic = ids[_ints(basis.variable_status.values) == _BASIC]
        seed[basic[basic < model.n_flows]] = 1.0
    generated = _column_generation(model, settings, deadline, seed)
    if generated is None:
        whole = _solve_levels(
            model,
            build_proto(model, np.zeros(model.n_cols, bool), relaxed_lots=True),
            settings,
            deadline,
            hint,
            True,
            basis,
            "glop",
            True,
        )
        return whole, greedy_x
    restricted, proto = generated
    levels = _solve_levels(
        model, proto, settings, deadline, hint, True, None, "highs", True, restricted
    )
    return levels, greedy_x


def _lexicographic(model: PlanningModel, x: FloatArray) -> tuple[float, ...]:
    return tuple(
        round(float(model.objectives[k] @ x) + model.objective_offsets[k], 6) for k in range(4)
    )


def _keep_greedy_if_better(result: Result, greedy: FloatArray) -> None:
    """The rule-of-thumb plan is a feasible plan too: never return something worse."""
    model = result.model
    assert result.x is not None
    if _lexicographic(model, greedy) < _lexicographic(model, result.x):
        result.x = greedy.copy()  # `result.greedy_x` stays the greedy plan as computed
        for k, level in enumerate(result.levels):
            level.value = float(model.objectives[k] @ greedy) + model.objective_offsets[k]
        result.message = (result.message + "; the greedy plan beat the rounded LP plan").strip("; ")


def _make_integral(result: Result) -> None:
    """Turn the last level's solution into whole rounds and whole lots.

    Exact solves only need the solver's tiny integrality error removed. LP solves get flows
    rounded down, lots rounded down (cutting the rounds that no longer fit, least urgent and
    latest first), then a greedy top-up; levels whose value moved lose their OPTIMAL status
    and keep the LP value as their bound.
    """
    model = result.model
    x = result.x
    assert x is not None
    flows = slice(0, model.n_flows)
    lots = slice(model.lot_offset, model.churn_offset)
    if result.integral_flows:
        x[flows] = np.round(x[flows])
        x[lots] = np.round(x[lots])
        recompute_dependent(model, x)
        return
    before = x[flows].copy()
    x[flows] = np.floor(x[flows] + 1e-6)
    _round_lots(model, x)
    _cut_to_lots(model, x)
    top_up(model, x)
    recompute_dependent(model, x)
    result.rounded_units = float(np.abs(x[flows] - before).sum())
    for k, level in enumerate(result.levels):
        new_value = float(model.objectives[k] @ x) + model.objective_offsets[k]
        if abs(new_value - level.value) > 1e-6 + 1e-9 * abs(level.value):
            if level.status is SolverStatus.OPTIMAL:  # only an LP optimum bounds the level
                bound = level.value if level.bound is None else min(level.bound, level.value)
                level.bound = bound
            level.value = new_value
            if level.status is SolverStatus.OPTIMAL:
                level.status = SolverStatus.FEASIBLE
            if result.status is SolverStatus.OPTIMAL:
                result.status = SolverStatus.FEASIBLE
                note = (
                    "levels solved as LPs; flows rounded to whole rounds and lots, so the "
                    "objective terms are within the reported gap of the LP bounds"
                )
                result.message = f"{note}; {result.message}" if result.message else note


def _round_lots(model: PlanningModel, x: FloatArray) -> None:
    """Whole lots: enough to cover the rounded flows, then, where a capacity or material row
    is over its bound, drop one lot at a time where that loses the fewest rounds."""
    n_lots = int(model.lot_source.size)
    if n_lots == 0:
        return
    lots = slice(model.lot_offset, model.churn_offset)
    lot_flows = np.flatnonzero(model.flow_lot_col >= 0)
    need = np.bincount(
        model.flow_lot_col[lot_flows] - model.lot_offset,
        weights=x[lot_flows],
        minlength=n_lots,
    )
    x[lots] = np.ceil(need / model.lot_size - 1e-9)
    limiting = np.isin(model.row_kind, [int(RowKind.CAPACITY), int(RowKind.MATERIAL)])
    activity: FloatArray = np.bincount(
        model.a_row, weights=model.a_val * x[model.a_col], minlength=model.n_rows
    ).astype(np.float64)
    over = np.flatnonzero(limiting & (activity > model.row_ub + 1e-6))
    if over.size == 0:
        return
    in_lot = (model.a_col >= model.lot_offset) & (model.a_col < model.churn_offset)
    lot_entries = np.flatnonzero(in_lot & limiting[model.a_row])
    by_col = lot_entries[np.argsort(model.a_col[lot_entries], kind="stable")]
    col_sorted = model.a_col[by_col]
    row_entries = lot_entries  # already sorted by row (the matrix is row-major)
    row_sorted = model.a_row[row_entries]
    for r in over.tolist():
        lo, hi = np.searchsorted(row_sorted, [r, r + 1])
        candidates = model.a_col[row_entries[lo:hi]]
        while activity[r] > model.row_ub[r] + 1e-6:
            live = candidates[x[candidates] >= 1]
            if live.size == 0:
                break
            j = live - model.lot_offset
            # rounds lost by dropping one lot of j: what its last lot actually carries
            carried = need[j] - model.lot_size[j] * (x[live] - 1)
            pick = int(live[np.argmin(carried)])
            x[pick] -= 1
            need[pick - model.lot_offset] = min(
                need[pick - model.lot_offset], model.lot_size[pick - model.lot_offset] * x[pick]
            )
            c_lo, c_hi = np.searchsorted(col_sorted, [pick, pick + 1])
            entries = by_col[c_lo:c_hi]
            activity[model.a_row[entries]] -= model.a_val[entries]


def _cut_to_lots(model: PlanningModel, x: FloatArray) -> None:
    """After rounding lots down, trim the flows of each lot to what the lots produce."""
    lot_flows = np.flatnonzero(model.flow_lot_col >= 0)
    if lot_flows.size == 0:
        return
    cols = model.flow_lot_col[lot_flows]
    allocated = np.bincount(
        cols - model.lot_offset, weights=x[lot_flows], minlength=model.lot_source.size
    )
    excess = allocated - x[model.lot_offset : model.churn_offset] * model.lot_size
    weight = model.objectives[0][model.shortfall_offset : model.lot_offset]
    lateness = model.objectives[1][: model.n_flows]
    for j in np.flatnonzero(excess > 1e-9).tolist():
        members = lot_flows[cols == model.lot_offset + j]
        members = members[~model.flow_fixed[members]]
        order = np.lexsort((-lateness[members], weight[model.flow_demand[members]]))
        to_cut = float(excess[j])
        for f in members[order].tolist():
            cut = min(to_cut, float(x[f]))
            x[f] -= cut
            to_cut -= cut
            if to_cut <= 0:
                break
        if to_cut > 0:  # committed rounds need the lot: keep enough lots for them
            x[model.lot_offset + j] += math.ceil(to_cut / float(model.lot_size[j]))


def shortfall_duals(
    model: PlanningModel, settings: SolverSettings | None = None
) -> tuple[FloatArray | None, FloatArray | None]:
    """Row duals and column reduced costs of the LP relaxation at the shortfall level.

    A dual is d(weighted shortfall)/d(right-hand side): negative on a binding capacity row
    means one more round of capacity there lowers weighted shortfall by |dual|. (None, None)
    if the LP cannot be solved.
    """
    settings = settings or SolverSettings()
    backend = "glop" if settings.backend in ("glop", "cpsat", "auto") else "highs"
    proto = build_proto(model, np.zeros(model.n_cols, bool), relaxed_lots=True)
    _set_objective(proto, model.objectives[0], model.objective_offsets[0])
    raw = _run(
        proto, backend, settings, settings.time_limit_seconds, None, model.n_cols, model.n_rows
    )
    return raw.duals, raw.reduced_costs
