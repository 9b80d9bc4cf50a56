"""Different solver backends agree on the optimal objective terms."""

from __future__ import annotations

import pytest

from ampc.optimizer.plan import Plan
from tests.unit.optimizer.builders import demand, line, plant, pool, snapshot, solve_checked, week

pytestmark = pytest.mark.unit


def _rich_case(with_lots: bool) -> object:
    lot = 25 if with_lots else None
    return snapshot(
        horizon={"start_week": week(0), "weeks": 6},
        max_late_weeks=3,
        transit={"default_weeks": 1, "routes": [{"origin": "US", "recipient": "UA", "weeks": 3}]},
        products=[{"code": "155-HE", "bill": {"NC": 2.0}}, {"code": "155-ER", "bill": {}}],
        materials=[
            {"material": "NC", "supply": [{"from_week": week(0), "quantity_per_week": 150}]}
        ],
        pools=[
            pool("P1", paid=60_000_00),
            pool("P2", paid=10**12, rules={"eligible_producers": ["EU"]}),
        ],
        plants=[
            plant("A", "DE", line("LA", 60, {"155-HE": 1_000, "155-ER": 1_400}, lot=lot)),
            plant("B", "US", line("LB", 80, {"155-HE": 700})),
            plant("C", "PL", line("LC", 40, {"155-ER": 1_200}, steps=[(0, 20), (3, 40)])),
        ],
        stock_offers=[
            {
                "id": "OF",
                "origin": "US",
                "product": "155-ER",
                "quantity": 70,
                "available_week": week(0),
                "unit_price_cents": 2_000,
            }
        ],
        interop_groups=[{"code": "IG-155", "products": ["155-HE", "155-ER"]}],
        demands=[
            demand("U1", 150, 2, priority="URGENT", pool="P1"),
            demand("H1", 200, 4, priority="HIGH", pool="P2", product=None, interop_group="IG-155"),
            demand("R1", 250, 5, pool="P1", product="155-ER"),
            demand("R2", 150, 3, pool="P2"),
        ],
    )


def _terms(plan: Plan) -> list[float]:
    return [plan.term(n) for n in ("weighted_shortfall", "weighted_lateness", "cost_cents")]


@pytest.mark.parametrize("other", ["scip", "cpsat"])
def test_mip_backends_agree(other: str) -> None:
    snap = _rich_case(with_lots=True)
    highs = solve_checked(snap, backend="highs")  # type: ignore[arg-type]
    alt = solve_checked(snap, backend=other)  # type: ignore[arg-type]
    assert highs.status == alt.status == "OPTIMAL"
    assert _terms(highs) == pytest.approx(_terms(alt), rel=1e-6)
    assert highs.term("weighted_shortfall") > 0  # the case is tight enough to be interesting


def test_lp_backends_agree_on_the_lp_levels() -> None:
    from ampc.optimizer.model import build_model
    from ampc.optimizer.plan import SolverSettings
    from ampc.optimizer.solve import solve

    model = build_model(_rich_case(with_lots=False))  # type: ignore[arg-type]
    by_backend = {}
    for backend in ("highs", "glop"):
        result = solve(model, SolverSettings(backend=backend, integrality="round"))
        by_backend[backend] = [
            level.bound if level.bound is not None else level.value for level in result.levels
        ]
    assert by_backend["highs"] == pytest.approx(by_backend["glop"], rel=1e-6)
