"""The faust adapter shared by ampc's services: an app whose producer is idempotent with
acks=all, raw-bytes topics (the pydantic contract decodes, not faust's codecs), and the
settings every service uses.

faust-streaming enables idempotence only inside its `exactly_once` transactions, which have open
bugs (SPEC section 7). ampc runs at-least-once, with idempotent producers and idempotent state
application instead, so the transport's producer is replaced by one that always asks for
`enable_idempotence=True, acks=all`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import faust
from faust.transport import base as transport_base
from faust.transport.drivers import aiokafka as aiokafka_driver

from ampc.contract.envelope import ContractViolation
from ampc.contract.events import RejectionCode
from ampc.platform.deadletter import SourceRecord, dead_letter, source_record
from ampc.platform.fetching import FetchGather, gather_while_busy, gathering
from ampc.platform.metrics import EVENTS_REJECTED
from ampc.platform.stalls import StallWatch
from ampc.settings import Settings

log = logging.getLogger(__name__)


class _IdempotentProducer(aiokafka_driver.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class _GatheringConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    async def on_start(self) -> None:
        await super().on_start()
        # faust fixes fetch_max_wait_ms at 1.5 s and fetch_min_bytes at 1, so while records
        # trickle in every fetch carries a record or two; gather while the stream flows.
        gather: FetchGather | None = getattr(self.app, "fetch_gather", None)
        if gather is not None:
            gather_while_busy(self._consumer, gather)


class _Consumer(aiokafka_driver.Consumer):
    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return _GatheringConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(aiokafka_driver.Transport):
    Producer = _IdempotentProducer
    Consumer = _Consumer


class ServiceApp(faust.App):
    """A faust app that always produces idempotently, with start-up and shutdown hooks that
    run before the agents start (e.g. a replica that must be complete before any decision)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_gather: FetchGather | None = None
        self.startup_hooks: list[Callable[[], Awaitable[None]]] = []
        self.shutdown_hooks: list[Callable[[], Awaitable[None]]] = []

    async def on_start(self) -> None:
        await super().on_start()
        for hook in self.startup_hooks:
            try:
                await hook()
            except Exception:
                # mode stops the worker on an exception here without saying why; say it.
                log.exception("start-up of %s failed in %s", self.conf.id, hook)
                raise

    async def on_stop(self) -> None:
        for hook in self.shutdown_hooks:
            await hook()
        await super().on_stop()

    def _new_transport(self) -> transport_base.Transport:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> transport_base.Transport:
        return _Transport(self.conf.broker_producer, self)


def create_app(
    service: str,
    settings: Settings,
    *,
    web_port: int,
    partitions: int,
    store: str = "memory://",
) -> ServiceApp:
    """A faust app for one ampc service, with its own consumer group `<prefix>-<service>`."""
    if not settings.bootstrap_servers:
        raise ValueError("settings.bootstrap_servers must be set before creating a service app")
    brokers = [f"kafka://{address}" for address in settings.bootstrap_servers.split(",")]
    data_dir = Path(settings.data_dir) / "services" / f"{settings.topic_prefix}-{service}"
    data_dir.mkdir(parents=True, exist_ok=True)
    app = ServiceApp(
        f"{settings.topic_prefix}-{service}",
        broker=brokers,
        store=store,
        datadir=str(data_dir),
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,  # faust's own changelog and assignor topics
        web_enabled=True,
        web_port=web_port,
        web_bind="127.0.0.1",
        web_in_thread=False,
        producer_acks=-1,
        # Let a batch gather for a few milliseconds: a produce request then carries many
        # records (state, changelogs, dead letters) instead of one each, which costs the
        # services and the broker far less CPU per record; the latency added is this long.
        producer_linger=settings.producer_linger_ms / 1000,
        # The idempotent producer has one request in flight per partition; a record that finds
        # the partition's batch full waits for it, stalling the agent. Larger batches avoid it.
        producer_max_batch_size=256 * 1024,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        # A killed worker's partitions move on after this long: faust's 60 s default would
        # leave them unprocessed for a minute after a crash.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        autodiscover=False,
        table_standby_replicas=0,
        logging_config=None,
    )
    app.fetch_gather = gathering(settings.fetch_gather_ms)
    watch = StallWatch.for_service(service)

    @app.task  # type: ignore[untyped-decorator]
    async def watch_the_loop() -> None:
        # app tasks start once the tables are recovered: what lives then lives for good
        await watch.run(settle_heap_first=True)

    return app


