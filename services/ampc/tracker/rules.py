"""The tracker's judgement, pure: the plan in force against what plants and shipments report.

`evaluate` returns findings: an alert for operators, and for drift that makes the plan wrong (a
plant line behind its planned production) a re-plan request. Alert ids are derived from what
they are about, so the same finding is raised once however often it is evaluated.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from ampc.contract.events import AlertKind, AlertRaised, PlanPublished, Severity
from ampc.contract.types import Priority
from ampc.ledger.state import (
    DemandState,
    DemandStatus,
    EntityKind,
    PlantState,
    PoolState,
    ShipmentState,
    ShipmentStatus,
)
from ampc.optimizer.from_ledger import States, line_source_ids
from ampc.replan.plans_topic import RawPlan, read_plan_record


@dataclass(frozen=True)
class Thresholds:
    slip_weeks: int = 2
    behind_percent: float = 10.0


@dataclass(frozen=True)
class Finding:
    alert: AlertRaised
    replan: bool = False  # reality drifted: the plan must be made again


def _weeks(a: dt.date, b: dt.date) -> int:
    return (a - b).days // 7


def evaluate_record(raw: RawPlan, states: States, thresholds: Thresholds) -> list[Finding]:
    """`evaluate` for a plans-topic record: the tracker runs it in a child process, as a large
    plan is too big to decode or judge on its event loop. An unreadable plan has no findings
    (its reader logs why)."""
    plan = read_plan_record(raw.value, raw.headers)
    return [] if plan is None else evaluate(plan, states, thresholds)


def evaluate(plan: PlanPublished, states: States, thresholds: Thresholds) -> list[Finding]:
    """Every finding for this plan and these states, in a stable order."""
    return [
        *_urgent_short(plan, states),
        *_slipped(plan, states, thresholds),
        *_behind(plan, states, thresholds),
        *_overcommitted(plan, states),
    ]


def _urgent_short(plan: PlanPublished, states: States) -> list[Finding]:
    demands = states.get(EntityKind.DEMANDS, {})
    findings = []
    for outlook in plan.demands:
        state = demands.get(outlook.demand_id)
        if (
            outlook.shortfall <= 0
            or not isinstance(state, DemandState)
            or state.priority is not Priority.URGENT
            or state.status is not DemandStatus.OPEN
        ):
            continue
        why = f" ({outlook.reasons[0]})" if outlook.reasons else ""
        findings.append(
            Finding(
                AlertRaised(
                    alert_id=f"urgent-short:{outlook.demand_id}:plan-{plan.version}"[:64],
                    kind=AlertKind.URGENT_DEMAND_SHORT,
                    severity=Severity.CRITICAL,
                    subject_id=outlook.demand_id,
                    nation=state.recipient,
                    message=(
                        f"urgent demand {outlook.demand_id} for {state.recipient}: plan "
                        f"{plan.version} delivers {outlook.planned:,} of {outlook.requested:,} "
                        f"rounds, {outlook.shortfall:,} short{why}"
                    )[:2000],
                    values={
                        "requested_rounds": outlook.requested,
                        "planned_rounds": outlook.planned,
                        "shortfall_rounds": outlook.shortfall,
                    },
                )
            )
        )
    return findings


def _slipped(plan: PlanPublished, states: States, thresholds: Thresholds) -> list[Finding]:
    demands = states.get(EntityKind.DEMANDS, {})
    planned_arrival = {d.demand_id: d.last_arrival_week for d in plan.demands}
    findings = []
    for shipment in states.get(EntityKind.SHIPMENTS, {}).values():
        if not isinstance(shipment, ShipmentState):
            continue
        demand = demands.get(shipment.demand_id)
        if not isinstance(demand, DemandState):
            continue
        reference = demand.due_week
        arrival = planned_arrival.get(shipment.demand_id)
        if arrival is not None and arrival > reference:
            reference = arrival
        delivered = shipment.status is ShipmentStatus.DELIVERED
        actual = shipment.delivered_week if delivered else shipment.expected_arrival_week
        if actual is None:
            continue
        late = _weeks(actual, reference)
        if late <= thresholds.slip_weeks:
            continue
        verb = "arrived" if delivered else "is expected"
        findings.append(
            Finding(
                AlertRaised(
                    alert_id=f"slipped:{shipment.shipment_id}:{actual.isoformat()}"[:64],
                    kind=AlertKind.DELIVERY_SLIPPED,
                    severity=(
                        Severity.CRITICAL
                        if demand.priority is Priority.URGENT
                        else Severity.WARNING
                    ),
                    subject_id=shipment.shipment_id,
                    nation=shipment.recipient,
                    message=(
                        f"shipment {shipment.shipment_id} ({shipment.quantity:,} rounds for "
                        f"{shipment.demand_id}) {verb} in week {actual}, {late} weeks after "
                        f"the week it was due or planned ({reference})"
                    ),
                    values={"weeks_late": late, "rounds": shipment.quantity},
                )
            )
        )
    return findings


def _behind(plan: PlanPublished, states: States, thresholds: Thresholds) -> list[Finding]:
    """Lines whose reported production, up to the last week they reported, is behind what the
    plan had them make by more than the threshold."""
    plants = {
        p.plant_id: p
        for p in states.get(EntityKind.PLANTS, {}).values()
        if isinstance(p, PlantState)
    }
    source_of = line_source_ids(plants.values())
    start = plan.horizon_start
    planned: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for a in plan.allocations:
        if a.source_kind == "line":
            planned[(a.source_id, a.product)][a.production_week] += a.quantity
    findings = []
    for plant in plants.values():
        # weeks the plant's state may have dropped reports of are not compared (a plan in
        # force longer than the ledger keeps reports would look behind when it is not)
        kept_from = plant.production_kept_from()
        since = max((w for w in (start, kept_from) if w is not None), default=None)
        reported: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
        for (line_id, product, week), quantity in plant.weekly_production().items():
            if since is None or week >= since:
                reported[(line_id, product)][week] += quantity
        for (line_id, product), weeks in sorted(reported.items()):
            source = source_of.get((plant.plant_id, line_id))
            plan_weeks = planned.get((source or "", product), {})
            last = max(weeks)
            due = sum(
                q for w, q in plan_weeks.items() if w <= last and (since is None or w >= since)
            )
            made = sum(weeks.values())
            if due <= 0 or made >= due * (1 - thresholds.behind_percent / 100):
                continue
            behind = 100 * (due - made) / due
            findings.append(
                Finding(
                    AlertRaised(
                        alert_id=f"behind:{plant.plant_id}:{line_id}:{product}:{last}"[:64],
                        kind=AlertKind.PLANT_BEHIND_PLAN,
                        severity=Severity.WARNING,
                        subject_id=plant.plant_id,
                        nation=plant.nation,
                        message=(
                            f"{plant.plant_id} line {line_id} made {made:,} rounds of {product} "
                            f"up to week {last}; plan {plan.version} had {due:,} "
                            f"({behind:.0f}% behind): re-planning"
                        ),
                        values={
                            "planned_rounds": due,
                            "reported_rounds": made,
                            "behind_percent": round(behind, 1),
                        },
                    ),
                    replan=True,
                )
            )
    return findings


def _overcommitted(plan: PlanPublished, states: States) -> list[Finding]:
    pools = states.get(EntityKind.POOLS, {})
    findings = []
    for pool_id, committed in sorted(plan.money_committed_cents.items()):
        pool = pools.get(pool_id)
        if not isinstance(pool, PoolState) or committed <= pool.paid_cents:
            continue
        findings.append(
            Finding(
                AlertRaised(
                    alert_id=f"overcommitted:{pool_id}:plan-{plan.version}"[:64],
                    kind=AlertKind.POOL_OVERCOMMITTED,
                    severity=Severity.CRITICAL,
                    subject_id=pool_id,
                    message=(
                        f"pool {pool_id}: plan {plan.version} commits EUR "
                        f"{committed / 100:,.2f}, donors have paid EUR {pool.paid_cents / 100:,.2f}"
                    ),
                    values={"committed_cents": committed, "paid_cents": pool.paid_cents},
                )
            )
        )
    return findings
