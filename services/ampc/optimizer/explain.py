"""Why a demand is short or late, and where more capacity, material or money helps most.

Reasons come from the eligibility pass (which rule excluded which source), the transit table
(the due week is out of reach), and the rows that bind in the solution: capacity of the
demand's eligible lines, materials in its weeks, its pool's money. Shadow prices are duals of
the LP at the shortfall level: how much weighted shortfall one more unit would avoid.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ampc.optimizer.model import MONEY_SCALE, FloatArray, PlanningModel, RowKind, material_supply
from ampc.optimizer.plan import Bottleneck, Reason
from ampc.optimizer.snapshot import PRIORITY_WEIGHT, Priority
from ampc.optimizer.solve import Result, shortfall_duals

TOP_CAPACITY = 10
TOP_MATERIAL = 5
TOP_MONEY = 5
_TIGHT = 0.5  # rounds (or their money/material equivalent) of slack that count as binding


@dataclass
class Explanation:
    """Reasons per short or late demand, and bottlenecks ranked by shadow price."""

    reasons: dict[str, list[Reason]] = field(default_factory=dict)
    bottlenecks: list[Bottleneck] = field(default_factory=list)


def _eur(cents: float) -> str:
    return f"EUR {cents / 100:,.0f}"


def _row_activity(model: PlanningModel, x: FloatArray) -> FloatArray:
    activity: FloatArray = np.bincount(
        model.a_row, weights=model.a_val * x[model.a_col], minlength=model.n_rows
    ).astype(np.float64)
    return activity


def explain(result: Result) -> Explanation:
    """Reasons for every short or late demand and the ranked bottlenecks of ``result``."""
    model = result.model
    out = Explanation()
    if result.x is None:
        return out
    if result.duals is None:
        result.duals, result.reduced_costs = shortfall_duals(model, result.settings)
    x = result.x
    slack = model.row_ub - _row_activity(model, x)
    out.bottlenecks = bottlenecks(model, result.duals, result.reduced_costs)
    _demand_reasons(model, x, slack, out)
    return out


def capacity_values(
    model: PlanningModel, duals: FloatArray, reduced: FloatArray | None
) -> FloatArray:
    """Shadow price of every row; capacity rows also take the price of flows held at a bound
    equal to the line's capacity (the solver may put the price on either)."""
    value = np.maximum(-duals, 0.0)  # minimisation: a binding <= row has a dual <= 0
    if reduced is None or model.n_flows == 0:
        return value
    fsrc = model.flow_source
    line_of = np.array(
        [model.line_ids.index(s.source_id) if s.kind == "line" else -1 for s in model.sources],
        np.int64,
    ).reshape(len(model.sources))
    fline = line_of[fsrc]
    cap_rows = np.flatnonzero(model.row_kind == int(RowKind.CAPACITY))
    weeks = model.weeks
    first_cap = int(cap_rows[0]) if cap_rows.size else 0
    flow_rc = np.maximum(-reduced[: model.n_flows], 0.0)
    capped = (fline >= 0) & (flow_rc > 1e-9) & (model.flow_lot_col < 0)
    if capped.any():
        rows = first_cap + fline[capped] * weeks + model.flow_week[capped]
        at_cap = model.col_ub[: model.n_flows][capped] >= model.row_ub[rows] - 1e-9
        np.maximum.at(value, rows[at_cap], flow_rc[capped][at_cap])
    return value


