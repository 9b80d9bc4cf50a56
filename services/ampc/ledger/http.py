"""The ledger's HTTP read API (JSON, paginated, described by OpenAPI at /openapi.json).

Reads come from a replica of the compacted state topics, so any ledger worker answers for the
whole alliance, not only for the partitions it happens to own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, Final

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.web import Request, Response, View

from ampc import __version__
from ampc.ledger.fold import state_from_json
from ampc.ledger.state import STATE_MODELS, EntityKind, EntityState
from ampc.platform.replica import CompactedReplica
from ampc.platform.streaming import ServiceApp
from ampc.platform.topics import TopicRegistry
from ampc.settings import Settings

MAX_PAGE_SIZE: Final = 500
DEFAULT_PAGE_SIZE: Final = 50


class DeadLetterTally:
    """Counts dead letters by reason and party and keeps the latest few, from the beginning."""

    def __init__(self, bootstrap_servers: str, topic: str, keep: int = 20) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.by_reason: Counter[str] = Counter()
        self.by_party: Counter[str] = Counter()
        self.latest: deque[dict[str, Any]] = deque(maxlen=keep)
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers)
        await consumer.start()
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(self.topic, p) for p in cluster.partitions_for_topic(self.topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        body = json.loads(record.value or b"{}")
                    except ValueError:
                        continue
                    self.by_reason[str(body.get("error_code"))] += 1
                    self.by_party[str(body.get("nation"))] += 1
                    body.pop("original_value_base64", None)
                    self.latest.append(body)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def summary(self) -> dict[str, Any]:
        return {
            "total": sum(self.by_reason.values()),
            "by_reason": dict(self.by_reason.most_common()),
            "by_party": dict(self.by_party.most_common()),
            "latest": list(self.latest),
        }


def _page(request: Request) -> tuple[int, int]:
    try:
        page = int(request.query.get("page", "1"))
        size = int(request.query.get("page_size", str(DEFAULT_PAGE_SIZE)))
    except ValueError as error:
        raise ValueError("page and page_size must be whole numbers") from error
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}")
    return page, size


def _matches(state: dict[str, Any], filters: dict[str, str]) -> bool:
    for name, wanted in filters.items():
        if name == "nation":
            parties = {
                state.get("nation"),
                state.get("requested_by"),
                state.get("recipient"),
                state.get("owner"),
                *(p.get("nation") for p in state.get("participants", [])),
            }
            if wanted not in parties:
                return False
        elif str(state.get(name)) != wanted:
            return False
    return True


FILTERS: Final[dict[EntityKind, tuple[str, ...]]] = {
    EntityKind.DEMANDS: ("nation", "status", "priority", "recipient", "pool_id"),
    EntityKind.PLANTS: ("nation",),
    EntityKind.POOLS: ("owner",),
    EntityKind.SHIPMENTS: ("nation", "demand_id", "status"),
    EntityKind.OFFERS: ("origin", "product"),
    EntityKind.MATERIALS: ("material",),
    EntityKind.PRODUCTS: (),
    EntityKind.EXPORT_POLICIES: ("nation",),
}


def list_entities(
    states: Iterable[tuple[str, EntityState]], filters: dict[str, str], page: int, size: int
) -> dict[str, Any]:
    """One page of entity states matching the filters, ordered by id."""
    matching = [
        body
        for _, body in sorted(
            (entity_id, json.loads(state.model_dump_json(exclude={"applied"})))
            for entity_id, state in states
        )
        if _matches(body, filters)
    ]
    start = (page - 1) * size
    return {
        "items": matching[start : start + size],
        "page": page,
        "page_size": size,
        "total": len(matching),
    }


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of the read API, with the state models' JSON Schemas."""
    schemas = {
        model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
        for model in STATE_MODELS.values()
    }
    defs: dict[str, Any] = {}
    for schema in schemas.values():
        defs.update(schema.pop("$defs", {}))
    paths: dict[str, Any] = {}
    page_params = [
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {
            "name": "page_size",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        },
    ]
    for kind, model in STATE_MODELS.items():
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        paths[f"/{kind.value}"] = {
            "get": {
                "summary": f"List {kind.value} (paginated, ordered by id)",
                "parameters": page_params
                + [{"name": f, "in": "query", "schema": {"type": "string"}} for f in FILTERS[kind]],
                "responses": {
                    "200": {
                        "description": "A page",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "items": {"type": "array", "items": ref},
                                        "page": {"type": "integer"},
                                        "page_size": {"type": "integer"},
                                        "total": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    "400": {"description": "Bad paging or filter"},
                    "503": {"description": "Not ready (state still recovering)"},
                },
            }
        }
        paths[f"/{kind.value}/{{entity_id}}"] = {
            "get": {
                "summary": f"One of {kind.value} by id",
                "parameters": [
                    {
                        "name": "entity_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The entity",
                        "content": {"application/json": {"schema": ref}},
                    },
                    "404": {"description": "No such entity"},
                },
            }
        }
    paths["/deadletters/summary"] = {
        "get": {
            "summary": "Dead letters by reason and party, and the latest ones",
            "responses": {"200": {"description": "Summary"}},
        }
    }
    paths["/healthz"] = {
        "get": {"summary": "The process is alive", "responses": {"200": {"description": "Alive"}}}
    }
    paths["/readyz"] = {
        "get": {
            "summary": "Ready once tables are recovered and the read replica has caught up",
            "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ampc ledger read API", "version": __version__},
        "paths": paths,
        "components": {"schemas": {**defs, **schemas}},
    }


READ_API_GATHER_MS = 250
"""How stale the read API may be behind the state topics (besides the broker's own delay)."""


def add_read_api(
    app: ServiceApp, registry: TopicRegistry, settings: Settings, recovered: Callable[[], bool]
) -> None:
    """Register the read API's views and the replicas behind them on a faust app."""
    kinds = {registry.state(kind.value): kind for kind in EntityKind}
    replica: CompactedReplica[EntityState] = CompactedReplica(
        settings.bootstrap_servers or "",
        list(kinds),
        lambda topic, value: state_from_json(kinds[topic], value),
        client_id=f"{settings.topic_prefix}-ledger-read",
        # The ledger reads back every state record it writes: gathered, a stream of events
        # costs the ledger's event loop a few fetches a second instead of one per record.
        gather_ms=READ_API_GATHER_MS,
    )
    tally = DeadLetterTally(settings.bootstrap_servers or "", registry.deadletter)

    async def start_replicas() -> None:
        await replica.start()
        await tally.start()

    async def stop_replicas() -> None:
        await replica.stop()
        await tally.stop()

    app.startup_hooks.append(start_replicas)
    app.shutdown_hooks.append(stop_replicas)

    def ready() -> bool:
        return recovered() and replica.ready.is_set()

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        status = 200 if ready() else 503
        body = {
            "ready": ready(),
            "tables_recovered": recovered(),
            "replica_ready": replica.ready.is_set(),
        }
        return web.json(body, status=status)

    @app.page("/openapi.json")
    async def openapi(web: View, request: Request) -> Response:
        return web.json(openapi_document())

    @app.page("/deadletters/summary")
    async def deadletters(web: View, request: Request) -> Response:
        return web.json(tally.summary())

    for kind in EntityKind:
        _add_kind_views(app, kind, registry.state(kind.value), replica, ready)


def _add_kind_views(
    app: faust.App,
    kind: EntityKind,
    topic: str,
    replica: CompactedReplica[EntityState],
    ready: Callable[[], bool],
) -> None:
    async def listing(web: View, request: Request) -> Response:
        if not ready():
            return web.json({"error": "the ledger is still recovering its state"}, status=503)
        try:
            page, size = _page(request)
        except ValueError as error:
            return web.json({"error": str(error)}, status=400)
        unknown = set(request.query) - {"page", "page_size", *FILTERS[kind]}
        if unknown:
            return web.json(
                {"error": f"unknown filter(s) {sorted(unknown)}; use {list(FILTERS[kind])}"},
                status=400,
            )
        filters = {name: request.query[name] for name in FILTERS[kind] if name in request.query}
        return web.json(list_entities(replica.values[topic].items(), filters, page, size))

    async def one(web: View, request: Request, entity_id: str) -> Response:
        state = replica.values[topic].get(entity_id)
        if state is None:
            return web.json({"error": f"no {kind.value} entity '{entity_id}'"}, status=404)
        return web.json(json.loads(state.model_dump_json(exclude={"applied"})))

    app.page(f"/{kind.value}", name=f"list_{kind.name.lower()}")(listing)
    app.page(f"/{kind.value}/{{entity_id}}", name=f"get_{kind.name.lower()}")(one)
