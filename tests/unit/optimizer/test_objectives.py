"""The four objectives, strictly in order, and determinism."""

from __future__ import annotations

import pytest

from ampc.optimizer.planner import plan_snapshot
from ampc.optimizer.snapshot import Snapshot
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


@pytest.mark.parametrize("integrality", ["exact", "round"])
def test_an_urgent_round_is_never_given_up_for_cost(integrality: str) -> None:
    # the only source for the urgent demand is absurdly expensive; cheap capacity could serve
    # the routine demand; shortfall comes first whatever the price
    snap = snapshot(
        pools=[pool(paid=10**15)],
        plants=[
            plant("GOLD", "DE", line("GOLD", 100, {"155-ER": 10**11})),
            plant("CHEAP", "PL", line("CHEAP", 100, {"155-HE": 1})),
        ],
        demands=[demand("URG", 400, 3, priority="URGENT", product="155-ER"), demand("ROU", 400, 3)],
    )
    plan = solve_checked(snap, integrality=integrality)
    assert outcome(plan, "URG").shortfall == 0
    assert outcome(plan, "ROU").shortfall == 0


def test_urgent_beats_routine_on_shared_capacity() -> None:
    snap = snapshot(
        plants=[plant("P", "DE", line("L", 100, {"155-HE": 100}))],
        demands=[
            demand("ROU", 300, 3),
            demand("URG", 300, 3, priority="URGENT"),
            demand("HIGH", 300, 3, priority="HIGH"),
        ],
    )
    plan = solve_checked(snap)
    assert (
        outcome(plan, "URG").shortfall,
        outcome(plan, "HIGH").shortfall,
        outcome(plan, "ROU").shortfall,
    ) == (0, 200, 300)
    assert plan.term("weighted_shortfall") == 200 * 10 + 300


def test_money_is_spent_on_urgent_rounds_first() -> None:
    snap = snapshot(
        pools=[pool(paid=100 * 1_000)],
        plants=[plant("P", "DE", line("L", 1000, {"155-HE": 1_000}))],
        demands=[demand("ROU", 100, 3), demand("URG", 100, 3, priority="URGENT")],
    )
    plan = solve_checked(snap)
    assert outcome(plan, "URG").shortfall == 0
    assert outcome(plan, "ROU").shortfall == 100


def test_lateness_comes_before_cost() -> None:
    # the cheap plant is far away (3 weeks); the dear one delivers on time
    snap = snapshot(
        max_late_weeks=6,
        transit={"default_weeks": 0, "routes": [{"origin": "US", "recipient": "UA", "weeks": 3}]},
        plants=[
            plant("FAR", "US", line("FAR", 100, {"155-HE": 10})),
            plant("NEAR", "DE", line("NEAR", 100, {"155-HE": 10_000})),
        ],
        demands=[demand("A", 100, 0)],
    )
    plan = solve_checked(snap)
    assert {a.source_id for a in plan.allocations} == {"NEAR"}
    assert plan.term("weighted_lateness") == 0
    assert plan.term("cost_cents") == 100 * 10_000


def test_cost_picks_the_cheaper_plant_when_service_is_equal() -> None:
    snap = snapshot(
        plants=[
            plant("A", "DE", line("DEAR", 100, {"155-HE": 500})),
            plant("B", "PL", line("CHEAP", 100, {"155-HE": 300})),
        ],
        demands=[demand("D", 150, 0)],
    )
    plan = solve_checked(snap)
    by_line = {a.source_id: a.quantity for a in plan.allocations}
    assert by_line == {"CHEAP": 100, "DEAR": 50}
    assert plan.term("cost_cents") == 100 * 300 + 50 * 500


def test_churn_keeps_the_previous_plan_when_nothing_else_differs() -> None:
    # two identical lines; the previous plan used Q: keep it (churn 0)
    common = dict(
        plants=[
            plant("P", "DE", line("LP", 100, {"155-HE": 100})),
            plant("Q", "DE", line("LQ", 100, {"155-HE": 100})),
        ],
        demands=[demand("A", 100, 2)],
    )
    previous = {
        "version": 7,
        "allocations": [
            {
                "source_id": "LQ",
                "product": "155-HE",
                "production_week": week(2),
                "demand_id": "A",
                "quantity": 100,
            }
        ],
    }
    plan = solve_checked(snapshot(**common, previous_plan=previous))
    assert [(a.source_id, a.production_week.isoformat(), a.quantity) for a in plan.allocations] == [
        ("LQ", week(2), 100)
    ]
    assert plan.term("churn_rounds") == 0
    assert plan.diff is not None and plan.diff.rounds_moved == 0


def test_churn_is_paid_only_when_lower_levels_gain() -> None:
    # the previous plan used the dear line; cost beats churn, so the plan moves 100 rounds
    previous = {
        "version": 1,
        "allocations": [
            {
                "source_id": "DEAR",
                "product": "155-HE",
                "production_week": week(1),
                "demand_id": "A",
                "quantity": 100,
            }
        ],
    }
    snap = snapshot(
        plants=[
            plant("P", "DE", line("DEAR", 100, {"155-HE": 900})),
            plant("Q", "DE", line("CHEAP", 100, {"155-HE": 100})),
        ],
        demands=[demand("A", 100, 1)],
        previous_plan=previous,
    )
    plan = solve_checked(snap)
    assert plan.term("churn_rounds") == 200  # 100 off the dear line, 100 onto the cheap one
    assert plan.diff is not None and plan.diff.demands_changed == ["A"]


def _without_timings(text: str) -> str:
    import json

    data = json.loads(text)
    for key in ("build_seconds", "solve_seconds"):
        data.pop(key)
    for term in data["objective"]:
        term.pop("solve_seconds")
    return json.dumps(data, sort_keys=True)


def test_same_snapshot_gives_the_same_plan() -> None:
    from ampc.optimizer.scenario import generate

    snap = generate("small", 3)
    first = plan_snapshot(snap).dump_json()
    second = plan_snapshot(Snapshot.model_validate_json(snap.dump_json())).dump_json()
    assert _without_timings(first) == _without_timings(second)
