"""Pipeline settings side by side: the gateway and the ledger under two or more values of one
AMPC_* setting, alternated on one warmed broker.

    .venv/bin/python benchmarks/pipeline_ab.py AMPC_FETCH_GATHER_MS=0,20 [AMPC_OTHER=a,b] [--reps 3]
        [--events 8000] [--rate 200] [--latency-seconds 15] [--stages services|floor]
        [--out FILE; default benchmarks/results/pipeline_ab-[floor-]<setting>.json]

A command, not a timed test. Single runs of `benchmarks/pipeline.py` swing by a fifth from one
to the next on this 2-core machine, more than most settings change, so a setting is judged here
in pairs: one broker (warmed first with the raw loop, as a fresh broker's JIT takes far more
CPU for its first minute, then with one run of the stages compared that is dropped), then for
each repetition and each value (every other pair in the reverse order), fresh
`ampc serve gateway` and `ampc serve ledger` processes on topics of their own, a burst of N
events timed until every entity's final state is visible, and a latency run at a fixed rate.
Prints a table, writes JSON.
With `--stages floor` the same pairs run the faust floor of `benchmarks/pipeline.py` (the raw
loop's work as faust agents on ampc's app settings) instead of the services: what a setting
does to faust itself.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from ampc.platform import broker
from ampc.platform.topics import TopicRegistry, apply_topics
from ampc.settings import Settings
from pipeline import (
    encode_all,
    machine,
    measure_latency,
    measure_throughput,
    own_broker,
    service_settings,
    start_faust_stages,
    start_raw_stages,
    start_services,
    wait_for_probe,
    workload,
)

RESULTS: Final = Path(__file__).resolve().parent / "results"
"""Where results go by default: `pipeline_ab-[floor-]<setting>.json`, one file per setting
compared (and per kind of stages)."""
WARM_UP_EVENTS: Final = 20_000
"""Events of the raw loop's run that warms the broker (not pipeline.py's per-stage warm-up)."""

console = Console()


@dataclass(frozen=True, slots=True)
class Run:
    """One value's run: burst throughput and latency at the fixed rate."""

    value: str
    repetition: int
    events_per_s: float
    cpu_ms_per_event: dict[str, float]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    latency_cpu_percent: dict[str, float]


async def warm_broker(bootstrap: str, work: Path) -> None:
    """The raw loop once through 20,000 events: the broker's JIT compiles before any pair."""
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix="ab-warm", data_dir=work)
    registry = TopicRegistry(settings)
    await apply_topics(bootstrap, registry.specs)
    children = start_raw_stages(bootstrap, settings.topic_prefix, work)
    try:
        await wait_for_probe(bootstrap, registry, "probe-raw", children, 120)
        planned = workload(WARM_UP_EVENTS, "warm")
        pids = {c.name: c.process.pid for c in children}
        records = encode_all(planned, registry)
        await measure_throughput("warm", bootstrap, registry, planned, records, pids, 150)
    finally:
        for child in children:
            child.stop()


async def one_run(
    args: argparse.Namespace, bootstrap: str, broker_pid: int, work: Path, value: str, n: int
) -> Run:
    os.environ.update(args.assignments[value])  # the services inherit them (service_env)
    settings = service_settings(bootstrap, f"ab{n}", work)
    registry = TopicRegistry(settings)
    await apply_topics(bootstrap, registry.specs)
    if args.stages == "floor":
        children = start_faust_stages(settings, work)
    else:
        children = start_services(settings, work)
    try:
        await wait_for_probe(bootstrap, registry, "probe", children, 180)
        # "gateway" and "ledger" for the floor's stages too, so the summary reads both alike
        pids = {c.name.removeprefix("faust floor "): c.process.pid for c in children}
        pids["kafka broker"] = broker_pid
        planned = workload(args.events, f"t{n}")
        records = encode_all(planned, registry)
        burst = await measure_throughput(
            args.stages, bootstrap, registry, planned, records, pids, args.timeout
        )
        await asyncio.sleep(2)  # let the burst's commits settle before timing single events
        latency = await measure_latency(bootstrap, registry, args.rate, args.latency_seconds, pids)
    finally:
        for child in children:
            child.stop()
    return Run(
        value=value,
        repetition=n,
        events_per_s=round(burst.events_per_s, 1),
        cpu_ms_per_event=burst.cpu_ms_per_event,
        p50_ms=latency.p50_ms,
        p95_ms=latency.p95_ms,
        p99_ms=latency.p99_ms,
        latency_cpu_percent={k: v["percent_of_one_core"] for k, v in latency.cpu.items()},
    )


