"""One hand-built case per constraint type, each showing the constraint binds."""

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


def test_line_capacity_binds_and_is_shared_by_the_lines_products() -> None:
    # 100 rounds a week for 4 weeks, shared by two products: 400 in all
    snap = snapshot(
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100, "155-ER": 100}))],
        demands=[demand("A", 300, 3), demand("B", 300, 3, product="155-ER")],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").delivered_on_time + outcome(plan, "B").delivered_on_time == 400
    assert plan.term("weighted_shortfall") == 200


def test_ramp_up_calendar_and_disruption_reduce_capacity() -> None:
    # 50/week weeks 0-1, 100/week weeks 2-3, week 3 loses 40 %: 50+50+100+60 = 260
    snap = snapshot(
        plants=[
            plant(
                "P",
                "DE",
                line("L", 0, {"155-HE": 100}, steps=[(0, 50), (2, 100)]),
                disruptions=[{"from_week": week(3), "to_week": week(3), "fraction_lost": 0.4}],
            )
        ],
        demands=[demand("A", 1000, 3)],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").delivered_on_time == 260


def test_lot_size_makes_production_whole_lots() -> None:
    # one week of 100 rounds in lots of 30: at most 90 can be made
    snap = snapshot(
        horizon={"start_week": week(0), "weeks": 1},
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}, lot=30))],
        demands=[demand("A", 100, 0)],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").delivered_on_time == 90
    made = sum(a.quantity for a in plan.allocations)
    assert made % 30 == 0


def test_lot_surplus_stays_unallocated_and_is_paid_for() -> None:
    # 40 wanted, lots of 30: two lots, 20 rounds surplus
    snap = snapshot(
        horizon={"start_week": week(0), "weeks": 1},
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}, lot=30))],
        demands=[demand("A", 40, 0)],
    )
    plan = solve_checked(snap)
    surplus = [a for a in plan.allocations if a.demand_id is None]
    assert [a.quantity for a in surplus] == [20]
    assert plan.term("cost_cents") == 60 * 100


@pytest.mark.parametrize("integrality", ["exact", "round"])
def test_stock_offer_is_one_shot(integrality: str) -> None:
    snap = snapshot(
        stock_offers=[
            {
                "id": "O",
                "origin": "PL",
                "product": "155-HE",
                "quantity": 50,
                "available_week": week(1),
                "unit_price_cents": 500,
            }
        ],
        demands=[demand("A", 40, 3), demand("B", 40, 3)],
    )
    plan = solve_checked(snap, integrality=integrality)
    assert plan.term("weighted_shortfall") == 30
    assert all(a.production_week >= plan.horizon_start.replace(day=11) for a in plan.allocations)


def test_material_supply_is_shared_through_the_bill() -> None:
    # 2 kg per round, 100 kg a week: 50 rounds a week although the lines could make 200
    snap = snapshot(
        products=[{"code": "155-HE", "bill": {"NC": 2.0}}],
        materials=[
            {"material": "NC", "supply": [{"from_week": week(0), "quantity_per_week": 100}]}
        ],
        plants=[
            plant("P", "DE", line("L1", 100, {"155-HE": 100})),
            plant("Q", "PL", line("L2", 100, {"155-HE": 100})),
        ],
        demands=[demand("A", 1000, 3)],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").delivered_on_time == 200


def test_transit_delays_arrival() -> None:
    # made in week t arrives t+2; due week 1: every round is at least one week late
    snap = snapshot(
        max_late_weeks=4,
        transit={"default_weeks": 2},
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 100, 1, priority="HIGH")],
    )
    plan = solve_checked(snap)
    o = outcome(plan, "A")
    assert (o.delivered_late, o.lateness_round_weeks) == (100, 100)
    assert plan.term("weighted_lateness") == 100 * 10
    assert any(r.code == "transit" for r in o.reasons)


def test_transit_table_overrides_the_default() -> None:
    snap = snapshot(
        max_late_weeks=4,
        transit={"default_weeks": 3, "routes": [{"origin": "PL", "recipient": "UA", "weeks": 0}]},
        plants=[
            plant("P", "DE", line("L1", 100, {"155-HE": 100})),
            plant("Q", "PL", line("L2", 50, {"155-HE": 900})),
        ],
        demands=[demand("A", 50, 0)],
    )
    plan = solve_checked(snap)
    assert {a.source_id for a in plan.allocations} == {"L2"}  # on time beats cheap


def test_pool_bloc_rule_excludes_non_eu_plant() -> None:
    snap = snapshot(
        pools=[pool(rules={"eligible_producers": ["EU"]})],
        plants=[plant("P", "US", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 100, 3)],
    )
    plan = solve_checked(snap)
    o = outcome(plan, "A")
    assert o.shortfall == 100
    assert o.reasons[0].code == "no_eligible_source"
    assert "EU" in o.reasons[0].message and "P" in o.reasons[0].message


