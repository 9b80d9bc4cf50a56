"""The optimizer's output: a plan that records its input and settings and explains itself."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ampc.optimizer.snapshot import Priority


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SolverStatus(StrEnum):
    """How the solve ended; FEASIBLE and TIME_LIMIT plans carry the best solution known."""

    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"
    TIME_LIMIT = "TIME_LIMIT"
    INFEASIBLE = "INFEASIBLE"
    ERROR = "ERROR"


class SolverSettings(_Strict):
    """Everything that, with the snapshot, determines the plan (recorded for replay)."""

    backend: Literal["auto", "highs", "scip", "cpsat", "glop", "pdlp"] = "auto"
    """auto: HiGHS for MIP levels and cold LP levels, Glop for LP levels that start from a
    known basis (warm re-solves) and for very large cold LPs."""
    time_limit_seconds: float = Field(default=60.0, gt=0)
    """Budget for the whole lexicographic solve, shared across the levels."""
    relative_gap: float = Field(default=1e-6, ge=0)
    threads: int = Field(default=1, ge=1)
    integrality: Literal["auto", "exact", "round"] = "auto"
    """exact: flows and lots are integer variables (a MIP per level); round: every level is
    an LP, then flows are rounded down, lots to whole lots, and short demands topped up
    greedily (the plan reports its gap to the LP bound); auto: exact up to
    ``exact_size_limit`` flow and lot variables."""
    exact_size_limit: int = Field(default=400, ge=0)
    level_tolerance_relative: float = Field(default=1e-9, ge=0)
    level_tolerance_absolute: float = Field(default=1e-6, ge=0)
    """A solved level is fixed as ``value <= optimum * (1 + rel) + abs`` before the next."""


class ObjectiveTerm(_Strict):
    """One lexicographic level: its value in the plan and the best bound proven for it."""

    level: int
    name: Literal["weighted_shortfall", "weighted_lateness", "cost_cents", "churn_rounds"]
    value: float
    bound: float | None = None
    solve_seconds: float = 0.0


class Allocation(_Strict):
    """Rounds from a source (plant line or stock offer) for a demand (None: lot surplus)."""

    source_kind: Literal["line", "offer"]
    source_id: str
    plant_id: str | None = None
    origin: str
    product: str
    production_week: dt.date
    arrival_week: dt.date
    demand_id: str | None
    quantity: int = Field(gt=0)
    unit_price_cents: int
    frozen: bool = False


class WeekQuantity(_Strict):
    """Cumulative rounds delivered by the end of ``week``."""

    week: dt.date
    cumulative: int


class Reason(_Strict):
    """Why a demand is short or late, with the rounds the reason accounts for where known."""

    code: Literal[
        "no_eligible_source",
        "excluded_by_rule",
        "capacity",
        "material",
        "pool_money",
        "transit",
        "competing_demands",
    ]
    message: str
    units: int | None = None


class DemandOutcome(_Strict):
    """What the plan gives one demand."""

    demand_id: str
    priority: Priority
    quantity: int
    due_week: dt.date
    delivered_on_time: int
    delivered_late: int
    shortfall: int
    lateness_round_weeks: int
    delivered_by_week: list[WeekQuantity] = Field(default_factory=list)
    reasons: list[Reason] = Field(default_factory=list)


class Bottleneck(_Strict):
    """A binding resource and what one more unit of it is worth (from LP duals)."""

    kind: Literal["plant_capacity", "material", "pool_money"]
    subject: str
    first_week: dt.date | None = None
    last_week: dt.date | None = None
    shadow_price: float
    """Weighted shortfall avoided per extra unit (round/week, tonne, EUR 1M)."""
    unit: str
    message: str


class DonorMoney(_Strict):
    """A donor's share of what the plan commits from a pool (pro rata of paid money)."""

    donor: str
    paid_cents: int
    committed_cents: int


class PoolMoney(_Strict):
    """Money of one pool: paid in, committed before, committed by this plan."""

    pool_id: str
    paid_cents: int
    pledged_cents: int
    previously_committed_cents: int
    committed_cents: int
    by_donor: list[DonorMoney] = Field(default_factory=list)


class AllocationChange(_Strict):
    """One (source, product, week, demand) whose quantity differs from the previous plan."""

    source_id: str
    product: str
    production_week: dt.date
    demand_id: str | None
    before: int
    after: int


class PlanDiff(_Strict):
    """What changed against the previous plan."""

    previous_version: int | None
    rounds_moved: int
    changes: list[AllocationChange] = Field(default_factory=list)
    demands_changed: list[str] = Field(default_factory=list)


class Plan(_Strict):
    """A production plan for the horizon of its snapshot."""

    version: int = 1
    trigger: str = "manual"
    input_reference: dict[str, Any] = Field(default_factory=dict)
    """Where the snapshot came from, e.g. topic offsets, and its content digest."""
    horizon_start: dt.date
    weeks: int
    frozen_horizon_weeks: int
    settings: SolverSettings
    status: SolverStatus
    status_message: str = ""
    objective: list[ObjectiveTerm] = Field(default_factory=list)
    gap: float | None = None
    """Relative gap of the first level that is not proven optimal (0 when all are)."""
    allocations: list[Allocation] = Field(default_factory=list)
    demands: list[DemandOutcome] = Field(default_factory=list)
    bottlenecks: list[Bottleneck] = Field(default_factory=list)
    pools: list[PoolMoney] = Field(default_factory=list)
    diff: PlanDiff | None = None
    build_seconds: float = 0.0
    solve_seconds: float = 0.0

    def term(self, name: str) -> float:
        """Value of an objective term by name (0 if the plan has none)."""
        for t in self.objective:
            if t.name == name:
                return t.value
        return 0.0

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Read and validate a plan JSON file."""
        return cls.model_validate_json(Path(path).read_bytes())

    def dump_json(self) -> str:
        """JSON text of the plan."""
        return self.model_dump_json(indent=1) + "\n"
