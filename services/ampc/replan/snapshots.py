"""The snapshot a re-plan solves: the ledger's states, the horizon, and the plan in force.

Pure: the service hands in a copy of its replica's states; replay hands in states read back
from the recorded offsets. The same inputs give the same snapshot (and so the same digest).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ampc.contract.events import PlanPublished
from ampc.ledger.state import EntityKind, PlantState
from ampc.optimizer import snapshot as sn
from ampc.optimizer.from_ledger import States, line_source_ids, snapshot_from_states
from ampc.replan.orders import LineRef
from ampc.replan.publish import ProducedKey, previous_plan_inputs
from ampc.settings import Settings


def current_week(today: dt.date | None = None) -> dt.date:
    """The Monday of this ISO week."""
    day = today or dt.datetime.now(dt.UTC).date()
    return day - dt.timedelta(days=day.weekday())


@dataclass(frozen=True)
class Horizon:
    start_week: dt.date
    weeks: int
    frozen_weeks: int
    transit: sn.TransitTable

    @classmethod
    def from_settings(cls, settings: Settings, today: dt.date | None = None) -> Horizon:
        transit = sn.TransitTable()
        if settings.transit_file is not None:
            transit = load_transit(settings.transit_file)
        return cls(
            start_week=settings.plan_start_week or current_week(today),
            weeks=settings.plan_weeks,
            frozen_weeks=settings.frozen_horizon_weeks,
            transit=transit,
        )


def load_transit(path: Path) -> sn.TransitTable:
    """A transit table from a JSON file; a clear error naming the file when it is wrong."""
    try:
        return sn.TransitTable.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"transit table {path}: {error}") from error


@dataclass
class PlanningInput:
    snapshot: sn.Snapshot
    lines: dict[str, LineRef]
    notes: list[str] = field(default_factory=list)


def line_refs(states: States) -> dict[str, LineRef]:
    """Snapshot line source id -> plant, nation and contract line id (for production orders)."""
    plants = [p for p in states.get(EntityKind.PLANTS, {}).values() if isinstance(p, PlantState)]
    by_id = {p.plant_id: p for p in plants}
    return {
        source_id: LineRef(plant_id=plant_id, nation=by_id[plant_id].nation, line_id=line_id)
        for (plant_id, line_id), source_id in line_source_ids(plants).items()
    }


def planning_input(
    states: States, horizon: Horizon, previous: PlanPublished | None
) -> PlanningInput:
    """The snapshot for a re-plan: the states, with the plan in force as churn reference and
    its frozen-horizon production as fixed input."""
    assembly = snapshot_from_states(
        states,
        start_week=horizon.start_week,
        weeks=horizon.weeks,
        frozen_horizon_weeks=horizon.frozen_weeks,
        transit=horizon.transit,
    )
    produced = reported_production(states, horizon)
    carried = previous_plan_inputs(previous, assembly.snapshot, produced)
    data = assembly.snapshot.model_dump()
    _close_reported_weeks(data, produced)
    if carried.previous_plan is not None:
        data["previous_plan"] = carried.previous_plan.model_dump()
        data["committed_orders"] = [o.model_dump() for o in carried.committed_orders]
    snapshot = sn.Snapshot.model_validate(data)
    return PlanningInput(
        snapshot=snapshot, lines=line_refs(states), notes=assembly.notes + carried.notes
    )


def reported_production(states: States, horizon: Horizon) -> dict[ProducedKey, int]:
    """Rounds reported per (line source id, product, week) inside the horizon."""
    plants = [p for p in states.get(EntityKind.PLANTS, {}).values() if isinstance(p, PlantState)]
    source_of = line_source_ids(plants)
    end = horizon.start_week + dt.timedelta(weeks=horizon.weeks)
    produced: dict[ProducedKey, int] = {}
    for plant in plants:
        for (line_id, product, week), quantity in plant.weekly_production().items():
            if horizon.start_week <= week < end:
                key = (source_of[(plant.plant_id, line_id)], product, week)
                produced[key] = produced.get(key, 0) + quantity
    return produced


def _close_reported_weeks(data: dict[str, Any], produced: dict[ProducedKey, int]) -> None:
    """A week a line has reported is over: nothing more can be made in it. Its committed
    orders (cut to what was made) still stand, as committed orders do over any disruption."""
    closed: dict[str, set[dt.date]] = {}
    for line_id, _product, week in produced:
        closed.setdefault(line_id, set()).add(week)
    for plant in data["plants"]:
        for line in plant["lines"]:
            for week in sorted(closed.get(line["id"], ())):
                plant["disruptions"].append(
                    sn.Disruption(
                        from_week=week, to_week=week, fraction_lost=1.0, line_id=line["id"]
                    ).model_dump()
                )
