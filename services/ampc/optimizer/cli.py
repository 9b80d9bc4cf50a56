"""Offline optimizer commands, mounted by the main CLI as ``ampc plan`` and ``ampc scenario``.

Exit codes: 0 a plan with a solution (OPTIMAL, FEASIBLE or TIME_LIMIT with one); 1 a plan
without a usable solution (INFEASIBLE, ERROR) or a check that failed; 2 unreadable input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ampc.optimizer.checker import check_plan
from ampc.optimizer.plan import Plan, SolverSettings, SolverStatus
from ampc.optimizer.planner import plan_snapshot
from ampc.optimizer.scenario import generate
from ampc.optimizer.snapshot import PRIORITY_WEIGHT, Snapshot
from ampc.optimizer.whatif import ChangeSet, what_if

plan_app = typer.Typer(
    help="Solve, explain and check production plans offline.", no_args_is_help=True
)
scenario_app = typer.Typer(help="Generate seeded planning scenarios.", no_args_is_help=True)

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # one error, one line, whatever the terminal


@plan_app.callback()
def _plan_group() -> None:
    """Solve, explain and check production plans offline."""


@scenario_app.callback()
def _scenario_group() -> None:
    """Generate seeded planning scenarios."""


def _one_line(exc: ValidationError) -> str:
    """The first validation error as 'field.path: message' (plus how many more)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(file)"
    more = len(exc.errors()) - 1
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {first['msg']}{tail}"


def _load_snapshot(path: Path) -> Snapshot:
    try:
        return Snapshot.load(path)
    except FileNotFoundError:
        errors.print(f"[red]error:[/] snapshot file {path} does not exist")
    except ValidationError as exc:
        errors.print(f"[red]error:[/] snapshot {path} is invalid: {_one_line(exc)}", soft_wrap=True)
    except (OSError, UnicodeDecodeError) as exc:
        errors.print(f"[red]error:[/] cannot read snapshot {path}: {exc}")
    raise typer.Exit(2)


def _load_plan(path: Path) -> Plan:
    try:
        return Plan.load(path)
    except FileNotFoundError:
        errors.print(f"[red]error:[/] plan file {path} does not exist")
    except ValidationError as exc:
        errors.print(f"[red]error:[/] plan {path} is invalid: {_one_line(exc)}", soft_wrap=True)
    except (OSError, UnicodeDecodeError) as exc:
        errors.print(f"[red]error:[/] cannot read plan {path}: {exc}")
    raise typer.Exit(2)


def summarise(plan: Plan, top: int = 5) -> None:
    """Print status, objective terms, gap, coverage, top shortfalls and bottlenecks."""
    colour = {"OPTIMAL": "green", "FEASIBLE": "yellow", "TIME_LIMIT": "yellow"}.get(
        plan.status.value, "red"
    )
    console.print(
        f"status [{colour}]{plan.status.value}[/]"
        + (f" - {plan.status_message}" if plan.status_message else "")
    )
    terms = Table("level", "objective", "value", "bound", "seconds", title="objective terms")
    for t in plan.objective:
        value = f"EUR {t.value / 100:,.2f}" if t.name == "cost_cents" else f"{t.value:,.0f}"
        bound = (
            ""
            if t.bound is None
            else (f"EUR {t.bound / 100:,.2f}" if t.name == "cost_cents" else f"{t.bound:,.1f}")
        )
        terms.add_row(str(t.level), t.name, value, bound, f"{t.solve_seconds:.3f}")
    console.print(terms)
    requested = sum(d.quantity for d in plan.demands)
    on_time = sum(d.delivered_on_time for d in plan.demands)
    late = sum(d.delivered_late for d in plan.demands)
    coverage = (on_time + late) / requested if requested else 1.0
    gap = "n/a" if plan.gap is None else f"{plan.gap:.2e}"
    console.print(
        f"gap {gap}; coverage {coverage:.1%} of {requested:,} rounds "
        f"({on_time:,} on time, {late:,} late); build {plan.build_seconds:.2f} s, "
        f"solve {plan.solve_seconds:.2f} s"
    )
    short = sorted(
        (d for d in plan.demands if d.shortfall > 0),
        key=lambda d: (-PRIORITY_WEIGHT[d.priority] * d.shortfall, d.demand_id),
    )
    if short:
        table = Table("demand", "priority", "short", "of", "first reason", title="top shortfalls")
        for d in short[:top]:
            reason = d.reasons[0].message if d.reasons else ""
            table.add_row(
                d.demand_id, d.priority.value, f"{d.shortfall:,}", f"{d.quantity:,}", reason
            )
        console.print(table)
    if plan.bottlenecks:
        table = Table("kind", "subject", "shadow price", "per", title="bottlenecks")
        for b in plan.bottlenecks[:top]:
            table.add_row(b.kind, b.subject, f"{b.shadow_price:,.2f}", b.unit)
        console.print(table)


