"""Optimizer benchmark: a command, not a timed test.

    .venv/bin/python benchmarks/optimizer.py [--sizes small,medium,large] [--seed 1]
        [--time-limit 120] [--backends highs,glop,scip,pdlp,cpsat] [--out FILE]

For each size, in a fresh subprocess (so peak memory is that size's own): model build
seconds, solve seconds per objective level, peak RSS, gap, checker verdict; the chosen backend
(``auto``: Glop for the LP levels, HiGHS for MIPs) side by side with the others on the same
model; the greedy baseline; a cold and a warm (basis carried over) re-solve after one urgent
demand is added. Prints a rich table and writes benchmarks/results/optimizer.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "optimizer.json"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _terms(model: Any, x: Any) -> dict[str, float]:
    from ampc.optimizer.model import COST_SCALE, LEVEL_NAMES

    out = {}
    for k, name in enumerate(LEVEL_NAMES):
        value = float(model.objectives[k] @ x) + model.objective_offsets[k]
        out[name] = value * (COST_SCALE if name == "cost_cents" else 1.0)
    return out


def _service(model: Any, x: Any) -> dict[str, float]:
    """Rounds delivered on time and late, and lateness per delivered round (plain and weighted)."""
    import numpy as np

    from ampc.optimizer.snapshot import PRIORITY_WEIGHT

    snap = model.snapshot
    nf = model.n_flows
    due = np.array([snap.week_index(d.due_week) for d in snap.demands], np.int64)
    weight = np.array([PRIORITY_WEIGHT[d.priority] for d in snap.demands], np.float64)
    flows = x[:nf]
    late_weeks = np.maximum(model.flow_arrival - due[model.flow_demand], 0)
    delivered = float(flows.sum())
    weighted_delivered = float((flows * weight[model.flow_demand]).sum())
    weighted_lateness = float((flows * weight[model.flow_demand] * late_weeks).sum())
    return {
        "delivered_rounds": delivered,
        "on_time_rounds": float(flows[late_weeks == 0].sum()),
        "late_rounds": float(flows[late_weeks > 0].sum()),
        "round_weeks_late": float((flows * late_weeks).sum()),
        "weighted_delivered": weighted_delivered,
        "weighted_lateness_per_weighted_round": weighted_lateness / max(weighted_delivered, 1.0),
    }


def _lateness_at_shortfall(model: Any, shortfall_limit: float, time_limit: float) -> float | None:
    """LP minimum of weighted lateness among plans whose weighted shortfall is at most
    ``shortfall_limit`` (the greedy's): what lateness the optimizer could have at the greedy's
    level of service. A diagnostic, not the plan's objective."""
    import numpy as np

    from ampc.optimizer.plan import SolverSettings
    from ampc.optimizer.solve import _fix_level, _run, _set_objective, build_proto

    settings = SolverSettings(level_tolerance_relative=0.0, level_tolerance_absolute=0.0)
    proto = build_proto(model, np.zeros(model.n_cols, bool), relaxed_lots=True)
    _fix_level(proto, model.objectives[0], 0.0, shortfall_limit, settings, model.n_rows)
    _set_objective(proto, model.objectives[1], 0.0)
    raw = _run(proto, "highs", settings, time_limit, None, model.n_cols, model.n_rows)
    if raw.x is None or raw.status.value != "OPTIMAL":
        return None
    return float(model.objectives[1] @ raw.x)


def run_size(size: str, seed: int, time_limit: float, backends: list[str]) -> dict[str, Any]:
    """Everything measured for one size (runs in its own process)."""
    from ampc.optimizer.checker import check_plan
    from ampc.optimizer.explain import Explanation, explain
    from ampc.optimizer.greedy import greedy_baseline
    from ampc.optimizer.model import build_model
    from ampc.optimizer.plan import SolverSettings
    from ampc.optimizer.planner import to_plan
    from ampc.optimizer.scenario import generate
    from ampc.optimizer.snapshot import Demand
    from ampc.optimizer.solve import solve
    from ampc.optimizer.whatif import DemandAdded, apply_changes

    out: dict[str, Any] = {"size": size, "seed": seed, "time_limit_seconds": time_limit}
    snapshot = generate(size, seed)  # type: ignore[arg-type]
    started = time.perf_counter()
    model = build_model(snapshot)
    out["build_seconds"] = time.perf_counter() - started
    out["model"] = {
        "flows": model.n_flows,
        "columns": model.n_cols,
        "rows": model.n_rows,
        "nonzeros": int(model.a_row.size),
        "lot_columns": int(model.lot_source.size),
    }
    header = {
        "horizon_start": snapshot.horizon.start_week,
        "weeks": snapshot.horizon.weeks,
        "frozen_horizon_weeks": snapshot.frozen_horizon_weeks,
    }
    # the chosen backend, as the service runs it
    settings = SolverSettings(backend="auto", time_limit_seconds=time_limit)
    result = solve(model, settings)
    base_warm_start = result.warm_start()
    out["status"] = result.status.value
    out["message"] = result.message
    out["solve_seconds"] = result.solve_seconds
    out["levels"] = [
        {
            "name": lv.name,
            "seconds": lv.seconds,
            "value": lv.value,
            "bound": lv.bound,
            "status": lv.status.value,
        }
        for lv in result.levels
    ]
    out["build_plus_solve_seconds"] = out["build_seconds"] + result.solve_seconds
    started = time.perf_counter()
    explanation = explain(result) if result.x is not None else Explanation()
    out["explain_seconds"] = time.perf_counter() - started
    plan = to_plan(result, explanation, {**header, "settings": settings})
    out["gap"] = plan.gap
    out["terms"] = {t.name: t.value for t in plan.objective}
    report = check_plan(snapshot, plan)
    out["checker"] = "ok" if report.ok else report.summary()[:500]
    # peak of one plan (build, solve, explain, check); the end-of-run peak below also holds the
    # re-solve models and the other backends' solver copies
    out["peak_rss_mib_plan"] = _peak_mib()
    plan_x = None if result.x is None else result.x.copy()
    # greedy baseline on the same model
    started = time.perf_counter()
    greedy = greedy_baseline(model)
    out["greedy_seconds"] = time.perf_counter() - started
    out["greedy_terms"] = _terms(model, greedy)
    result.x = greedy
    greedy_plan = to_plan(result, Explanation(), {**header, "settings": settings})
    greedy_report = check_plan(snapshot, greedy_plan)
    out["greedy_checker"] = "ok" if greedy_report.ok else greedy_report.summary()[:500]
    # lateness on comparable service: per delivered round, and at the greedy's shortfall
    out["service"] = _service(model, plan_x) if plan_x is not None else None
    out["greedy_service"] = _service(model, greedy)
    started = time.perf_counter()
    out["lp_lateness_at_greedy_shortfall"] = _lateness_at_shortfall(
        model, out["greedy_terms"]["weighted_shortfall"], time_limit
    )
    out["lp_lateness_at_greedy_shortfall_seconds"] = time.perf_counter() - started
    # other backends on the same model, same mode (LP levels, rounding)
    comparisons: dict[str, Any] = {}
    for backend in backends:
        # CP-SAT takes integer variables only, so it solves the exact MIP: give it less time
        limit = min(time_limit, 30.0 if backend == "cpsat" else 60.0)
        alt_settings = SolverSettings(backend=backend, time_limit_seconds=limit)
        if backend == "cpsat" and model.n_flows > 20_000:
            comparisons[backend] = {"skipped": "CP-SAT needs integer flows; too large"}
            continue
        alt = solve(model, alt_settings)
        comparisons[backend] = {
            "status": alt.status.value,
            "seconds": alt.solve_seconds,
            "level_seconds": [lv.seconds for lv in alt.levels],
            "terms": _terms(model, alt.x) if alt.x is not None else None,
            "message": alt.message[:200],
        }
    out["backends"] = comparisons
    # warm re-solve: one urgent demand arrives; the plan in force is the previous plan
    first = snapshot.demands[0]
    urgent = Demand(
        id="D-WHATIF-URGENT",
        requested_by="UA",
        recipient="UA",
        product=first.product,
        interop_group=first.interop_group,
        quantity=max(100, first.quantity // 2),
        due_week=snapshot.week_date(min(snapshot.horizon.weeks - 1, 6)),
        priority="URGENT",
        pool_id=first.pool_id,
    )
    changed = apply_changes(snapshot, [DemandAdded(demand=urgent)])
    from ampc.optimizer.snapshot import PlannedFlow, PreviousPlan

    previous = PreviousPlan(
        version=1,
        allocations=[
            PlannedFlow(
                source_id=a.source_id,
                product=a.product,
                production_week=a.production_week,
                demand_id=a.demand_id,
                quantity=a.quantity,
            )
            for a in plan.allocations
            if a.demand_id is not None
        ],
    )
    started = time.perf_counter()
    cold_model = build_model(changed.model_copy(update={"previous_plan": previous}))
    cold = solve(cold_model, settings)
    out["cold_resolve_seconds"] = time.perf_counter() - started
    out["cold_level_seconds"] = [lv.seconds for lv in cold.levels]
    out["cold_resolve_status"] = cold.status.value
    del cold, cold_model  # a re-planning service holds the plan in force and the new model only
    warm_snapshot = changed.model_copy(update={"previous_plan": previous})
    started = time.perf_counter()
    warm_model = build_model(warm_snapshot)
    warm = solve(warm_model, settings, warm_start=base_warm_start)
    out["warm_resolve_seconds"] = time.perf_counter() - started
    out["warm_resolve_status"] = warm.status.value
    out["warm_level_seconds"] = [lv.seconds for lv in warm.levels]
    out["peak_rss_mib"] = _peak_mib()
    out["load_average_1m_at_end"] = __import__("os").getloadavg()[0]  # other work on the box
    return out


def _table(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=220)
    table = Table(title="ampc optimizer benchmark (seconds unless noted)")
    for col in (
        "size",
        "flows",
        "build",
        "L1",
        "L2",
        "L3",
        "solve",
        "status",
        "gap",
        "peak MiB (plan / run)",
        "checker",
        "wShort",
        "greedy wShort",
        "wLate",
        "greedy wLate",
        "warm/cold",
    ):
        table.add_column(col)
    for r in results:
        if "error" in r:
            table.add_row(r["size"], "", "", "", "", "", "", "ERROR", "", "", r["error"][:40])
            continue
        lv = [f"{x['seconds']:.2f}" for x in r["levels"]] + ["", "", ""]
        warm_ratio = r["warm_resolve_seconds"] / max(r["cold_resolve_seconds"], 1e-9)
        table.add_row(
            r["size"],
            f"{r['model']['flows']:,}",
            f"{r['build_seconds']:.2f}",
            lv[0],
            lv[1],
            lv[2],
            f"{r['solve_seconds']:.2f}",
            r["status"],
            "n/a" if r["gap"] is None else f"{r['gap']:.2e}",
            f"{r.get('peak_rss_mib_plan', 0):.0f} / {r['peak_rss_mib']:.0f}",
            r["checker"][:10],
            f"{r['terms']['weighted_shortfall']:,.0f}",
            f"{r['greedy_terms']['weighted_shortfall']:,.0f}",
            f"{r['terms']['weighted_lateness']:,.0f}",
            f"{r['greedy_terms']['weighted_lateness']:,.0f}",
            f"{warm_ratio:.2f}",
        )
    console.print(table)
    backends = Table(title="backends on the same model (total solve seconds, status)")
    backends.add_column("size")
    names = sorted({b for r in results if "backends" in r for b in r["backends"]})
    for name in ["auto (chosen)", *names]:
        backends.add_column(name)
    for r in results:
        if "backends" not in r:
            continue
        row = [r["size"], f"{r['solve_seconds']:.2f} {r['status']}"]
        for name in names:
            b = r["backends"].get(name, {"skipped": "not run"})
            row.append(b.get("skipped", f"{b.get('seconds', 0):.2f} {b.get('status', '')}")[:28])
        backends.add_row(*row)
    console.print(backends)
    service = Table(title="lateness on comparable service (ours vs greedy)")
    for col in (
        "size",
        "delivered",
        "on time",
        "late",
        "wLate per weighted round",
        "wLate",
        "LP wLate at greedy's wShort",
    ):
        service.add_column(col)
    for r in results:
        if not r.get("service"):
            continue
        ours, theirs = r["service"], r["greedy_service"]
        at_greedy = r.get("lp_lateness_at_greedy_shortfall")
        service.add_row(
            r["size"],
            f"{ours['delivered_rounds']:,.0f} vs {theirs['delivered_rounds']:,.0f}",
            f"{ours['on_time_rounds']:,.0f} vs {theirs['on_time_rounds']:,.0f}",
            f"{ours['late_rounds']:,.0f} vs {theirs['late_rounds']:,.0f}",
            f"{ours['weighted_lateness_per_weighted_round']:.2f} vs "
            f"{theirs['weighted_lateness_per_weighted_round']:.2f}",
            f"{r['terms']['weighted_lateness']:,.0f} vs "
            f"{r['greedy_terms']['weighted_lateness']:,.0f}",
            "n/a" if at_greedy is None else f"{at_greedy:,.0f}",
        )
    console.print(service)


def main() -> None:
    """Run the benchmark and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--backends", default="highs,glop,scip,pdlp,cpsat")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--merge", action="store_true", help="keep other sizes' results already in --out"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    if args.worker:
        print(json.dumps(run_size(args.worker, args.seed, args.time_limit, backends), default=str))
        return
    results: list[dict[str, Any]] = []
    for size in args.sizes.split(","):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                size,
                "--seed",
                str(args.seed),
                "--time-limit",
                str(args.time_limit),
                "--backends",
                ",".join(backends),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            results.append({"size": size, "error": proc.stderr.strip()[-2000:]})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{size}: done", file=sys.stderr)
    if args.merge and args.out.exists():
        done = {r["size"] for r in results}
        kept = [r for r in json.loads(args.out.read_text())["results"] if r["size"] not in done]
        order = {"small": 0, "medium": 1, "large": 2}
        results = sorted(kept + results, key=lambda r: order.get(r["size"], 9))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": __import__("os").cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "time_limit_seconds": args.time_limit,
                "results": results,
            },
            indent=1,
            default=str,
        )
        + "\n"
    )
    _table(results)
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
