"""HTTP endpoints every streaming service has: /metrics, /healthz, and consumer-lag upkeep."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ampc.platform.metrics import CONSUMER_LAG

LAG_INTERVAL_S = 5.0


def add_service_views(app: faust.App, service: str) -> None:
    """Register /metrics and /healthz, and a timer that keeps the consumer-lag gauge fresh."""

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        return web.json({"service": service, "status": "alive"})

    @app.timer(LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def record_lag() -> None:
        consumer = app.consumer
        per_topic: dict[str, int] = {}
        for tp in consumer.assignment():
            position = await consumer.position(tp)
            highwater = consumer.highwater(tp)
            if position is None or highwater is None:
                continue
            per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, highwater - position)
        for topic, lag in per_topic.items():
            CONSUMER_LAG.labels(service=service, topic=topic).set(lag)