@plan_app.command("solve")
def solve_command(
    snapshot: Annotated[Path, typer.Argument(help="Snapshot JSON file.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the plan JSON (default: SNAPSHOT.plan.json)."),
    ] = None,
    time_limit: Annotated[float, typer.Option(help="Seconds for all levels together.")] = 60.0,
    solver: Annotated[
        str,
        typer.Option(help="auto (HiGHS; Glop from a known basis), highs, scip, cpsat, glop, pdlp."),
    ] = "auto",
) -> None:
    """Solve a snapshot file, print a summary and write the plan."""
    snap = _load_snapshot(snapshot)
    if solver not in ("auto", "highs", "scip", "cpsat", "glop", "pdlp"):
        errors.print(
            f"[red]error:[/] --solver {solver!r}: choose auto, highs, scip, cpsat, glop, pdlp"
        )
        raise typer.Exit(2)
    if time_limit <= 0:
        errors.print("[red]error:[/] --time-limit must be positive")
        raise typer.Exit(2)
    settings = SolverSettings(backend=solver, time_limit_seconds=time_limit)
    plan = plan_snapshot(
        snap, settings, trigger="cli", input_reference={"snapshot_file": str(snapshot)}
    )
    target = out or snapshot.with_suffix(".plan.json")
    target.write_text(plan.dump_json())
    summarise(plan)
    console.print(f"plan written to {target}")
    if plan.status in (SolverStatus.INFEASIBLE, SolverStatus.ERROR):
        raise typer.Exit(1)


@plan_app.command("explain")
def explain_command(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="Plan JSON file.")],
    demand: Annotated[str, typer.Option("--demand", help="Demand id.")],
) -> None:
    """Explain what a plan gives one demand, and why it is short or late."""
    plan = _load_plan(plan_file)
    outcome = next((d for d in plan.demands if d.demand_id == demand), None)
    if outcome is None:
        errors.print(f"[red]error:[/] demand {demand!r} is not in plan {plan_file}")
        raise typer.Exit(2)
    console.print(
        f"demand {outcome.demand_id} ({outcome.priority.value}): {outcome.quantity:,} rounds "
        f"due {outcome.due_week}; {outcome.delivered_on_time:,} on time, "
        f"{outcome.delivered_late:,} late ({outcome.lateness_round_weeks:,} round-weeks), "
        f"{outcome.shortfall:,} short"
    )
    for a in plan.allocations:
        if a.demand_id == demand:
            console.print(
                f"  {a.quantity:>8,} {a.product} from {a.source_kind} {a.source_id} "
                f"({a.origin}) made {a.production_week}, arrives {a.arrival_week}"
                + (" [frozen]" if a.frozen else "")
            )
    if not outcome.reasons:
        console.print(
            "nothing to explain: delivered in full and on time"
            if outcome.shortfall == 0 and outcome.delivered_late == 0
            else "no explanation recorded in this plan"
        )
    for r in outcome.reasons:
        units = f" [{r.units:,} rounds]" if r.units is not None else ""
        console.print(f"- {r.code}{units}: {r.message}", soft_wrap=True)


@plan_app.command("check")
def check_command(
    snapshot: Annotated[Path, typer.Argument(help="Snapshot JSON file.")],
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="Plan JSON file.")],
) -> None:
    """Verify a plan against its snapshot with the independent checker."""
    snap = _load_snapshot(snapshot)
    plan = _load_plan(plan_file)
    report = check_plan(snap, plan)
    if report.ok:
        console.print(f"[green]ok[/]: {report.summary()}")
        return
    for v in report.violations[:50]:
        errors.print(f"[red]violated {v.constraint}[/]: {v.message}", soft_wrap=True)
    if len(report.violations) > 50:
        errors.print(f"... and {len(report.violations) - 50} more")
    raise typer.Exit(1)


@plan_app.command("whatif")
def whatif_command(
    snapshot: Annotated[Path, typer.Argument(help="Snapshot JSON file.")],
    changes: Annotated[Path, typer.Argument(help='Changes JSON file: {"changes": [...]}.')],
    out: Annotated[Path | None, typer.Option(help="Write the what-if result JSON here.")] = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 60.0,
) -> None:
    """Solve the snapshot as is and with the changes; print what changes. Publishes nothing."""
    snap = _load_snapshot(snapshot)
    try:
        change_set = ChangeSet.model_validate_json(changes.read_bytes())
    except FileNotFoundError:
        errors.print(f"[red]error:[/] changes file {changes} does not exist")
        raise typer.Exit(2) from None
    except ValidationError as exc:
        errors.print(f"[red]error:[/] changes {changes} are invalid: {_one_line(exc)}")
        raise typer.Exit(2) from None
    try:
        result = what_if(snap, change_set, SolverSettings(time_limit_seconds=time_limit))
    except ValueError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(f"base {result.base.status.value}, changed {result.changed.status.value}")
    for name, delta in result.objective_delta.items():
        console.print(f"  {name}: {delta:+,.0f}")
    console.print(f"rounds moved {result.diff.rounds_moved:,}; demands whose shortfall changes:")
    for demand_id, delta in list(result.shortfall_delta.items())[:20]:
        console.print(f"  {demand_id}: {delta:+,} rounds short")
    if out is not None:
        out.write_text(result.model_dump_json(indent=1) + "\n")
        console.print(f"what-if written to {out}")


@scenario_app.command("generate")
def generate_command(
    size: Annotated[str, typer.Option(help="small, medium or large.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    out: Annotated[Path, typer.Option(help="Snapshot JSON file to write.")] = Path("snapshot.json"),
) -> None:
    """Write a seeded scenario snapshot (same size and seed, same bytes)."""
    if size not in ("small", "medium", "large"):
        errors.print(f"[red]error:[/] --size {size!r}: choose small, medium or large")
        raise typer.Exit(2)
    snap = generate(size, seed)  # type: ignore[arg-type]
    out.write_text(snap.dump_json())
    console.print(
        f"{size} scenario (seed {seed}) written to {out}: {len(snap.plants)} plants, "
        f"{len(snap.stock_offers)} offers, {len(snap.products)} products, "
        f"{snap.horizon.weeks} weeks, {len(snap.demands)} demands, {len(snap.pools)} pools"
    )
