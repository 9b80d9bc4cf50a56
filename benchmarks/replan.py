"""Re-planning benchmark: urgent demand in a nation's inbox -> plan published, on a real broker.

    .venv/bin/python benchmarks/replan.py [--triggers 10] [--time-limit 60] [--large]
        [--mid-solve 3] [--out benchmarks/results/replan.json]

A command, not a timed test. On a broker of its own (free ports, a temporary data dir, stopped
at the end even on failure) it runs `ampc serve gateway|ledger|optimizer` as processes and:

1. streams the medium ("initiative") scenario through the national inboxes and waits for the
   plan that covers all of it;
2. sends urgent demands one at a time, each to its requester's inbox once the planner is idle
   (the plan in force covers every trigger written), and times each from the write until a
   published plan includes it (trigger-to-plan latency: gateway, ledger, router,
   state wait, snapshot, solve in the child process, transactional publish);
3. solves the same snapshot offline in this process (replayed from the last plan's offsets),
   the same number of times, for the side-by-side comparison;
4. writes urgent demands into routine re-plans: a routine demand first, then, 1.5 s after its
   coalescing window closed (so early in its solve), an urgent one, timed until a plan includes
   it; with the optimizer pre-empting the routine solve (the default), then restarted with
   AMPC_REPLAN_PREEMPT=false;
5. reads the optimizer's own metrics: the event loop's longest stall and the number of trigger
   partition assignments (a rebalance would be a second one);
6. with --large, streams the large ("alliance") scenario on a fresh topic prefix and reads the
   same two metrics over its (much longer) solves.

Targets (issue 5): p95 latency <= 2x the offline solve time; longest stall <= 0.3 s; no
rebalance. Prints a table and writes benchmarks/results/replan.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from ampc.contract.envelope import encode
from ampc.demo.feed import demand_events, scenario_feed
from ampc.demo.run import expected_versions, stream_feed, wait_for_plan, wait_for_state
from ampc.optimizer import snapshot as sn
from ampc.optimizer.plan import SolverSettings
from ampc.optimizer.planner import plan_snapshot
from ampc.optimizer.scenario import generate
from ampc.platform import broker
from ampc.platform.broker import free_port
from ampc.platform.processes import ServiceProcess
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.replan.plans_topic import PlanFollower
from ampc.replan.replay import replay
from ampc.replan.requests import request_plan, wait_until_settled
from ampc.settings import Settings

SCRIPT: Final = Path(__file__).resolve()
RESULTS: Final = SCRIPT.parent / "results" / "replan.json"
LATENCY_RATIO_TARGET: Final = 2.0
STALL_TARGET_S: Final = 0.3

console = Console()
quiet = Console(quiet=True)


def scrape(port: int) -> dict[str, float]:
    """The optimizer's metrics this benchmark reads (name{labels} -> value)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = (
        "ampc_event_loop_max_stall_seconds",
        "ampc_optimizer_rebalances_total",
        "ampc_optimizer_preempted_total",
    )
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+)(\{[^}]*\})? ([0-9.eE+-]+)$", line)
        if match and match.group(1) in wanted:
            values[match.group(1)] = float(match.group(3))
    return values


async def wait_active(port: int, service: ServiceProcess, timeout_s: float = 120.0) -> None:
    """Until the optimizer on `port` says it is the active planner."""

    def active() -> bool:
        try:
            url = f"http://127.0.0.1:{port}/readyz"
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(json.loads(response.read()).get("active"))
        except OSError:  # not listening yet, or 503 before it is ready
            return False

    for _ in range(round(timeout_s / 0.5)):
        if await asyncio.to_thread(active):
            return
        if not service.alive():
            raise RuntimeError(f"the optimizer exited:\n{service.log_tail()}")
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the optimizer on port {port} did not become active")


