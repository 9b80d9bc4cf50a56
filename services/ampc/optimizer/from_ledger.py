"""The optimizer's snapshot, assembled from the ledger's entity states.

The ledger keeps what national systems declared, in the contract's terms (a line's rate and a
calendar in percent of it, grams of material per round, pledges and payments by contribution);
the optimizer wants the snapshot's terms (rounds per week, kilograms, pools with paid money).
What cannot be planned (a cancelled or fulfilled demand, an offer sold out, a demand whose pool
or product is unknown) is left out, and said so in the notes.

Money already spent stays spent: rounds shipped to a demand leave its quantity (the plan does
not buy them again), so their price is committed money of the demand's pool (`spent_by_pool`),
and the plan may commit only what donors paid beyond it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from ampc.contract.parties import memberships_of
from ampc.ledger.state import (
    DemandState,
    DemandStatus,
    EntityKind,
    EntityState,
    EntityStateBase,
    ExportPolicyState,
    MaterialSupplyState,
    OfferState,
    PlantState,
    PoolState,
    ProductState,
    ShipmentState,
)
from ampc.optimizer import snapshot as sn

States = Mapping[EntityKind, Mapping[str, EntityState]]


@dataclass
class Assembly:
    """A snapshot and what was left out of it, in plain words."""

    snapshot: sn.Snapshot
    notes: list[str] = field(default_factory=list)


S = TypeVar("S", bound=EntityStateBase)


def _of(states: States, kind: EntityKind, model: type[S]) -> list[S]:
    return [state for _, state in sorted(states.get(kind, {}).items()) if isinstance(state, model)]


def _materials(supplies: Iterable[MaterialSupplyState]) -> list[sn.MaterialSupply]:
    """One weekly supply per material: the step functions of every supplier region, summed."""
    by_material: dict[str, list[MaterialSupplyState]] = {}
    for supply in supplies:
        by_material.setdefault(supply.material, []).append(supply)
    result = []
    for material, regions in sorted(by_material.items()):
        weeks = sorted({step.week for region in regions for step in region.steps})
        steps = []
        for week in weeks:
            total = 0
            for region in regions:
                current = [s.kilograms_per_week for s in region.steps if s.week <= week]
                total += current[-1] if current else 0
            steps.append(sn.MaterialStep(from_week=week, quantity_per_week=float(total)))
        result.append(sn.MaterialSupply(material=material, unit="kg", supply=steps))
    return result


def _plant(
    plant: PlantState,
    start: dt.date,
    line_ids: dict[tuple[str, str], str],
    product_codes: set[str],
    notes: list[str],
) -> sn.Plant | None:
    lines = []
    for line in plant.lines.values():
        # A line product the ledger has no reference data for yet (its definition may come
        # later through another inbox) cannot be planned; the rest of the line can.
        unknown = sorted(p.product for p in line.products if p.product not in product_codes)
        if unknown:
            notes.append(
                f"plant {plant.plant_id} line {line.line_id}: {', '.join(unknown)} left out, "
                "not a known product (yet)"
            )
        products = [p for p in line.products if p.product in product_codes]
        if not products:
            continue
        line = line.model_copy(update={"products": products})
        base = max(product.units_per_week for product in line.products)
        calendar = [
            sn.CapacityStep(
                from_week=step.week, rounds_per_week=base * step.capacity_percent // 100
            )
            for step in line.calendar
        ] or [sn.CapacityStep(from_week=start, rounds_per_week=base)]
        if calendar[0].from_week > start:
            # Before its first declared step a line runs at its registered rate.
            calendar.insert(0, sn.CapacityStep(from_week=start, rounds_per_week=base))
        lines.append(
            sn.ProductionLine(
                id=line_ids[(plant.plant_id, line.line_id)],
                products=[
                    sn.LineProduct(product=p.product, unit_price_cents=p.unit_price_cents)
                    for p in line.products
                ],
                capacity_calendar=calendar,
                lot_size=line.lot_size,
            )
        )
    kept = {ln.id for ln in lines}
    disruptions = []
    for disruption in plant.disruptions.values():
        if (
            disruption.line_id is not None
            and line_ids.get((plant.plant_id, disruption.line_id)) not in kept
        ):
            continue  # a disruption of a line that is not planned
        to_week = disruption.to_week
        if disruption.restored_week is not None:
            to_week = min(to_week, disruption.restored_week - dt.timedelta(weeks=1))
        if to_week < disruption.from_week:
            continue  # restored before it began
        disruptions.append(
            sn.Disruption(
                from_week=disruption.from_week,
                to_week=to_week,
                fraction_lost=disruption.capacity_lost_percent / 100,
                line_id=(
                    line_ids[(plant.plant_id, disruption.line_id)]
                    if disruption.line_id is not None
                    else None
                ),
            )
        )
    if not lines:
        notes.append(f"plant {plant.plant_id} left out: none of its lines makes a known product")
        return None
    return sn.Plant(
        id=plant.plant_id,
        nation=plant.nation,
        operator=plant.operator,
        lines=lines,
        disruptions=disruptions,
    )


def line_source_ids(plants: Iterable[PlantState]) -> dict[tuple[str, str], str]:
    """(plant, line) -> the source id the snapshot uses: the line id, or `plant:line` where two
    plants use the same line id (snapshot source ids are unique across plants and offers)."""
    pairs = [(plant.plant_id, line_id) for plant in plants for line_id in plant.lines]
    counts: dict[str, int] = {}
    for _, line_id in pairs:
        counts[line_id] = counts.get(line_id, 0) + 1
    return {
        (plant_id, line_id): line_id if counts[line_id] == 1 else f"{plant_id}:{line_id}"[:64]
        for plant_id, line_id in pairs
    }


def spent_by_pool(states: States) -> tuple[dict[str, int], list[str]]:
    """Per pool, the money its demands' shipments (dispatched or delivered) have spent.

    A shipment is priced at its offer's unit price, or at the plant's unit price for the
    product; a plant with lines at different prices for it is taken at the highest, so that
    money is never counted free that may have been spent. The dispatched quantity counts, as it
    was bought whatever arrives. Returns the sums and notes on shipments that cannot be priced.
    """
    demands = {d.demand_id: d for d in _of(states, EntityKind.DEMANDS, DemandState)}
    offers = {o.offer_id: o for o in _of(states, EntityKind.OFFERS, OfferState)}
    plants = {p.plant_id: p for p in _of(states, EntityKind.PLANTS, PlantState)}
    spent: dict[str, int] = {}
    notes: list[str] = []
    for shipment in _of(states, EntityKind.SHIPMENTS, ShipmentState):
        demand = demands.get(shipment.demand_id)
        offer = offers.get(shipment.source_id)
        plant = plants.get(shipment.source_id)
        price: int | None = None
        if offer is not None:
            price = offer.unit_price_cents
        elif plant is not None:
            prices = [
                made.unit_price_cents
                for line in plant.lines.values()
                for made in line.products
                if made.product == shipment.product
            ]
            price = max(prices, default=None)
        if demand is None or price is None:
            notes.append(
                f"shipment {shipment.shipment_id} ({shipment.quantity} rounds) is not counted as "
                f"spent money: {'its demand' if demand is None else 'its price'} is unknown"
            )
            continue
        spent[demand.pool_id] = spent.get(demand.pool_id, 0) + shipment.quantity * price
    return spent, notes


def snapshot_from_states(
    states: States,
    *,
    start_week: dt.date,
    weeks: int,
    frozen_horizon_weeks: int = 4,
    transit: sn.TransitTable | None = None,
) -> Assembly:
    """The snapshot of everything the ledger knows, for a horizon of `weeks` from `start_week`."""
    notes: list[str] = []
    products = _of(states, EntityKind.PRODUCTS, ProductState)
    product_codes = {p.product for p in products}
    groups: dict[str, list[str]] = {}
    for product in products:
        for group in product.interop_groups:
            groups.setdefault(group, []).append(product.product)
    plants = _of(states, EntityKind.PLANTS, PlantState)
    line_ids = line_source_ids(plants)
    offers = [
        o
        for o in _of(states, EntityKind.OFFERS, OfferState)
        if o.remaining > 0 and o.product in product_codes
    ]
    pools = _of(states, EntityKind.POOLS, PoolState)
    pool_ids = {p.pool_id for p in pools}
    spent, spending_notes = spent_by_pool(states)
    notes += spending_notes
    for pool in pools:
        shipped = spent.get(pool.pool_id, 0)
        if shipped + pool.committed_cents > pool.paid_cents:
            notes.append(
                f"pool {pool.pool_id}: shipments worth {shipped} cents "
                f"exceed the {pool.paid_cents} cents paid in; nothing more is bought from it"
            )
    demands = []
    for demand in _of(states, EntityKind.DEMANDS, DemandState):
        needed = demand.open_quantity - demand.in_transit
        if demand.status is not DemandStatus.OPEN or needed <= 0:
            continue
        if demand.pool_id not in pool_ids:
            notes.append(f"demand {demand.demand_id} left out: pool {demand.pool_id} is unknown")
            continue
        wanted = demand.product or demand.interop_group or ""
        if wanted not in product_codes and wanted not in groups:
            notes.append(f"demand {demand.demand_id} left out: {wanted} is not a known product")
            continue
        demands.append(
            sn.Demand(
                id=demand.demand_id,
                requested_by=demand.requested_by,
                recipient=demand.recipient,
                product=demand.product,
                interop_group=demand.interop_group,
                quantity=needed,
                due_week=demand.due_week,
                priority=sn.Priority(demand.priority.value),
                pool_id=demand.pool_id,
                rules=sn.EligibilityRules(
                    eligible_producers=[b.value for b in demand.rules.required_blocs],
                    excluded_origins=list(demand.rules.excluded_origins),
                ),
            )
        )
    refusals = [
        sn.ExportRefusal(producer_nation=p.nation, refused_recipients=list(p.refused_recipients))
        for p in _of(states, EntityKind.EXPORT_POLICIES, ExportPolicyState)
        if p.refused_recipients
    ]
    nation_codes = (
        {p.nation for p in plants}
        | {o.origin for o in offers}
        | {d.recipient for d in demands}
        | {c.donor for p in pools for c in p.contributions.values()}
        | {r.producer_nation for r in refusals}
    )
    snapshot = sn.Snapshot(
        horizon=sn.Horizon(start_week=start_week, weeks=weeks),
        frozen_horizon_weeks=frozen_horizon_weeks,
        nations=[
            sn.Nation(
                code=code, memberships=[sn.Bloc(b.value) for b in sorted(memberships_of(code))]
            )
            for code in sorted(nation_codes)
        ],
        products=[
            sn.Product(
                code=p.product, bill={use.material: use.grams_per_unit / 1000 for use in p.bill}
            )
            for p in products
        ],
        interop_groups=[
            sn.InteropGroup(code=code, products=sorted(members))
            for code, members in sorted(groups.items())
        ],
        materials=_materials(_of(states, EntityKind.MATERIALS, MaterialSupplyState)),
        plants=[
            planned
            for plant in plants
            if (planned := _plant(plant, start_week, line_ids, product_codes, notes)) is not None
        ],
        stock_offers=[
            sn.StockOffer(
                id=o.offer_id,
                origin=o.origin,
                product=o.product,
                quantity=o.remaining,
                available_week=o.available_week,
                unit_price_cents=o.unit_price_cents,
            )
            for o in offers
        ],
        transit=transit or sn.TransitTable(),
        demands=demands,
        pools=[
            sn.FundingPool(
                id=p.pool_id,
                owner=p.owner,
                contributions=[
                    sn.Contribution(
                        donor=c.donor, pledged_cents=c.pledged_cents, paid_cents=c.paid_cents
                    )
                    for c in p.contributions.values()
                ],
                committed_cents=p.committed_cents + spent.get(p.pool_id, 0),
                rules=sn.PoolRules(
                    eligible_producers=[b.value for b in p.rules.eligible_producer_blocs]
                    + list(p.rules.eligible_producer_nations),
                    excluded_origins=list(p.rules.excluded_origins),
                    max_unit_price_cents=p.rules.price_cap_cents_per_unit,
                    earmarked_products=list(p.rules.earmarked_products),
                    earmarked_recipients=list(p.rules.earmarked_recipients),
                ),
            )
            for p in pools
        ],
        export_refusals=refusals,
    )
    return Assembly(snapshot=snapshot, notes=notes)
