"""The tracker's rules against a real plan of the small world, and the re-plan that follows a
plant falling behind (reported production replaces the frozen orders of that week)."""

from __future__ import annotations

import pytest

from ampc.contract import events as ev
from ampc.contract.envelope import encode
from ampc.ledger import state as ledger_state
from ampc.replan.plans_topic import RawPlan
from ampc.replan.snapshots import planning_input
from ampc.tracker.rules import Thresholds, evaluate, evaluate_record
from tests.kafka.scenario_events import week
from tests.replan_world import demand_event, fold, world
from tests.unit.replan.test_replan_path import HORIZON, replan

pytestmark = pytest.mark.unit

THRESHOLDS = Thresholds(slip_weeks=2, behind_percent=10.0)


def report(week_n: int, quantity: int, report_id: str = "R-1") -> tuple[str, ev.Event]:
    return (
        "CZ",
        ev.ProductionReported(
            report_id=report_id,
            plant_id="CZ-VLASIM",
            nation="CZ",
            line_id="CZ-L1",
            product="155-HE",
            week=week(week_n),
            quantity=quantity,
        ),
    )


def kinds(findings: list) -> list[ev.AlertKind]:  # type: ignore[type-arg]
    return [f.alert.kind for f in findings]


def test_an_urgent_demand_the_plan_cannot_serve_is_alerted_once_per_plan() -> None:
    events = [*world(), ("CZ", demand_event("D-BIG", 50_000, due=2))]
    _, plan = replan(events, None)
    findings = evaluate(plan, fold(events), THRESHOLDS)
    short = [f for f in findings if f.alert.kind is ev.AlertKind.URGENT_DEMAND_SHORT]
    assert len(short) == 1 and short[0].alert.subject_id == "D-BIG"
    # two lines of 1,000 a week for 12 weeks, late rounds included: 24,000 planned
    assert short[0].alert.values["shortfall_rounds"] == 50_000 - 24_000
    assert not short[0].replan
    again = evaluate(plan, fold(events), THRESHOLDS)
    assert [f.alert.alert_id for f in again] == [f.alert.alert_id for f in findings]


def test_a_plant_behind_plan_is_alerted_and_asks_for_a_re_plan() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 12_000, due=7, priority="HIGH"))]
    _, plan = replan(events, None)
    on_plan = [*events, report(0, 1000)]
    assert evaluate(plan, fold(on_plan), THRESHOLDS) == []
    within = [*events, report(0, 950)]
    assert evaluate(plan, fold(within), THRESHOLDS) == []
    behind = [*events, report(0, 400)]
    findings = evaluate(plan, fold(behind), THRESHOLDS)
    assert kinds(findings) == [ev.AlertKind.PLANT_BEHIND_PLAN]
    assert findings[0].replan
    assert findings[0].alert.values == {
        "planned_rounds": 1000,
        "reported_rounds": 400,
        "behind_percent": 60.0,
    }

    # The re-plan takes what was made as the frozen week's delivery and finds the rest elsewhere.
    pinput, second = replan(behind, plan)
    week0 = [
        o
        for o in pinput.snapshot.committed_orders
        if o.source_id == "CZ-L1" and o.production_week == week(0)
    ]
    assert sum(o.quantity for o in week0) == 400
    cz_week0 = [
        a for a in second.allocations if a.source_id == "CZ-L1" and a.production_week == week(0)
    ]
    assert sum(a.quantity for a in cz_week0) == 400  # the week is over: nothing more is made
    first_d1 = next(d for d in plan.demands if d.demand_id == "D-1")
    second_d1 = next(d for d in second.demands if d.demand_id == "D-1")
    assert second_d1.planned >= first_d1.planned - 600


def test_a_shipment_expected_well_after_its_due_week_has_slipped() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 1000, due=3, priority="HIGH"))]
    _, plan = replan(events, None)
    dispatched = ev.ShipmentDispatched(
        shipment_id="S-1",
        source_id="CZ-VLASIM",
        nation="CZ",
        demand_id="D-1",
        product="155-HE",
        quantity=1000,
        recipient="UA",
        dispatched_week=week(2),
        expected_arrival_week=week(3 + 3),
    )
    findings = evaluate(plan, fold([*events, ("CZ", dispatched)]), THRESHOLDS)
    assert kinds(findings) == [ev.AlertKind.DELIVERY_SLIPPED]
    assert findings[0].alert.values["weeks_late"] == 3
    on_time = dispatched.model_copy(update={"expected_arrival_week": week(3 + 2)})
    assert evaluate(plan, fold([*events, ("CZ", on_time)]), THRESHOLDS) == []


def test_a_plan_committing_more_than_paid_is_alerted() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 1000, due=3, priority="HIGH"))]
    _, plan = replan(events, None)
    states = fold(events)
    inflated = plan.model_copy(update={"money_committed_cents": {"P-CZI": 10**11 + 1}})
    findings = evaluate(inflated, states, THRESHOLDS)
    assert kinds(findings) == [ev.AlertKind.POOL_OVERCOMMITTED]
    assert planning_input(states, HORIZON, plan).snapshot.previous_plan is not None


def test_the_child_process_judges_a_plan_record_as_the_rules_judge_the_plan() -> None:
    events = [*world(), ("CZ", demand_event("D-BIG", 50_000, due=2))]
    _, plan = replan(events, None)
    record = encode(plan, source="/ampc/optimizer", event_id=plan.plan_id)
    raw = RawPlan(value=record.value, headers=record.headers, version=plan.version)
    states = fold(events)
    findings = evaluate_record(raw, states, THRESHOLDS)
    assert findings and findings == evaluate(plan, states, THRESHOLDS)
    unreadable = RawPlan(value=b"not a plan", headers=record.headers, version=plan.version)
    assert evaluate_record(unreadable, states, THRESHOLDS) == []


def test_weeks_the_ledger_may_have_dropped_are_not_counted_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = [*world(), ("CZ", demand_event("D-1", 12_000, due=7, priority="HIGH"))]
    _, plan = replan(events, None)
    planned = {
        a.production_week: a.quantity
        for a in plan.allocations
        if a.source_id == "CZ-L1" and a.product == "155-HE"
    }
    assert planned.get(week(0)) and planned.get(week(1))
    # week 0 far behind, week 1 on plan
    states = fold([*events, report(0, 100), report(1, planned[week(1)], "R-2")])
    assert kinds(evaluate(plan, states, THRESHOLDS)) == [ev.AlertKind.PLANT_BEHIND_PLAN]

    # a ledger that keeps no weeks before the newest report may have dropped week 0
    monkeypatch.setattr(ledger_state, "PRODUCTION_KEPT_WEEKS", 0)
    assert evaluate(plan, states, THRESHOLDS) == []
