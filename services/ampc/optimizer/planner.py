"""From snapshot to plan: build, solve, explain, and write the result in the plan format.

``plan_snapshot`` never raises for bad model input, solver errors or time-outs: the plan says
what happened in ``status`` / ``status_message`` and carries the best solution known (the
greedy plan when the solver produced none).
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from typing import Any

import numpy as np

from ampc.optimizer.explain import Explanation, explain
from ampc.optimizer.greedy import greedy_baseline
from ampc.optimizer.model import COST_SCALE, LEVEL_NAMES, FloatArray, PlanningModel, build_model
from ampc.optimizer.plan import (
    Allocation,
    AllocationChange,
    DemandOutcome,
    DonorMoney,
    ObjectiveTerm,
    Plan,
    PlanDiff,
    PoolMoney,
    SolverSettings,
    SolverStatus,
    WeekQuantity,
)
from ampc.optimizer.snapshot import PRIORITY_WEIGHT, FundingPool, Snapshot
from ampc.optimizer.solve import Result, WarmStart, solve

AllocationKey = tuple[str, str, str, str | None]  # source, product, production week, demand


def snapshot_digest(snapshot: Snapshot) -> str:
    """SHA-256 of the snapshot's canonical JSON (recorded in the plan for replay)."""
    return hashlib.sha256(snapshot.dump_json().encode()).hexdigest()


def plan_snapshot(
    snapshot: Snapshot,
    settings: SolverSettings | None = None,
    *,
    version: int = 1,
    trigger: str = "manual",
    input_reference: dict[str, Any] | None = None,
    explain_plan: bool = True,
) -> Plan:
    """Solve a snapshot and return the plan (with explanations unless ``explain_plan`` is off)."""
    plan, _ = solve_snapshot(
        snapshot,
        settings,
        version=version,
        trigger=trigger,
        input_reference=input_reference,
        explain_plan=explain_plan,
    )
    return plan


def solve_snapshot(
    snapshot: Snapshot,
    settings: SolverSettings | None = None,
    *,
    version: int = 1,
    trigger: str = "manual",
    input_reference: dict[str, Any] | None = None,
    explain_plan: bool = True,
    warm_start: WarmStart | None = None,
) -> tuple[Plan, WarmStart | None]:
    """Like ``plan_snapshot``, for a service that re-plans: takes the warm start of the plan in
    force and returns the plan with the warm start for the next re-plan."""
    settings = settings or SolverSettings()
    reference = dict(input_reference or {})
    reference.setdefault("snapshot_sha256", snapshot_digest(snapshot))
    header = {
        "version": version,
        "trigger": trigger,
        "input_reference": reference,
        "horizon_start": snapshot.horizon.start_week,
        "weeks": snapshot.horizon.weeks,
        "frozen_horizon_weeks": snapshot.frozen_horizon_weeks,
        "settings": settings,
    }
    started = time.perf_counter()
    try:
        model = build_model(snapshot)
    except (ValueError, KeyError, IndexError) as exc:
        plan = Plan(
            **header, status=SolverStatus.ERROR, status_message=f"inconsistent snapshot: {exc}"
        )
        return plan, None
    build_seconds = time.perf_counter() - started
    result = solve(model, settings, warm_start=warm_start)
    if result.x is None and result.status is not SolverStatus.INFEASIBLE:
        # no solver solution: the greedy plan is the best known one, labelled as such
        result.x = greedy_baseline(model) if result.greedy_x is None else result.greedy_x
        result.message = f"{result.message}; plan shown is the greedy fallback".lstrip("; ")
    explanation = Explanation()
    if explain_plan and result.x is not None:
        try:
            explanation = explain(result)
        except Exception as exc:  # an explanation bug must not cost the plan itself
            result.message = f"{result.message}; explanations failed: {exc}".lstrip("; ")
    plan = to_plan(result, explanation, header)
    plan.build_seconds = round(build_seconds, 4)
    plan.solve_seconds = round(result.solve_seconds, 4)
    return plan, result.warm_start()


def _level_terms(result: Result) -> list[ObjectiveTerm]:
    model = result.model
    terms: list[ObjectiveTerm] = []
    for k, name in enumerate(LEVEL_NAMES):
        scale = COST_SCALE if name == "cost_cents" else 1.0
        solved = result.levels[k] if k < len(result.levels) else None
        if result.x is not None:
            value = float(model.objectives[k] @ result.x) + model.objective_offsets[k]
        else:
            value = float("nan")
        bound = solved.bound if solved is not None else None
        if k == 3 and not model.has_previous_plan:
            value, bound = 0.0, 0.0
        terms.append(
            ObjectiveTerm(
                level=k + 1,
                name=name,
                value=round(value * scale, 0 if scale != 1.0 else 6) if value == value else 0.0,
                bound=None if bound is None else round(bound * scale, 6),
                solve_seconds=round(solved.seconds, 4) if solved else 0.0,
            )
        )
    return terms


