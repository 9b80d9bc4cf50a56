"""Small hand-built snapshots whose optimum is known by hand, and a plan helper that always
runs the independent checker."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ampc.optimizer.checker import check_plan
from ampc.optimizer.plan import Plan, SolverSettings
from ampc.optimizer.planner import plan_snapshot
from ampc.optimizer.snapshot import Snapshot

START = dt.date(2027, 1, 4)


def week(i: int) -> str:
    """Monday of week ``i`` of the test horizon, as in a snapshot file."""
    return (START + dt.timedelta(weeks=i)).isoformat()


def line(
    line_id: str,
    rate: int,
    products: dict[str, int],
    lot: int | None = None,
    steps: list[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """A production line: products -> unit price in cents; optional calendar steps."""
    calendar = [{"from_week": week(w), "rounds_per_week": r} for w, r in (steps or [(0, rate)])]
    return {
        "id": line_id,
        "products": [{"product": p, "unit_price_cents": c} for p, c in products.items()],
        "capacity_calendar": calendar,
        "lot_size": lot,
    }


def plant(plant_id: str, nation: str, *lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A plant owned by ``nation``."""
    return {"id": plant_id, "nation": nation, "lines": list(lines), **extra}


def demand(
    demand_id: str,
    qty: int,
    due: int,
    priority: str = "ROUTINE",
    product: str | None = "155-HE",
    pool: str = "POOL",
    recipient: str = "UA",
    **extra: Any,
) -> dict[str, Any]:
    """A demand for ``qty`` rounds due in week ``due``."""
    return {
        "id": demand_id,
        "requested_by": recipient,
        "recipient": recipient,
        "product": product,
        "quantity": qty,
        "due_week": week(due),
        "priority": priority,
        "pool_id": pool,
        **extra,
    }


def pool(pool_id: str = "POOL", paid: int = 10**12, **extra: Any) -> dict[str, Any]:
    """A pool with one donor who paid ``paid`` cents."""
    return {
        "id": pool_id,
        "owner": "CZ-INITIATIVE",
        "contributions": [{"donor": "NL", "pledged_cents": paid, "paid_cents": paid}],
        **extra,
    }


NATIONS = [
    {"code": "DE", "memberships": ["EU", "EEA", "NATO"]},
    {"code": "PL", "memberships": ["EU", "EEA", "NATO"]},
    {"code": "US", "memberships": ["NATO"]},
    {"code": "CH", "memberships": []},
    {"code": "UA", "memberships": []},
]


def snapshot(**fields: Any) -> Snapshot:
    """A snapshot with a 4-week horizon, no frozen weeks, zero transit, one rich pool."""
    data: dict[str, Any] = {
        "horizon": {"start_week": week(0), "weeks": 4},
        "frozen_horizon_weeks": 0,
        "max_early_weeks": 52,
        "max_late_weeks": 0,
        "nations": NATIONS,
        "products": [{"code": "155-HE", "bill": {}}, {"code": "155-ER", "bill": {}}],
        "transit": {"default_weeks": 0},
        "pools": [pool()],
        "plants": [],
        "demands": [],
    }
    data.update(fields)
    return Snapshot.model_validate(data)


def solve_checked(snap: Snapshot, **settings: Any) -> Plan:
    """Plan ``snap`` (exact MIP unless told otherwise) and assert the checker passes."""
    settings.setdefault("integrality", "exact")
    plan = plan_snapshot(snap, SolverSettings(**settings))
    report = check_plan(snap, plan)
    assert report.ok, report.summary()
    return plan


def outcome(plan: Plan, demand_id: str) -> Any:
    """The plan's outcome for one demand."""
    return next(o for o in plan.demands if o.demand_id == demand_id)
