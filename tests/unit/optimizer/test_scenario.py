"""The scenario generator: sizes, shapes and determinism."""

from __future__ import annotations

import pytest

from ampc.optimizer.scenario import generate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("size", "sources", "products", "weeks", "demands", "pools"),
    [
        ("small", 8, 4, 12, 30, 3),
        ("medium", 40, 12, 52, 300, 20),
        ("large", 200, 30, 104, 2000, 40),
    ],
)
def test_sizes_match_the_spec(
    size: str, sources: int, products: int, weeks: int, demands: int, pools: int
) -> None:
    snap = generate(size, 1)  # type: ignore[arg-type]
    assert len(snap.plants) + len(snap.stock_offers) == sources
    assert (len(snap.products), snap.horizon.weeks, len(snap.demands), len(snap.pools)) == (
        products,
        weeks,
        demands,
        pools,
    )


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert generate("medium", 42).dump_json() == generate("medium", 42).dump_json()
    assert generate("medium", 42).dump_json() != generate("medium", 43).dump_json()


def test_realistic_shapes_are_present() -> None:
    snap = generate("medium", 5)
    assert any(len(ln.capacity_calendar) > 1 for p in snap.plants for ln in p.lines)  # ramp-up
    assert any(p.disruptions for p in snap.plants)
    assert any(c.pledged_cents > c.paid_cents for p in snap.pools for c in p.contributions)
    assert snap.export_refusals
    assert snap.stock_offers
    urgent = next(d for d in snap.demands if d.id == "D-URGENT-FRONT")
    assert urgent.priority == "URGENT"