def to_plan(result: Result, explanation: Explanation, header: dict[str, Any]) -> Plan:
    """Write a solved model as a ``Plan``."""
    model = result.model
    snap = model.snapshot
    terms = _level_terms(result)
    gap: float | None = 0.0
    for t, level in zip(terms, result.levels, strict=False):
        if t.bound is None and level.status is not SolverStatus.OPTIMAL:
            gap = None  # a level stopped without a proven bound: the gap is unknown
            break
        if t.bound is not None and abs(t.value - t.bound) > 1e-6 * max(1.0, abs(t.value)):
            gap = abs(t.value - t.bound) / max(1.0, abs(t.value))
            break
    if result.x is None:
        gap = None
    x = result.x if result.x is not None else np.zeros(model.n_cols)
    allocations = _allocations(model, x)
    demands = _demand_outcomes(model, allocations, explanation)
    return Plan(
        **header,
        status=result.status,
        status_message=result.message,
        objective=terms,
        gap=gap,
        allocations=allocations,
        demands=demands,
        bottlenecks=explanation.bottlenecks,
        pools=_pool_money(snap, allocations),
        diff=_diff(snap, allocations),
    )


def _allocations(model: PlanningModel, x: FloatArray) -> list[Allocation]:
    snap = model.snapshot
    nf = model.n_flows
    qty = np.round(x[:nf]).astype(np.int64)
    out: list[Allocation] = []
    frozen_keys = {
        (o.source_id, o.product, o.production_week, o.demand_id) for o in snap.committed_orders
    }
    for f in np.flatnonzero(qty > 0).tolist():
        src = model.sources[int(model.flow_source[f])]
        demand = snap.demands[int(model.flow_demand[f])]
        week = snap.week_date(int(model.flow_week[f]))
        out.append(
            Allocation(
                source_kind=src.kind,
                source_id=src.source_id,
                plant_id=src.plant_id,
                origin=src.origin,
                product=src.product,
                production_week=week,
                arrival_week=snap.week_date(int(model.flow_arrival[f])),
                demand_id=demand.id,
                quantity=int(qty[f]),
                unit_price_cents=src.unit_price_cents,
                frozen=(src.source_id, src.product, week, demand.id) in frozen_keys,
            )
        )
    # lot surplus: rounds a lot makes beyond what demands take stay at the plant, unallocated
    nl = model.lot_source.size
    if nl:
        lots = np.round(x[model.lot_offset : model.churn_offset])
        lot_flows = np.flatnonzero(model.flow_lot_col >= 0)
        used = np.bincount(
            model.flow_lot_col[lot_flows] - model.lot_offset, weights=qty[lot_flows], minlength=nl
        )
        surplus = lots * model.lot_size - used
        for j in np.flatnonzero(surplus > 0.5).tolist():
            src = model.sources[int(model.lot_source[j])]
            week = snap.week_date(int(model.lot_week[j]))
            out.append(
                Allocation(
                    source_kind="line",
                    source_id=src.source_id,
                    plant_id=src.plant_id,
                    origin=src.origin,
                    product=src.product,
                    production_week=week,
                    arrival_week=week,
                    demand_id=None,
                    quantity=round(float(surplus[j])),
                    unit_price_cents=src.unit_price_cents,
                )
            )
    out.sort(key=lambda a: (a.source_id, a.product, a.production_week, a.demand_id or ""))
    return out