def raw_topic(app: faust.App, *names: str) -> Any:
    """A faust topic over raw bytes: ampc's contract decodes the value, not faust."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def _report_failed_send(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.error("a record could not be delivered: %s", delivery.exception())


async def send_record(
    app: faust.App,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> None:
    """Hand a record to the idempotent producer, as `topic.send()` does but without faust's
    per-message bookkeeping (a large share of a service's CPU per record).

    It returns once the record is in the producer's batch, as `topic.send()` does. Delivery is
    awaited by faust's commit, which flushes the producer before it commits any offset, so a
    record is never acknowledged before what was produced from it is written.
    """
    delivery = await app.producer.send(
        topic, key, value, None, None, list(headers) if headers is not None else None
    )
    if isinstance(delivery, asyncio.Future):
        delivery.add_done_callback(_report_failed_send)


def source_of(event: Any) -> SourceRecord:
    """The faust event's underlying Kafka record, as ampc's adapters work with it."""
    message = event.message
    return source_record(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        message.headers,
    )


def dead_letter_processing_failure(
    app: faust.App,
    topic: str,
    source: SourceRecord,
    *,
    service: str,
    party: str | None,
    failed_to: str,
    advice: str,
) -> Callable[[Exception], Awaitable[None]]:
    """The `dead_letter_failure` of `process_or_dead_letter`: the record, as it came, on the
    dead-letter topic as PROCESSING_FAILED, saying what `service` `failed_to` do and `advice`
    for the sender."""

    async def send(error: Exception) -> None:
        violation = ContractViolation(
            RejectionCode.PROCESSING_FAILED,
            f"the {service} could not {failed_to} this event ({type(error).__name__}: {error}); "
            f"{advice}",
        )
        record = dead_letter(source, violation, party=party, rejected_by=service)
        await send_record(app, topic, record.key, record.value, record.headers)
        EVENTS_REJECTED.labels(service, violation.code.value, party or "unknown").inc()

    return send


PROCESSING_ATTEMPTS: Final = 3
EXIT_UNPROCESSABLE: Final = 70
"""Exit status of a worker that could neither process a record nor dead-letter it."""


async def process_or_dead_letter(
    process: Callable[[], Awaitable[None]],
    dead_letter_failure: Callable[[Exception], Awaitable[None]],
    *,
    what: str,
    attempts: int = PROCESSING_ATTEMPTS,
    backoff_s: float = 0.5,
    stop: Callable[[int], NoReturn] = os._exit,
) -> None:
    """Process one record so that it is never dropped without a trace.

    When an agent raises, faust acks the record it was handling and restarts the agent at the
    next one: the record is silently lost and its offset committed. So a failure is retried here
    (`process` must be idempotent), then handed to `dead_letter_failure` (a PROCESSING_FAILED
    dead letter with the original bytes); if even that fails, the process stops at once, before
    faust can commit the offset, and the record is read again after the restart.
    """
    failure: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            await process()
            return
        except Exception as error:  # anything: the record must not be lost
            failure = error
            log.exception("processing %s failed (attempt %d of %d)", what, attempt, attempts)
            if attempt < attempts:
                await asyncio.sleep(backoff_s * attempt)
    assert failure is not None
    try:
        await dead_letter_failure(failure)
    except Exception:
        log.exception(
            "could not dead-letter %s either; stopping before its offset is committed", what
        )
        logging.shutdown()
        stop(EXIT_UNPROCESSABLE)


def run_worker(app: faust.App, loglevel: str = "info") -> None:
    """Run a faust worker in the foreground until SIGTERM/SIGINT."""
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
