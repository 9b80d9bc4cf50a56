"""The re-planning path without Kafka: states -> snapshot (with the plan in force) -> plan ->
published record -> production orders and their changes, frozen horizon included."""

from __future__ import annotations

import datetime as dt

import pytest

from ampc.contract import events as ev
from ampc.optimizer.checker import check_plan
from ampc.optimizer.plan import SolverSettings
from ampc.optimizer.planner import plan_snapshot
from ampc.optimizer.snapshot import TransitTable
from ampc.replan.orders import frozen_moves, order_changes, orders_of
from ampc.replan.publish import frozen_until, plan_event
from ampc.replan.snapshots import Horizon, PlanningInput, planning_input
from tests.kafka.scenario_events import WEEK, week
from tests.replan_world import demand_event, fold, plant_fire, world

pytestmark = pytest.mark.unit

HORIZON = Horizon(start_week=WEEK, weeks=12, frozen_weeks=2, transit=TransitTable())
SETTINGS = SolverSettings(time_limit_seconds=20)


def replan(
    events: list[tuple[str, ev.Event]], previous: ev.PlanPublished | None
) -> tuple[PlanningInput, ev.PlanPublished]:
    pinput = planning_input(fold(events), HORIZON, previous)
    version = previous.version + 1 if previous is not None else 1
    plan = plan_snapshot(pinput.snapshot, SETTINGS, version=version)
    report = check_plan(pinput.snapshot, plan)
    assert report.ok, report.violations[:5]
    return pinput, plan_event(plan, input_offsets={})


def test_an_urgent_demand_becomes_production_orders_that_serve_it() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 3000, due=2))]
    pinput, plan = replan(events, None)
    outcome = next(d for d in plan.demands if d.demand_id == "D-1")
    assert (outcome.planned, outcome.shortfall) == (3000, 0)
    orders = orders_of(plan.allocations, pinput.lines)
    assert sum(q for o in orders.values() for d, q in o.demand_refs if d == "D-1") == 3000
    # Lines make 1,000 a week and transit takes a week: the Czech line (cheaper) makes only
    # 2,000 in weeks 0 and 1, so Poland gets an order too, none later than week 1.
    assert {o.plant_id for o in orders.values()} == {"CZ-VLASIM", "PL-NIWKA"}
    assert all(o.week <= week(1) for o in orders.values())
    assert {o.nation for o in orders.values()} == {"CZ", "PL"}
    changes = order_changes({}, orders, plan_version=1, frozen_until=frozen_until(WEEK, 2))
    issued = [c for c in changes if isinstance(c, ev.ProductionOrderIssued)]
    assert len(issued) == len(changes) == len(orders)
    assert all(c.committed for c in issued)  # weeks 0 and 1: inside the frozen horizon


def test_a_disruption_moves_open_orders_but_never_the_frozen_ones() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 12000, due=7, priority="HIGH"))]
    pinput, first = replan(events, None)
    before = orders_of(first.allocations, pinput.lines)
    frozen_end = frozen_until(WEEK, 2)
    frozen_before = {k: o for k, o in before.items() if o.week < frozen_end}
    assert frozen_before, "the first plan makes nothing in the frozen weeks"

    disrupted = [
        *events,
        ("CZ", plant_fire()),
    ]
    pinput2, second = replan(disrupted, first)
    assert pinput2.snapshot.committed_orders, "frozen orders were not carried as fixed input"
    after = orders_of(second.allocations, pinput2.lines)
    # Inside the frozen horizon nothing moved, although the plant is down in those weeks...
    assert frozen_moves(before, after, frozen_end) == []
    assert {k: after[k] for k in frozen_before} == frozen_before
    # ...outside it the Czech line's orders are gone and Poland makes up what it can.
    assert not [o for o in after.values() if o.plant_id == "CZ-VLASIM" and o.week >= frozen_end]
    changes = order_changes(before, after, plan_version=2, frozen_until=frozen_end)
    cancelled = {c.order_id for c in changes if isinstance(c, ev.ProductionOrderCancelled)}
    assert cancelled and all(before[o].plant_id == "CZ-VLASIM" for o in cancelled)
    assert not any(
        c.order_id in frozen_before for c in changes if not isinstance(c, ev.ProductionOrderIssued)
    )
    assert second.objective.churn_units >= 0


def test_order_changes_revise_and_cancel_only_outside_the_frozen_horizon() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 4000, due=6, priority="HIGH"))]
    pinput, plan = replan(events, None)
    orders = orders_of(plan.allocations, pinput.lines)
    frozen_end = dt.date(2099, 1, 5)  # everything frozen
    assert order_changes(orders, {}, plan_version=2, frozen_until=frozen_end) == []
    open_end = WEEK  # nothing frozen
    cancelled = order_changes(orders, {}, plan_version=2, frozen_until=open_end)
    assert len(cancelled) == len(orders)
    assert all(isinstance(c, ev.ProductionOrderCancelled) for c in cancelled)


def test_a_plant_whose_product_is_not_yet_defined_is_planned_without_that_product() -> None:
    # Inboxes are not ordered with each other: a plant may be registered before its product.
    events = [e for e in world() if not isinstance(e[1], ev.ProductDefined)]
    events = [
        (
            "NSPA",
            ev.ProductDefined(product="122-HE", description="122 mm HE round"),
        ),
        *events,
        ("CZ", demand_event("D-1", 1000, due=4)),
    ]
    pinput = planning_input(fold(events), HORIZON, None)
    assert pinput.snapshot.plants == []
    assert any("155-HE left out" in note for note in pinput.notes)
