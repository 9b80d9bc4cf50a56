"""Independent plan checker: verify a plan against its snapshot without the model builder.

Everything here is recomputed from the snapshot and the plan with plain loops over
allocations, so a bug in the vectorised model cannot hide itself: eligibility, windows,
transit, capacity, lots, offers, materials, money, frozen orders, demand outcomes, pool money
and all four objective terms. Each violation names the constraint it breaks.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ampc.optimizer.plan import Plan, SolverStatus
from ampc.optimizer.snapshot import PRIORITY_WEIGHT, Demand, Snapshot

_REL = 1e-6


@dataclass
class Violation:
    """One broken constraint: its name and what exactly is wrong."""

    constraint: str
    message: str


@dataclass
class CheckReport:
    """Verdict of ``check_plan`` and the objective terms it recomputed."""

    violations: list[Violation] = field(default_factory=list)
    recomputed: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no constraint is violated."""
        return not self.violations

    def add(self, constraint: str, message: str) -> None:
        """Record a violation."""
        self.violations.append(Violation(constraint, message))

    def summary(self) -> str:
        """One line per violation, or 'plan is consistent with its snapshot'."""
        if self.ok:
            return "plan is consistent with its snapshot"
        return "\n".join(f"{v.constraint}: {v.message}" for v in self.violations)


def _near(a: float, b: float, absolute: float = 0.5) -> bool:
    return abs(a - b) <= absolute + _REL * max(abs(a), abs(b))


def _allowed(nation: str, allowed: list[str], memberships: dict[str, set[str]]) -> bool:
    return not allowed or nation in allowed or bool(memberships.get(nation, set()) & set(allowed))


def _why_ineligible(
    snapshot: Snapshot,
    demand: Demand,
    origin: str,
    product: str,
    price: int,
    memberships: dict[str, set[str]],
) -> str | None:
    group = {g.code: g.products for g in snapshot.interop_groups}
    wanted = [demand.product] if demand.product else group.get(demand.interop_group or "", [])
    if product not in wanted:
        return f"product {product} does not satisfy demand {demand.id}"
    pool = next(p for p in snapshot.pools if p.id == demand.pool_id)
    if pool.rules.earmarked_products and product not in pool.rules.earmarked_products:
        return f"pool {pool.id} earmark excludes product {product}"
    if pool.rules.earmarked_recipients and demand.recipient not in pool.rules.earmarked_recipients:
        return f"pool {pool.id} earmark excludes recipient {demand.recipient}"
    for who, rules in ((f"pool {pool.id}", pool.rules), (f"demand {demand.id}", demand.rules)):
        if not _allowed(origin, rules.eligible_producers, memberships):
            return f"{who} does not admit producer nation {origin}"
        if origin in rules.excluded_origins:
            return f"{who} excludes origin {origin}"
        if rules.max_unit_price_cents is not None and price > rules.max_unit_price_cents:
            return f"{who} price cap {rules.max_unit_price_cents} < {price}"
    for refusal in snapshot.export_refusals:
        if refusal.producer_nation == origin and demand.recipient in refusal.refused_recipients:
            return f"{origin} refuses export consent to {demand.recipient}"
    return None