def bottlenecks(
    model: PlanningModel, duals: FloatArray | None, reduced: FloatArray | None = None
) -> list[Bottleneck]:
    """Capacity (plant line, week range), material and pool money ranked by shadow price."""
    if duals is None:
        return []
    snap = model.snapshot
    value = capacity_values(model, duals, reduced)
    found: list[Bottleneck] = []
    plant_of = {ln.id: p.id for p in snap.plants for ln in p.lines}
    # capacity: consecutive weeks of one line with a positive price form one range
    cap_rows = np.flatnonzero((model.row_kind == int(RowKind.CAPACITY)) & (value > 1e-9))
    ranges: list[tuple[float, int, int, int, float]] = []
    for row in cap_rows.tolist():
        line, week = int(model.row_subject[row]), int(model.row_week[row])
        if ranges and ranges[-1][1] == line and ranges[-1][3] == week - 1:
            total, _, first, _, peak = ranges[-1]
            ranges[-1] = (total + value[row], line, first, week, max(peak, value[row]))
        else:
            ranges.append((float(value[row]), line, week, week, float(value[row])))
    ranges.sort(key=lambda r: (-r[0], r[1], r[2]))
    for total, line, first, last, peak in ranges[:TOP_CAPACITY]:
        line_id = model.line_ids[line]
        found.append(
            Bottleneck(
                kind="plant_capacity",
                subject=f"{plant_of[line_id]}/{line_id}",
                first_week=snap.week_date(first),
                last_week=snap.week_date(last),
                shadow_price=round(peak, 6),
                unit="round per week",
                message=(
                    f"one more round per week at {plant_of[line_id]} line {line_id} in weeks "
                    f"{snap.week_date(first)}..{snap.week_date(last)} avoids up to {peak:,.2f} "
                    f"weighted shortfall per week ({total:,.2f} over the range; an urgent round "
                    f"weighs {PRIORITY_WEIGHT[Priority.URGENT]})"
                ),
            )
        )
    codes, _ = material_supply(snap)
    units = {m.material: m.unit for m in snap.materials}
    mat_rows = np.flatnonzero((model.row_kind == int(RowKind.MATERIAL)) & (value > 1e-9))
    per_material: dict[int, list[int]] = defaultdict(list)
    for row in mat_rows.tolist():
        per_material[int(model.row_subject[row])].append(row)
    mats: list[Bottleneck] = []
    for m, rows in per_material.items():
        per_tonne = value[rows] * (1000.0 if units.get(codes[m]) == "kg" else 1.0)
        weeks = model.row_week[rows]
        mats.append(
            Bottleneck(
                kind="material",
                subject=codes[m],
                first_week=snap.week_date(int(weeks.min())),
                last_week=snap.week_date(int(weeks.max())),
                shadow_price=round(float(per_tonne.max()), 6),
                unit="tonne per week",
                message=(
                    f"one more tonne of {codes[m]} per week avoids up to "
                    f"{per_tonne.max():,.2f} weighted shortfall per week; it binds in "
                    f"{len(rows)} weeks ({snap.week_date(int(weeks.min()))}.."
                    f"{snap.week_date(int(weeks.max()))})"
                ),
            )
        )
    mats.sort(key=lambda b: -b.shadow_price)
    found += mats[:TOP_MATERIAL]
    money_rows = np.flatnonzero((model.row_kind == int(RowKind.MONEY)) & (value > 1e-9))
    pools: list[Bottleneck] = []
    for row in money_rows.tolist():
        pool = snap.pools[int(model.row_subject[row])]
        per_million = float(value[row]) * (100_000_000 / MONEY_SCALE)
        pools.append(
            Bottleneck(
                kind="pool_money",
                subject=pool.id,
                shadow_price=round(per_million, 6),
                unit="EUR 1M",
                message=(
                    f"EUR 1M more paid into {pool.id} avoids {per_million:,.2f} weighted "
                    f"shortfall (paid {_eur(pool.paid_cents)}, pledged "
                    f"{_eur(pool.pledged_cents)}: collecting pledges helps here)"
                ),
            )
        )
    pools.sort(key=lambda b: -b.shadow_price)
    found += pools[:TOP_MONEY]
    return found