def test_export_consent_refusal_excludes_plant() -> None:
    snap = snapshot(
        export_refusals=[{"producer_nation": "CH", "refused_recipients": ["UA"]}],
        plants=[plant("P", "CH", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 100, 3), demand("B", 100, 3, recipient="PL")],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").shortfall == 100
    assert outcome(plan, "B").shortfall == 0


def test_price_cap_and_excluded_origin() -> None:
    snap = snapshot(
        pools=[pool(rules={"max_unit_price_cents": 200})],
        plants=[
            plant("P", "DE", line("L1", 100, {"155-HE": 300})),
            plant("Q", "PL", line("L2", 100, {"155-HE": 100})),
        ],
        demands=[demand("A", 400, 3, rules={"excluded_origins": ["PL"]})],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").shortfall == 400


def test_earmarked_recipient() -> None:
    snap = snapshot(
        pools=[pool(rules={"earmarked_recipients": ["UA"]})],
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        demands=[demand("A", 100, 3, recipient="PL"), demand("B", 100, 3)],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").shortfall == 100
    assert outcome(plan, "B").shortfall == 0


def test_interop_group_substitution() -> None:
    snap = snapshot(
        interop_groups=[{"code": "IG-155", "products": ["155-HE", "155-ER"]}],
        plants=[plant("P", "DE", line("L", 100, {"155-ER": 100}))],
        demands=[demand("A", 100, 3, product=None, interop_group="IG-155")],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").shortfall == 0
    assert {a.product for a in plan.allocations} == {"155-ER"}


def test_money_committed_never_exceeds_paid_minus_committed() -> None:
    # EUR 10 a round; EUR 1,000 paid, EUR 200 committed before: 80 rounds
    snap = snapshot(
        pools=[
            {
                "id": "POOL",
                "owner": "NSPA",
                "committed_cents": 20_000,
                "contributions": [
                    {"donor": "NL", "pledged_cents": 500_000, "paid_cents": 60_000},
                    {"donor": "DK", "pledged_cents": 40_000, "paid_cents": 40_000},
                ],
            }
        ],
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 1_000}))],
        demands=[demand("A", 300, 3)],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "A").delivered_on_time == 80
    money = plan.pools[0]
    assert money.committed_cents == 80_000
    assert {d.donor: d.committed_cents for d in money.by_donor} == {"NL": 48_000, "DK": 32_000}
    assert any(r.code == "pool_money" for r in outcome(plan, "A").reasons)
    assert any(b.kind == "pool_money" for b in plan.bottlenecks)


def test_frozen_horizon_keeps_committed_orders() -> None:
    # the committed order sits on the expensive line; cheaper capacity must not move it
    snap = snapshot(
        frozen_horizon_weeks=2,
        plants=[
            plant("P", "DE", line("EXP", 100, {"155-HE": 900})),
            plant("Q", "PL", line("CHEAP", 100, {"155-HE": 100})),
        ],
        demands=[demand("A", 100, 3)],
        committed_orders=[
            {
                "source_id": "EXP",
                "product": "155-HE",
                "production_week": week(0),
                "demand_id": "A",
                "quantity": 60,
            }
        ],
    )
    plan = solve_checked(snap)
    frozen = [a for a in plan.allocations if a.frozen]
    assert [(a.source_id, a.quantity) for a in frozen] == [("EXP", 60)]
    assert sum(a.quantity for a in plan.allocations if a.source_id == "CHEAP") == 40


def test_committed_order_outside_frozen_horizon_is_rejected() -> None:
    with pytest.raises(ValueError, match="frozen horizon"):
        snapshot(
            frozen_horizon_weeks=1,
            plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
            demands=[demand("A", 100, 3)],
            committed_orders=[
                {
                    "source_id": "L",
                    "product": "155-HE",
                    "production_week": week(2),
                    "demand_id": "A",
                    "quantity": 10,
                }
            ],
        )


def test_committed_orders_stand_beyond_a_cut_capacity_and_leave_no_room() -> None:
    # The line makes 10 a week, but 50 were committed before a disruption cut it: the commitment
    # stands (the tracker sees what is not made), and nothing more is planned on that week.
    snap = snapshot(
        frozen_horizon_weeks=1,
        plants=[plant("P", "DE", line("L", 10, {"155-HE": 100}))],
        demands=[demand("A", 100, 3), demand("B", 100, 3)],
        committed_orders=[
            {
                "source_id": "L",
                "product": "155-HE",
                "production_week": week(0),
                "demand_id": "A",
                "quantity": 50,
            }
        ],
    )
    plan = solve_checked(snap)
    assert plan.status == "OPTIMAL"
    week0 = [a for a in plan.allocations if a.production_week == snap.week_date(0)]
    assert [(a.demand_id, a.quantity, a.frozen) for a in week0] == [("A", 50, True)]
    assert any(a.production_week > snap.week_date(0) for a in plan.allocations)


def test_committed_orders_on_a_lot_sized_line_keep_their_whole_lots_after_a_cut() -> None:
    # 150 rounds committed on a line of lots of 100, then cut to 10 a week: two whole lots stand.
    snap = snapshot(
        frozen_horizon_weeks=1,
        plants=[plant("P", "DE", line("L", 10, {"155-HE": 100}, lot=100))],
        demands=[demand("A", 150, 3)],
        committed_orders=[
            {
                "source_id": "L",
                "product": "155-HE",
                "production_week": week(0),
                "demand_id": "A",
                "quantity": 150,
            }
        ],
    )
    plan = solve_checked(snap)
    assert plan.status in ("OPTIMAL", "FEASIBLE")
    week0 = [a for a in plan.allocations if a.production_week == snap.week_date(0)]
    assert sum(a.quantity for a in week0 if a.demand_id == "A") == 150
