"""Which sources may serve which demand, and why the others may not.

A *source entry* is one product of one plant line, or one stock offer. The rules: the product is
the demand's or in its interop group; the pool's earmarks; the pool's and the demand's producer
blocs, excluded origins and price caps; the producer nation's export consent to the recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ampc.optimizer.snapshot import Demand, EligibilityRules, FundingPool, Snapshot


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One product of one line, or one stock offer, as a place rounds can come from."""

    index: int
    kind: Literal["line", "offer"]
    source_id: str
    plant_id: str | None
    origin: str
    product: str
    unit_price_cents: int
    lot_size: int | None


@dataclass(slots=True)
class Exclusion:
    """A source ruled out for a demand, and the rule that did it."""

    source: SourceEntry
    rule: str


@dataclass(slots=True)
class DemandEligibility:
    """Eligible and excluded sources of one demand (excluded: product matches, a rule fails)."""

    products: list[str]
    eligible: list[SourceEntry] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    demand_excluded_reason: str | None = None


def source_entries(snapshot: Snapshot) -> list[SourceEntry]:
    """All source entries in a stable order: plants and lines as listed, then offers."""
    entries: list[SourceEntry] = []
    for plant in snapshot.plants:
        for line in plant.lines:
            for lp in line.products:
                entries.append(
                    SourceEntry(
                        len(entries),
                        "line",
                        line.id,
                        plant.id,
                        plant.nation,
                        lp.product,
                        lp.unit_price_cents,
                        line.lot_size,
                    )
                )
    for offer in snapshot.stock_offers:
        entries.append(
            SourceEntry(
                len(entries),
                "offer",
                offer.id,
                None,
                offer.origin,
                offer.product,
                offer.unit_price_cents,
                None,
            )
        )
    return entries


def demand_products(snapshot: Snapshot, demand: Demand) -> list[str]:
    """Products that satisfy a demand (its product, or every product of its interop group)."""
    if demand.product is not None:
        return [demand.product]
    group = next(g for g in snapshot.interop_groups if g.code == demand.interop_group)
    return list(group.products)


def _producer_allowed(nation: str, allowed: list[str], blocs: dict[str, set[str]]) -> bool:
    if not allowed:
        return True
    return nation in allowed or bool(blocs.get(nation, set()) & set(allowed))


def _rule_failure(
    rules: EligibilityRules, who: str, entry: SourceEntry, blocs: dict[str, set[str]]
) -> str | None:
    if not _producer_allowed(entry.origin, rules.eligible_producers, blocs):
        return f"{who} admits only producers in {', '.join(rules.eligible_producers)}"
    if entry.origin in rules.excluded_origins:
        return f"{who} excludes origin {entry.origin}"
    cap = rules.max_unit_price_cents
    if cap is not None and entry.unit_price_cents > cap:
        return (
            f"{who} caps the unit price at EUR {cap / 100:,.2f} "
            f"(source asks EUR {entry.unit_price_cents / 100:,.2f})"
        )
    return None


def eligibility(snapshot: Snapshot) -> list[DemandEligibility]:
    """Eligible and excluded sources for every demand, in the snapshot's demand order."""
    entries = source_entries(snapshot)
    by_product: dict[str, list[SourceEntry]] = {}
    for e in entries:
        by_product.setdefault(e.product, []).append(e)
    blocs = {n.code: {str(b) for b in n.memberships} for n in snapshot.nations}
    refusals: dict[str, set[str]] = {}
    for r in snapshot.export_refusals:
        refusals.setdefault(r.producer_nation, set()).update(r.refused_recipients)
    pools: dict[str, FundingPool] = {p.id: p for p in snapshot.pools}
    result: list[DemandEligibility] = []
    for demand in snapshot.demands:
        pool = pools[demand.pool_id]
        products = demand_products(snapshot, demand)
        de = DemandEligibility(products=products)
        result.append(de)
        earmarked = pool.rules.earmarked_recipients
        if earmarked and demand.recipient not in earmarked:
            de.demand_excluded_reason = (
                f"pool {pool.id} is earmarked for recipients {', '.join(earmarked)}, "
                f"not {demand.recipient}"
            )
        for product in products:
            for entry in by_product.get(product, []):
                rule = _exclusion_rule(entry, demand, pool, blocs, refusals)
                if de.demand_excluded_reason is not None:
                    rule = de.demand_excluded_reason
                if rule is None:
                    de.eligible.append(entry)
                else:
                    de.excluded.append(Exclusion(entry, rule))
    return result


def _exclusion_rule(
    entry: SourceEntry,
    demand: Demand,
    pool: FundingPool,
    blocs: dict[str, set[str]],
    refusals: dict[str, set[str]],
) -> str | None:
    earmarked_products = pool.rules.earmarked_products
    if earmarked_products and entry.product not in earmarked_products:
        return f"pool {pool.id} is earmarked for products {', '.join(earmarked_products)}"
    failure = _rule_failure(pool.rules, f"pool {pool.id}", entry, blocs)
    if failure is None:
        failure = _rule_failure(demand.rules, f"demand {demand.id}", entry, blocs)
    if failure is None and demand.recipient in refusals.get(entry.origin, set()):
        failure = f"{entry.origin} refuses export consent to {demand.recipient}"
    return failure


def transit_weeks(snapshot: Snapshot) -> dict[tuple[str, str], int]:
    """Explicit (origin, recipient) -> weeks routes; use ``snapshot.transit.default_weeks``
    for pairs not listed."""
    return {(r.origin, r.recipient): r.weeks for r in snapshot.transit.routes}
