"""What-if: the same snapshot with changes, solved without publishing, returned as a diff.

``apply_changes`` is pure: it returns a new validated snapshot and leaves its input alone.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ampc.optimizer.plan import Plan, PlanDiff, SolverSettings
from ampc.optimizer.planner import allocation_quantities, diff_quantities, plan_snapshot
from ampc.optimizer.snapshot import (
    CapacityStep,
    Contribution,
    Demand,
    Disruption,
    Identifier,
    Snapshot,
    Week,
)


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlantDown(_Change):
    """A plant (or one of its lines) loses ``fraction_lost`` of capacity for some weeks."""

    kind: Literal["plant_down"] = "plant_down"
    plant_id: Identifier
    from_week: Week
    to_week: Week
    fraction_lost: float = Field(default=1.0, gt=0.0, le=1.0)
    line_id: Identifier | None = None


class CapacityAdded(_Change):
    """A line makes ``rounds_per_week`` more from ``from_week`` (until ``to_week`` if given)."""

    kind: Literal["capacity_added"] = "capacity_added"
    line_id: Identifier
    rounds_per_week: int = Field(gt=0, le=1_000_000_000)
    from_week: Week
    to_week: Week | None = None


class MoneyPaid(_Change):
    """A donor pays money into a pool (raising the pledge if the payment exceeds it)."""

    kind: Literal["money_paid"] = "money_paid"
    pool_id: Identifier
    donor: Identifier
    cents: int = Field(gt=0, le=10**15)


class DemandAdded(_Change):
    """A new demand."""

    kind: Literal["demand_added"] = "demand_added"
    demand: Demand


class DemandCancelled(_Change):
    """A demand withdrawn (its committed orders go with it)."""

    kind: Literal["demand_cancelled"] = "demand_cancelled"
    demand_id: Identifier


Change = Annotated[
    PlantDown | CapacityAdded | MoneyPaid | DemandAdded | DemandCancelled,
    Field(discriminator="kind"),
]


class ChangeSet(_Change):
    """A list of changes, as read from a what-if file."""

    changes: list[Change] = Field(default_factory=list)


class WhatIf(BaseModel):
    """Both plans and what changed between them."""

    model_config = ConfigDict(extra="forbid")

    base: Plan
    changed: Plan
    diff: PlanDiff
    objective_delta: dict[str, float]
    shortfall_delta: dict[str, int]
    """Per demand present in either plan: shortfall after minus before (non-zero only)."""


def _added_calendar(
    steps: list[CapacityStep], extra: int, start: dt.date, end: dt.date | None
) -> list[CapacityStep]:
    ordered = sorted(steps, key=lambda s: s.from_week)

    def original(week: dt.date) -> int:
        rate = 0
        for s in ordered:
            if s.from_week <= week:
                rate = s.rounds_per_week
        return rate

    points = {s.from_week for s in ordered} | {start}
    if end is not None:
        points.add(end + dt.timedelta(weeks=1))
    out: list[CapacityStep] = []
    for week in sorted(points):
        inside = week >= start and (end is None or week <= end)
        rate = original(week) + (extra if inside else 0)
        if not out or out[-1].rounds_per_week != rate:
            out.append(CapacityStep(from_week=week, rounds_per_week=rate))
    return out


def apply_changes(snapshot: Snapshot, changes: list[Change] | ChangeSet) -> Snapshot:
    """A new snapshot with the changes applied in order (the input is not modified).

    Raises ``ValueError`` naming the change when it refers to something unknown.
    """
    items = changes.changes if isinstance(changes, ChangeSet) else changes
    data = snapshot.model_dump()
    for i, change in enumerate(items):
        where = f"changes[{i}] ({change.kind})"
        if isinstance(change, PlantDown):
            plant = next((p for p in data["plants"] if p["id"] == change.plant_id), None)
            if plant is None:
                raise ValueError(f"{where}: unknown plant {change.plant_id!r}")
            plant["disruptions"].append(
                Disruption(
                    from_week=change.from_week,
                    to_week=change.to_week,
                    fraction_lost=change.fraction_lost,
                    line_id=change.line_id,
                ).model_dump()
            )
        elif isinstance(change, CapacityAdded):
            line = next(
                (ln for p in data["plants"] for ln in p["lines"] if ln["id"] == change.line_id),
                None,
            )
            if line is None:
                raise ValueError(f"{where}: unknown line {change.line_id!r}")
            steps = [CapacityStep.model_validate(s) for s in line["capacity_calendar"]]
            line["capacity_calendar"] = [
                s.model_dump()
                for s in _added_calendar(
                    steps, change.rounds_per_week, change.from_week, change.to_week
                )
            ]
        elif isinstance(change, MoneyPaid):
            pool = next((p for p in data["pools"] if p["id"] == change.pool_id), None)
            if pool is None:
                raise ValueError(f"{where}: unknown pool {change.pool_id!r}")
            donor = next((c for c in pool["contributions"] if c["donor"] == change.donor), None)
            if donor is None:
                pool["contributions"].append(
                    Contribution(
                        donor=change.donor, pledged_cents=change.cents, paid_cents=change.cents
                    ).model_dump()
                )
            else:
                donor["paid_cents"] += change.cents
                donor["pledged_cents"] = max(donor["pledged_cents"], donor["paid_cents"])
        elif isinstance(change, DemandAdded):
            if any(d["id"] == change.demand.id for d in data["demands"]):
                raise ValueError(f"{where}: demand {change.demand.id!r} already exists")
            data["demands"].append(change.demand.model_dump())
        else:
            if not any(d["id"] == change.demand_id for d in data["demands"]):
                raise ValueError(f"{where}: unknown demand {change.demand_id!r}")
            data["demands"] = [d for d in data["demands"] if d["id"] != change.demand_id]
            data["committed_orders"] = [
                o for o in data["committed_orders"] if o["demand_id"] != change.demand_id
            ]
    return Snapshot.model_validate(data)


def what_if(
    snapshot: Snapshot,
    changes: list[Change] | ChangeSet,
    settings: SolverSettings | None = None,
    base: Plan | None = None,
) -> WhatIf:
    """Solve the snapshot as is (unless ``base`` is given) and with the changes; return both
    plans and their diff. Nothing is published or written."""
    changed_snapshot = apply_changes(snapshot, changes)
    base_plan = base or plan_snapshot(snapshot, settings, trigger="what-if base")
    changed_plan = plan_snapshot(changed_snapshot, settings, trigger="what-if")
    diff = diff_quantities(
        allocation_quantities(base_plan.allocations),
        allocation_quantities(changed_plan.allocations),
        base_plan.version,
    )
    deltas = {
        t.name: changed_plan.term(t.name) - base_plan.term(t.name) for t in base_plan.objective
    }
    before = {d.demand_id: d.shortfall for d in base_plan.demands}
    after = {d.demand_id: d.shortfall for d in changed_plan.demands}
    shortfall = {
        k: after.get(k, 0) - before.get(k, 0)
        for k in sorted(set(before) | set(after))
        if after.get(k, 0) != before.get(k, 0)
    }
    return WhatIf(
        base=base_plan,
        changed=changed_plan,
        diff=diff,
        objective_delta=deltas,
        shortfall_delta=shortfall,
    )
