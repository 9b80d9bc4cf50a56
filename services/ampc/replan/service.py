"""The optimizer service (`ampc serve optimizer`): event-triggered re-planning.

Three parts in one process, each a thin adapter around the pure modules of this package:

- the **router** (consumer group `<prefix>-optimizer-router`, partitions shared by every
  instance) turns canonical events that can change the plan into triggers on the one-partition
  topic `ampc.optimizer.triggers`;
- the **planner** (consumer group `<prefix>-optimizer` on that topic): the instance that holds
  its single partition is the active planner, the others are hot standbys with their replicas
  up to date. The active planner coalesces triggers, waits until the ledger's state shows the
  events behind them, takes the snapshot (recording the state-topic offsets), solves it in a
  child process and publishes the plan with its production-order changes in one Kafka
  transaction. Its transactional id is shared by every instance, so a planner that lost its
  partition (or was presumed dead) is fenced by the broker and cannot publish late. Each plan
  records the trigger offset it covers; a new active planner resumes after the last published
  plan's, so no trigger is planned twice and none is lost;
- **HTTP**: `/plan`, `POST /whatif`, `/metrics`, `/healthz`, `/readyz`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, ProducerFenced
from pydantic import ValidationError

from ampc.contract.envelope import ContractViolation, KafkaRecord, decode, encode
from ampc.contract.events import (
    INPUT_FAMILIES,
    AlertKind,
    AlertRaised,
    PlanPublished,
    Severity,
)
from ampc.contract.types import Priority
from ampc.ledger.state import DemandState, EntityKind
from ampc.optimizer.plan import SolverSettings
from ampc.optimizer.whatif import ChangeSet
from ampc.platform import plain_service
from ampc.platform.plain_service import run_until_stopped, start_http, stop_on_signals
from ampc.platform.stalls import StallWatch, settle_heap
from ampc.platform.topics import TopicRegistry, partition_key
from ampc.replan import metrics
from ampc.replan.jobs import SOURCE, ReplanJob, ReplanOutcome, SnapshotInvalid, WhatIfJob
from ampc.replan.plans_topic import PLAN_BYTES, RawPlan, latest_plan_record
from ampc.replan.publish import plan_summary
from ampc.replan.requests import state_end_offsets
from ampc.replan.snapshots import Horizon
from ampc.replan.solving import Preempted, SolverPool, unless_preempted
from ampc.replan.states import state_replica, states_of
from ampc.replan.triggers import (
    Coalescer,
    Trigger,
    TriggerKind,
    describe,
    requested,
    trigger_for,
)
from ampc.settings import Settings

log = logging.getLogger(__name__)

SEND_SLICE = 500  # records sent between yields to the event loop
SESSION_TIMEOUT_MS = 6000  # the broker's smallest allowed: the standby takes over soonest
RETRY_AFTER_FAILURE_S = 30.0


@dataclass(frozen=True)
class PlanInForce:
    """The plan in force as the service holds it: the record's bytes (handed to the solver's
    process, which alone decodes the whole plan) and its small head (None if unreadable)."""

    raw: RawPlan
    head: PlanPublished | None
    allocations: int

    @property
    def version(self) -> int:
        return self.raw.version

    def summary(self, active: bool) -> dict[str, Any]:
        plan = None if self.head is None else plan_summary(self.head, self.allocations)
        return {"active": active, "plan": plan}


class _Assignment(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: OptimizerService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.service.deactivate()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        metrics.REBALANCES.inc()
        if assigned:
            await self.service.activate(next(iter(assigned)))


class OptimizerService:
    def __init__(self, settings: Settings) -> None:
        if not settings.bootstrap_servers:
            raise ValueError("settings.bootstrap_servers must be set")
        self.settings = settings
        self.bootstrap = settings.bootstrap_servers
        self.registry = TopicRegistry(settings)
        self.horizon = Horizon.from_settings(settings)
        self.replica = state_replica(settings, f"{settings.topic_prefix}-optimizer-replica")
        self.solver = SolverPool(keep_spare=settings.replan_preempt)
        self.what_if_solver: SolverPool | None = None
        self.coalescer = Coalescer(settings.replan_window_s)
        self.triggers_tp = TopicPartition(self.registry.optimizer_triggers, 0)
        self.wake = asyncio.Event()
        # Set on every urgent trigger read, cleared when a batch is taken: a routine batch
        # being planned meanwhile is abandoned for it (`unless_preempted`), not finished first.
        self.urgent_waiting = asyncio.Event()
        self.ready = False
        self.active = False
        self.generation = 0  # bumped on every activation and deactivation
        self.plan: PlanInForce | None = None  # the plan in force, known while active
        self.resume_offset = 0  # the first trigger offset no published plan covers
        self.planner_consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.retry_at: float | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        stopping = stop_on_signals()
        runner = await start_http(
            "optimizer",
            self.settings.optimizer_port,
            [
                web.get("/readyz", self._readyz),
                web.get("/plan", self._plan_view),
                web.post("/whatif", self._what_if_view),
            ],
            client_max_size=4 * 1024 * 1024,
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.replica.start()
            await self.replica.ready.wait()
            await self.solver.warm_up()
            self.ready = True
            tasks = [
                asyncio.create_task(
                    StallWatch.for_service("optimizer").run(settle_heap_first=True),
                    name="loop-watch",
                ),
                asyncio.create_task(self._route(), name="router"),
                asyncio.create_task(self._read_triggers(), name="trigger-reader"),
                asyncio.create_task(self._plan_loop(), name="planner"),
            ]
            log.info(
                "optimizer ready (horizon %s, %d weeks)",
                self.horizon.start_week,
                self.horizon.weeks,
            )
            await run_until_stopped(tasks, stopping)
        finally:
            for task in tasks:  # when start-up itself failed or was stopped
                task.cancel()
            self.solver.close()  # first: a solve in progress has nothing left to publish to
            await self.deactivate()
            await self.replica.stop()
            if self.what_if_solver is not None:
                self.what_if_solver.close()
            await runner.cleanup()

    # ------------------------------------------------------------------ router

    async def _route(self) -> None:
        topics = [self.registry.canonical(family) for family in INPUT_FAMILIES]
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            group_id=f"{self.settings.topic_prefix}-optimizer-router",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            client_id=f"{self.settings.topic_prefix}-optimizer-router",
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all"
        )
        await consumer.start()
        await producer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                sends = []
                for tp, records in batches.items():
                    source = partition_key(tp)
                    for record in records:
                        trigger = self._trigger_of(record, source)
                        if trigger is None:
                            continue
                        metrics.TRIGGERS_ROUTED.labels(urgent=str(trigger.urgent).lower()).inc()
                        sends.append(
                            await producer.send(
                                self.registry.optimizer_triggers,
                                trigger.dump(),
                                key=trigger.kind.value.encode(),
                            )
                        )
                if sends:
                    await asyncio.gather(*sends)
                if batches:
                    await consumer.commit()  # only after every trigger is acknowledged
        finally:
            await producer.stop()
            await consumer.stop()

    def _trigger_of(self, record: Any, source: str) -> Trigger | None:
        try:
            envelope = decode(record.key, record.value, record.headers)
        except ContractViolation as violation:  # the gateway let it through: say so, go on
            log.error("unreadable canonical event %s@%d: %s", source, record.offset, violation)
            return None
        return trigger_for(
            envelope.payload,
            event_id=envelope.event_id,
            source=source,
            offset=record.offset,
            now=dt.datetime.now(dt.UTC),
            priority_of=self._priority_of,
        )

    def _priority_of(self, demand_id: str) -> Priority | None:
        state = self.replica.values[self.registry.state(EntityKind.DEMANDS.value)].get(demand_id)
        return state.priority if isinstance(state, DemandState) else None

    # ------------------------------------------------------------------ planner membership

    async def _read_triggers(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=f"{self.settings.topic_prefix}-optimizer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            client_id=f"{self.settings.topic_prefix}-optimizer-planner",
        )
        self.planner_consumer = consumer
        await consumer.start()
        consumer.subscribe([self.registry.optimizer_triggers], listener=_Assignment(self))
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                if not self.active:
                    continue
                now = asyncio.get_running_loop().time()
                for record in batches.get(self.triggers_tp, []):
                    try:
                        trigger = Trigger.load(record.value or b"")
                    except ValidationError as error:
                        log.error("unreadable trigger at offset %d: %s", record.offset, error)
                        continue
                    metrics.TRIGGERS.labels(
                        kind=trigger.kind.value, urgent=str(trigger.urgent).lower()
                    ).inc()
                    self.coalescer.add(record.offset, trigger, now)
                    if trigger.urgent:
                        self.urgent_waiting.set()
                if batches:
                    self.wake.set()
        finally:
            await consumer.stop()

    async def activate(self, tp: TopicPartition) -> None:
        """This instance now holds the trigger partition: fence any other planner, read the
        plan in force and resume after the triggers it covered."""
        await self.deactivate()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            transactional_id=f"{self.settings.topic_prefix}-optimizer-planner",
            enable_idempotence=True,
            acks="all",
            max_request_size=PLAN_BYTES,
            # zstd: a large plan is 10+ MB and aiokafka compresses on the event loop; gzip
            # took 0.4 s on 16 MB here, zstd 0.04 s (and compresses better).
            compression_type="zstd",
        )
        await producer.start()  # InitProducerId: the previous holder's epoch is now fenced
        self.producer = producer
        self.plan = await self._plan_in_force()
        assert self.planner_consumer is not None
        committed = await self.planner_consumer.committed(tp) or 0
        recorded = 0
        if self.plan is not None and self.plan.head is not None:
            recorded = self.plan.head.input_offsets.get(partition_key(tp), 0)
        self.resume_offset = max(committed, recorded)
        self.planner_consumer.seek(tp, self.resume_offset)
        self.coalescer.take()
        self.urgent_waiting.clear()
        self.generation += 1
        self.active = True
        metrics.ACTIVE.set(1)
        if self.plan is not None and self.plan.head is not None:
            self._record_plan_metrics(self.plan.head)
        log.info(
            "active planner (plan in force: %s; triggers from offset %d)",
            self.plan.version if self.plan else "none",
            self.resume_offset,
        )
        if self.plan is None:
            # Nothing published yet: plan what the ledger knows now, without waiting for events.
            initial = requested("initial plan", {}, dt.datetime.now(dt.UTC))
            self.coalescer.add(-1, initial, asyncio.get_running_loop().time())
        self.wake.set()

    async def deactivate(self) -> None:
        if not self.active and self.producer is None:
            return
        self.active = False
        self.generation += 1
        metrics.ACTIVE.set(0)
        self.coalescer.take()
        self.urgent_waiting.clear()
        producer, self.producer = self.producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):
                await producer.stop()
        if self.solver.busy:
            # Its plan could not be published any more; the CPU is better spent on whatever
            # this instance does next (and a plan head to read must not wait behind it).
            self.solver.restart()
        log.info("no longer the active planner")

    async def _plan_in_force(self) -> PlanInForce | None:
        raw = await latest_plan_record(self.bootstrap, self.registry.plans)
        if raw is None:
            return None
        found = None
        for attempt in (1, 2):  # a solver restarted under the read gets a second chance
            try:
                found = await self.solver.plan_head(raw)
                break
            except Exception as error:
                log.error("reading plan %d failed (attempt %d): %s", raw.version, attempt, error)
        if found is None:
            log.error("plan %d, the plan in force, is unreadable; planning without it", raw.version)
            return PlanInForce(raw=raw, head=None, allocations=0)
        head, allocations = found
        return PlanInForce(raw=raw, head=head, allocations=allocations)

    # ------------------------------------------------------------------ planning

    async def _plan_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadline = self.coalescer.deadline()
            if self.retry_at is not None and deadline is not None:
                deadline = max(deadline, self.retry_at)
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            self.wake.clear()
            now = loop.time()
            if not self.active or not self.coalescer.due(now):
                continue
            if self.retry_at is not None and now < self.retry_at:
                continue
            batch = self.coalescer.take()
            self.urgent_waiting.clear()
            await self._replan(batch, self.generation)

    async def _replan(self, batch: list[tuple[int, Trigger]], generation: int) -> None:
        triggers = [t for _, t in batch]
        started = time.perf_counter()
        await self._await_state(triggers)
        waited = time.perf_counter() - started
        if generation != self.generation:
            return  # the role ended during the wait: the next holder reads these triggers again
        preemptible = self.settings.replan_preempt and not any(t.urgent for t in triggers)
        if preemptible and self.urgent_waiting.is_set():
            # An urgent trigger came during the state wait: plan it with this batch at once,
            # before a solve is started only to be abandoned.
            self._preempted(batch, "before its solve")
            return
        previous = self.plan
        version = (previous.version if previous is not None else 0) + 1
        states = states_of(self.replica, self.registry)
        offsets = self.replica.offsets()  # taken with the copy: the input the plan reflects
        if not states[EntityKind.PRODUCTS] or not states[EntityKind.DEMANDS]:
            log.info(
                "nothing to plan yet (no products or no demands); %d triggers wait", len(batch)
            )
            return
        covered = max([offset + 1 for offset, _ in batch] + [self.resume_offset])
        job = ReplanJob(
            states=states,
            horizon=self.horizon,
            previous=previous.raw if previous is not None else None,
            settings=SolverSettings(time_limit_seconds=self.settings.replan_time_limit_s),
            header={
                "version": version,
                "trigger": describe(batch),
                "input_reference": {"state_offsets": offsets, "trigger_offset": covered},
            },
            input_offsets={**offsets, partition_key(self.triggers_tp): covered},
            plans_topic=self.registry.plans,
            order_topics=self._order_topics(),
        )
        try:
            # Snapshot, solve, order changes and encoding all happen in the child process.
            solve = self.solver.replan(job)
            if preemptible:
                # On large a routine solve takes a minute or more: an urgent demand must not
                # wait for it. Abandoned, its triggers are planned together with the urgent one.
                outcome = await unless_preempted(solve, self.urgent_waiting, self.solver.restart)
            else:
                outcome = await solve
        except Preempted:
            if generation == self.generation:  # else the next holder reads them again
                self._preempted(batch, f"in its solve (re-plan {version})")
            return
        except Exception as error:  # invalid states, or the solver died or overran: retry
            if generation != self.generation:
                log.info("re-plan %d ended with this planner's role (%s)", version, error)
                return
            if isinstance(error, SnapshotInvalid):
                message, cause = f"the ledger's state is not a valid snapshot: {error}", "snapshot"
            else:
                log.exception("re-plan %d failed", version)
                message = f"the solver failed: {type(error).__name__}: {error}"
                cause = type(error).__name__
            await self._failed(batch, version, message, cause, generation)
            return
        self.retry_at = None
        head = PlanPublished.model_validate_json(outcome.head_json)
        metrics.SOLVES.labels(status=head.solver_status.value).inc()
        if generation != self.generation or not self.active:
            log.warning("plan %d solved after this planner lost its role; not published", version)
            return
        solved = time.perf_counter() - started - waited
        published = await self._publish(head, outcome, generation)
        log.info(
            "plan %d: state wait %.2f s, snapshot and solve %.2f s (build %.2f, levels %.2f), "
            "publish %.2f s",
            version,
            waited,
            solved,
            outcome.build_seconds,
            outcome.solve_seconds,
            time.perf_counter() - started - waited - solved,
        )
        if not published:
            return
        self.plan = PlanInForce(raw=outcome.plan, head=head, allocations=outcome.allocations)
        self.resume_offset = covered
        self._record_metrics(head, outcome, triggers)
        del outcome
        # what lives now (the replica's states, the plan's head) out of the collector's scans;
        # a full release every so many plans collects cycles frozen by earlier settles
        settle_heap(release_frozen=version % FULL_SETTLE_EVERY_PLANS == 0)
        if self.planner_consumer is not None:
            with contextlib.suppress(KafkaError):
                await self.planner_consumer.commit({self.triggers_tp: covered})

    def _order_topics(self) -> dict[str, str]:
        """Nation -> its production-orders topic, for every nation that has one."""
        return {
            spec.party: spec.name
            for spec in self.registry.specs
            if spec.party is not None and spec.name == self.registry.orders(spec.party)
        }

    def _put_back(self, batch: list[tuple[int, Trigger]]) -> None:
        """Return triggers taken for a plan that was not published, to be planned again."""
        now = asyncio.get_running_loop().time()
        for offset, trigger in batch:
            self.coalescer.add(offset, trigger, now)

    def _preempted(self, batch: list[tuple[int, Trigger]], when: str) -> None:
        metrics.PREEMPTED.inc()
        log.info("routine re-plan abandoned %s for an urgent trigger", when)
        self._put_back(batch)

    async def _failed(
        self,
        batch: list[tuple[int, Trigger]],
        version: int,
        message: str,
        cause: str,
        generation: int,
    ) -> None:
        """No plan this time: keep the triggers for a retry and alert the operators."""
        metrics.FAILURES.labels(cause=cause).inc()
        log.error("re-plan %d: %s", version, message)
        self._put_back(batch)
        self.retry_at = asyncio.get_running_loop().time() + RETRY_AFTER_FAILURE_S
        alert = _optimizer_failed(version, f"re-plan {version} produced no plan: {message}")
        await self._publish_alerts([alert], generation)

    async def _await_state(self, triggers: list[Trigger]) -> None:
        """Wait until the ledger's state shows every event behind the triggers (or the ledger
        has passed them, e.g. refused them), for at most AMPC_STATE_WAIT_S."""
        awaited = [a for t in triggers for a in t.awaits]
        positions: dict[str, int] = {}
        for trigger in triggers:
            for key, offset in trigger.state_offsets.items():
                positions[key] = max(offset, positions.get(key, 0))
        deadline = time.monotonic() + self.settings.state_wait_s
        await self._replica_reaches(positions, deadline)
        if not awaited:
            return
        admin: AIOKafkaAdminClient | None = None
        passed_check_at = 0.0
        try:
            while awaited and time.monotonic() < deadline:
                awaited = [a for a in awaited if not self._shows(a)]
                if awaited and time.monotonic() - passed_check_at > 1.0:
                    # Refused events never show: ask how far the ledger has committed.
                    passed_check_at = time.monotonic()
                    if admin is None:
                        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
                        await admin.start()
                    passed = await self._ledger_positions(admin)
                    if all(passed.get(a.source, 0) > a.offset for a in awaited):
                        # Every state record written so far (before the ledger committed).
                        await self._replica_reaches(
                            await state_end_offsets(self.settings), deadline
                        )
                        return
                if awaited:
                    await asyncio.sleep(0.05)
            if awaited:
                log.warning(
                    "planning without %d awaited events (ledger behind by more than %.0f s)",
                    len(awaited),
                    self.settings.state_wait_s,
                )
        finally:
            if admin is not None:
                await admin.close()

    def _shows(self, awaited: Any) -> bool:
        state = self.replica.values[self.registry.state(awaited.kind)].get(awaited.entity_id)
        return state is not None and state.applied.has_applied(
            awaited.source, awaited.offset, awaited.event_id
        )

    async def _ledger_positions(self, admin: AIOKafkaAdminClient) -> dict[str, int]:
        group = f"{self.settings.topic_prefix}-ledger"
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        except KafkaError:
            return {}
        return {partition_key(tp): meta.offset for tp, meta in offsets.items()}

    async def _replica_reaches(self, positions: dict[str, int], deadline: float) -> None:
        """Wait (until `deadline`) for the replica to have read up to these positions."""
        while time.monotonic() < deadline:
            have = self.replica.offsets()
            if all(have.get(key, 0) >= offset for key, offset in positions.items()):
                return
            await asyncio.sleep(0.05)

    async def _publish(self, head: PlanPublished, outcome: ReplanOutcome, generation: int) -> bool:
        """The plan, its order changes and alerts in one transaction."""
        if outcome.frozen_moved:
            # Published orders inside the frozen horizon never change (order_changes skips
            # them); a plan that differs there is counted and logged for whoever investigates.
            metrics.FROZEN_DIFFERENCES.inc(len(outcome.frozen_moved))
            log.warning(
                "plan %d differs from committed orders %s (left as they were)",
                head.version,
                outcome.frozen_moved[:5],
            )
        for order in outcome.unrouted[:20]:
            log.error("no orders topic for the nation of order %s; not sent", order)
        alerts: list[AlertRaised] = []
        if head.solver_status.value in ("ERROR", "INFEASIBLE"):
            alerts.append(
                _optimizer_failed(
                    head.version,
                    f"plan {head.version} is {head.solver_status.value}: "
                    f"{head.status_message or 'no message'}",
                )
            )
        records = outcome.records + self._alert_records(alerts)
        if not await self._send_transaction(records, generation):
            return False
        metrics.PLANS_PUBLISHED.inc()
        for change, count in outcome.changes.items():
            metrics.ORDERS.labels(change=change).inc(count)
        for alert in alerts:
            metrics.ALERTS.labels(service="optimizer", kind=alert.kind.value).inc()
        log.info(
            "plan %d published (%s, %d order changes): %s",
            head.version,
            head.solver_status.value,
            sum(outcome.changes.values()),
            head.trigger,
        )
        return True

    def _alert_records(self, alerts: list[AlertRaised]) -> list[tuple[str, KafkaRecord]]:
        return [
            (self.registry.alerts, encode(alert, source=SOURCE, event_id=alert.alert_id))
            for alert in alerts
        ]

    async def _publish_alerts(self, alerts: list[AlertRaised], generation: int) -> None:
        if await self._send_transaction(self._alert_records(alerts), generation):
            for alert in alerts:
                metrics.ALERTS.labels(service="optimizer", kind=alert.kind.value).inc()

    async def _send_transaction(
        self, records: Sequence[tuple[str, KafkaRecord]], generation: int
    ) -> bool:
        producer = self.producer
        if producer is None or generation != self.generation:
            return False
        try:
            async with producer.transaction():
                for n, (topic, record) in enumerate(records, start=1):
                    await producer.send(topic, record.value, key=record.key, headers=record.headers)
                    if n % SEND_SLICE == 0:
                        await asyncio.sleep(0)  # tens of thousands of orders: let others run
        except ProducerFenced:
            log.warning("another planner took over; this one is fenced and stands by")
            await self.deactivate()
            return False
        return True

    def _record_metrics(
        self, head: PlanPublished, outcome: ReplanOutcome, triggers: list[Trigger]
    ) -> None:
        for level, seconds in outcome.level_seconds.items():
            metrics.LEVEL_SECONDS.labels(level=str(level)).observe(seconds)
        now = dt.datetime.now(dt.UTC)
        for trigger in triggers:
            if trigger.kind is not TriggerKind.MANUAL:
                metrics.TRIGGER_TO_PLAN.labels(urgent=str(trigger.urgent).lower()).observe(
                    max(0.0, (now - trigger.created_at).total_seconds())
                )
        metrics.CHURN.set(outcome.churn_rounds)
        self._record_plan_metrics(head)

    def _record_plan_metrics(self, event: PlanPublished) -> None:
        metrics.GAP.set(event.gap or 0.0)
        for status in ("OPTIMAL", "FEASIBLE", "TIME_LIMIT", "INFEASIBLE", "ERROR"):
            metrics.STATUS.labels(status=status).set(
                1 if event.solver_status.value == status else 0
            )
        requested = sum(d.requested for d in event.demands)
        planned = sum(d.planned for d in event.demands)
        metrics.COVERAGE.set(planned / requested if requested else 1.0)
        metrics.SHORTFALL.clear()
        demands = self.replica.values[self.registry.state(EntityKind.DEMANDS.value)]
        for outlook in event.demands:
            state = demands.get(outlook.demand_id)
            if outlook.shortfall <= 0 or not isinstance(state, DemandState):
                continue
            product = state.product or state.interop_group or "unknown"
            metrics.SHORTFALL.labels(product=product, recipient=state.recipient).inc(
                outlook.shortfall
            )
        pools = self.replica.values[self.registry.state(EntityKind.POOLS.value)]
        for pool_id, committed in event.money_committed_cents.items():
            metrics.POOL_MONEY.labels(pool=pool_id, state="committed").set(committed)
            pool = pools.get(pool_id)
            paid = getattr(pool, "paid_cents", 0)
            metrics.POOL_MONEY.labels(pool=pool_id, state="paid").set(paid)

    # ------------------------------------------------------------------ HTTP

    async def _readyz(self, request: web.Request) -> web.Response:
        body = {"service": "optimizer", "ready": self.ready, "active": self.active}
        return web.json_response(body, status=200 if self.ready else 503)

    async def _plan_view(self, request: web.Request) -> web.Response:
        plan = self.plan if self.active else await self._plan_in_force()
        if plan is None:
            return web.json_response({"active": self.active, "plan": None})
        return web.json_response(plan.summary(self.active))

    async def _what_if_view(self, request: web.Request) -> web.Response:
        """Changes applied to the current snapshot, solved without publishing, as a diff."""
        if not self.ready:
            return web.json_response(
                {"error": "not ready: the state replica is loading"}, status=503
            )
        try:
            changes = ChangeSet.model_validate_json(await request.read())
            limit = float(request.query.get("time_limit", self.settings.replan_time_limit_s))
            settings = SolverSettings(time_limit_seconds=limit)
        except (ValidationError, ValueError) as error:
            return web.json_response(
                {"error": "bad what-if request", "detail": str(error)}, status=400
            )
        if self.active:
            previous = self.plan.raw if self.plan is not None else None
        else:
            previous = await latest_plan_record(self.bootstrap, self.registry.plans)
        job = WhatIfJob(
            states=states_of(self.replica, self.registry),
            horizon=self.horizon,
            previous=previous,
            changes=changes,
            settings=settings,
        )
        if self.what_if_solver is None:
            self.what_if_solver = SolverPool()
        try:
            body = await self.what_if_solver.what_if(job)
        except ValueError as error:  # a change names something the snapshot does not have
            return web.json_response(
                {"error": "bad what-if request", "detail": str(error)}, status=400
            )
        return web.Response(body=body, content_type="application/json")


FULL_SETTLE_EVERY_PLANS: Final = 50
"""How often (in plans) the optimizer's heap settling also releases what it froze before: a
full collection over the replica, a loop stall of tens of milliseconds or more on large."""


def _optimizer_failed(version: int, message: str) -> AlertRaised:
    return AlertRaised(
        alert_id=f"optimizer-failed:plan-{version}",
        kind=AlertKind.OPTIMIZER_FAILED,
        severity=Severity.CRITICAL,
        subject_id=f"plan-{version:08d}",
        message=message[:2000],
    )


def serve(settings: Settings) -> None:
    """Run the optimizer service in the foreground until SIGTERM/SIGINT."""
    plain_service.serve(settings, OptimizerService(settings).run)
