"""The planner's child-process jobs without Kafka: a re-plan from states and the plan record in
force to encoded records, the plan's head, and a what-if answer."""

from __future__ import annotations

import json

import pytest

from ampc.contract import events as ev
from ampc.contract.envelope import decode
from ampc.optimizer.plan import SolverSettings
from ampc.optimizer.snapshot import TransitTable
from ampc.optimizer.whatif import ChangeSet, DemandCancelled
from ampc.replan.jobs import ReplanJob, ReplanOutcome, WhatIfJob, plan_head, replan, what_if_answer
from ampc.replan.orders import orders_of
from ampc.replan.plans_topic import PLAN_BYTES, RawPlan, _version_of
from ampc.replan.publish import frozen_until
from ampc.replan.snapshots import Horizon, planning_input
from tests.kafka.scenario_events import WEEK
from tests.replan_world import demand_event, fold, plant_fire, world

pytestmark = pytest.mark.unit

HORIZON = Horizon(start_week=WEEK, weeks=12, frozen_weeks=2, transit=TransitTable())
SETTINGS = SolverSettings(time_limit_seconds=20)
PLANS = "ampc.plans"
ORDER_TOPICS = {"CZ": "ampc.orders.cz", "PL": "ampc.orders.pl"}


def job(events: list[tuple[str, ev.Event]], previous: RawPlan | None, **kw: object) -> ReplanJob:
    version = previous.version + 1 if previous is not None else 1
    fields: dict[str, object] = {
        "states": fold(events),
        "horizon": HORIZON,
        "previous": previous,
        "settings": SETTINGS,
        "header": {"version": version, "trigger": "test"},
        "input_offsets": {"ampc.optimizer.triggers:0": version},
        "plans_topic": PLANS,
        "order_topics": ORDER_TOPICS,
    }
    return ReplanJob(**{**fields, **kw})  # type: ignore[arg-type]


def decoded(outcome: ReplanOutcome) -> tuple[ev.PlanPublished, list[tuple[str, ev.Event]]]:
    """The plan and the order changes as a consumer of the records would read them."""
    (plans_topic, plan_record), *orders = outcome.records
    assert plans_topic == PLANS
    plan = decode(
        plan_record.key, plan_record.value, plan_record.headers, max_payload_bytes=PLAN_BYTES
    ).payload
    assert isinstance(plan, ev.PlanPublished)
    changes = [(topic, decode(r.key, r.value, r.headers).payload) for topic, r in orders]
    return plan, changes


def test_a_replan_job_hands_back_the_plan_and_its_orders_as_records() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 3000, due=2))]
    outcome = replan(job(events, None))
    plan, changes = decoded(outcome)
    assert plan.version == outcome.plan.version == 1
    assert plan.input_offsets == {"ampc.optimizer.triggers:0": 1}
    assert outcome.plan.value == outcome.records[0][1].value
    assert _version_of(outcome.records[0][1].key) == 1
    served = next(d for d in plan.demands if d.demand_id == "D-1")
    assert (served.planned, served.shortfall) == (3000, 0)
    # Orders go to their nation's topic; the counts the service reports match the records.
    assert changes and {topic for topic, _ in changes} == {"ampc.orders.cz", "ampc.orders.pl"}
    for topic, change in changes:
        assert isinstance(change, ev.ProductionOrderIssued)
        assert topic == ORDER_TOPICS[change.nation]
    assert outcome.changes == {"issued": len(changes)}
    assert outcome.unrouted == []
    # The head is the plan without its allocations and reasons, and says how many there were.
    head = ev.PlanPublished.model_validate_json(outcome.head_json)
    assert head.allocations == [] and plan.allocations
    assert outcome.allocations == len(plan.allocations)
    assert [d.demand_id for d in head.demands] == [d.demand_id for d in plan.demands]
    assert head.model_copy(update={"demands": [], "allocations": []}) == plan.model_copy(
        update={"demands": [], "allocations": []}
    )


def test_orders_of_a_nation_without_an_orders_topic_are_named_not_sent() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 3000, due=2))]
    outcome = replan(job(events, None, order_topics={"CZ": "ampc.orders.cz"}))
    _, changes = decoded(outcome)
    assert {topic for topic, _ in changes} == {"ampc.orders.cz"}
    assert outcome.unrouted and all("PL-NIWKA" in order for order in outcome.unrouted)


def test_the_plan_in_force_travels_as_bytes_and_its_frozen_orders_stand() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 12000, due=7, priority="HIGH"))]
    first = replan(job(events, None))
    disrupted = [
        *events,
        ("CZ", plant_fire()),
    ]
    second = replan(job(disrupted, first.plan))
    plan, changes = decoded(second)
    assert plan.version == 2
    frozen_end = frozen_until(WEEK, 2)
    assert second.frozen_moved == []
    first_plan, _ = decoded(first)
    lines = planning_input(fold(events), HORIZON, None).lines
    before = orders_of(first_plan.allocations, lines)
    cancelled = [c for _, c in changes if isinstance(c, ev.ProductionOrderCancelled)]
    assert cancelled, "the disrupted plant's open orders were not cancelled"
    for _, change in changes:
        if isinstance(change, ev.ProductionOrderCancelled | ev.ProductionOrderRevised):
            assert before[change.order_id].plant_id == "CZ-VLASIM"
            assert before[change.order_id].week >= frozen_end
    # The first plan's orders inside the frozen horizon are in the second plan unchanged.
    frozen_before = {k: o for k, o in before.items() if o.week < frozen_end}
    assert frozen_before
    after = orders_of(plan.allocations, lines)
    assert {k: after[k] for k in frozen_before} == frozen_before


def test_plan_head_reads_a_record_and_refuses_garbage() -> None:
    events = [*world(), ("CZ", demand_event("D-1", 3000, due=2))]
    outcome = replan(job(events, None))
    found = plan_head(outcome.plan)
    assert found is not None
    head_json, allocations = found
    assert allocations == outcome.allocations
    assert head_json == outcome.head_json
    broken = RawPlan(value=b"{not json", headers=outcome.plan.headers, version=1)
    assert plan_head(broken) is None


@pytest.mark.parametrize(
    ("key", "version"),
    [(b"plan-00000042", 42), (b"plan-1", 1), (b"PO.x", None), (None, None), (b"plan-", None)],
)
def test_a_plan_record_key_names_its_version(key: bytes | None, version: int | None) -> None:
    assert _version_of(key) == version


def test_a_what_if_answer_is_the_diff_as_json() -> None:
    events = [
        *world(),
        ("CZ", demand_event("D-1", 3000, due=2)),
        ("PL", demand_event("D-2", 2000, due=5, requested_by="PL")),
    ]
    body = what_if_answer(
        WhatIfJob(
            states=fold(events),
            horizon=HORIZON,
            previous=None,
            changes=ChangeSet(changes=[DemandCancelled(demand_id="D-2")]),
            settings=SETTINGS,
        )
    )
    answer = json.loads(body)
    assert answer["base"]["allocations"] > answer["changed"]["allocations"] > 0
    assert answer["shortfall_delta"] == {} or all(
        isinstance(v, int) for v in answer["shortfall_delta"].values()
    )
    moved = answer["orders_that_would_move"]
    assert moved and {m["change"] for m in moved} <= {"issued", "revised", "cancelled"}