async def compare(args: argparse.Namespace, info: broker.ClusterInfo, work: Path) -> list[Run]:
    runs: list[Run] = []
    await warm_broker(info.bootstrap_servers, work)
    # The first services run after the raw warm-up was the slowest of its A/B every time
    # (2026-11-30: p99 1,692 and 2,037 ms against 200 to 600 ms after it; the floor's first
    # run too, 786 ms against 139 to 262 ms): run one and drop it.
    warm = await one_run(args, info.bootstrap_servers, info.nodes[0].pid, work, args.values[0], 0)
    console.print(f"warm-up run ({args.variable}={warm.value}, dropped): p99 {warm.p99_ms} ms")
    for repetition in range(args.reps):
        # every other pair in the reverse order, so that no value always runs first
        order = args.values if repetition % 2 == 0 else args.values[::-1]
        for value in order:
            n = len(runs) + 1
            run = await one_run(args, info.bootstrap_servers, info.nodes[0].pid, work, value, n)
            console.print(
                f"{args.variable}={value} (pair {repetition + 1}): "
                f"{run.events_per_s:,.0f} events/s, p99 {run.p99_ms} ms at {args.rate:g}/s"
            )
            runs.append(run)
    return runs


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


def summary(args: argparse.Namespace, runs: list[Run]) -> dict[str, dict[str, Any]]:
    """Per value: every run's numbers and their medians."""
    out: dict[str, dict[str, Any]] = {}
    for value in args.values:
        mine = [r for r in runs if r.value == value]
        out[value] = {
            "events_per_s": [r.events_per_s for r in mine],
            "p99_ms": [r.p99_ms for r in mine],
            "median_events_per_s": _median([r.events_per_s for r in mine]),
            "median_p50_ms": _median([r.p50_ms for r in mine]),
            "median_p99_ms": _median([r.p99_ms for r in mine]),
            "median_gateway_cpu_percent_at_rate": _median(
                [r.latency_cpu_percent.get("gateway") for r in mine]
            ),
            "median_ledger_cpu_percent_at_rate": _median(
                [r.latency_cpu_percent.get("ledger") for r in mine]
            ),
        }
    return out


def print_table(args: argparse.Namespace, by_value: dict[str, dict[str, Any]]) -> None:
    title = f"{args.variable}: medians of {args.reps} alternated runs each ({args.stages})"
    table = Table(title=title)
    table.add_column("value")
    table.add_column("burst events/s (runs)")
    table.add_column(f"p50 / p99 at {args.rate:g}/s")
    table.add_column("gateway / ledger CPU at that rate")
    for value, numbers in by_value.items():
        runs = ", ".join(f"{x:,.0f}" for x in numbers["events_per_s"])
        table.add_row(
            value,
            f"{numbers['median_events_per_s']:,.0f} ({runs})",
            f"{numbers['median_p50_ms']} / {numbers['median_p99_ms']} ms",
            f"{numbers['median_gateway_cpu_percent_at_rate']} % / "
            f"{numbers['median_ledger_cpu_percent_at_rate']} %",
        )
    console.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "settings",
        nargs="+",
        help="AMPC_NAME=value1,value2[,...]; several settings change together, value by value",
    )
    parser.add_argument("--reps", type=int, default=3, help="runs per value (3)")
    parser.add_argument("--events", type=int, default=8000, help="events per burst (8000)")
    parser.add_argument("--rate", type=float, default=200.0, help="latency run's rate (200/s)")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=150.0, help="burst time limit (150 s)")
    parser.add_argument(
        "--stages",
        choices=("services", "floor"),
        default="services",
        help="the services (default) or the faust floor",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    columns: dict[str, list[str]] = {}
    for setting in args.settings:
        name, _, values = setting.partition("=")
        if not name.startswith("AMPC_") or not values:
            parser.error("each setting is AMPC_NAME=value1,value2")
        if name.removeprefix("AMPC_").lower() not in Settings.model_fields:
            parser.error(f"{name} is not an ampc setting")
        columns[name] = values.split(",")
    counts = {len(values) for values in columns.values()}
    if len(counts) != 1:
        parser.error("every setting needs as many values as the others")
    (count,) = counts
    if count < 2:
        parser.error("give at least two values to compare")
    # One variant per value position: its label ("20", or "0/5" for two settings) and values.
    args.variable = "+".join(columns)
    args.values = ["/".join(values[i] for values in columns.values()) for i in range(count)]
    args.assignments = {
        label: {name: values[i] for name, values in columns.items()}
        for i, label in enumerate(args.values)
    }
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="ampc-bench-ab-"))
    try:
        with own_broker(work) as info:  # started and stopped outside the event loop
            runs = asyncio.run(compare(args, info, work))
    except BaseException:
        console.print(f"[red]failed; logs kept in {work}[/red]")
        raise
    shutil.rmtree(work, ignore_errors=True)
    by_value = summary(args, runs)
    print_table(args, by_value)
    report = {
        "benchmark": "pipeline_ab",
        "when": started,
        "machine": machine() | {"load_average_at_start": load_at_start},
        "setting": args.variable,
        "stages": args.stages,
        "parameters": {
            "reps": args.reps,
            "events": args.events,
            "rate": args.rate,
            "latency_seconds": args.latency_seconds,
            # since 2026-11-30; files without these ran the first value first in every pair
            "warm_up_run_dropped": True,
            "order": "reversed in every other pair",
        },
        "by_value": by_value,
        "runs": [asdict(r) for r in runs],
    }
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    names = args.assignments[args.values[0]]
    setting = "+".join(name.removeprefix("AMPC_").lower() for name in names)
    stages = "floor-" if args.stages == "floor" else ""
    out: Path = args.out or RESULTS / f"pipeline_ab-{stages}{setting}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
