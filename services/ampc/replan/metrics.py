"""Prometheus metrics of the optimizer service and the tracker (base units, bounded labels:
objective level, solver status, trigger kind, alert kind, product, recipient nation, pool)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SOLVE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

TRIGGERS = Counter(
    "ampc_optimizer_triggers_total",
    "Re-plan triggers read by the active planner, by kind and urgency.",
    ["kind", "urgent"],
)
TRIGGERS_ROUTED = Counter(
    "ampc_optimizer_triggers_routed_total",
    "Canonical events that the router turned into re-plan triggers, by urgency.",
    ["urgent"],
)
SOLVES = Counter("ampc_optimizer_solves_total", "Re-plans solved, by solver status.", ["status"])
PLANS_PUBLISHED = Counter("ampc_optimizer_plans_published_total", "Plans published.")
LEVEL_SECONDS = Histogram(
    "ampc_optimizer_solve_seconds",
    "Solver seconds per objective level of each re-plan.",
    ["level"],
    buckets=SOLVE_BUCKETS,
)
TRIGGER_TO_PLAN = Histogram(
    "ampc_optimizer_trigger_to_plan_seconds",
    "From a trigger's creation (the event read by the router) to its plan published.",
    ["urgent"],
    buckets=SOLVE_BUCKETS,
)
GAP = Gauge("ampc_optimizer_gap_ratio", "Relative gap of the plan in force to its LP bound.")
STATUS = Gauge(
    "ampc_optimizer_plan_status", "1 for the solver status of the plan in force.", ["status"]
)
CHURN = Gauge("ampc_optimizer_churn_rounds", "Rounds moved against the previous plan.")
COVERAGE = Gauge(
    "ampc_optimizer_coverage_ratio", "Share of requested rounds the plan in force delivers."
)
SHORTFALL = Gauge(
    "ampc_optimizer_shortfall_rounds",
    "Rounds the plan in force cannot deliver, by product (or interop group) and recipient.",
    ["product", "recipient"],
)
POOL_MONEY = Gauge(
    "ampc_pool_money_cents",
    "Pool money in EUR cents: paid by donors and committed by the plan in force.",
    ["pool", "state"],
)
ACTIVE = Gauge("ampc_optimizer_active", "1 while this instance is the active planner.")
REBALANCES = Counter(
    "ampc_optimizer_rebalances_total", "Partition assignments of the planner's trigger consumer."
)
PREEMPTED = Counter(
    "ampc_optimizer_preempted_total",
    "Routine re-plans abandoned mid-solve for an urgent trigger (planned again with it).",
)
ORDERS = Counter(
    "ampc_optimizer_order_changes_total",
    "Production order changes published, by change (issued, revised, cancelled).",
    ["change"],
)
FAILURES = Counter(
    "ampc_optimizer_failures_total",
    "Re-plans that produced no plan (solver crashed or overran), by cause.",
    ["cause"],
)
ALERTS = Counter("ampc_alerts_raised_total", "Alerts raised, by kind.", ["service", "kind"])
FROZEN_DIFFERENCES = Counter(
    "ampc_optimizer_frozen_order_differences_total",
    "Committed orders a new plan would have changed (published orders never change).",
)
