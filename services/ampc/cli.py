"""`ampc`: the command line for operators and integrators."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ampc.contract import documents
from ampc.optimizer.cli import plan_app, scenario_app
from ampc.platform import broker
from ampc.platform.processes import die_with_parent
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="ampc",
    help="Allied Munitions Production Coordinator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
broker_app = typer.Typer(help="Run a real Apache Kafka broker (KRaft) on loopback.")
topics_app = typer.Typer(help="The topic registry: list and apply ampc's topics.")
schemas_app = typer.Typer(help="The event contract documents in schemas/.")
serve_app = typer.Typer(help="Run one of ampc's streaming services in the foreground.")
dlq_app = typer.Typer(help="The dead-letter topic: rejected events and why.")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(serve_app, name="serve")
app.add_typer(dlq_app, name="dlq")
app.add_typer(plan_app, name="plan")
app.add_typer(scenario_app, name="scenario")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Broker data, logs and state file.")
]
Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap", help="Kafka bootstrap address (default: the embedded broker)."),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def bootstrap_address(settings: Settings, explicit: str | None = None) -> str:
    """The address to use: --bootstrap, AMPC_BOOTSTRAP_SERVERS, or the embedded broker."""
    if explicit:
        return explicit
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    state = broker.read_state(settings.data_dir)
    if state is not None and state.alive_nodes():
        return state.bootstrap_servers
    raise _fail(
        "no broker address: start one with `ampc broker start`, or pass --bootstrap / set "
        "AMPC_BOOTSTRAP_SERVERS"
    )


@broker_app.command("start")
def broker_start(
    nodes: Annotated[int, typer.Option(help="1, or 3 for replication 3 / min ISR 2.")] = 1,
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option(help="Broker port of node 1 (others follow).")] = (
        broker.DEFAULT_BROKER_PORT
    ),
) -> None:
    """Resolve Kafka with Maven (once), format KRaft storage, start and wait until ready."""
    settings = Settings()
    directory = data_dir or settings.data_dir
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with console.status(f"starting Kafka {broker.KAFKA_VERSION} ({nodes} node(s))..."):
            info = broker.start(directory, settings.cache_dir, nodes=nodes, broker_port=port)
    except broker.BrokerError as error:
        raise _fail(str(error)) from error
    console.print(f"Kafka {info.kafka_version} is ready with {len(info.nodes)} node(s).")
    console.print(f"bootstrap: [bold]{info.bootstrap_servers}[/bold]")
    console.print(f"logs: {', '.join(node.log_file for node in info.nodes)}")


@broker_app.command("fetch")
def broker_fetch() -> None:
    """Resolve the Kafka jars with Maven into the cache (start does this on first use)."""
    settings = Settings()
    try:
        libs = broker.resolve_kafka(settings.cache_dir)
    except broker.BrokerError as error:
        raise _fail(str(error)) from error
    console.print(f"Kafka {broker.KAFKA_VERSION} jars: {libs}")


@broker_app.command("stop")
def broker_stop(data_dir: DataDir = None) -> None:
    """Stop the embedded broker cleanly."""
    directory = data_dir or Settings().data_dir
    info = broker.stop(directory)
    if info is None:
        console.print(f"no broker is recorded in {directory}")
        return
    console.print(f"stopped Kafka at {info.bootstrap_servers}")


@broker_app.command("status")
def broker_status(data_dir: DataDir = None) -> None:
    """Say whether the embedded broker runs, where, and whether it answers."""
    directory = data_dir or Settings().data_dir
    info = broker.read_state(directory)
    if info is None:
        console.print(f"no broker is recorded in {directory}")
        raise typer.Exit(code=3)
    alive = info.alive_nodes()
    console.print(
        f"Kafka {info.kafka_version} at {info.bootstrap_servers}: "
        f"{len(alive)} of {len(info.nodes)} node(s) running"
    )
    if len(alive) != len(info.nodes):
        raise typer.Exit(code=3)


@topics_app.command("list")
def topics_list() -> None:
    """Print the topic registry: every topic ampc declares."""
    registry = TopicRegistry(Settings())
    table = Table("topic", "role", "partitions", "rf", "cleanup", "key")
    for spec in registry.specs:
        table.add_row(
            spec.name,
            spec.role.value,
            str(spec.partitions),
            str(spec.replication),
            spec.cleanup_policy,
            spec.key,
        )
    console.print(table)


@topics_app.command("apply")
def topics_apply(bootstrap: Bootstrap = None) -> None:
    """Create or update every declared topic. Safe to run again: it changes only what drifted."""
    settings = Settings()
    address = bootstrap_address(settings, bootstrap)
    registry = TopicRegistry(settings)
    try:
        report = asyncio.run(apply_topics(address, registry.specs))
    except Exception as error:  # a CLI turns any broker failure into one clear line
        raise _fail(f"could not apply topics at {address}: {error}") from error
    console.print(
        f"{address}: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} already as declared"
    )


@schemas_app.command("generate")
def schemas_generate(
    check: Annotated[
        bool, typer.Option("--check", help="Only report drift; exit 1 if any file differs.")
    ] = False,
    out: Annotated[Path, typer.Option(help="The schemas directory.")] = Path("schemas"),
) -> None:
    """Write JSON Schema files and the AsyncAPI document from the pydantic models."""
    extra = extra_schemas()
    if check:
        problems = documents.drift(out, extra)
        for line in problems:
            err.print(line)
        if problems:
            err.print("run `ampc schemas generate` and commit the result")
            raise typer.Exit(code=1)
        console.print(f"{out}/ matches the models")
        return
    written = documents.write(out, extra)
    console.print(f"wrote {len(written)} files to {out}/")


@app.command("demo")
def demo(
    size: Annotated[str, typer.Option(help="Scenario size: small, medium or large.")] = "medium",
    seed: Annotated[int, typer.Option(help="Scenario seed (same seed, same scenario).")] = 7,
    time_limit: Annotated[float, typer.Option(help="Solver seconds for all levels.")] = 30.0,
    port: Annotated[int, typer.Option(help="Broker port of the embedded broker.")] = (
        broker.DEFAULT_BROKER_PORT
    ),
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the broker running at the end.")
    ] = False,
) -> None:
    """The main job: embedded Kafka, gateway and ledger, a scenario streamed through the
    national inboxes, and the plan the resulting state gives, with its explanations."""
    from ampc.demo.run import DemoFailed, run_demo

    if size not in ("small", "medium", "large"):
        raise _fail(f"--size {size!r}: choose small, medium or large")
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with console.status("starting the embedded Kafka broker..."):
            info = broker.start(settings.data_dir, settings.cache_dir, broker_port=port)
        settings = settings.model_copy(update={"bootstrap_servers": info.bootstrap_servers})
        registry = TopicRegistry(settings)
        report = asyncio.run(apply_topics(info.bootstrap_servers, registry.specs))
    except broker.BrokerError as error:
        raise _fail(str(error)) from error
    console.print(
        f"Kafka {info.kafka_version} (KRaft) at [bold]{info.bootstrap_servers}[/bold]; "
        f"{len(registry.specs)} topics ({len(report.created)} created)"
    )
    try:
        run_demo(
            settings,
            size=size,
            seed=seed,
            time_limit_s=time_limit,
            console=console,
            plan_path=settings.data_dir / "demo-plan.json",
        )
    except (TimeoutError, DemoFailed) as error:
        raise _fail(str(error)) from error
    finally:
        if keep_running:
            console.print(
                f"the broker keeps running at {info.bootstrap_servers}; "
                "stop it with `ampc broker stop`"
            )
        else:
            broker.stop(settings.data_dir)
            console.print("broker stopped (use --keep-running to keep it)")


def _service_settings(bootstrap: str | None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"bootstrap_servers": bootstrap_address(settings, bootstrap)})


# Services import faust lazily: it takes a second to import and the other commands need none.
@serve_app.command("gateway")
def serve_gateway(bootstrap: Bootstrap = None) -> None:
    """Validate, authorise and route every nation's inbox (metrics on AMPC_GATEWAY_PORT)."""
    from ampc.gateway.app import build_gateway
    from ampc.platform.streaming import run_worker

    die_with_parent()
    settings = _service_settings(bootstrap)
    run_worker(build_gateway(settings), settings.log_level)


