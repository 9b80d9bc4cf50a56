"""Ledger state growth: what a plant event costs after years of weekly production reports.

    .venv/bin/python benchmarks/ledger_state.py [--years 5] [--lines 5]
        [--out benchmarks/results/ledger_state.json]

A command, not a timed test, and no broker: every plant event reads the whole plant state,
folds it and writes it back (and the ledger publishes it whole to `ampc.state.plants`). This
feeds one plant (`--lines` lines, one report per line per week, each sent in its week) through
the pure fold over a store that keeps each state's JSON as the ledger's tables do, and at the
end of every year prints the state's size and the median cost of the events of that year's
last four weeks. Side by side in one run:

- now: reports of the last `PRODUCTION_KEPT_WEEKS` weeks kept, each state decoded once per
  event and changed in place;
- every report kept, the store as now;
- as before 2026-11-30: every report kept, and the fold deep-copied each state it changed
  after the store had decoded it (twice: once for the applied-log check).

Writes benchmarks/results/ledger_state.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ampc.contract import events as ev
from ampc.ledger import state as ledger_state
from ampc.ledger.app import TableStore
from ampc.ledger.fold import Applied, EventMeta, apply_event
from ampc.ledger.state import EntityKind, EntityState

FIRST_WEEK = dt.date(2027, 1, 4)  # a Monday
TIMED_WEEKS = 4
KEEP_ALL = 100_000
"""Weeks kept when measuring the ledger as it was: more than any run feeds."""


def _meta(offset: int, week: dt.date) -> EventMeta:
    sent = dt.datetime.combine(week + dt.timedelta(days=2), dt.time(12), tzinfo=dt.UTC)
    return EventMeta(
        event_id=f"bench/{offset}",
        party="DE",
        topic="ampc.events.delivery",
        partition=0,
        offset=offset,
        time=sent,
    )


def _plant(lines: int) -> ev.PlantRegistered:
    return ev.PlantRegistered(
        plant_id="P-1",
        nation="DE",
        operator="Works",
        plant_name="Works 1",
        lines=[
            ev.ProductionLine(
                line_id=f"L{i}",
                products=[
                    ev.LineProduct(product="155-HE", units_per_week=900, unit_price_cents=400_000)
                ],
            )
            for i in range(lines)
        ],
    )


class _CopyingStore(TableStore):
    """The store and fold as they were: a fresh decode, then a deep copy of it to change."""

    def get_for_change(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        state = self.get(kind, entity_id)
        return None if state is None else state.model_copy(deep=True)


def run(years: int, lines: int, kept_weeks: int, store: TableStore) -> list[dict[str, Any]]:
    """Feed `years` of weekly reports; one row per year: state size and cost per event."""
    setattr(ledger_state, "PRODUCTION_KEPT_WEEKS", kept_weeks)  # noqa: B010 - a Final, on purpose
    offset = 0
    apply_event(store, _plant(lines), _meta(offset, FIRST_WEEK))
    rows: list[dict[str, Any]] = []
    timed: list[float] = []
    for n in range(years * 52):
        week = FIRST_WEEK + dt.timedelta(weeks=n)
        for i in range(lines):
            offset += 1
            report = ev.ProductionReported(
                report_id=f"R-{n}-{i}",
                plant_id="P-1",
                nation="DE",
                line_id=f"L{i}",
                product="155-HE",
                week=week,
                quantity=850,
            )
            started = time.perf_counter()
            store.forget_written()
            outcome = apply_event(store, report, _meta(offset, week))
            elapsed = time.perf_counter() - started
            if not isinstance(outcome, Applied):
                raise RuntimeError(f"report {report.report_id} was not applied: {outcome}")
            if n % 52 >= 52 - TIMED_WEEKS:
                timed.append(elapsed)
        if n % 52 == 51:
            raw = store.tables[EntityKind.PLANTS]["P-1"]
            plant = store.get(EntityKind.PLANTS, "P-1")
            assert isinstance(plant, ledger_state.PlantState)
            rows.append(
                {
                    "year": n // 52 + 1,
                    "reports_kept": len(plant.reports),
                    "state_kib": len(raw) / 1024,
                    "ms_per_event": 1000 * statistics.median(timed),
                }
            )
            timed.clear()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ledger_state.json"))
    args = parser.parse_args()
    kept = ledger_state.PRODUCTION_KEPT_WEEKS

    def tables() -> dict[EntityKind, dict[str, bytes]]:
        return {kind: {} for kind in EntityKind}

    variants = {
        "now": run(args.years, args.lines, kept, TableStore(tables())),
        "all_kept": run(args.years, args.lines, KEEP_ALL, TableStore(tables())),
        "before": run(args.years, args.lines, KEEP_ALL, _CopyingStore(tables())),
    }
    setattr(ledger_state, "PRODUCTION_KEPT_WEEKS", kept)  # noqa: B010
    table = Table(title=f"one plant, {args.lines} lines reporting weekly (ms per plant event)")
    table.add_column("year")
    for title in (f"now ({kept} weeks kept)", "all kept", "as before (all kept, deep copy)"):
        table.add_column(f"{title}: reports / state KiB / ms")
    for year in range(args.years):
        cells = [
            f"{r['reports_kept']} / {r['state_kib']:.1f} / {r['ms_per_event']:.2f}"
            for r in (rows[year] for rows in variants.values())
        ]
        table.add_row(str(year + 1), *cells)
    Console(width=160).print(table)
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "lines": args.lines,
        "kept_weeks": kept,
        **variants,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