def _demand_reasons(
    model: PlanningModel, x: FloatArray, slack: FloatArray, out: Explanation
) -> None:
    snap = model.snapshot
    nf = model.n_flows
    delivered = np.bincount(model.flow_demand, weights=x[:nf], minlength=model.n_demands)
    due = np.array([snap.week_index(d.due_week) for d in snap.demands], np.int64)
    late_units = np.bincount(
        model.flow_demand,
        weights=x[:nf] * (model.flow_arrival > due[model.flow_demand]),
        minlength=model.n_demands,
    )
    line_rows = {
        (int(s), int(w)): r
        for r, s, w in zip(
            np.flatnonzero(model.row_kind == int(RowKind.CAPACITY)).tolist(),
            model.row_subject[model.row_kind == int(RowKind.CAPACITY)].tolist(),
            model.row_week[model.row_kind == int(RowKind.CAPACITY)].tolist(),
            strict=True,
        )
    }
    line_index = {lid: i for i, lid in enumerate(model.line_ids)}
    money_row = {
        int(model.row_subject[r]): r
        for r in np.flatnonzero(model.row_kind == int(RowKind.MONEY)).tolist()
    }
    pool_index = {p.id: i for i, p in enumerate(snap.pools)}
    routes = {(r.origin, r.recipient): r.weeks for r in snap.transit.routes}
    offer_week = {o.id: max(0, snap.week_index(o.available_week)) for o in snap.stock_offers}
    flows_by_demand = np.argsort(model.flow_demand, kind="stable")
    starts = np.searchsorted(model.flow_demand[flows_by_demand], np.arange(model.n_demands + 1))
    for d, demand in enumerate(snap.demands):
        short = round(float(demand.quantity - delivered[d]))
        late = round(float(late_units[d]))
        if short <= 0 and late <= 0:
            continue
        reasons: list[Reason] = []
        de = model.eligibility[d]
        by_rule: dict[str, list[str]] = defaultdict(list)
        for ex in de.excluded:
            by_rule[ex.rule].append(ex.source.plant_id or ex.source.source_id)
        if not de.eligible:
            what = "; ".join(
                f"{rule} ({', '.join(sorted(set(s)))})" for rule, s in sorted(by_rule.items())
            )
            message = (
                f"no eligible source for {', '.join(de.products)}: {what}"
                if what
                else f"no plant or offer makes {', '.join(de.products)}"
            )
            reasons.append(Reason(code="no_eligible_source", message=message, units=short))
            out.reasons[demand.id] = reasons
            continue
        for rule, sources in sorted(by_rule.items()):
            reasons.append(
                Reason(
                    code="excluded_by_rule",
                    message=f"{rule}: excludes {', '.join(sorted(set(sources)))}",
                    units=None,
                )
            )
        # transit: the earliest any eligible source can arrive
        earliest = min(
            offer_week.get(e.source_id, 0)
            + routes.get((e.origin, demand.recipient), snap.transit.default_weeks)
            for e in de.eligible
        )
        if late > 0 and earliest > due[d]:
            reasons.append(
                Reason(
                    code="transit",
                    message=(
                        f"the nearest eligible source arrives in {snap.week_date(earliest)} at "
                        f"the earliest, {earliest - due[d]} week(s) after the due week"
                    ),
                    units=late,
                )
            )
        flows = flows_by_demand[starts[d] : starts[d + 1]]
        tight_lines: dict[str, list[int]] = defaultdict(list)
        for f in flows.tolist():
            src = model.sources[int(model.flow_source[f])]
            if src.kind != "line":
                continue
            row = line_rows.get((line_index[src.source_id], int(model.flow_week[f])))
            if row is not None and slack[row] < _TIGHT:
                tight_lines[f"{src.plant_id}/{src.source_id}"].append(int(model.flow_week[f]))
        if tight_lines:
            parts = []
            for name, weeks in sorted(tight_lines.items())[:5]:
                ws = sorted(set(weeks))
                parts.append(
                    f"{name} ({len(ws)} week(s) {snap.week_date(ws[0])}..{snap.week_date(ws[-1])})"
                )
            reasons.append(
                Reason(
                    code="capacity",
                    message="eligible lines are fully used: " + "; ".join(parts),
                    units=short if short > 0 else late,
                )
            )
        mat_rows = np.flatnonzero(
            (model.row_kind == int(RowKind.MATERIAL))
            & (slack < _TIGHT)
            & (model.row_week >= int(model.flow_week[flows].min() if flows.size else 0))
            & (model.row_week <= int(model.flow_week[flows].max() if flows.size else -1))
        )
        if mat_rows.size:
            codes, _ = material_supply(snap)
            names = sorted({codes[int(model.row_subject[r])] for r in mat_rows.tolist()})
            reasons.append(
                Reason(
                    code="material",
                    message=(
                        f"material supply exhausted in {mat_rows.size} material-week(s) of the "
                        f"demand's window: {', '.join(names)}"
                    ),
                    units=short if short > 0 else None,
                )
            )
        p = pool_index[demand.pool_id]
        row = money_row.get(p)
        pool = snap.pools[p]
        if row is not None and slack[row] * MONEY_SCALE < 100_000 * 100:  # under EUR 100k left
            left = max(0.0, float(slack[row]) * MONEY_SCALE)
            reasons.append(
                Reason(
                    code="pool_money",
                    message=(
                        f"pool {pool.id} money is exhausted: paid {_eur(pool.paid_cents)}, "
                        f"committed before {_eur(pool.committed_cents)}, {_eur(left)} left "
                        f"(pledged but unpaid {_eur(pool.pledged_cents - pool.paid_cents)})"
                    ),
                    units=short if short > 0 else None,
                )
            )
        if not any(r.code in ("capacity", "material", "pool_money", "transit") for r in reasons):
            reasons.append(
                Reason(
                    code="competing_demands",
                    message=(
                        "eligible capacity in the demand's window went to more urgent or "
                        "earlier demands"
                    ),
                    units=short if short > 0 else late,
                )
            )
        out.reasons[demand.id] = reasons