@serve_app.command("ledger")
def serve_ledger(bootstrap: Bootstrap = None) -> None:
    """Fold canonical events into state; read API and metrics on AMPC_LEDGER_PORT."""
    from ampc.ledger.app import build_ledger
    from ampc.platform.streaming import run_worker

    die_with_parent()
    settings = _service_settings(bootstrap)
    run_worker(build_ledger(settings), settings.log_level)


@serve_app.command("optimizer")
def serve_optimizer(bootstrap: Bootstrap = None) -> None:
    """Re-plan on triggers (one active instance, the others on standby); what-if, the plan in
    force and metrics on AMPC_OPTIMIZER_PORT."""
    from ampc.replan.service import serve

    serve(_service_settings(bootstrap))


@plan_app.command("replay")
def plan_replay(
    version: Annotated[
        int | None, typer.Option(help="The plan's version (default: the plan in force).")
    ] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Re-solve a published plan from the state-topic offsets it recorded and say whether the
    result is the same plan (exit 1 if not)."""
    from ampc.replan.replay import replay

    settings = _service_settings(bootstrap)
    try:
        result = asyncio.run(replay(settings, version))
    except LookupError as error:
        raise _fail(str(error)) from error
    recorded = result.recorded
    console.print(
        f"plan {recorded.version} ({recorded.solver_status.value}, trigger: {recorded.trigger}); "
        f"{len(recorded.input_offsets)} recorded offsets"
    )
    console.print(
        "snapshot rebuilt from the offsets: "
        + ("same digest" if result.digest_matches else "[red]different digest[/red]")
    )
    if result.same:
        console.print(
            f"[green]replay gives the same plan[/green] ({len(recorded.allocations)} allocations)"
        )
        return
    for difference in result.differences:
        err.print(f"difference: {difference}")
    raise typer.Exit(code=1)


@serve_app.command("tracker")
def serve_tracker(bootstrap: Bootstrap = None) -> None:
    """Compare reality with the plan: alerts, and re-plan requests when plants fall behind
    (metrics on AMPC_TRACKER_PORT)."""
    from ampc.tracker.service import serve

    serve(_service_settings(bootstrap))


@plan_app.command("request")
def plan_request(
    reason: Annotated[str, typer.Option(help="Why, in a few words (shown as the trigger).")] = (
        "re-plan requested by an operator"
    ),
    bootstrap: Bootstrap = None,
) -> None:
    """Ask the optimizer service for a re-plan now, from state at least as recent as the state
    topics hold at this moment."""
    from ampc.replan.requests import request_plan

    settings = _service_settings(bootstrap)
    offset = asyncio.run(request_plan(settings, reason))
    console.print(
        f"re-plan requested (trigger offset {offset}); the plan will follow on "
        f"{TopicRegistry(settings).plans}"
    )


LedgerUrl = Annotated[
    str | None,
    typer.Option(
        "--ledger-url", help="The ledger's read API (default: 127.0.0.1:AMPC_LEDGER_PORT)."
    ),
]


def _get_json(
    url: str, body: bytes | None = None, service: str = "ledger", timeout: float = 10
) -> Any:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        answer = json.loads(error.read() or b"{}")
        detail = answer.get("error", error.reason)
        if answer.get("detail"):
            detail = f"{detail}: {answer['detail']}"
        raise _fail(f"{url}: {error.code} {detail}") from error
    except OSError as error:
        raise _fail(
            f"cannot reach the {service} at {url} ({error}); is `ampc serve {service}` running?"
        ) from error


@app.command("whatif")
def whatif(
    changes: Annotated[
        Path, typer.Argument(help='JSON file: {"changes": [...]} (see `ampc plan whatif`).')
    ],
    time_limit: Annotated[float, typer.Option(help="Solver seconds per plan.")] = 30.0,
    optimizer_url: Annotated[
        str | None,
        typer.Option(help="The optimizer's HTTP address (default: 127.0.0.1:AMPC_OPTIMIZER_PORT)."),
    ] = None,
) -> None:
    """What would change if...: the changes applied to the current state, solved by the running
    optimizer without publishing anything, shown as a diff."""
    try:
        body = changes.read_bytes()
    except OSError as error:
        raise _fail(f"cannot read {changes}: {error}") from error
    base = optimizer_url or f"http://127.0.0.1:{Settings().optimizer_port}"
    answer = _get_json(
        f"{base}/whatif?time_limit={time_limit}", body, "optimizer", timeout=4 * time_limit + 120
    )
    table = Table("", "now", "with the changes")
    before, after = answer["base"], answer["changed"]
    table.add_row("status", before["status"], after["status"])
    table.add_row("coverage", f"{before['coverage']:.1%}", f"{after['coverage']:.1%}")
    table.add_row("demands short", str(before["demands_short"]), str(after["demands_short"]))
    for name in ("weighted_shortfall", "weighted_lateness", "cost_cents"):
        table.add_row(name, f"{before['objective'][name]:,.0f}", f"{after['objective'][name]:,.0f}")
    console.print(table)
    worse = {k: v for k, v in answer["shortfall_delta"].items() if v}
    for demand_id, delta in sorted(worse.items(), key=lambda kv: -abs(kv[1]))[:10]:
        console.print(f"  {demand_id}: shortfall {'+' if delta > 0 else ''}{delta:,} rounds")
    moves = answer["orders_that_would_move"]
    console.print(
        f"{answer['rounds_moved']:,} rounds move; {len(moves)} production order(s) would change"
    )
    for move in moves[:15]:
        console.print(
            f"  {move['change']}: {move['order_id']} ({move.get('quantity', '-')} rounds)"
        )


@app.command("demands")
def demands(
    status: Annotated[str | None, typer.Option(help="OPEN, FULFILLED or CANCELLED.")] = None,
    nation: Annotated[str | None, typer.Option(help="Requester, participant or recipient.")] = None,
    priority: Annotated[str | None, typer.Option(help="URGENT, HIGH or ROUTINE.")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
    ledger_url: LedgerUrl = None,
) -> None:
    """List demands from the ledger with what is still open."""
    base = ledger_url or f"http://127.0.0.1:{Settings().ledger_port}"
    query = {
        "page": page,
        "page_size": page_size,
        "status": status,
        "nation": nation,
        "priority": priority,
    }
    params = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    body = _get_json(f"{base}/demands?{params}")
    table = Table(
        "demand",
        "requested by",
        "recipient",
        "product",
        "priority",
        "due week",
        "quantity",
        "delivered",
        "open",
        "status",
    )
    for item in body["items"]:
        table.add_row(
            item["demand_id"],
            item["requested_by"],
            item["recipient"],
            item.get("product") or item.get("interop_group") or "",
            item["priority"],
            item["due_week"],
            str(item["quantity"]),
            str(item["delivered"]),
            str(item["open_quantity"]),
            item["status"],
        )
    console.print(table)
    pages = max(1, -(-body["total"] // body["page_size"]))
    console.print(f"page {body['page']} of {pages}, {body['total']} demand(s)")


@dlq_app.command("tail")
def dlq_tail(
    count: Annotated[int, typer.Option("-n", "--count", min=1, max=10_000)] = 20,
    bootstrap: Bootstrap = None,
) -> None:
    """Show the latest dead letters: who sent what, and what to fix."""
    from ampc.platform.deadletter_reader import latest_rejections

    settings = Settings()
    address = bootstrap_address(settings, bootstrap)
    topic = TopicRegistry(settings).deadletter
    try:
        rejections = asyncio.run(latest_rejections(address, topic, count))
    except LookupError as error:
        raise _fail(str(error)) from error
    table = Table("rejected at", "party", "code", "field", "message", "origin")
    for rejected in rejections:
        table.add_row(
            rejected.rejected_at.strftime("%Y-%m-%d %H:%M:%S"),
            rejected.nation or "?",
            rejected.error_code.value,
            rejected.field_path or "",
            rejected.message,
            f"{rejected.original_topic}:{rejected.original_partition}:{rejected.original_offset}",
        )
    console.print(table)
    console.print(f"{len(rejections)} dead letter(s) from {topic}")


def extra_schemas() -> documents.ExtraSchemas:
    """Formats beyond events that the contract documents (the optimizer's files)."""
    from ampc.optimizer.plan import Plan
    from ampc.optimizer.snapshot import Snapshot

    return {"snapshot": Snapshot, "plan": Plan}


def main() -> None:
    app()