def stack_settings(
    bootstrap: str, work: Path, prefix: str, scenario: sn.Snapshot, limit: float
) -> Settings:
    transit = work / f"{prefix}-transit.json"
    transit.write_text(scenario.transit.model_dump_json())
    return Settings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        data_dir=work / prefix,
        gateway_port=free_port(),
        ledger_port=free_port(),
        optimizer_port=free_port(),
        plan_start_week=scenario.horizon.start_week,
        plan_weeks=scenario.horizon.weeks,
        frozen_horizon_weeks=scenario.frozen_horizon_weeks,
        transit_file=transit,
        replan_time_limit_s=limit,
        replan_window_s=2.0,
    )


async def load_scenario(
    settings: Settings, scenario: sn.Snapshot, services: list[ServiceProcess]
) -> Any:
    """Stream a scenario and wait for the plan that covers all of it; returns that plan."""
    registry = TopicRegistry(settings)
    bootstrap = settings.bootstrap_servers or ""
    feed = scenario_feed(scenario)
    started = time.perf_counter()
    await stream_feed(bootstrap, registry, feed, quiet)
    _, covering = await wait_for_state(
        bootstrap, registry, expected_versions(feed), quiet, 900, services
    )
    await request_plan(settings, "benchmark scenario streamed", covering)
    plan = await wait_for_plan(
        settings, covering, quiet, 3 * settings.replan_time_limit_s + 600, services
    )
    console.print(
        f"{len(feed)} events streamed and planned in {time.perf_counter() - started:.0f} s "
        f"(plan {plan.version}, {plan.solver_status.value})"
    )
    return plan


def bench_demand(scenario: sn.Snapshot, n: int, priority: sn.Priority) -> sn.Demand:
    template = next(d for d in scenario.demands if d.priority is sn.Priority.URGENT)
    return template.model_copy(
        update={
            "id": f"D-BENCH-{n:03d}",
            "quantity": 2000,
            "priority": priority,
            "due_week": scenario.horizon.start_week + dt.timedelta(weeks=8),
        }
    )


MID_SOLVE_S: Final = 1.5
"""When the urgent demand is written after the routine one's coalescing window closed (its
solve starts after routing and the state wait, so this is a little less far into the solve)."""


async def trigger_latencies(
    settings: Settings, scenario: sn.Snapshot, count: int, first: int = 0, mid_solve: bool = False
) -> list[float]:
    """Seconds from writing each urgent demand to a published plan that includes it. With
    `mid_solve`, a routine demand is written first and the urgent one while its re-plan solves."""
    registry = TopicRegistry(settings)
    seen: dict[str, float] = {}

    def on_plan(plan: Any) -> None:
        now = time.perf_counter()
        for outlook in plan.demands:
            seen.setdefault(outlook.demand_id, now)

    follower = PlanFollower(settings.bootstrap_servers or "", registry.plans, on_plan)
    await follower.start()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True, acks="all"
    )
    await producer.start()

    async def write(demand: sn.Demand) -> float:
        party, event = next(demand_events(scenario.model_copy(update={"demands": [demand]})))
        record = encode(event, source=f"/nations/{party.lower()}/bench")
        sent = time.perf_counter()
        await producer.send_and_wait(
            registry.inbox(party), record.value, key=record.key, headers=record.headers
        )
        return sent

    latencies = []
    try:
        for n in range(first, first + count):
            # Timed from an idle planner: a re-plan still queued from earlier input (the
            # scenario's last triggers, routed while its plan solved) is not this demand's.
            await wait_until_settled(settings, 3 * settings.replan_time_limit_s + 120)
            if mid_solve:
                await write(bench_demand(scenario, 900 + n, sn.Priority.ROUTINE))
                await asyncio.sleep(settings.replan_window_s + MID_SOLVE_S)
            demand = bench_demand(scenario, n, sn.Priority.URGENT)
            sent = await write(demand)
            for _ in range(round((4 * settings.replan_time_limit_s + 120) / 0.02)):
                if demand.id in seen:
                    break
                await asyncio.sleep(0.02)
            else:
                raise TimeoutError(f"no plan included {demand.id}")
            latencies.append(seen[demand.id] - sent)
            when = " mid-solve" if mid_solve else ""
            console.print(
                f"  urgent demand{when} {n - first + 1}/{count}: plan after {latencies[-1]:.2f} s"
            )
    finally:
        await producer.stop()
        await follower.stop()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


