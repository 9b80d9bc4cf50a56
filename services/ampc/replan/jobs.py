"""What the planner's child process does: a whole re-plan, from states to encoded records.

A large plan is tens of thousands of allocations, ten and more MB of JSON. Reading or writing
it is one long call that holds the GIL, and a thread does not help: the event loop waits for
the GIL all the same. So the plan in force travels to the child as the bytes of its Kafka
record, and the child assembles the snapshot, solves, compares the production orders and
encodes every record. The event loop only moves bytes and keeps the plan's small head.

Everything here is pure apart from the solver's clock, and picklable across the process pool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ampc.contract.envelope import KafkaRecord, encode
from ampc.contract.events import PlanPublished
from ampc.optimizer.from_ledger import States
from ampc.optimizer.plan import SolverSettings
from ampc.optimizer.whatif import ChangeSet, what_if
from ampc.replan.orders import LineRef, frozen_moves, order_changes, orders_of
from ampc.replan.plans_topic import RawPlan, read_plan_record
from ampc.replan.publish import frozen_until, plan_event, plan_summary
from ampc.replan.snapshots import Horizon, planning_input

SOURCE = "/ampc/optimizer"


class SnapshotInvalid(Exception):
    """The ledger's states do not make a valid snapshot (a retry may see better states)."""


@dataclass(frozen=True)
class ReplanJob:
    states: States
    horizon: Horizon
    previous: RawPlan | None
    settings: SolverSettings
    header: dict[str, Any]  # version, trigger and input_reference for the plan
    input_offsets: dict[str, int]  # state-topic and trigger offsets the plan reflects
    plans_topic: str
    order_topics: dict[str, str]  # nation -> its production-orders topic


@dataclass(frozen=True)
class ReplanOutcome:
    records: list[tuple[str, KafkaRecord]]  # topic and record: the plan first, then orders
    plan: RawPlan
    head_json: str  # see `head`
    allocations: int
    level_seconds: dict[int, float]
    churn_rounds: int
    build_seconds: float
    solve_seconds: float
    changes: dict[str, int]  # order changes by kind
    frozen_moved: list[str]  # orders the plan would have moved inside the frozen horizon
    unrouted: list[str]  # orders of nations with no orders topic (not sent)
    notes: list[str] = field(default_factory=list)


def head(event: PlanPublished) -> PlanPublished:
    """The plan without its allocations and reasons: what the service keeps in memory for
    its metrics and `/plan` (small, so parsing it never holds the event loop)."""
    return event.model_copy(
        update={
            "allocations": [],
            "demands": [d.model_copy(update={"reasons": []}) for d in event.demands],
        }
    )


def read_raw(raw: RawPlan | None) -> PlanPublished | None:
    return None if raw is None else read_plan_record(raw.value, raw.headers)


def plan_head(raw: RawPlan) -> tuple[str, int] | None:
    """The head of a plans-topic record (as JSON) and its number of allocations."""
    plan = read_raw(raw)
    return None if plan is None else (head(plan).model_dump_json(), len(plan.allocations))


def lines_with_history(
    lines: dict[str, LineRef], previous: PlanPublished | None
) -> dict[str, LineRef]:
    """Lines of the current states; a line only the previous plan knows keeps a reference
    derived from the plan (so its orders can still be cancelled)."""
    if previous is None:
        return lines
    known = dict(lines)
    for a in previous.allocations:
        if a.source_kind == "line" and a.source_id not in known and a.plant_id is not None:
            known[a.source_id] = LineRef(plant_id=a.plant_id, nation=a.origin, line_id=a.source_id)
    return known


def replan(job: ReplanJob) -> ReplanOutcome:
    """Snapshot, solve, order changes and encoded records for one re-plan."""
    from ampc.optimizer.planner import solve_snapshot

    previous = read_raw(job.previous)
    try:
        pinput = planning_input(job.states, job.horizon, previous)
    except ValueError as error:
        raise SnapshotInvalid(str(error)) from None
    # Cold solves: a warm start would make the plan depend on the chain of plans before
    # it, and a replay from the recorded offsets could not reproduce it.
    plan, _ = solve_snapshot(pinput.snapshot, job.settings, warm_start=None, **job.header)
    event = plan_event(plan, input_offsets=job.input_offsets)
    frozen_end = frozen_until(job.horizon.start_week, job.horizon.frozen_weeks)
    lines = lines_with_history(pinput.lines, previous)
    before = orders_of(previous.allocations, lines) if previous is not None else {}
    after = orders_of(event.allocations, lines)
    changes = order_changes(before, after, plan_version=event.version, frozen_until=frozen_end)
    plan_record = encode(event, source=SOURCE, event_id=event.plan_id)
    records = [(job.plans_topic, plan_record)]
    unrouted: list[str] = []
    counts: dict[str, int] = {}
    for change in changes:
        topic = job.order_topics.get(change.nation)
        if topic is None:
            unrouted.append(change.entity_id())
            continue
        event_id = f"{change.entity_id()}:v{event.version}"
        records.append((topic, encode(change, source=SOURCE, event_id=event_id)))
        counts[type(change).name] = counts.get(type(change).name, 0) + 1
    return ReplanOutcome(
        records=records,
        plan=RawPlan(value=plan_record.value, headers=plan_record.headers, version=event.version),
        head_json=head(event).model_dump_json(),
        allocations=len(event.allocations),
        level_seconds={term.level: term.solve_seconds for term in plan.objective},
        churn_rounds=plan.diff.rounds_moved if plan.diff is not None else 0,
        build_seconds=plan.build_seconds,
        solve_seconds=plan.solve_seconds,
        changes=counts,
        frozen_moved=frozen_moves(before, after, frozen_end),
        unrouted=unrouted,
        notes=pinput.notes,
    )


@dataclass(frozen=True)
class WhatIfJob:
    states: States
    horizon: Horizon
    previous: RawPlan | None
    changes: ChangeSet
    settings: SolverSettings


def what_if_answer(job: WhatIfJob) -> bytes:
    """The what-if diff as the JSON body `POST /whatif` answers with.

    Raises ValueError when a change names something the snapshot does not have."""
    previous = read_raw(job.previous)
    pinput = planning_input(job.states, job.horizon, previous)
    result = what_if(pinput.snapshot, job.changes, job.settings)
    base = plan_event(result.base, input_offsets={})
    changed = plan_event(result.changed, input_offsets={})
    moves = order_changes(
        orders_of(base.allocations, pinput.lines),
        orders_of(changed.allocations, pinput.lines),
        plan_version=1,
        frozen_until=frozen_until(job.horizon.start_week, job.horizon.frozen_weeks),
    )
    body = {
        "base": plan_summary(base, len(base.allocations)),
        "changed": plan_summary(changed, len(changed.allocations)),
        "objective_delta": result.objective_delta,
        "shortfall_delta": result.shortfall_delta,
        "rounds_moved": result.diff.rounds_moved,
        "orders_that_would_move": [
            {"change": type(m).name, **m.model_dump(mode="json", exclude={"demand_refs"})}
            for m in moves
        ],
        "notes": pinput.notes,
    }
    return json.dumps(body).encode()
