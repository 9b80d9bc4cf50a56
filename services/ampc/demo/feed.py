"""Turn a scenario snapshot into the events each national system would send to its inbox.

The scenario generator speaks the optimizer's snapshot format; the national systems speak the
event contract. This is the bridge for the demo: every plant is registered by its nation, stock
found abroad is offered by the initiative, pools are opened by their owners and paid by their
donors, demands are submitted by their requesters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from ampc.contract import events as ev
from ampc.contract.parties import ORGANISATIONS, PARTICIPATING_NATIONS, Bloc
from ampc.contract.types import Priority
from ampc.optimizer import snapshot as sn

ORGANISATION_ALIASES: Final[dict[str, str]] = {
    "CZ-INITIATIVE": "CZI",
    "EU-ASAP": "EDA",
    "NSPA": "NSPA",
}
"""Organisation names the scenario generator uses -> the contract's party codes."""

STOCK_BROKER: Final = "CZI"
"""Who offers stock found abroad: the initiative that found it."""

REFERENCE_DATA_OWNER: Final = "NSPA"

Feed = list[tuple[str, ev.Event]]


def party(code: str) -> str:
    """The inbox party for a scenario owner or requester code."""
    if code in ORGANISATION_ALIASES:
        return ORGANISATION_ALIASES[code]
    if code in PARTICIPATING_NATIONS or code in ORGANISATIONS:
        return code
    raise ValueError(f"the scenario names '{code}', which has no inbox on ampc")


def _blocs_and_nations(codes: list[str]) -> tuple[list[Bloc], list[str]]:
    blocs = [Bloc(code) for code in codes if code in Bloc.__members__]
    nations = [code for code in codes if code not in Bloc.__members__]
    return blocs, nations


def _percent(rounds: int, base: int) -> int:
    return round(100 * rounds / base) if base else 0


def reference_events(snapshot: sn.Snapshot) -> Iterator[tuple[str, ev.Event]]:
    """Products with their bills and interop groups, material supplies, export policies."""
    groups: dict[str, list[str]] = {}
    for group in snapshot.interop_groups:
        for member in group.products:
            groups.setdefault(member, []).append(group.code)
    for product in snapshot.products:
        yield (
            REFERENCE_DATA_OWNER,
            ev.ProductDefined(
                product=product.code,
                description=f"{product.code} round",
                interop_groups=groups.get(product.code, []),
                bill=[
                    ev.MaterialUse(material=material, grams_per_unit=max(1, round(kg * 1000)))
                    for material, kg in sorted(product.bill.items())
                ],
            ),
        )
    for supply in snapshot.materials:
        yield (
            REFERENCE_DATA_OWNER,
            ev.MaterialSupplyDeclared(
                material=supply.material,
                supplier_region="ALLIANCE",
                declared_by=REFERENCE_DATA_OWNER,
                steps=[
                    ev.MaterialStep(
                        week=step.from_week, kilograms_per_week=round(step.quantity_per_week)
                    )
                    for step in supply.supply
                ],
            ),
        )
    for refusal in snapshot.export_refusals:
        if refusal.producer_nation in PARTICIPATING_NATIONS:
            yield (
                refusal.producer_nation,
                ev.ExportPolicyDeclared(
                    nation=refusal.producer_nation,
                    refused_recipients=sorted(set(refusal.refused_recipients)),
                ),
            )


