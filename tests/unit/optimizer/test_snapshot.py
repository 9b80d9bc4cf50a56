"""Snapshot and plan formats: strict validation with errors that name the field."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from ampc.optimizer.plan import Plan
from ampc.optimizer.scenario import generate
from ampc.optimizer.snapshot import Snapshot
from tests.unit.optimizer.builders import demand, snapshot, week

pytestmark = pytest.mark.unit


def _data() -> dict[str, object]:
    return json.loads(generate("small", 1).dump_json())  # type: ignore[no-any-return]


def test_unknown_field_is_rejected_by_name() -> None:
    data = _data()
    data["plantz"] = []
    with pytest.raises(ValidationError) as caught:
        Snapshot.model_validate(data)
    assert "plantz" in str(caught.value)


def test_a_tuesday_is_not_a_week() -> None:
    data = _data()
    data["horizon"] = {"start_week": "2027-01-05", "weeks": 4}
    with pytest.raises(ValidationError, match=r"horizon\.start_week"):
        Snapshot.model_validate(data)


def test_negative_quantity_names_the_demand_field() -> None:
    data = _data()
    data["demands"][0]["quantity"] = -5  # type: ignore[index]
    with pytest.raises(ValidationError, match=r"demands\.0\.quantity"):
        Snapshot.model_validate(data)


def test_unknown_pool_reference_is_named() -> None:
    with pytest.raises(ValidationError, match=r"demands\[X\]\.pool_id"):
        snapshot(demands=[demand("X", 10, 1, pool="NOPE")])


def test_demand_names_product_or_group_not_both() -> None:
    with pytest.raises(ValidationError, match="exactly one of product or interop_group"):
        snapshot(demands=[demand("X", 10, 1, interop_group="IG")])


def test_json_schemas_exist_and_forbid_extras() -> None:
    snap_schema = Snapshot.model_json_schema()
    plan_schema = Plan.model_json_schema()
    assert snap_schema["additionalProperties"] is False
    assert "allocations" in plan_schema["properties"]
    assert "Demand" in snap_schema["$defs"]


def test_round_trip_is_lossless() -> None:
    snap = generate("small", 2)
    assert Snapshot.model_validate_json(snap.dump_json()) == snap
    assert snap.week_index(snap.week_date(5)) == 5
    assert week(0) == snap.horizon.start_week.isoformat()
