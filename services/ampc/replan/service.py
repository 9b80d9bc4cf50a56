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
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, ProducerFenced
from pydantic import ValidationError

from ampc.contract.envelope import ContractViolation, decode, encode
from ampc.contract.events import (
    INPUT_FAMILIES,
    AlertKind,
    AlertRaised,
    Event,
    PlanPublished,
    Severity,
)
from ampc.contract.types import Priority
from ampc.ledger.state import DemandState, EntityKind
from ampc.optimizer.plan import Plan, SolverSettings
from ampc.optimizer.whatif import ChangeSet
from ampc.platform import plain_service
from ampc.platform.plain_service import run_until_stopped, start_http, stop_on_signals
from ampc.platform.topics import TopicRegistry
from ampc.replan import metrics
from ampc.replan.orders import (
    LineRef,
    Order,
    OrderChange,
    frozen_moves,
    order_changes,
    orders_of,
)
from ampc.replan.plans_topic import PLAN_BYTES, latest_plan
from ampc.replan.publish import frozen_until, plan_event
from ampc.replan.requests import state_end_offsets
from ampc.replan.snapshots import Horizon, PlanningInput, planning_input
from ampc.replan.solving import SolverPool
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

SOURCE = "/ampc/optimizer"
SESSION_TIMEOUT_MS = 6000  # the broker's smallest allowed: the standby takes over soonest
RETRY_AFTER_FAILURE_S = 30.0