def capacity_events(snapshot: sn.Snapshot) -> Iterator[tuple[str, ev.Event]]:
    """Plants with their lines and calendars, disruptions, and stock offers."""
    for plant in snapshot.plants:
        lines = []
        calendars = []
        for line in plant.lines:
            # The contract states a line's rate and a calendar in percent of it.
            base = max(step.rounds_per_week for step in line.capacity_calendar) or 1
            lines.append(
                ev.ProductionLine(
                    line_id=line.id,
                    products=[
                        ev.LineProduct(
                            product=lp.product,
                            units_per_week=base,
                            unit_price_cents=max(1, lp.unit_price_cents),
                        )
                        for lp in line.products
                    ],
                    lot_size=line.lot_size,
                )
            )
            calendars.append(
                ev.CapacityDeclared(
                    plant_id=plant.id,
                    nation=plant.nation,
                    line_id=line.id,
                    steps=[
                        ev.CapacityStep(
                            week=step.from_week,
                            capacity_percent=_percent(step.rounds_per_week, base),
                        )
                        for step in line.capacity_calendar
                    ],
                )
            )
        yield (
            plant.nation,
            ev.PlantRegistered(
                plant_id=plant.id,
                nation=plant.nation,
                operator=plant.operator or "unknown operator",
                plant_name=plant.id,
                lines=lines,
            ),
        )
        for calendar in calendars:
            yield plant.nation, calendar
        for number, disruption in enumerate(plant.disruptions):
            yield (
                plant.nation,
                ev.PlantDisrupted(
                    plant_id=plant.id,
                    nation=plant.nation,
                    disruption_id=f"{plant.id}-D{number}",
                    line_id=disruption.line_id,
                    from_week=disruption.from_week,
                    to_week=disruption.to_week,
                    capacity_lost_percent=max(1, round(100 * disruption.fraction_lost)),
                    cause="disruption in the scenario",
                ),
            )
    for offer in snapshot.stock_offers:
        yield (
            STOCK_BROKER,
            ev.StockOffered(
                offer_id=offer.id,
                offered_by=STOCK_BROKER,
                origin=offer.origin,
                product=offer.product,
                quantity=offer.quantity,
                available_week=offer.available_week,
                unit_price_cents=max(1, offer.unit_price_cents),
            ),
        )


def funding_events(snapshot: sn.Snapshot) -> Iterator[tuple[str, ev.Event]]:
    """Pools opened by their owners; each donor pledges, then pays what the scenario says."""
    for pool in snapshot.pools:
        blocs, nations = _blocs_and_nations(pool.rules.eligible_producers)
        yield (
            party(pool.owner),
            ev.PoolOpened(
                pool_id=pool.id,
                owner=party(pool.owner),
                pool_name=pool.id,
                rules=ev.PoolRules(
                    eligible_producer_blocs=blocs,
                    eligible_producer_nations=nations,
                    excluded_origins=sorted(set(pool.rules.excluded_origins)),
                    price_cap_cents_per_unit=pool.rules.max_unit_price_cents or None,
                    earmarked_products=list(pool.rules.earmarked_products),
                    earmarked_recipients=sorted(set(pool.rules.earmarked_recipients)),
                ),
            ),
        )
        for number, contribution in enumerate(pool.contributions):
            contribution_id = f"{pool.id}-{contribution.donor}-{number}"
            if contribution.pledged_cents > 0:
                yield (
                    contribution.donor,
                    ev.ContributionPledged(
                        pool_id=pool.id,
                        contribution_id=contribution_id,
                        donor=contribution.donor,
                        amount_cents=contribution.pledged_cents,
                    ),
                )
            if contribution.paid_cents > 0:
                yield (
                    contribution.donor,
                    ev.ContributionPaid(
                        pool_id=pool.id,
                        contribution_id=contribution_id,
                        donor=contribution.donor,
                        amount_cents=contribution.paid_cents,
                    ),
                )


def demand_events(snapshot: sn.Snapshot) -> Iterator[tuple[str, ev.Event]]:
    """Every demand, submitted by its requester."""
    for demand in snapshot.demands:
        blocs, _nations = _blocs_and_nations(demand.rules.eligible_producers)
        requester = party(demand.requested_by)
        yield (
            requester,
            ev.DemandSubmitted(
                demand_id=demand.id,
                requested_by=requester,
                recipient=demand.recipient,
                delivery_point=f"{demand.recipient} logistics hub",
                product=demand.product,
                interop_group=demand.interop_group,
                quantity=demand.quantity,
                due_week=demand.due_week,
                priority=Priority(demand.priority.value),
                pool_id=demand.pool_id,
                rules=ev.DemandRules(
                    excluded_origins=sorted(set(demand.rules.excluded_origins)),
                    required_blocs=blocs,
                ),
            ),
        )


def scenario_feed(snapshot: sn.Snapshot) -> Feed:
    """All events of the scenario, reference data and capacity first, demands last."""
    return [
        *reference_events(snapshot),
        *capacity_events(snapshot),
        *funding_events(snapshot),
        *demand_events(snapshot),
    ]
