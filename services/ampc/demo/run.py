"""The main job: the whole stack on an embedded broker (gateway, ledger, optimizer, tracker),
a scenario streamed through the national inboxes as the nations would send it, and the plan the
optimizer service published once the ledger held the whole scenario, replayed from its recorded
offsets and summarised with its explanations.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ampc.contract.envelope import encode
from ampc.contract.events import EventRejected, PlanPublished
from ampc.demo.feed import Feed, scenario_feed
from ampc.ledger.fold import state_from_json, touched_entities
from ampc.ledger.state import EntityKind, EntityState
from ampc.optimizer.cli import summarise
from ampc.optimizer.plan import Plan
from ampc.optimizer.scenario import generate
from ampc.platform.broker import free_port
from ampc.platform.processes import ServiceProcess
from ampc.platform.replica import CompactedReplica
from ampc.platform.topics import TopicRegistry
from ampc.replan.plans_topic import PlanFollower
from ampc.replan.replay import replay
from ampc.replan.requests import request_plan
from ampc.settings import Settings

States = dict[EntityKind, dict[str, EntityState]]


class DemoFailed(RuntimeError):
    """The stack cannot finish the scenario (a service stopped, or an event was refused)."""


def expected_versions(feed: Feed) -> Counter[tuple[EntityKind, str]]:
    """How many events each entity must have applied once the whole feed is in."""
    versions: Counter[tuple[EntityKind, str]] = Counter()
    for _, event in feed:
        for kind, entity_id in touched_entities(event):
            versions[(kind, entity_id)] += 1
    return versions


async def stream_feed(
    bootstrap: str, registry: TopicRegistry, feed: Feed, console: Console
) -> None:
    """Send every event to its party's inbox, as the national systems would."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    columns = (
        TextColumn("streaming the scenario through the national inboxes"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("feed", total=len(feed))
            pending = []
            for party, event in feed:
                record = encode(event, source=f"/nations/{party.lower()}/demo")
                pending.append(
                    await producer.send(
                        registry.inbox(party), record.value, key=record.key, headers=record.headers
                    )
                )
                if len(pending) >= 200:
                    await asyncio.gather(*pending)
                    progress.advance(task, len(pending))
                    pending = []
            await asyncio.gather(*pending)
            progress.advance(task, len(pending))
    finally:
        await producer.stop()


async def wait_for_state(
    bootstrap: str,
    registry: TopicRegistry,
    expected: Counter[tuple[EntityKind, str]],
    console: Console,
    timeout_s: float,
    services: list[ServiceProcess],
) -> tuple[States, dict[str, int]]:
    """Follow the state topics until every entity shows every event of the feed."""
    kinds = {registry.state(kind.value): kind for kind in EntityKind}
    replica: CompactedReplica[EntityState] = CompactedReplica(
        bootstrap, list(kinds), lambda topic, value: state_from_json(kinds[topic], value)
    )
    # Every event of the feed is valid: a dead letter means that state will never be complete.
    rejections: CompactedReplica[EventRejected] = CompactedReplica(
        bootstrap,
        [registry.deadletter],
        lambda _topic, value: EventRejected.model_validate_json(value),
        client_id="ampc-demo-deadletters",
    )
    await replica.start()
    await rejections.start()
    await rejections.ready.wait()
    earlier = set(rejections.values[registry.deadletter])  # from a previous run on this broker
    deadline = time.monotonic() + timeout_s
    try:
        with console.status("the gateway and the ledger are folding the events...") as status:
            while True:
                states: States = {
                    kind: dict(replica.values[topic]) for topic, kind in kinds.items()
                }
                done = sum(
                    1
                    for (kind, entity_id), version in expected.items()
                    if (state := states[kind].get(entity_id)) is not None
                    and state.version >= version
                )
                status.update(f"ledger state: {done} of {len(expected)} entities complete")
                if done == len(expected):
                    return states, replica.offsets()
                refused = [
                    rejected
                    for key, rejected in rejections.values[registry.deadletter].items()
                    if key not in earlier
                ]
                if refused:
                    raise DemoFailed(
                        f"{len(refused)} event(s) of the scenario were dead-lettered, so the "
                        "state can never be complete: "
                        + "; ".join(
                            f"{r.rejected_by} refused {r.original_topic}@{r.original_offset} "
                            f"from {r.nation}: {r.error_code.value} {r.message}"
                            for r in refused[:5]
                        )
                    )
                fail_if_stopped(services)
                if time.monotonic() > deadline:
                    shown = {
                        key: getattr(states[key[0]].get(key[1]), "version", 0) for key in expected
                    }
                    missing = [
                        f"{kind.value}/{entity_id} (v{shown[(kind, entity_id)]} of v{version})"
                        for (kind, entity_id), version in sorted(expected.items())
                        if shown[(kind, entity_id)] < version
                    ]
                    raise TimeoutError(
                        f"after {timeout_s:.0f} s the ledger shows {done} of {len(expected)} "
                        f"entities complete; incomplete: {', '.join(missing[:10])}; see the "
                        "service logs and `ampc dlq tail`"
                    )
                await asyncio.sleep(0.5)
    finally:
        await rejections.stop()
        await replica.stop()


async def wait_for_plan(
    settings: Settings,
    covering: dict[str, int],
    console: Console,
    timeout_s: float,
    services: list[ServiceProcess],
) -> PlanPublished:
    """Wait for the optimizer service to publish a plan whose input includes every state record
    up to `covering` (topic:partition -> next offset)."""
    follower = PlanFollower(
        settings.bootstrap_servers or "",
        TopicRegistry(settings).plans,
        on_plan=lambda plan: console.print(
            f"plan {plan.version} published ({plan.solver_status.value}): {plan.trigger}"
        ),
        client_id="ampc-demo-plans",
    )
    deadline = time.monotonic() + timeout_s
    await follower.start()
    try:
        with console.status("the optimizer is re-planning on the events...") as status:
            while True:
                plan = follower.plan
                if plan is not None and all(
                    plan.input_offsets.get(key, 0) >= end for key, end in covering.items()
                ):
                    return plan
                fail_if_stopped(services)
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"no plan covering the whole scenario after {timeout_s:.0f} s; see "
                        f"{services[0].log_path.parent}/optimizer.log"
                    )
                in_force = plan.version if plan is not None else "none"
                status.update(f"the optimizer is re-planning (plan in force: {in_force})")
                await asyncio.sleep(0.5)
    finally:
        await follower.stop()


