"""The gateway service: national inboxes in, canonical events or dead letters out.

A thin faust adapter around `Judge`: read a record, let the judge decide, send what it says.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial

import faust

from ampc.gateway.judge import SERVICE, Decision, Judge, Verdict
from ampc.platform.deadletter import SourceRecord
from ampc.platform.metrics import (
    EVENTS_DUPLICATE,
    EVENTS_IN,
    EVENTS_OUT,
    EVENTS_REJECTED,
    PROCESSING_SECONDS,
)
from ampc.platform.replica import CompactedReplica, ReadYourWritesMap
from ampc.platform.service_views import add_service_views
from ampc.platform.streaming import (
    create_app,
    dead_letter_processing_failure,
    process_or_dead_letter,
    raw_topic,
    send_record,
    source_of,
)
from ampc.platform.topics import TopicRegistry, TopicRole
from ampc.settings import Settings


def build_gateway(settings: Settings) -> faust.App:
    """The gateway's faust app for these settings (topics, group and ports come from them)."""
    registry = TopicRegistry(settings)
    app = create_app(
        SERVICE, settings, web_port=settings.gateway_port, partitions=settings.inbox_partitions
    )
    inboxes = raw_topic(app, *(spec.name for spec in registry.by_role(TopicRole.INBOX)))
    # Who owns which plant, offer, demand, pool and shipment, read whole by every worker: a
    # shipment names a plant keyed elsewhere. (faust's GlobalTable insists on the changelog
    # having as many partitions as the source, and is documented to loop in recovery with
    # several workers; a compacted topic with a replica has neither problem.)
    owners_topic = raw_topic(app, registry.gateway_owners)
    replica: CompactedReplica[str] = CompactedReplica(
        settings.bootstrap_servers or "",
        [registry.gateway_owners],
        lambda _topic, value: value.decode(),
        client_id=f"{settings.topic_prefix}-gateway-owners",
        # Half the events claim an entity: read one by one, that is a fetch per claim. The
        # gateway sees its own claims at once (ReadYourWritesMap); another worker's claim
        # shows up at most this much later.
        gather_ms=round(settings.fetch_gather_ms),
    )

    def record_claim(key: str, owners: str) -> None:
        owners_topic.send_soon(key=key.encode(), value=owners.encode())

    judge = Judge(registry, ReadYourWritesMap(replica, registry.gateway_owners, record_claim))
    add_service_views(app, SERVICE)

    async def load_owner_book() -> None:
        # No authority decision before the whole ownership book is known.
        await replica.start()
        await replica.ready.wait()

    app.startup_hooks.append(load_owner_book)
    app.shutdown_hooks.append(replica.stop)

    async def carry_out(decision: Decision) -> None:
        party = decision.party or "unknown"
        if decision.record is None or decision.topic is None:
            return
        record = decision.record
        await send_record(app, decision.topic, record.key, record.value, record.headers)
        if decision.verdict is Verdict.REJECTED and decision.reason is not None:
            EVENTS_REJECTED.labels(SERVICE, decision.reason.value, party).inc()
            EVENTS_OUT.labels(SERVICE, decision.event_type, "deadletter").inc()
        else:
            EVENTS_OUT.labels(SERVICE, decision.event_type, "canonical").inc()

    def dead_letter_failure(
        source: SourceRecord, party: str | None
    ) -> Callable[[Exception], Awaitable[None]]:
        return dead_letter_processing_failure(
            app,
            registry.deadletter,
            source,
            service=SERVICE,
            party=party,
            failed_to="route",
            advice="send it again with a new event id",
        )

    @app.agent(inboxes)
    async def judge_inbox(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            source = source_of(event)
            # Judged once: the judge remembers the event id, so judging again would call it a
            # duplicate. Only the sending is retried.
            decision = judge.judge(source)
            EVENTS_IN.labels(SERVICE, decision.event_type, decision.party or "unknown").inc()
            if decision.verdict is Verdict.DUPLICATE:
                EVENTS_DUPLICATE.labels(SERVICE).inc()
            else:
                await process_or_dead_letter(
                    partial(carry_out, decision),
                    dead_letter_failure(source, decision.party),
                    what=f"{source.topic}:{source.partition}@{source.offset}",
                )
            PROCESSING_SECONDS.labels(SERVICE).observe(time.perf_counter() - started)

    return app
