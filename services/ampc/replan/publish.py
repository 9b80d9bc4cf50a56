"""Between the optimizer's plan and the plans topic, both ways, pure.

`plan_event` writes a solved plan as the contract's `PlanPublished` (every allocation included,
so the tracker, the next re-plan and a replay need nothing else); `previous_plan_inputs` reads
the plan in force back into what the next snapshot needs: the churn reference and the orders
committed inside the frozen horizon.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ampc.contract.events import (
    DemandOutlook,
    ObjectiveTerms,
    PlannedAllocation,
    PlanPublished,
    SolverStatus,
)
from ampc.optimizer.plan import Plan, SolverSettings
from ampc.optimizer.snapshot import PRIORITY_WEIGHT, PlannedFlow, PreviousPlan, Snapshot

_TEXT = 200


def plan_id(version: int) -> str:
    return f"plan-{version:08d}"


def plan_event(plan: Plan, *, input_offsets: dict[str, int]) -> PlanPublished:
    """The plans-topic record of a solved plan."""
    terms = {term.name: term.value for term in plan.objective}
    return PlanPublished(
        plan_id=plan_id(plan.version),
        version=plan.version,
        trigger=plan.trigger[:_TEXT],
        input_offsets=input_offsets,
        snapshot_sha256=plan.input_reference.get("snapshot_sha256"),
        solver_settings=plan.settings.model_dump(),
        horizon_start=plan.horizon_start,
        weeks=plan.weeks,
        frozen_horizon_weeks=plan.frozen_horizon_weeks,
        solver_status=SolverStatus(plan.status.value),
        status_message=plan.status_message[:2000] or None,
        objective=ObjectiveTerms(
            weighted_shortfall=max(0.0, terms.get("weighted_shortfall", 0.0)),
            weighted_lateness=max(0.0, terms.get("weighted_lateness", 0.0)),
            cost_cents=max(0, round(terms.get("cost_cents", 0.0))),
            churn_units=max(0, round(terms.get("churn_rounds", 0.0))),
        ),
        gap=plan.gap,
        solve_seconds=plan.build_seconds + plan.solve_seconds,
        demands=[
            DemandOutlook(
                demand_id=d.demand_id,
                requested=d.quantity,
                planned=d.delivered_on_time + d.delivered_late,
                shortfall=d.shortfall,
                last_arrival_week=(d.delivered_by_week[-1].week if d.delivered_by_week else None),
                reasons=[r.message[:_TEXT] for r in d.reasons[:20]],
            )
            for d in plan.demands
        ],
        allocations=[
            PlannedAllocation(
                source_kind=a.source_kind,
                source_id=a.source_id,
                plant_id=a.plant_id,
                origin=a.origin,
                product=a.product,
                production_week=a.production_week,
                arrival_week=a.arrival_week,
                demand_id=a.demand_id,
                quantity=a.quantity,
                unit_price_cents=a.unit_price_cents,
                frozen=a.frozen,
            )
            for a in plan.allocations
        ],
        money_committed_cents={p.pool_id: p.committed_cents for p in plan.pools},
    )


def plan_summary(plan: PlanPublished, allocations: int) -> dict[str, Any]:
    """What `/plan` and what-if answers say about a plan (its allocations counted apart, as
    the optimizer service keeps only the plan's head)."""
    requested = sum(d.requested for d in plan.demands)
    planned = sum(d.planned for d in plan.demands)
    return {
        "plan_id": plan.plan_id,
        "version": plan.version,
        "trigger": plan.trigger,
        "status": plan.solver_status.value,
        "objective": plan.objective.model_dump(),
        "gap": plan.gap,
        "coverage": planned / requested if requested else 1.0,
        "demands_short": sum(1 for d in plan.demands if d.shortfall > 0),
        "allocations": allocations,
        "input_offsets": plan.input_offsets,
    }


def solver_settings_of(event: PlanPublished) -> SolverSettings:
    """The solver settings a published plan was made with (for replay)."""
    return SolverSettings.model_validate(event.solver_settings)


def frozen_until(start: dt.date, frozen_weeks: int) -> dt.date:
    """The first week outside the frozen horizon."""
    return start + dt.timedelta(weeks=frozen_weeks)


@dataclass
class PreviousInputs:
    """What the plan in force gives the next snapshot, and what could not be carried over."""

    previous_plan: PreviousPlan | None = None
    committed_orders: list[PlannedFlow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


ProducedKey = tuple[str, str, dt.date]  # line source id, product, week


def previous_plan_inputs(
    previous: PlanPublished | None,
    snapshot: Snapshot,
    produced: Mapping[ProducedKey, int] | None = None,
) -> PreviousInputs:
    """The churn reference and the frozen orders, for a snapshot of the same horizon.

    Frozen flows are production on plant lines inside the frozen horizon. A flow whose demand
    or line is no longer in the snapshot (cancelled, fulfilled, withdrawn) cannot be a fixed
    input; it is left out and named in the notes. A demand's frozen flows are cut down to its
    open quantity (what arrived since cannot be made again). Where the plant has reported what
    a line made of a product in a week (`produced`), that is what the frozen orders of that
    week deliver: shared out to the most urgent, earliest-due demands first.
    """
    if previous is None:
        return PreviousInputs()
    sources = {line.id for plant in snapshot.plants for line in plant.lines}
    sources |= {offer.id for offer in snapshot.stock_offers}
    demands = {d.id: d for d in snapshot.demands}
    start = snapshot.horizon.start_week
    end = frozen_until(start, snapshot.frozen_horizon_weeks)
    flows: list[PlannedFlow] = []
    committed: list[PlannedFlow] = []
    notes: list[str] = []
    room = {d.id: d.quantity for d in snapshot.demands}
    made = dict(produced or {})
    rank = {d.id: (-PRIORITY_WEIGHT[d.priority], d.due_week, d.id) for d in snapshot.demands}
    ordered = sorted(
        previous.allocations,
        key=lambda a: (a.source_id, a.product, a.production_week, rank.get(a.demand_id or "", ())),
    )
    for a in ordered:
        if a.demand_id is None or a.source_id not in sources or a.demand_id not in demands:
            if a.source_kind == "line" and start <= a.production_week < end:
                notes.append(
                    f"frozen order {a.source_id}/{a.product}/{a.production_week} for "
                    f"{a.demand_id or 'lot surplus'} ({a.quantity} rounds) is not a fixed input: "
                    "its demand or line is no longer planned"
                )
            continue
        if a.production_week < start:
            continue  # history: made before this horizon
        flow = PlannedFlow(
            source_id=a.source_id,
            product=a.product,
            production_week=a.production_week,
            demand_id=a.demand_id,
            quantity=a.quantity,
        )
        flows.append(flow)
        if a.source_kind == "line" and a.production_week < end:
            quantity = min(a.quantity, room[a.demand_id])
            key = (a.source_id, a.product, a.production_week)
            if key in made:
                quantity = min(quantity, made[key])
                made[key] -= quantity
            if quantity <= 0:
                continue
            room[a.demand_id] -= quantity
            committed.append(flow.model_copy(update={"quantity": quantity}))
    return PreviousInputs(
        previous_plan=PreviousPlan(version=previous.version, allocations=flows),
        committed_orders=committed,
        notes=notes,
    )