def check_plan(snapshot: Snapshot, plan: Plan) -> CheckReport:
    """Verify every constraint of ``plan`` against ``snapshot`` and recompute its objectives."""
    report = CheckReport()
    if plan.status not in (SolverStatus.OPTIMAL, SolverStatus.FEASIBLE) and not plan.allocations:
        return report  # no solution: nothing claimed, nothing to check
    start = snapshot.horizon.start_week
    weeks = snapshot.horizon.weeks

    def index(week: dt.date) -> int:
        return (week - start).days // 7

    memberships = {n.code: {str(b) for b in n.memberships} for n in snapshot.nations}
    demands = {d.id: d for d in snapshot.demands}
    lines: dict[str, tuple[str, str, dict[str, int], int | None]] = {}
    for plant in snapshot.plants:
        for line in plant.lines:
            prices = {lp.product: lp.unit_price_cents for lp in line.products}
            lines[line.id] = (plant.id, plant.nation, prices, line.lot_size)
    offers = {o.id: o for o in snapshot.stock_offers}
    routes = {(r.origin, r.recipient): r.weeks for r in snapshot.transit.routes}
    bills = {p.code: p.bill for p in snapshot.products}

    production: dict[tuple[str, int], int] = defaultdict(int)  # (line, week)
    production_by_product: dict[tuple[str, str, int], int] = defaultdict(int)
    offer_taken: dict[str, int] = defaultdict(int)
    delivered: dict[str, list[tuple[int, int]]] = defaultdict(list)  # demand -> (arrival, qty)
    pool_spent: dict[str, int] = defaultdict(int)
    cost = 0
    committed_seen: dict[tuple[str, str, int, str], int] = defaultdict(int)

    for a in plan.allocations:
        where = f"{a.source_id}/{a.product}/{a.production_week}/{a.demand_id}"
        w = index(a.production_week)
        if a.quantity <= 0 or a.quantity != int(a.quantity):
            report.add("whole_rounds", f"{where}: quantity {a.quantity}")
        if not 0 <= w < weeks:
            report.add("horizon", f"{where}: production week outside the horizon")
        if a.source_kind == "line":
            if a.source_id not in lines:
                report.add("source_exists", f"{where}: unknown line")
                continue
            _, nation, prices, _ = lines[a.source_id]
            if a.product not in prices:
                report.add("line_makes_product", f"{where}: line does not make {a.product}")
                continue
            price, origin = prices[a.product], nation
            production[(a.source_id, w)] += a.quantity
            production_by_product[(a.source_id, a.product, w)] += a.quantity
        else:
            offer = offers.get(a.source_id)
            if offer is None or offer.product != a.product:
                report.add("source_exists", f"{where}: unknown offer or wrong product")
                continue
            price, origin = offer.unit_price_cents, offer.origin
            if w < max(0, index(offer.available_week)):
                report.add(
                    "offer_available", f"{where}: offer available only from {offer.available_week}"
                )
            offer_taken[a.source_id] += a.quantity
        if a.unit_price_cents != price:
            report.add("unit_price", f"{where}: price {a.unit_price_cents} != {price}")
        cost += a.quantity * price
        if a.demand_id is None:
            if a.source_kind != "line" or lines[a.source_id][3] is None:
                report.add("lot_surplus", f"{where}: unallocated rounds outside a lot")
            continue
        demand = demands.get(a.demand_id)
        if demand is None:
            report.add("demand_exists", f"{where}: unknown demand")
            continue
        transit = routes.get((origin, demand.recipient), snapshot.transit.default_weeks)
        arrival = w + transit
        if index(a.arrival_week) != arrival:
            report.add(
                "transit",
                f"{where}: arrives {a.arrival_week}, expected week index "
                f"{arrival} (transit {transit})",
            )
        if a.frozen:
            committed_seen[(a.source_id, a.product, w, a.demand_id)] += a.quantity
        else:
            why = _why_ineligible(snapshot, demand, origin, a.product, price, memberships)
            if why is not None:
                report.add("eligibility", f"{where}: {why}")
            due = index(demand.due_week)
            if not due - snapshot.max_early_weeks <= arrival <= due + snapshot.max_late_weeks:
                report.add("delivery_window", f"{where}: arrival outside the demand's window")
        delivered[a.demand_id].append((arrival, a.quantity))
        pool_spent[demand.pool_id] += a.quantity * price

    # capacity per line and week, after ramp-up and disruptions
    committed_on_line: dict[str, dict[int, int]] = defaultdict(dict)
    for order in snapshot.committed_orders:
        w = index(order.production_week)
        line_weeks = committed_on_line[order.source_id]
        line_weeks[w] = line_weeks.get(w, 0) + order.quantity
    for plant in snapshot.plants:
        for line in plant.lines:
            calendar = sorted(line.capacity_calendar, key=lambda s: s.from_week)
            for w in range(weeks):
                made = production.get((line.id, w), 0)
                if made == 0:
                    continue
                rate = 0.0
                for step in calendar:
                    if index(step.from_week) <= w:
                        rate = step.rounds_per_week
                for dis in plant.disruptions:
                    if dis.line_id in (None, line.id) and index(dis.from_week) <= w <= index(
                        dis.to_week
                    ):
                        rate *= 1.0 - dis.fraction_lost
                # committed orders stand even where a later disruption cut the line
                lot = line.lot_size or 1
                held = committed_on_line.get(line.id, {}).get(w, 0)
                rate = max(rate, -(-held // lot) * lot)
                if made > math.floor(rate + 1e-9):
                    report.add(
                        "line_capacity",
                        f"{line.id} week {snapshot.week_date(w)}: "
                        f"{made} > {math.floor(rate + 1e-9)}",
                    )
            if line.lot_size:
                for (lid, product, w), made in production_by_product.items():
                    if lid == line.id and made % line.lot_size:
                        report.add(
                            "lot_size",
                            f"{line.id}/{product} week "
                            f"{snapshot.week_date(w)}: {made} is not a multiple of "
                            f"{line.lot_size}",
                        )
    for oid, taken in offer_taken.items():
        if taken > offers[oid].quantity:
            report.add("offer_quantity", f"{oid}: {taken} > {offers[oid].quantity}")
    # materials per week
    for material in snapshot.materials:
        steps = sorted(material.supply, key=lambda s: s.from_week)
        use: dict[int, float] = defaultdict(float)
        for (_, product, w), made in production_by_product.items():
            use[w] += made * bills[product].get(material.material, 0.0)
        for w, used in use.items():
            supply = 0.0
            for supply_step in steps:
                if index(supply_step.from_week) <= w:
                    supply = supply_step.quantity_per_week
            if used > supply * (1 + _REL) + 1e-6:
                report.add(
                    "material_supply",
                    f"{material.material} week "
                    f"{snapshot.week_date(w)}: {used:,.1f} > {supply:,.1f}",
                )
    # money: only paid money, minus what was committed before
    for pool in snapshot.pools:
        spent = pool_spent.get(pool.id, 0)
        available = max(0, pool.paid_cents - pool.committed_cents)
        if spent > available * (1 + 1e-9) + 1:
            report.add(
                "pool_money",
                f"{pool.id}: commits {spent} cents, only {available} paid and uncommitted",
            )
    reported_pools = {p.pool_id: p for p in plan.pools}
    for pool in snapshot.pools:
        rp = reported_pools.get(pool.id)
        if rp is None or rp.committed_cents != pool_spent.get(pool.id, 0):
            report.add(
                "pool_report", f"{pool.id}: reported committed money does not match the allocations"
            )
        elif sum(d.committed_cents for d in rp.by_donor) != rp.committed_cents:
            report.add("donor_report", f"{pool.id}: donor shares do not add up")
    # frozen horizon: every committed order is in the plan, unchanged
    committed: dict[tuple[str, str, int, str], int] = defaultdict(int)
    for order in snapshot.committed_orders:
        key = (order.source_id, order.product, index(order.production_week), order.demand_id)
        committed[key] += order.quantity
    if committed != dict(committed_seen):
        report.add("frozen_horizon", "frozen allocations differ from the committed orders")
    # demands: never over-served; outcomes as reported
    weighted_shortfall = 0.0
    weighted_lateness = 0.0
    outcomes = {o.demand_id: o for o in plan.demands}
    for d in snapshot.demands:
        got = delivered.get(d.id, [])
        due = index(d.due_week)
        total = sum(q for _, q in got)
        late = sum(q for arr, q in got if arr > due)
        lateness = sum(q * (arr - due) for arr, q in got if arr > due)
        if total > d.quantity:
            report.add("demand_quantity", f"{d.id}: {total} delivered > {d.quantity} requested")
        weight = PRIORITY_WEIGHT[d.priority]
        weighted_shortfall += weight * max(0, d.quantity - total)
        weighted_lateness += weight * lateness
        reported = outcomes.get(d.id)
        if reported is None or (
            reported.delivered_on_time,
            reported.delivered_late,
            reported.shortfall,
            reported.lateness_round_weeks,
        ) != (total - late, late, d.quantity - total, lateness):
            report.add("demand_outcome", f"{d.id}: reported outcome does not match allocations")
    churn = _churn(snapshot, plan, index)
    report.recomputed = {
        "weighted_shortfall": weighted_shortfall,
        "weighted_lateness": weighted_lateness,
        "cost_cents": float(cost),
        "churn_rounds": churn,
    }
    for term in plan.objective:
        expected = report.recomputed[term.name]
        if not _near(term.value, expected):
            report.add(f"objective_{term.name}", f"plan says {term.value}, recomputed {expected}")
    return report


def _churn(snapshot: Snapshot, plan: Plan, index: Callable[[dt.date], int]) -> float:
    """Rounds moved against the previous plan outside the frozen horizon."""
    if snapshot.previous_plan is None:
        return 0.0
    frozen = snapshot.frozen_horizon_weeks

    def table(
        items: list[tuple[str, str, dt.date, str | None, int]],
    ) -> dict[tuple[str, str, dt.date, str], int]:
        out: dict[tuple[str, str, dt.date, str], int] = defaultdict(int)
        for source, product, week, demand, qty in items:
            if demand is not None and index(week) >= frozen:
                out[(source, product, week, demand)] += qty
        return out

    before = table(
        [
            (a.source_id, a.product, a.production_week, a.demand_id, a.quantity)
            for a in snapshot.previous_plan.allocations
        ]
    )
    after = table(
        [
            (a.source_id, a.product, a.production_week, a.demand_id, a.quantity)
            for a in plan.allocations
        ]
    )
    return float(sum(abs(before.get(k, 0) - after.get(k, 0)) for k in set(before) | set(after)))