def _demand_outcomes(
    model: PlanningModel, allocations: list[Allocation], explanation: Explanation
) -> list[DemandOutcome]:
    snap = model.snapshot
    by_demand: dict[str, list[Allocation]] = defaultdict(list)
    for a in allocations:
        if a.demand_id is not None:
            by_demand[a.demand_id].append(a)
    outcomes: list[DemandOutcome] = []
    for demand in snap.demands:
        allocs = by_demand.get(demand.id, [])
        on_time = sum(a.quantity for a in allocs if a.arrival_week <= demand.due_week)
        late = sum(a.quantity for a in allocs if a.arrival_week > demand.due_week)
        lateness = sum(
            a.quantity * ((a.arrival_week - demand.due_week).days // 7)
            for a in allocs
            if a.arrival_week > demand.due_week
        )
        per_week: dict[Any, int] = defaultdict(int)
        for a in allocs:
            per_week[a.arrival_week] += a.quantity
        cumulative = 0
        profile: list[WeekQuantity] = []
        for week in sorted(per_week):
            cumulative += per_week[week]
            profile.append(WeekQuantity(week=week, cumulative=cumulative))
        outcomes.append(
            DemandOutcome(
                demand_id=demand.id,
                priority=demand.priority,
                quantity=demand.quantity,
                due_week=demand.due_week,
                delivered_on_time=on_time,
                delivered_late=late,
                shortfall=demand.quantity - on_time - late,
                lateness_round_weeks=lateness,
                delivered_by_week=profile,
                reasons=explanation.reasons.get(demand.id, []),
            )
        )
    return outcomes


def donor_shares(pool: FundingPool, committed: int) -> list[DonorMoney]:
    """Split committed money over donors pro rata of what each has paid (whole cents; the
    rounding remainder goes to the largest payers first)."""
    paid = pool.paid_cents
    if paid <= 0:
        return [
            DonorMoney(donor=c.donor, paid_cents=c.paid_cents, committed_cents=0)
            for c in pool.contributions
        ]
    shares = [committed * c.paid_cents // paid for c in pool.contributions]
    remainder = committed - sum(shares)
    order = sorted(range(len(shares)), key=lambda i: (-pool.contributions[i].paid_cents, i))
    for i in order[:remainder]:
        shares[i] += 1
    return [
        DonorMoney(donor=c.donor, paid_cents=c.paid_cents, committed_cents=s)
        for c, s in zip(pool.contributions, shares, strict=True)
    ]


def _pool_money(snap: Snapshot, allocations: list[Allocation]) -> list[PoolMoney]:
    pool_of = {d.id: d.pool_id for d in snap.demands}
    committed: dict[str, int] = defaultdict(int)
    for a in allocations:
        if a.demand_id is not None:
            committed[pool_of[a.demand_id]] += a.quantity * a.unit_price_cents
    return [
        PoolMoney(
            pool_id=p.id,
            paid_cents=p.paid_cents,
            pledged_cents=p.pledged_cents,
            previously_committed_cents=p.committed_cents,
            committed_cents=committed[p.id],
            by_donor=donor_shares(p, committed[p.id]),
        )
        for p in snap.pools
    ]


def allocation_quantities(allocations: list[Allocation]) -> dict[AllocationKey, int]:
    """Quantities by (source, product, production week, demand) for diffs."""
    out: dict[AllocationKey, int] = defaultdict(int)
    for a in allocations:
        out[(a.source_id, a.product, a.production_week.isoformat(), a.demand_id)] += a.quantity
    return dict(out)


def diff_quantities(
    before: dict[AllocationKey, int],
    after: dict[AllocationKey, int],
    previous_version: int | None,
) -> PlanDiff:
    """The diff between two allocation maps."""
    changes: list[AllocationChange] = []
    demands: set[str] = set()
    moved = 0
    for key in sorted(set(before) | set(after), key=lambda k: (k[0], k[1], k[2], k[3] or "")):
        b, a = before.get(key, 0), after.get(key, 0)
        if a != b:
            changes.append(
                AllocationChange(
                    source_id=key[0],
                    product=key[1],
                    production_week=key[2],
                    demand_id=key[3],
                    before=b,
                    after=a,
                )
            )
            moved += abs(a - b)
            if key[3] is not None:
                demands.add(key[3])
    return PlanDiff(
        previous_version=previous_version,
        rounds_moved=moved,
        changes=changes,
        demands_changed=sorted(demands),
    )


def _diff(snap: Snapshot, allocations: list[Allocation]) -> PlanDiff | None:
    if snap.previous_plan is None:
        return None
    before: dict[AllocationKey, int] = defaultdict(int)
    for a in snap.previous_plan.allocations:
        before[(a.source_id, a.product, a.production_week.isoformat(), a.demand_id)] += a.quantity
    after = {k: v for k, v in allocation_quantities(allocations).items() if k[3] is not None}
    return diff_quantities(dict(before), after, snap.previous_plan.version)


def weighted_terms(plan: Plan, snapshot: Snapshot) -> dict[str, float]:
    """Weighted shortfall and lateness recomputed from a plan's demand outcomes."""
    weight = {d.id: PRIORITY_WEIGHT[d.priority] for d in snapshot.demands}
    return {
        "weighted_shortfall": float(sum(weight[o.demand_id] * o.shortfall for o in plan.demands)),
        "weighted_lateness": float(
            sum(weight[o.demand_id] * o.lateness_round_weeks for o in plan.demands)
        ),
    }
