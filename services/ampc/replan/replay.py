"""Replay: re-solve a published plan from the state-topic offsets it recorded.

The states are read back from every state-topic partition up to the recorded offset (latest
value per key), the snapshot is assembled as the service did (with the plan before it as churn
reference and frozen input) and its SHA-256 is compared with the one the plan recorded, which
proves the input is the same before anything is solved. Then the snapshot is solved with the
recorded solver settings and the allocations and objective terms are compared.

A state topic compacted after the plan may have lost a record the plan saw; the digest check
then fails and says so, rather than claiming a replay it cannot make.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from ampc.contract.events import PlanPublished
from ampc.ledger.fold import state_from_json
from ampc.ledger.state import EntityKind, EntityState
from ampc.optimizer.from_ledger import States
from ampc.optimizer.plan import Plan
from ampc.optimizer.planner import snapshot_digest, solve_snapshot
from ampc.optimizer.snapshot import Snapshot
from ampc.platform.ranges import read_ranges
from ampc.platform.topics import TopicRegistry
from ampc.replan.plans_topic import latest_plan
from ampc.replan.publish import plan_event, solver_settings_of
from ampc.replan.snapshots import Horizon, planning_input
from ampc.settings import Settings


@dataclass
class Replay:
    recorded: PlanPublished
    snapshot: Snapshot
    digest_matches: bool
    plan: Plan | None = None
    differences: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return self.digest_matches and self.plan is not None and not self.differences


async def states_at(bootstrap: str, registry: TopicRegistry, offsets: dict[str, int]) -> States:
    """Every entity's state as of the recorded `topic:partition -> next offset` positions."""
    kinds = {registry.state(kind.value): kind for kind in EntityKind}
    wanted: dict[TopicPartition, int] = {}
    for key, end in offsets.items():
        topic, _, partition = key.rpartition(":")
        if topic in kinds and end > 0:
            wanted[TopicPartition(topic, int(partition))] = end
    states: dict[EntityKind, dict[str, EntityState]] = {kind: {} for kind in EntityKind}
    if not wanted:
        return states
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        ranges = {tp: (None, end) for tp, end in wanted.items()}
        async for tp, record in read_ranges(consumer, ranges):
            table = states[kinds[tp.topic]]
            key = (record.key or b"").decode()
            if record.value is None:
                table.pop(key, None)
            else:
                table[key] = state_from_json(kinds[tp.topic], record.value)
    finally:
        await consumer.stop()
    return states


def compare(recorded: PlanPublished, replayed: PlanPublished) -> list[str]:
    """What differs between a published plan and its replay (empty: the same plan)."""
    differences = []
    if recorded.solver_status != replayed.solver_status:
        differences.append(
            f"status {recorded.solver_status.value} != {replayed.solver_status.value}"
        )
    if recorded.objective != replayed.objective:
        differences.append(f"objective {recorded.objective} != {replayed.objective}")
    if recorded.allocations != replayed.allocations:
        differing = len(set(recorded.allocations) ^ set(replayed.allocations))
        differences.append(f"{differing} allocations differ")
    return differences


async def replay(settings: Settings, version: int | None = None) -> Replay:
    """Re-solve plan `version` (default: the plan in force) from its recorded inputs."""
    bootstrap = settings.bootstrap_servers or ""
    registry = TopicRegistry(settings)
    recorded = await latest_plan(bootstrap, registry.plans, version=version)
    if recorded is None:
        raise LookupError(
            f"no plan {version} on {registry.plans}" if version else f"no plan on {registry.plans}"
        )
    previous = None
    if recorded.version > 1:
        previous = await latest_plan(bootstrap, registry.plans, version=recorded.version - 1)
    states = await states_at(bootstrap, registry, recorded.input_offsets)
    horizon = Horizon.from_settings(settings)
    if recorded.horizon_start is not None and recorded.weeks is not None:
        horizon = Horizon(
            start_week=recorded.horizon_start,
            weeks=recorded.weeks,
            frozen_weeks=recorded.frozen_horizon_weeks,
            transit=horizon.transit,
        )
    snapshot = planning_input(states, horizon, previous).snapshot
    result = Replay(
        recorded=recorded,
        snapshot=snapshot,
        digest_matches=snapshot_digest(snapshot) == recorded.snapshot_sha256,
    )
    if not result.digest_matches:
        result.differences.append(
            "the snapshot rebuilt from the recorded offsets is not the one the plan was made "
            "from (a state topic was compacted since, or AMPC_TRANSIT_FILE differs)"
        )
        return result
    plan, _ = solve_snapshot(
        snapshot,
        solver_settings_of(recorded),
        version=recorded.version,
        trigger=recorded.trigger,
        input_reference={"replay_of": recorded.plan_id},
    )
    result.plan = plan
    result.differences = compare(recorded, plan_event(plan, input_offsets=recorded.input_offsets))
    return result