async def benchmark(args: argparse.Namespace, bootstrap: str, work: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    medium = generate("medium", 7)
    settings = stack_settings(bootstrap, work, "medium", medium, args.time_limit)
    await apply_topics(bootstrap, TopicRegistry(settings).specs)
    logs = work / "logs"
    services = [
        ServiceProcess(name, settings, logs / f"medium-{name}.log").start()
        for name in ("gateway", "ledger", "optimizer")
    ]
    mid_solve: dict[str, list[float]] = {}
    try:
        await load_scenario(settings, medium, services)
        latencies = await trigger_latencies(settings, medium, args.triggers)
        metrics = scrape(settings.optimizer_port)
        replayed = await replay(settings)
        if args.mid_solve:
            # Side by side: the same stack, its optimizer restarted without pre-emption.
            first = 100
            for preempt in (True, False):
                if not preempt:
                    services[2].stop()
                    off = settings.model_copy(update={"replan_preempt": False})
                    log = logs / "medium-optimizer-no-preempt.log"
                    services[2] = ServiceProcess("optimizer", off, log).start()
                    await wait_active(settings.optimizer_port, services[2])
                mid_solve["preempt" if preempt else "no_preempt"] = await trigger_latencies(
                    settings, medium, args.mid_solve, first=first, mid_solve=True
                )
                if preempt:
                    metrics["preempted"] = scrape(settings.optimizer_port).get(
                        "ampc_optimizer_preempted_total", 0.0
                    )
                first += args.mid_solve
    finally:
        for service in services:
            service.stop()
    offline = []
    for _ in range(args.triggers):
        started = time.perf_counter()
        plan_snapshot(replayed.snapshot, SolverSettings(time_limit_seconds=args.time_limit))
        offline.append(time.perf_counter() - started)
    offline_median = statistics.median(offline)
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    report["medium"] = {
        "urgent_demands": args.triggers,
        "latency_seconds": latencies,
        "latency_p50_seconds": p50,
        "latency_p95_seconds": p95,
        "offline_solve_seconds": offline,
        "offline_solve_median_seconds": offline_median,
        "p95_over_offline": p95 / offline_median,
        "replay_same_plan": replayed.same,
        "event_loop_max_stall_seconds": metrics.get("ampc_event_loop_max_stall_seconds"),
        "trigger_partition_assignments": metrics.get("ampc_optimizer_rebalances_total"),
    }
    if mid_solve:
        report["medium"]["mid_solve"] = {
            "urgent_demands": args.mid_solve,
            "written_after_the_routine_window_seconds": MID_SOLVE_S,
            "latency_seconds": mid_solve,
            "median_seconds": {k: statistics.median(v) for k, v in mid_solve.items()},
            "preempted_total": metrics.get("preempted"),
        }
    if args.large:
        large = generate("large", 7)
        settings = stack_settings(bootstrap, work, "large", large, args.time_limit)
        await apply_topics(bootstrap, TopicRegistry(settings).specs)
        services = [
            ServiceProcess(name, settings, logs / f"large-{name}.log").start()
            for name in ("gateway", "ledger", "optimizer")
        ]
        try:
            plan = await load_scenario(settings, large, services)
            metrics = scrape(settings.optimizer_port)
        finally:
            for service in services:
                service.stop()
        report["large"] = {
            "plan_status": plan.solver_status.value,
            "plan_solve_seconds": plan.solve_seconds,
            "event_loop_max_stall_seconds": metrics.get("ampc_event_loop_max_stall_seconds"),
            "trigger_partition_assignments": metrics.get("ampc_optimizer_rebalances_total"),
        }
    return report


def verdicts(report: dict[str, Any]) -> dict[str, bool]:
    medium = report["medium"]
    stalls = [
        part["event_loop_max_stall_seconds"]
        for part in report.values()
        if part.get("event_loop_max_stall_seconds") is not None
    ]
    assignments = [
        part["trigger_partition_assignments"]
        for part in report.values()
        if part.get("trigger_partition_assignments") is not None
    ]
    return {
        "p95_within_2x_offline": medium["p95_over_offline"] <= LATENCY_RATIO_TARGET,
        "stall_within_0.3s": bool(stalls) and max(stalls) <= STALL_TARGET_S,
        "no_rebalance": bool(assignments) and all(a == 1 for a in assignments),
    }


def print_report(report: dict[str, Any], met: dict[str, bool]) -> None:
    medium = report["medium"]
    table = Table(title="re-planning (medium scenario)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target")
    table.add_column("met")
    yes = {True: "yes", False: "[red]no[/red]"}
    table.add_row(
        "urgent demand -> plan published, p50", f"{medium['latency_p50_seconds']:.2f} s", "", ""
    )
    table.add_row(
        "urgent demand -> plan published, p95",
        f"{medium['latency_p95_seconds']:.2f} s",
        "<= 2x offline",
        yes[met["p95_within_2x_offline"]],
    )
    table.add_row(
        "offline build + solve, median", f"{medium['offline_solve_median_seconds']:.2f} s", "", ""
    )
    table.add_row("p95 / offline", f"{medium['p95_over_offline']:.2f}x", "<= 2x", "")
    table.add_row("replay gives the same plan", str(medium["replay_same_plan"]), "", "")
    if "mid_solve" in medium:
        mid = medium["mid_solve"]
        for key, label in (("preempt", "pre-empting"), ("no_preempt", "not pre-empting")):
            runs = ", ".join(f"{x:.1f}" for x in mid["latency_seconds"][key])
            table.add_row(
                f"urgent demand mid routine solve -> plan, median ({label})",
                f"{mid['median_seconds'][key]:.2f} s ({runs})",
                "",
                "",
            )
    for name, part in report.items():
        table.add_row(
            f"event loop longest stall ({name})",
            f"{part['event_loop_max_stall_seconds']:.3f} s",
            "<= 0.3 s",
            "",
        )
        table.add_row(
            f"trigger partition assignments ({name})",
            f"{part['trigger_partition_assignments']:.0f}",
            "1 (no rebalance)",
            "",
        )
    if "large" in report:
        table.add_row(
            "large plan",
            f"{report['large']['plan_status']}, {report['large']['plan_solve_seconds']:.1f} s",
            "",
            "",
        )
    table.add_row("stall target", "", "", yes[met["stall_within_0.3s"]])
    table.add_row("rebalance target", "", "", yes[met["no_rebalance"]])
    console.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triggers", type=int, default=10, help="urgent demands to time")
    parser.add_argument("--time-limit", type=float, default=60.0, help="solver seconds per plan")
    parser.add_argument("--large", action="store_true", help="also stream the large scenario")
    parser.add_argument(
        "--mid-solve",
        type=int,
        default=3,
        help="urgent demands written during a routine re-plan, with and without pre-emption",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ampc-replan-") as tmp:
        work = Path(tmp)
        data_dir = work / "broker"
        data_dir.mkdir()
        console.print("starting Kafka on free ports ...")
        info = broker.start(data_dir, Settings().cache_dir, nodes=1, broker_port=None)
        try:
            report = asyncio.run(benchmark(args, info.bootstrap_servers, work))
        finally:
            broker.stop(data_dir, grace_s=15)
    met = verdicts(report)
    print_report(report, met)
    result = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "time_limit_seconds": args.time_limit,
        "results": report,
        "targets_met": met,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
