"""Columns left out because others dominate them: stock offers get one dispatch week."""

from __future__ import annotations

import pytest

from ampc.optimizer.model import PlanningModel, build_model
from tests.unit.optimizer.builders import (
    demand,
    line,
    outcome,
    plant,
    snapshot,
    solve_checked,
    week,
)

pytestmark = pytest.mark.unit


def _offer_case(available: int, due: int) -> object:
    return snapshot(
        horizon={"start_week": week(0), "weeks": 8},
        max_late_weeks=4,
        plants=[plant("P", "DE", line("L", 10, {"155-HE": 9_000}))],
        stock_offers=[
            {
                "id": "OF",
                "origin": "US",
                "product": "155-HE",
                "quantity": 100,
                "available_week": week(available),
                "unit_price_cents": 1_000,
            }
        ],
        transit={"default_weeks": 1},
        demands=[demand("D", 100, due, priority="HIGH")],
    )


def _offer_flows(model: PlanningModel) -> list[int]:
    return [f for f in range(model.n_flows) if model.sources[model.flow_source[f]].kind == "offer"]


def test_an_offer_on_time_gets_one_column_just_in_time() -> None:
    model = build_model(_offer_case(available=0, due=5))  # type: ignore[arg-type]
    on_offer = _offer_flows(model)
    assert len(on_offer) == 1
    assert int(model.flow_week[on_offer[0]]) == 4  # arrives in the due week
    for integrality in ("exact", "round"):
        plan = solve_checked(_offer_case(0, 5), integrality=integrality)  # type: ignore[arg-type]
        assert outcome(plan, "D").delivered_on_time == 100
        assert plan.term("cost_cents") == 100_000  # the cheap offer, not the line


def test_a_late_offer_gets_its_earliest_week() -> None:
    model = build_model(_offer_case(available=4, due=2))  # type: ignore[arg-type]
    assert [int(model.flow_week[f]) for f in _offer_flows(model)] == [4]
    for integrality in ("exact", "round"):
        plan = solve_checked(_offer_case(4, 2), integrality=integrality)  # type: ignore[arg-type]
        # line: 10 a week, arriving a week later, until 4 weeks late (weeks 0..5) = 60 rounds;
        # the offer arrives in week 5, 3 weeks late. Best: 20 on time, 10 one week late, 10
        # two weeks late, 60 three weeks late (line week 4 or the offer: the offer is cheaper)
        assert plan.term("weighted_shortfall") == 0
        assert plan.term("weighted_lateness") == 10 * (10 * 1 + 10 * 2 + 60 * 3)
        assert plan.term("cost_cents") == 40 * 9_000 + 60 * 1_000
