"""The tracker (`ampc serve tracker`): the plan in force against reality, continuously.

It follows the plans topic and keeps a replica of the ledger's state topics; whenever either
changes (debounced), it evaluates the pure rules of `tracker.rules` in a child process (a large
plan is too big to decode or judge on the event loop), publishes each new alert
once to `ampc.alerts`, and for drift that makes the plan wrong writes a re-plan request to the
optimizer's trigger topic. Alerts already on the topic are read at start, so a restarted
tracker does not raise them again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import Counter

from ampc.contract.envelope import ContractViolation, decode, encode
from ampc.contract.events import AlertRaised
from ampc.platform import plain_service
from ampc.platform.children import ChildPool
from ampc.platform.plain_service import run_until_stopped, start_http, stop_on_signals
from ampc.platform.ranges import read_ranges
from ampc.platform.stalls import StallWatch
from ampc.platform.topics import TopicRegistry
from ampc.replan.metrics import ALERTS
from ampc.replan.plans_topic import RawPlan, RawPlanFollower
from ampc.replan.states import state_replica, states_of
from ampc.replan.triggers import Trigger, TriggerKind
from ampc.settings import Settings
from ampc.tracker.rules import Finding, Thresholds, evaluate_record

log = logging.getLogger(__name__)

SERVICE = "tracker"
SOURCE = "/ampc/tracker"
DEBOUNCE_S = 1.0
JUDGE_TIMEOUT_S = 120.0
RETRY_AFTER_FAILURE_S = 10.0

EVALUATIONS = Counter(
    "ampc_tracker_evaluations_total", "Times the tracker compared plan and state."
)
REPLANS = Counter(
    "ampc_tracker_replan_requests_total", "Re-plan requests the tracker sent to the optimizer."
)


async def raised_alert_ids(bootstrap: str, topic: str) -> set[str]:
    """Ids of every alert on the alerts topic (one partition), read to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    ids: set[str] = set()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        async for _tp, record in read_ranges(consumer, {tp: (None, end)}, give_up_after_idle=5):
            try:
                payload = decode(record.key, record.value, record.headers).payload
            except ContractViolation:
                continue
            if isinstance(payload, AlertRaised):
                ids.add(payload.alert_id)
    finally:
        await consumer.stop()
    return ids


class TrackerService:
    def __init__(self, settings: Settings) -> None:
        if not settings.bootstrap_servers:
            raise ValueError("settings.bootstrap_servers must be set")
        self.settings = settings
        self.bootstrap = settings.bootstrap_servers
        self.registry = TopicRegistry(settings)
        self.thresholds = Thresholds(
            slip_weeks=settings.slip_threshold_weeks,
            behind_percent=settings.behind_threshold_percent,
        )
        self.replica = state_replica(settings, f"{settings.topic_prefix}-tracker-replica")
        self.changed = asyncio.Event()
        self.follower = RawPlanFollower(
            self.bootstrap,
            self.registry.plans,
            on_plan=lambda _plan: self.changed.set(),
            client_id=f"{settings.topic_prefix}-tracker-plans",
        )
        self.raised: set[str] = set()
        self.judge = ChildPool()

    async def run(self) -> None:
        stopping = stop_on_signals()
        runner = await start_http("tracker", self.settings.tracker_port)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all"
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            await producer.start()
            self.raised = await raised_alert_ids(self.bootstrap, self.registry.alerts)
            await self.replica.start()
            await self.replica.ready.wait()
            await self.follower.start()
            watch = StallWatch.for_service(SERVICE)
            tasks = [
                asyncio.create_task(watch.run(settle_heap_first=True), name="watch"),
                asyncio.create_task(self._watch_state(), name="state-watch"),
                asyncio.create_task(self._judge(producer), name="judge"),
            ]
            log.info("tracker ready (%d alerts already raised)", len(self.raised))
            await run_until_stopped(tasks, stopping)
        finally:
            for task in tasks:  # when start-up itself failed or was stopped
                task.cancel()
            await self.follower.stop()
            await self.replica.stop()
            await producer.stop()
            self.judge.close()
            await runner.cleanup()

    async def _watch_state(self) -> None:
        while True:
            async with self.replica.changed:
                await self.replica.changed.wait()
            self.changed.set()

    async def _judge(self, producer: AIOKafkaProducer) -> None:
        self.changed.set()
        while True:
            await self.changed.wait()
            await asyncio.sleep(DEBOUNCE_S)  # a burst of state changes is judged once
            self.changed.clear()
            plan = self.follower.plan
            if plan is not None:
                await self._judge_plan(producer, plan)

    async def _judge_plan(self, producer: AIOKafkaProducer, plan: RawPlan) -> None:
        EVALUATIONS.inc()
        states = states_of(self.replica, self.registry)
        try:
            findings: list[Finding] = await self.judge.run(
                JUDGE_TIMEOUT_S, evaluate_record, plan, states, self.thresholds
            )
        except Exception as error:  # the child died or overran: judge again a little later
            log.error("judging plan %d failed: %s: %s", plan.version, type(error).__name__, error)
            await asyncio.sleep(RETRY_AFTER_FAILURE_S)
            self.changed.set()
            return
        fresh = [f for f in findings if f.alert.alert_id not in self.raised]
        if not fresh:
            return
        sends = []
        for finding in fresh:
            record = encode(finding.alert, source=SOURCE, event_id=finding.alert.alert_id)
            sends.append(
                await producer.send(
                    self.registry.alerts, record.value, key=record.key, headers=record.headers
                )
            )
        drift = [f.alert for f in fresh if f.replan]
        if drift:
            trigger = Trigger(
                trigger_id=f"tracker:{drift[0].alert_id}"[:200],
                kind=TriggerKind.TRACKER,
                urgent=False,
                reason=(drift[0].message if len(drift) == 1 else f"{len(drift)} lines behind plan")[
                    :200
                ],
                created_at=dt.datetime.now(dt.UTC),
            )
            sends.append(
                await producer.send(
                    self.registry.optimizer_triggers,
                    trigger.dump(),
                    key=trigger.kind.value.encode(),
                )
            )
        await asyncio.gather(*sends)
        for finding in fresh:
            self.raised.add(finding.alert.alert_id)
            ALERTS.labels(service="tracker", kind=finding.alert.kind.value).inc()
            log.warning("alert %s: %s", finding.alert.kind.value, finding.alert.message)
        if drift:
            REPLANS.inc()


def serve(settings: Settings) -> None:
    """Run the tracker in the foreground until SIGTERM/SIGINT."""
    plain_service.serve(settings, TrackerService(settings).run)
