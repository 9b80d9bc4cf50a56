"""The independent checker passes produced plans and names what broken ones violate."""

from __future__ import annotations

import pytest

from ampc.optimizer.checker import check_plan
from ampc.optimizer.plan import Allocation, Plan
from ampc.optimizer.snapshot import Snapshot
from tests.unit.optimizer.builders import demand, line, plant, pool, snapshot, solve_checked, week

pytestmark = pytest.mark.unit


@pytest.fixture
def case() -> tuple[Snapshot, Plan]:
    snap = snapshot(
        frozen_horizon_weeks=1,
        products=[{"code": "155-HE", "bill": {"NC": 1.0}}, {"code": "155-ER", "bill": {}}],
        materials=[
            {"material": "NC", "supply": [{"from_week": week(0), "quantity_per_week": 1000}]}
        ],
        pools=[pool(paid=50_000_000, rules={"eligible_producers": ["EU"]})],
        plants=[
            plant("P", "DE", line("L", 100, {"155-HE": 1_000})),
            plant("Q", "PL", line("LOT", 100, {"155-HE": 1_000}, lot=50)),
            plant("U", "US", line("LUS", 100, {"155-HE": 10})),
        ],
        demands=[demand("A", 500, 3, priority="URGENT"), demand("B", 300, 3)],
        committed_orders=[
            {
                "source_id": "L",
                "product": "155-HE",
                "production_week": week(0),
                "demand_id": "A",
                "quantity": 100,
            }
        ],
    )
    return snap, solve_checked(snap)


def _broken(plan: Plan, **changes: object) -> Plan:
    return plan.model_copy(update=changes, deep=True)


def _violated(snap: Snapshot, plan: Plan) -> set[str]:
    return {v.constraint for v in check_plan(snap, plan).violations}


def test_a_produced_plan_passes(case: tuple[Snapshot, Plan]) -> None:
    snap, plan = case
    report = check_plan(snap, plan)
    assert report.ok
    assert report.recomputed["weighted_shortfall"] == plan.term("weighted_shortfall")


def test_overproduction_breaks_line_capacity(case: tuple[Snapshot, Plan]) -> None:
    snap, plan = case
    extra = Allocation(
        source_kind="line",
        source_id="L",
        plant_id="P",
        origin="DE",
        product="155-HE",
        production_week=week(2),
        arrival_week=week(2),
        demand_id="B",
        quantity=100,
        unit_price_cents=1_000,
    )
    assert "line_capacity" in _violated(snap, _broken(plan, allocations=[*plan.allocations, extra]))


def test_ineligible_source_is_named(case: tuple[Snapshot, Plan]) -> None:
    snap, plan = case
    bad = Allocation(
        source_kind="line",
        source_id="LUS",
        plant_id="U",
        origin="US",
        product="155-HE",
        production_week=week(3),
        arrival_week=week(3),
        demand_id="B",
        quantity=1,
        unit_price_cents=10,
    )
    assert "eligibility" in _violated(snap, _broken(plan, allocations=[*plan.allocations, bad]))


def test_dropping_a_committed_order_breaks_the_frozen_horizon(
    case: tuple[Snapshot, Plan],
) -> None:
    snap, plan = case
    kept = [a for a in plan.allocations if not a.frozen]
    assert "frozen_horizon" in _violated(snap, _broken(plan, allocations=kept))


def test_wrong_objective_value_is_caught(case: tuple[Snapshot, Plan]) -> None:
    snap, plan = case
    terms = [
        t.model_copy(update={"value": t.value + 5}) if t.name == "cost_cents" else t
        for t in plan.objective
    ]
    assert "objective_cost_cents" in _violated(snap, _broken(plan, objective=terms))


def test_partial_lot_is_caught(case: tuple[Snapshot, Plan]) -> None:
    snap, plan = case
    odd = Allocation(
        source_kind="line",
        source_id="LOT",
        plant_id="Q",
        origin="PL",
        product="155-HE",
        production_week=week(3),
        arrival_week=week(3),
        demand_id=None,
        quantity=7,
        unit_price_cents=1_000,
    )
    found = _violated(snap, _broken(plan, allocations=[*plan.allocations, odd]))
    assert "lot_size" in found


def test_overspent_pool_is_caught() -> None:
    snap = snapshot(
        pools=[pool(paid=1_000)],
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 50, 0)],
    )
    plan = solve_checked(snap)
    assert sum(a.quantity for a in plan.allocations) == 10
    more = [a.model_copy(update={"quantity": 20}) for a in plan.allocations]
    assert "pool_money" in _violated(snap, _broken(plan, allocations=more))


def test_wrong_transit_and_window_are_caught(case: tuple[Snapshot, Plan]) -> None:
    snap, plan = case
    moved = [
        a.model_copy(update={"arrival_week": a.production_week.replace(year=2028)})
        if not a.frozen
        else a
        for a in plan.allocations
    ]
    assert "transit" in _violated(snap, _broken(plan, allocations=moved))


def test_material_and_offer_violations_are_named() -> None:
    snap = snapshot(
        products=[{"code": "155-HE", "bill": {"NC": 1.0}}, {"code": "155-ER", "bill": {}}],
        materials=[{"material": "NC", "supply": [{"from_week": week(0), "quantity_per_week": 50}]}],
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        stock_offers=[
            {
                "id": "O",
                "origin": "PL",
                "product": "155-HE",
                "quantity": 10,
                "available_week": week(2),
                "unit_price_cents": 100,
            }
        ],
        demands=[demand("A", 500, 3)],
    )
    plan = solve_checked(snap)
    grown = [a.model_copy(update={"quantity": a.quantity + 20}) for a in plan.allocations]
    found = _violated(snap, _broken(plan, allocations=grown))
    assert {"material_supply", "offer_quantity"} <= found
    early = [
        a.model_copy(
            update={"production_week": plan.horizon_start, "arrival_week": plan.horizon_start}
        )
        if a.source_kind == "offer"
        else a
        for a in plan.allocations
    ]
    assert "offer_available" in _violated(snap, _broken(plan, allocations=early))