def fail_if_stopped(services: list[ServiceProcess]) -> None:
    """Raise DemoFailed, with the end of its log, if one of the services has stopped."""
    for service in services:
        if not service.alive():
            raise DemoFailed(
                f"the {service.name} stopped; the end of its log "
                f"({service.log_path}):\n{service.log_tail(15)}"
            )


def run_demo(
    settings: Settings,
    *,
    size: str,
    seed: int,
    time_limit_s: float,
    console: Console,
    plan_path: Path,
) -> Plan:
    """Start every service, stream the scenario, and show the plan the optimizer service
    published from the ledger's state (replayed from its recorded offsets)."""
    registry = TopicRegistry(settings)
    bootstrap = settings.bootstrap_servers or ""
    scenario = generate(size, seed)  # type: ignore[arg-type]
    feed = scenario_feed(scenario)
    transit_path = settings.data_dir / "demo-transit.json"
    transit_path.parent.mkdir(parents=True, exist_ok=True)
    transit_path.write_text(scenario.transit.model_dump_json())
    # Ports of its own: a service left over on the default ports must not break the demo.
    settings = settings.model_copy(
        update={
            "gateway_port": free_port(),
            "ledger_port": free_port(),
            "optimizer_port": free_port(),
            "tracker_port": free_port(),
            "plan_start_week": scenario.horizon.start_week,
            "plan_weeks": scenario.horizon.weeks,
            "frozen_horizon_weeks": scenario.frozen_horizon_weeks,
            "transit_file": transit_path,
            "replan_time_limit_s": time_limit_s,
        }
    )
    logs = settings.data_dir / "logs"
    services = [
        ServiceProcess(name, settings, logs / f"{name}.log").start()
        for name in ("gateway", "ledger", "optimizer", "tracker")
    ]
    console.print(
        f"gateway, ledger, optimizer and tracker started (logs in {logs}; ledger read API at "
        f"http://127.0.0.1:{settings.ledger_port}, what-if at "
        f"http://127.0.0.1:{settings.optimizer_port}/whatif)"
    )
    try:
        asyncio.run(stream_feed(bootstrap, registry, feed, console))
        console.print(f"{len(feed)} events sent by {len({party for party, _ in feed})} parties")
        states, covering = asyncio.run(
            wait_for_state(bootstrap, registry, expected_versions(feed), console, 600, services)
        )
        console.print(
            f"the ledger holds every entity of the scenario ({sum(map(len, states.values()))})"
        )
        # Events that change nothing the optimizer reads (pledges, say) trigger no re-plan:
        # ask for one from state at least this complete, as an operator would.
        asyncio.run(request_plan(settings, f"demo {size} scenario streamed", covering))
        published = asyncio.run(
            wait_for_plan(settings, covering, console, 3 * time_limit_s + 300, services)
        )
        with console.status("replaying the plan from its recorded offsets..."):
            replayed = asyncio.run(replay(settings, published.version))
    finally:
        for service in services:
            service.stop()
    if replayed.plan is None:
        raise DemoFailed("; ".join(replayed.differences))
    plan, snapshot = replayed.plan, replayed.snapshot
    console.print(
        f"plan {published.version} reflects {len(published.input_offsets)} state-topic "
        f"positions: {len(snapshot.plants)} plants, {len(snapshot.stock_offers)} stock offers, "
        f"{len(snapshot.demands)} open demands, {len(snapshot.pools)} pools, "
        f"{snapshot.horizon.weeks} weeks; "
        + (
            "replayed from those offsets: the same plan"
            if replayed.same
            else f"replay differs: {'; '.join(replayed.differences)}"
        )
    )
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(plan.dump_json())
    # The snapshot beside the plan, so `ampc plan check` can verify the plan independently.
    plan_path.with_name("demo-snapshot.json").write_text(snapshot.dump_json())
    summarise(plan)
    short = [d for d in plan.demands if d.shortfall > 0 and d.reasons]
    if short:
        worst = max(short, key=lambda d: d.shortfall)
        console.print(f"why is {worst.demand_id} short by {worst.shortfall:,} rounds?")
        for reason in worst.reasons[:5]:
            console.print(f"  - {reason.message}", soft_wrap=True)
    console.print(
        f"plan written to {plan_path} (snapshot beside it); explain any demand with "
        "`ampc plan explain`"
    )
    return plan
