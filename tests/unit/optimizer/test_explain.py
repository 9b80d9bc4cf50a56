"""Explanations per demand and bottlenecks ranked by shadow price."""

from __future__ import annotations

import pytest

from tests.unit.optimizer.builders import (
    demand,
    line,
    outcome,
    plant,
    pool,
    snapshot,
    solve_checked,
    week,
)

pytestmark = pytest.mark.unit


def test_binding_capacity_is_the_reason_and_the_top_bottleneck() -> None:
    snap = snapshot(
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 600, 3, priority="URGENT")],
    )
    plan = solve_checked(snap)
    reasons = outcome(plan, "A").reasons
    assert reasons[0].code == "capacity" and reasons[0].units == 200
    top = plan.bottlenecks[0]
    assert (top.kind, top.subject) == ("plant_capacity", "P/L")
    assert top.shadow_price == pytest.approx(100.0)  # one urgent round per extra round


def test_material_shadow_price_per_tonne() -> None:
    snap = snapshot(
        products=[{"code": "155-HE", "bill": {"NC": 10.0}}],
        materials=[
            {"material": "NC", "supply": [{"from_week": week(0), "quantity_per_week": 500}]}
        ],
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 400, 3, priority="HIGH")],
    )
    plan = solve_checked(snap)
    material = next(b for b in plan.bottlenecks if b.kind == "material")
    # one tonne = 100 more rounds of a HIGH demand (weight 10) = 1000 weighted shortfall
    assert material.shadow_price == pytest.approx(1000.0)
    assert any(r.code == "material" for r in outcome(plan, "A").reasons)


def test_pool_money_shadow_price_per_million() -> None:
    snap = snapshot(
        pools=[pool(paid=1_000_000)],  # EUR 10,000
        plants=[plant("P", "DE", line("L", 1000, {"155-HE": 10_000}))],  # EUR 100 a round
        demands=[demand("A", 400, 3)],
    )
    plan = solve_checked(snap)
    money = next(b for b in plan.bottlenecks if b.kind == "pool_money")
    assert money.shadow_price == pytest.approx(10_000.0)  # EUR 1M buys 10,000 rounds
    assert outcome(plan, "A").shortfall == 300


def test_excluding_rule_names_the_plants() -> None:
    snap = snapshot(
        export_refusals=[{"producer_nation": "CH", "refused_recipients": ["UA"]}],
        plants=[plant("SWISS", "CH", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 50, 3)],
    )
    plan = solve_checked(snap)
    reason = outcome(plan, "A").reasons[0]
    assert reason.code == "no_eligible_source" and reason.units == 50
    assert "CH refuses export consent to UA" in reason.message and "SWISS" in reason.message


def test_delivered_demand_needs_no_explanation() -> None:
    snap = snapshot(
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 50, 3)],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").reasons == []
    assert plan.bottlenecks == []
