"""The ledger service: canonical events folded into state tables that survive crashes.

A thin faust adapter around the pure fold (`ampc.ledger.fold`): tables are RocksDB-backed with
changelogs in Kafka, so a restarted worker recovers its state from Kafka; every changed entity
is published to its compacted state topic; events that contradict the state are dead-lettered
with the reason; replays are recognised by the entities' applied logs and change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any, Final

import faust

from ampc.contract.envelope import ContractViolation, Envelope, decode
from ampc.contract.events import Event, RejectionCode, ShipmentDispatched
from ampc.gateway.judge import INPUT_TYPES, PARTY_HEADER
from ampc.ledger.fold import (
    Applied,
    Duplicate,
    EventMeta,
    Outcome,
    Rejected,
    apply_event,
    apply_offer_dispatch,
    state_from_json,
    state_json,
    touched_entities,
)
from ampc.ledger.http import add_read_api
from ampc.ledger.parking import ParkingLot
from ampc.ledger.state import EntityKind, EntityState
from ampc.ledger.tables import ledger_table, table_bytes, table_value
from ampc.platform.deadletter import SourceRecord, dead_letter
from ampc.platform.metrics import (
    EVENTS_DUPLICATE,
    EVENTS_IN,
    EVENTS_OUT,
    EVENTS_REJECTED,
    PROCESSING_SECONDS,
)
from ampc.platform.service_views import add_service_views
from ampc.platform.streaming import (
    create_app,
    dead_letter_processing_failure,
    process_or_dead_letter,
    raw_topic,
    send_record,
    source_of,
)
from ampc.platform.topics import LEDGER_TABLES, TopicRegistry, TopicRole, apply_topics
from ampc.settings import Settings

SERVICE: Final = "ledger"


class TableStore:
    """The fold's Store over faust tables (one per entity kind, the state's JSON as values,
    as `ampc.ledger.tables` stores them)."""

    def __init__(self, tables: dict[EntityKind, Any]) -> None:
        self.tables = tables
        # The JSON of the states written last, so that publishing them does not serialise
        # them again (the same object: a state changed after `put` is serialised anew).
        self._written: dict[tuple[EntityKind, str], tuple[EntityState, bytes]] = {}
        # States decoded by `get` and not handed out for change yet, with the bytes they came
        # from: the fold reads an entity (already applied?) and then changes it, and decoding
        # a large state twice would double the cost of the event.
        self._read: dict[tuple[EntityKind, str], tuple[bytes, EntityState]] = {}

    def get(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        raw = table_value(self.tables[kind], entity_id)
        if raw is None:
            return None
        value = table_bytes(raw)
        state = state_from_json(kind, value)
        self._read[(kind, entity_id)] = (value, state)
        return state

    def get_for_change(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        # Every call decodes anew (or hands over a state `get` decoded and nobody changed
        # since), so the caller's changes never reach the table without `put`.
        raw = table_value(self.tables[kind], entity_id)
        read = self._read.pop((kind, entity_id), None)
        if raw is None:
            return None
        value = table_bytes(raw)
        if read is not None and read[0] == value:
            return read[1]
        return state_from_json(kind, value)

    def put(self, kind: EntityKind, entity_id: str, state: EntityState) -> None:
        raw = state_json(state)
        self.tables[kind][entity_id] = raw
        self._read.pop((kind, entity_id), None)
        self._written[(kind, entity_id)] = (state, raw)

    def rewrite(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        """Write an entity's stored state again, unchanged, and return it (None if unknown).

        A table write reaches RocksDB at once and its changelog only when faust's producer
        sends it: a worker killed in between keeps the write locally while the changelog,
        which a recovering worker elsewhere reads, lacks it. The event is then read again
        and found already applied, so nothing would ever send that record.
        """
        state = self.get(kind, entity_id)
        if state is not None:
            self.put(kind, entity_id, state)
        return state

    def json_of(self, kind: EntityKind, entity_id: str, state: EntityState) -> bytes:
        """`state_json(state)`, reusing what `put` serialised for this very state object."""
        written = self._written.pop((kind, entity_id), None)
        if written is not None and written[0] is state:
            return written[1]
        return state_json(state)

    def forget_written(self) -> None:
        """Drop what this event read and wrote (called before each event)."""
        self._written.clear()
        self._read.clear()

    def items(self) -> Iterator[tuple[EntityKind, str, EntityState]]:
        for kind, table in self.tables.items():
            for entity_id, raw in table.items():
                yield kind, entity_id, state_from_json(kind, table_bytes(raw))


def _recovered(app: faust.App) -> bool:
    """Whether faust has restored every assigned table partition from its changelog."""
    recovery: Any = getattr(app.tables, "recovery", None)
    return recovery is not None and bool(recovery.completed.is_set())


def build_ledger(settings: Settings) -> faust.App:
    """The ledger's faust app for these settings."""
    registry = TopicRegistry(settings)
    app = create_app(
        SERVICE,
        settings,
        web_port=settings.ledger_port,
        partitions=settings.canonical_partitions,
        store="rocksdb://",
    )
    canonical = raw_topic(app, *(spec.name for spec in registry.by_role(TopicRole.CANONICAL)))
    offer_dispatches = raw_topic(app, registry.offer_dispatches)
    state_topics = {kind: registry.state(kind.value) for kind in EntityKind}
    tables = {
        kind: ledger_table(app, f"state-{kind.value}", settings.canonical_partitions)
        for kind in EntityKind
    }
    store = TableStore(tables)
    parking = ParkingLot(ledger_table(app, "parked", settings.canonical_partitions))
    changelogs = registry.by_role(TopicRole.CHANGELOG)
    named = {table.changelog_topic_name for table in app.tables.values()}
    if {table.name for table in app.tables.values()} != set(LEDGER_TABLES) or named != {
        spec.name for spec in changelogs
    }:  # a registry bug, never an input error
        raise RuntimeError(f"the ledger's changelogs {sorted(named)} are not in the registry")

    async def declare_changelogs() -> None:
        # Before the worker joins its group: a changelog faust creates itself at that moment
        # may be missing from the join's metadata, and then every write to its table fails.
        await apply_topics(settings.bootstrap_servers or "", changelogs)

    app.startup_hooks.append(declare_changelogs)
    add_service_views(app, SERVICE)
    add_read_api(app, registry, settings, recovered=lambda: _recovered(app))

    async def publish(
        kind: EntityKind, entity_id: str, state: EntityState, event_type: str
    ) -> None:
        value = store.json_of(kind, entity_id, state)
        await send_record(app, state_topics[kind], entity_id.encode(), value)
        EVENTS_OUT.labels(SERVICE, event_type, "state").inc()

    async def settle(
        source: SourceRecord,
        event: Event,
        party: str,
        outcome: Outcome,
        touched: tuple[tuple[EntityKind, str], ...] | None = None,
    ) -> None:
        event_type = event.event_type()
        match outcome:
            case Applied(changed=changed):
                for kind, entity_id, state in changed:
                    await publish(kind, entity_id, state, event_type)
            case Duplicate():
                EVENTS_DUPLICATE.labels(SERVICE).inc()
                # A crash may have come between the table write and its changelog record, or
                # the publication: write and publish again (the changelog and the state topic
                # are compacted and keep the latest, so this is harmless).
                again = touched if touched is not None else touched_entities(event)
                for kind, entity_id in again:
                    current = store.rewrite(kind, entity_id)
                    if current is not None:
                        await publish(kind, entity_id, current, event_type)
            case Rejected(code=code, message=message, field_path=field_path):
                violation = ContractViolation(code, message, field_path)
                record = dead_letter(source, violation, party=party, rejected_by=SERVICE)
                await send_record(
                    app, registry.deadletter, record.key, record.value, record.headers
                )
                EVENTS_REJECTED.labels(SERVICE, code.value, party).inc()
                EVENTS_OUT.labels(SERVICE, event_type, "deadletter").inc()

    def meta_for(source: SourceRecord, envelope: Envelope, party: str, retry: bool) -> EventMeta:
        return EventMeta(
            event_id=envelope.event_id,
            party=party,
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            time=envelope.time,
            retried=retry,
        )

    async def fold(
        source: SourceRecord, retry: bool = False, expire: bool = False
    ) -> Outcome | None:
        """Apply one canonical record; None when it waits in the parking table."""
        party = dict(source.headers).get(PARTY_HEADER, b"unknown").decode(errors="replace")
        try:
            envelope = decode(source.key, source.value, source.headers, allowed_types=INPUT_TYPES)
        except ContractViolation as violation:
            # Only the gateway writes here; a record it did not write is dead-lettered.
            record = dead_letter(source, violation, party=party, rejected_by=SERVICE)
            await send_record(app, registry.deadletter, record.key, record.value, record.headers)
            EVENTS_REJECTED.labels(SERVICE, violation.code.value, party).inc()
            return Rejected(violation.code, violation.message, violation.field_path)
        if not retry:
            EVENTS_IN.labels(SERVICE, envelope.event_type, party).inc()
        outcome = apply_event(store, envelope.payload, meta_for(source, envelope, party, retry))
        waits = isinstance(outcome, Rejected) and outcome.code is RejectionCode.UNKNOWN_ENTITY
        if waits and not expire and (retry or parking.park(source, time.time())):
            return None
        await settle(source, envelope.payload, party, outcome)
        if not isinstance(outcome, Rejected) and isinstance(envelope.payload, ShipmentDispatched):
            # The offer it draws on lives in another partition: re-key by offer id. Also after
            # a Duplicate, in case a crash came between the fold and this send.
            await send_record(
                app,
                registry.offer_dispatches,
                envelope.payload.source_id.encode(),
                source.value,
                source.headers,
            )
        return outcome

    async def retry_parked(key: str) -> None:
        """Re-apply what waited for `key`'s entity, until nothing more moves."""
        progress = True
        while progress:
            progress = False
            for parked in parking.waiting(key):
                outcome = await fold(parked, retry=True)
                if outcome is not None:
                    parking.release(key, parked)
                    progress = True

    def dead_letter_failure(source: SourceRecord) -> Callable[[Exception], Awaitable[None]]:
        return dead_letter_processing_failure(
            app,
            registry.deadletter,
            source,
            service=SERVICE,
            party=dict(source.headers).get(PARTY_HEADER, b"unknown").decode(errors="replace"),
            failed_to="process",
            advice="it is not in the state",
        )

    async def fold_and_release(source: SourceRecord) -> None:
        outcome = await fold(source)
        if isinstance(outcome, Applied | Duplicate):
            # Also after a Duplicate: a crash may have come before the parked retries ran.
            await retry_parked((source.key or b"").decode())

    @app.agent(canonical)
    async def fold_canonical(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            store.forget_written()
            source = source_of(event)
            await process_or_dead_letter(
                partial(fold_and_release, source),
                dead_letter_failure(source),
                what=f"{source.topic}:{source.partition}@{source.offset}",
            )
            PROCESSING_SECONDS.labels(SERVICE).observe(time.perf_counter() - started)

    ticks = raw_topic(app, registry.ledger_ticks)

    @app.timer(max(0.5, min(10.0, settings.park_timeout_s / 3)))  # type: ignore[untyped-decorator]
    async def tick() -> None:
        for partition in range(settings.canonical_partitions):
            await ticks.send(key=b"tick", value=b"%f" % time.time(), partition=partition)

    @app.agent(ticks)
    async def refuse_what_waited_too_long(stream: faust.StreamT[bytes]) -> None:
        # Runs in the tick's partition, which is the partition of the parked records it judges,
        # so the parking table's changelog stays in the right partition.
        async for event in stream.events():
            partition = event.message.partition
            for key, parked in parking.expired(partition, time.time() - settings.park_timeout_s):
                await fold(parked, retry=True, expire=True)
                parking.release(key, parked)

    async def draw_from_offer(source: SourceRecord) -> None:
        envelope = decode(source.key, source.value, source.headers)
        if not isinstance(envelope.payload, ShipmentDispatched):
            return
        party = dict(source.headers).get(PARTY_HEADER, b"unknown").decode(errors="replace")
        meta = EventMeta(
            event_id=envelope.event_id,
            party=party,
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            time=envelope.time,
        )
        outcome = apply_offer_dispatch(store, envelope.payload, meta)
        if isinstance(outcome, Rejected):
            return  # shipped from a plant, not from an offer: nothing to draw
        offer = ((EntityKind.OFFERS, envelope.payload.source_id),)
        await settle(source, envelope.payload, party, outcome, touched=offer)

    @app.agent(offer_dispatches)
    async def draw_from_offers(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            source = source_of(event)
            await process_or_dead_letter(
                partial(draw_from_offer, source),
                dead_letter_failure(source),
                what=f"{source.topic}:{source.partition}@{source.offset}",
            )

    return app
