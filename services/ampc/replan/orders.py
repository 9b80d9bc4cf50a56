"""Production orders from plans, and the changes a new plan makes to them, pure.

A production order is what one plant line makes of one product in one week, with the demands it
serves. Its id is derived from that key, so the same order keeps its id from plan to plan and a
re-plan says `issued`, `revised` or `cancelled` about it. Orders inside the frozen horizon are
never revised or cancelled by a re-plan: the plant has already committed material and shifts.
Stock offers are purchases, not production, and get no production order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ampc.contract.events import (
    DemandRef,
    PlannedAllocation,
    ProductionOrderCancelled,
    ProductionOrderIssued,
    ProductionOrderRevised,
)

_ID_LIMIT = 64

OrderChange = ProductionOrderIssued | ProductionOrderRevised | ProductionOrderCancelled


@dataclass(frozen=True, slots=True)
class LineRef:
    """A snapshot line source id's plant, nation and contract line id."""

    plant_id: str
    nation: str
    line_id: str


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    plant_id: str
    nation: str
    line_id: str
    product: str
    week: dt.date
    quantity: int
    demand_refs: tuple[tuple[str, int], ...]


def order_id(plant_id: str, line_id: str, product: str, week: dt.date) -> str:
    """A stable id for (plant, line, product, week): readable when it fits in 64 characters."""
    readable = f"PO.{plant_id}.{line_id}.{product}.{week.isoformat()}"
    if len(readable) <= _ID_LIMIT:
        return readable
    digest = hashlib.sha256(readable.encode()).hexdigest()[:20]
    return f"PO.{week.isoformat()}.{digest}"


def orders_of(
    allocations: list[PlannedAllocation], lines: Mapping[str, LineRef]
) -> dict[str, Order]:
    """The production orders a plan's allocations make, by order id.

    A lot's surplus (allocation without demand) adds to the order's quantity but not to its
    demand references. An order with no demand at all is not issued (nothing asks for it).
    """
    quantity: dict[tuple[str, str, dt.date], int] = defaultdict(int)
    refs: dict[tuple[str, str, dt.date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in allocations:
        if a.source_kind != "line":
            continue
        key = (a.source_id, a.product, a.production_week)
        quantity[key] += a.quantity
        if a.demand_id is not None:
            refs[key][a.demand_id] += a.quantity
    orders: dict[str, Order] = {}
    for key, total in quantity.items():
        source_id, product, week = key
        if not refs.get(key):
            continue
        line = lines.get(source_id)
        if line is None:
            raise KeyError(f"plan allocates line {source_id!r}, which no known plant has")
        oid = order_id(line.plant_id, line.line_id, product, week)
        orders[oid] = Order(
            order_id=oid,
            plant_id=line.plant_id,
            nation=line.nation,
            line_id=line.line_id,
            product=product,
            week=week,
            quantity=total,
            demand_refs=tuple(sorted(refs[key].items())),
        )
    return orders


def order_changes(
    before: Mapping[str, Order],
    after: Mapping[str, Order],
    *,
    plan_version: int,
    frozen_until: dt.date,
) -> list[OrderChange]:
    """Issued, revised and cancelled orders from `before` to `after`, in order-id order.

    Orders of weeks before `frozen_until` are committed: they are issued when first planned but
    never revised or cancelled here (a new plan that moves them is a bug the caller reports).
    """
    changes: list[OrderChange] = []
    for oid in sorted(set(before) | set(after)):
        old, new = before.get(oid), after.get(oid)
        week = (new or old).week  # type: ignore[union-attr]
        committed = week < frozen_until
        if new is not None and old is None:
            changes.append(
                ProductionOrderIssued(**_terms(new), plan_version=plan_version, committed=committed)
            )
        elif committed:
            continue
        elif new is not None and old is not None:
            if (new.quantity, new.demand_refs) != (old.quantity, old.demand_refs):
                changes.append(
                    ProductionOrderRevised(
                        **_terms(new),
                        previous_quantity=old.quantity,
                        plan_version=plan_version,
                        committed=False,
                    )
                )
        elif old is not None:
            changes.append(
                ProductionOrderCancelled(
                    order_id=oid,
                    plant_id=old.plant_id,
                    nation=old.nation,
                    plan_version=plan_version,
                    reason=f"plan {plan_version} no longer needs it",
                )
            )
    return changes


def frozen_moves(
    before: Mapping[str, Order], after: Mapping[str, Order], frozen_until: dt.date
) -> list[str]:
    """Committed orders (before `frozen_until`) whose rounds for demands a new plan changed or
    dropped (a lot's surplus may differ: it serves no demand)."""
    moved = []
    for oid, old in before.items():
        if old.week >= frozen_until:
            continue
        new = after.get(oid)
        if new is None or new.demand_refs != old.demand_refs:
            moved.append(oid)
    return sorted(moved)


def _terms(order: Order) -> dict[str, Any]:
    """What an issued or revised order says about the order itself."""
    return {
        "order_id": order.order_id,
        "plant_id": order.plant_id,
        "nation": order.nation,
        "line_id": order.line_id,
        "product": order.product,
        "week": order.week,
        "quantity": order.quantity,
        "demand_refs": [DemandRef(demand_id=d, quantity=q) for d, q in order.demand_refs],
    }