def plan_summary(plan: PlanPublished | None, active: bool) -> dict[str, Any]:
    if plan is None:
        return {"active": active, "plan": None}
    requested = sum(d.requested for d in plan.demands)
    planned = sum(d.planned for d in plan.demands)
    return {
        "active": active,
        "plan": {
            "plan_id": plan.plan_id,
            "version": plan.version,
            "trigger": plan.trigger,
            "status": plan.solver_status.value,
            "objective": plan.objective.model_dump(),
            "gap": plan.gap,
            "coverage": planned / requested if requested else 1.0,
            "demands_short": sum(1 for d in plan.demands if d.shortfall > 0),
            "allocations": len(plan.allocations),
            "input_offsets": plan.input_offsets,
        },
    }


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
        self.solver = SolverPool()
        self.what_if_solver: SolverPool | None = None
        self.coalescer = Coalescer(settings.replan_window_s)
        self.triggers_tp = TopicPartition(self.registry.optimizer_triggers, 0)
        self.wake = asyncio.Event()
        self.ready = False
        self.active = False
        self.generation = 0  # bumped on every activation and deactivation
        self.plan: PlanPublished | None = None  # the plan in force, known while active
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
                asyncio.create_task(self._watch_loop(), name="loop-watch"),
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
            await self.deactivate()
            await self.replica.stop()
            self.solver.close()
            if self.what_if_solver is not None:
                self.what_if_solver.close()
            await runner.cleanup()

    async def _watch_loop(self) -> None:
        """Records how late the event loop runs: a solve must never stall it."""
        worst = 0.0
        interval = 0.05
        while True:
            started = time.perf_counter()
            await asyncio.sleep(interval)
            late = time.perf_counter() - started - interval
            if late > worst:
                worst = late
                metrics.LOOP_STALL.set(worst)

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
                    source = f"{tp.topic}:{tp.partition}"
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
            compression_type="gzip",
        )
        await producer.start()  # InitProducerId: the previous holder's epoch is now fenced
        self.producer = producer
        self.plan = await latest_plan(self.bootstrap, self.registry.plans)
        assert self.planner_consumer is not None
        committed = await self.planner_consumer.committed(tp) or 0
        recorded = 0
        if self.plan is not None:
            recorded = self.plan.input_offsets.get(f"{tp.topic}:{tp.partition}", 0)
        self.resume_offset = max(committed, recorded)
        self.planner_consumer.seek(tp, self.resume_offset)
        self.coalescer.take()
        self.generation += 1
        self.active = True
        metrics.ACTIVE.set(1)
        if self.plan is not None:
            self._record_plan_metrics(self.plan)
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
        producer, self.producer = self.producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):
                await producer.stop()
        log.info("no longer the active planner")

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
            await self._replan(batch, self.generation)

    async def _replan(self, batch: list[tuple[int, Trigger]], generation: int) -> None:
        triggers = [t for _, t in batch]
        started = time.perf_counter()
        await self._await_state(triggers)
        waited = time.perf_counter() - started
        previous = self.plan
        version = (previous.version if previous is not None else 0) + 1
        states = states_of(self.replica, self.registry)
        offsets = self.replica.offsets()  # taken with the copy: the input the plan reflects
        if not states[EntityKind.PRODUCTS] or not states[EntityKind.DEMANDS]:
            log.info(
                "nothing to plan yet (no products or no demands); %d triggers wait", len(batch)
            )
            return
        try:
            # Assembling a large snapshot takes a while: a thread keeps the loop (and the
            # heartbeats) turning; the states are copies and their models are never mutated.
            pinput = await asyncio.to_thread(planning_input, states, self.horizon, self.plan)
            assembled = time.perf_counter() - started - waited
        except ValueError as error:  # the states do not make a valid snapshot: say so, retry
            await self._failed(
                batch,
                version,
                f"the ledger's state is not a valid snapshot: {error}",
                "snapshot",
                generation,
            )
            return
        covered = max([offset + 1 for offset, _ in batch] + [self.resume_offset])
        settings = SolverSettings(time_limit_seconds=self.settings.replan_time_limit_s)
        header = {
            "version": version,
            "trigger": describe(batch),
            "input_reference": {"state_offsets": offsets, "trigger_offset": covered},
        }
        try:
            # Cold solves: a warm start would make the plan depend on the chain of plans
            # before it, and a replay from the recorded offsets could not reproduce it.
            plan, _ = await self.solver.solve(pinput.snapshot, settings, header, None)
        except Exception as error:  # the solver died or overran: keep the triggers, retry later
            log.exception("re-plan %d failed", version)
            await self._failed(
                batch,
                version,
                f"the solver failed: {type(error).__name__}: {error}",
                type(error).__name__,
                generation,
            )
            return
        self.retry_at = None
        metrics.SOLVES.labels(status=plan.status.value).inc()
        if generation != self.generation or not self.active:
            log.warning("plan %d solved after this planner lost its role; not published", version)
            return
        event = await asyncio.to_thread(
            plan_event, plan, input_offsets={**offsets, _tp_key(self.triggers_tp): covered}
        )
        solved = time.perf_counter() - started - waited - assembled
        published = await self._publish(event, previous, pinput, generation)
        log.info(
            "plan %d: state wait %.2f s, snapshot %.2f s, solve %.2f s (build %.2f, levels %.2f), "
            "publish %.2f s",
            version,
            waited,
            assembled,
            solved,
            plan.build_seconds,
            plan.solve_seconds,
            time.perf_counter() - started - waited - assembled - solved,
        )
        if not published:
            return
        self.plan, self.resume_offset = event, covered
        self._record_metrics(plan, event, triggers)
        if self.planner_consumer is not None:
            with contextlib.suppress(KafkaError):
                await self.planner_consumer.commit({self.triggers_tp: covered})

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
        now = asyncio.get_running_loop().time()
        for offset, trigger in batch:
            self.coalescer.add(offset, trigger, now)
        self.retry_at = now + RETRY_AFTER_FAILURE_S
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
        return {_tp_key(tp): meta.offset for tp, meta in offsets.items()}

    async def _replica_reaches(self, positions: dict[str, int], deadline: float) -> None:
        """Wait (until `deadline`) for the replica to have read up to these positions."""
        while time.monotonic() < deadline:
            have = self.replica.offsets()
            if all(have.get(key, 0) >= offset for key, offset in positions.items()):
                return
            await asyncio.sleep(0.05)

    async def _publish(
        self,
        event: PlanPublished,
        previous: PlanPublished | None,
        pinput: PlanningInput,
        generation: int,
    ) -> bool:
        """The plan, its order changes and alerts in one transaction."""
        frozen_end = frozen_until(self.horizon.start_week, self.horizon.frozen_weeks)
        lines = _lines_with_history(pinput.lines, previous)

        def compare() -> tuple[dict[str, Order], dict[str, Order], list[OrderChange]]:
            before = orders_of(previous.allocations, lines) if previous is not None else {}
            after = orders_of(event.allocations, lines)
            return (
                before,
                after,
                order_changes(before, after, plan_version=event.version, frozen_until=frozen_end),
            )

        # Thousands of allocations: off the event loop, like every other heavy step.
        before, after, changes = await asyncio.to_thread(compare)
        alerts: list[AlertRaised] = []
        moved = frozen_moves(before, after, frozen_end)
        if moved:
            # Published orders inside the frozen horizon never change (order_changes skips
            # them); a plan that differs there is counted and logged for whoever investigates.
            metrics.FROZEN_DIFFERENCES.inc(len(moved))
            log.warning(
                "plan %d differs from committed orders %s (left as they were)",
                event.version,
                moved[:5],
            )
        if event.solver_status.value in ("ERROR", "INFEASIBLE"):
            alerts.append(
                _optimizer_failed(
                    event.version,
                    f"plan {event.version} is {event.solver_status.value}: "
                    f"{event.status_message or 'no message'}",
                )
            )
        records: list[tuple[str, Event, str]] = [(self.registry.plans, event, f"{event.plan_id}")]
        order_topics = {
            spec.party
            for spec in self.registry.specs
            if spec.party is not None and spec.name == self.registry.orders(spec.party)
        }
        for change in changes:
            nation = change.nation
            if nation not in order_topics:
                log.error(
                    "no orders topic for nation %s; order %s not sent", nation, change.entity_id()
                )
                continue
            records.append(
                (self.registry.orders(nation), change, f"{change.entity_id()}:v{event.version}")
            )
        records += [(self.registry.alerts, alert, alert.alert_id) for alert in alerts]
        sent = await self._send_transaction(records, generation)
        if sent:
            metrics.PLANS_PUBLISHED.inc()
            for change in changes:
                metrics.ORDERS.labels(change=type(change).name).inc()
            for alert in alerts:
                metrics.ALERTS.labels(service="optimizer", kind=alert.kind.value).inc()
            log.info(
                "plan %d published (%s, %d order changes): %s",
                event.version,
                event.solver_status.value,
                len(changes),
                event.trigger,
            )
        return sent

    async def _publish_alerts(self, alerts: list[AlertRaised], generation: int) -> None:
        records = [(self.registry.alerts, alert, alert.alert_id) for alert in alerts]
        if await self._send_transaction(records, generation):
            for alert in alerts:
                metrics.ALERTS.labels(service="optimizer", kind=alert.kind.value).inc()

    async def _send_transaction(
        self, records: Sequence[tuple[str, Event, str]], generation: int
    ) -> bool:
        producer = self.producer
        if producer is None or generation != self.generation:
            return False
        encoded = await asyncio.to_thread(
            lambda: [
                (topic, encode(payload, source=SOURCE, event_id=event_id))
                for topic, payload, event_id in records
            ]
        )
        try:
            async with producer.transaction():
                for topic, record in encoded:
                    await producer.send(topic, record.value, key=record.key, headers=record.headers)
        except ProducerFenced:
            log.warning("another planner took over; this one is fenced and stands by")
            await self.deactivate()
            return False
        return True

    def _record_metrics(self, plan: Plan, event: PlanPublished, triggers: list[Trigger]) -> None:
        for term in plan.objective:
            metrics.LEVEL_SECONDS.labels(level=str(term.level)).observe(term.solve_seconds)
        now = dt.datetime.now(dt.UTC)
        for trigger in triggers:
            if trigger.kind is not TriggerKind.MANUAL:
                metrics.TRIGGER_TO_PLAN.labels(urgent=str(trigger.urgent).lower()).observe(
                    max(0.0, (now - trigger.created_at).total_seconds())
                )
        metrics.CHURN.set(plan.diff.rounds_moved if plan.diff is not None else 0)
        self._record_plan_metrics(event)

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
        plan = self.plan if self.active else await latest_plan(self.bootstrap, self.registry.plans)
        return web.json_response(plan_summary(plan, self.active))

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
        previous = (
            self.plan if self.active else await latest_plan(self.bootstrap, self.registry.plans)
        )
        states = states_of(self.replica, self.registry)
        pinput = await asyncio.to_thread(planning_input, states, self.horizon, previous)
        if self.what_if_solver is None:
            self.what_if_solver = SolverPool()
        try:
            result = await self.what_if_solver.what_if(pinput.snapshot, changes, settings)
        except ValueError as error:  # a change names something the snapshot does not have
            return web.json_response(
                {"error": "bad what-if request", "detail": str(error)}, status=400
            )
        lines = pinput.lines
        base = plan_event(result.base, input_offsets={})
        changed = plan_event(result.changed, input_offsets={})
        frozen_end = frozen_until(self.horizon.start_week, self.horizon.frozen_weeks)
        moves = order_changes(
            orders_of(base.allocations, lines),
            orders_of(changed.allocations, lines),
            plan_version=1,
            frozen_until=frozen_end,
        )
        return web.json_response(
            {
                "base": plan_summary(base, False)["plan"],
                "changed": plan_summary(changed, False)["plan"],
                "objective_delta": result.objective_delta,
                "shortfall_delta": result.shortfall_delta,
                "rounds_moved": result.diff.rounds_moved,
                "orders_that_would_move": [
                    {"change": type(m).name, **m.model_dump(mode="json", exclude={"demand_refs"})}
                    for m in moves
                ],
                "notes": pinput.notes,
            }
        )


def _tp_key(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


def _optimizer_failed(version: int, message: str) -> AlertRaised:
    return AlertRaised(
        alert_id=f"optimizer-failed:plan-{version}",
        kind=AlertKind.OPTIMIZER_FAILED,
        severity=Severity.CRITICAL,
        subject_id=f"plan-{version:08d}",
        message=message[:2000],
    )


def _lines_with_history(
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


def serve(settings: Settings) -> None:
    """Run the optimizer service in the foreground until SIGTERM/SIGINT."""
    plain_service.serve(settings, OptimizerService(settings).run)
