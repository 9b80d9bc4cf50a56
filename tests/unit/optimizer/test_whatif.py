"""What-if changes: pure snapshot edits, both plans solved, a diff returned."""

from __future__ import annotations

import pytest

from ampc.optimizer.checker import check_plan
from ampc.optimizer.plan import SolverSettings
from ampc.optimizer.snapshot import Demand, Snapshot
from ampc.optimizer.whatif import (
    CapacityAdded,
    ChangeSet,
    DemandAdded,
    DemandCancelled,
    MoneyPaid,
    PlantDown,
    apply_changes,
    what_if,
)
from tests.unit.optimizer.builders import demand, line, plant, pool, snapshot, week

pytestmark = pytest.mark.unit

EXACT = SolverSettings(integrality="exact")


@pytest.fixture
def base() -> Snapshot:
    return snapshot(
        pools=[pool(paid=30_000)],
        plants=[
            plant("P", "DE", line("LP", 100, {"155-HE": 100})),
            plant("Q", "PL", line("LQ", 50, {"155-HE": 100})),
        ],
        demands=[demand("A", 500, 3, priority="HIGH"), demand("B", 300, 3)],
    )


def test_apply_changes_is_pure(base: Snapshot) -> None:
    before = base.dump_json()
    changed = apply_changes(
        base,
        [
            PlantDown(
                plant_id="P",
                from_week=week(0),
                to_week=week(3),
            )
        ],
    )
    assert base.dump_json() == before
    assert changed.plants[0].disruptions[0].fraction_lost == 1.0


def test_plant_down_moves_shortfall(base: Snapshot) -> None:
    result = what_if(
        base,
        [
            PlantDown(
                plant_id="P",
                from_week=week(0),
                to_week=week(3),
            )
        ],
        EXACT,
    )
    # 200 rounds of capacity left for 300 paid-for rounds: 100 more HIGH rounds short
    assert result.objective_delta["weighted_shortfall"] == pytest.approx(100 * 10)
    assert result.diff.rounds_moved > 0
    assert all(a.source_id == "LQ" for a in result.changed.allocations)
    assert check_plan(base, result.base).ok


def test_capacity_added_only_in_its_weeks() -> None:
    snap = snapshot(
        plants=[plant("P", "DE", line("L", 0, {"155-HE": 1}, steps=[(0, 10), (2, 20)]))]
    )
    changed = apply_changes(
        snap, [CapacityAdded(line_id="L", rounds_per_week=5, from_week=week(1), to_week=week(2))]
    )
    steps = [
        (s.from_week.isoformat(), s.rounds_per_week)
        for s in changed.plants[0].lines[0].capacity_calendar
    ]
    assert steps == [(week(0), 10), (week(1), 15), (week(2), 25), (week(3), 20)]


def test_money_paid_relieves_the_pool(base: Snapshot) -> None:
    result = what_if(
        base, ChangeSet(changes=[MoneyPaid(pool_id="POOL", donor="SE", cents=50_000)]), EXACT
    )
    assert result.objective_delta["weighted_shortfall"] == pytest.approx(-2100)
    assert result.changed.pools[0].paid_cents == 80_000
    assert check_plan(
        apply_changes(base, [MoneyPaid(pool_id="POOL", donor="SE", cents=50_000)]), result.changed
    ).ok


def test_demand_added_and_cancelled(base: Snapshot) -> None:
    urgent = Demand.model_validate(demand("U", 200, 1, priority="URGENT"))
    result = what_if(base, [DemandAdded(demand=urgent), DemandCancelled(demand_id="B")], EXACT)
    assert result.shortfall_delta.get("U") == 0 or "U" not in result.shortfall_delta
    outcome_u = next(d for d in result.changed.demands if d.demand_id == "U")
    assert outcome_u.shortfall == 0
    assert all(d.demand_id != "B" for d in result.changed.demands)


def test_unknown_reference_is_named(base: Snapshot) -> None:
    with pytest.raises(ValueError, match=r"changes\[0\] \(plant_down\): unknown plant"):
        apply_changes(
            base,
            [
                PlantDown(
                    plant_id="X",
                    from_week=week(0),
                    to_week=week(1),
                )
            ],
        )
