"""What the services that run on plain aiokafka rather than faust (the optimizer, the tracker)
share: logging and the foreground run, the HTTP endpoints every service has (/metrics,
/healthz), and running their tasks until SIGTERM/SIGINT or the first task that fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ampc.settings import Settings


def serve(settings: Settings, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a service's main coroutine in the foreground, with ampc's log format."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    asyncio.run(main())


async def start_http(
    service: str,
    port: int,
    routes: list[web.RouteDef] | None = None,
    client_max_size: int = 1024**2,
) -> web.AppRunner:
    """An HTTP server on 127.0.0.1:port with /metrics, /healthz and the service's own routes."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"service": service, "status": "alive"})

    app = web.Application(client_max_size=client_max_size)
    app.add_routes([web.get("/metrics", metrics), web.get("/healthz", healthz), *(routes or [])])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def stop_on_signals() -> asyncio.Event:
    """An event SIGTERM and SIGINT set (installed first, so a stop during start-up still lets
    the service close its clients)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    return stopping


async def run_until_stopped(tasks: list[asyncio.Task[None]], stopping: asyncio.Event) -> None:
    """Wait until `stopping` is set or a task ends (raising its error if it failed); the tasks
    are cancelled either way."""
    stopped = asyncio.create_task(stopping.wait())
    try:
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task is stopped else task.exception()
            if error is not None:
                raise error
    finally:
        for task in [stopped, *tasks]:
            task.cancel()
        for task in [stopped, *tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
