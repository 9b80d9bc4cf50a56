"""Seeded scenario generator with the shapes planners meet in practice.

Ramping capacity calendars, stock offers found abroad (long transit, some export-restricted),
donors who pledge more than they have paid, at least one disrupted plant, export-consent
refusals, pools with "buy European" rules and price caps, and one urgent demand too large to
meet in full. Same size and seed give a byte-identical JSON file (``Snapshot.dump_json``).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Literal

from ampc.optimizer.snapshot import (
    Bloc,
    CapacityStep,
    Contribution,
    Demand,
    Disruption,
    EligibilityRules,
    ExportRefusal,
    FundingPool,
    Horizon,
    InteropGroup,
    LineProduct,
    MaterialStep,
    MaterialSupply,
    Nation,
    Plant,
    PoolRules,
    Priority,
    Product,
    ProductionLine,
    Snapshot,
    StockOffer,
    TransitRoute,
    TransitTable,
)

ScenarioSize = Literal["small", "medium", "large"]


@dataclass(frozen=True)
class _Shape:
    plants: int
    offers: int
    products: int
    weeks: int
    demands: int
    pools: int


SHAPES: dict[str, _Shape] = {
    "small": _Shape(plants=6, offers=2, products=4, weeks=12, demands=30, pools=3),
    "medium": _Shape(plants=32, offers=8, products=12, weeks=52, demands=300, pools=20),
    "large": _Shape(plants=160, offers=40, products=30, weeks=104, demands=2000, pools=40),
}

START_WEEK = dt.date(2027, 1, 4)
DEMAND_TO_CAPACITY = 0.8
"""Requested rounds over capacity: tight (money, materials, rules and due dates bind) but not
hopeless, so lateness and cost matter as well as shortfall."""

_EU = ["DE", "FR", "IT", "ES", "PL", "CZ", "SK", "RO", "BG", "FI", "SE", "BE", "NL", "EE", "LT"]
_EEA_ONLY = ["NO"]
_NATO_ONLY = ["GB", "US", "CA", "TR"]
_OTHER = ["KR", "CH", "ZA", "BR", "IN", "UA"]
_NON_EU_NATO = {"NO", "GB", "US", "CA", "TR"}
_OVERSEAS = {"US", "CA", "KR", "ZA", "BR", "IN"}
_PRODUCERS = [
    "DE",
    "FR",
    "IT",
    "ES",
    "PL",
    "CZ",
    "SK",
    "RO",
    "BG",
    "FI",
    "SE",
    "NO",
    "GB",
    "US",
    "KR",
    "TR",
    "CH",
]
_OFFER_ORIGINS = ["KR", "ZA", "BR", "IN", "TR", "US", "CZ", "BG"]
_RECIPIENTS = ["UA", "UA", "UA", "UA", "EE", "LT", "PL", "RO"]
_CALIBRES = [
    ("155", 12.0, 10.8, 400_000),
    ("152", 11.0, 9.0, 300_000),
    ("122", 6.0, 3.8, 150_000),
    ("120", 2.5, 2.2, 90_000),
    ("105", 4.0, 2.5, 110_000),
    ("125", 8.0, 3.0, 250_000),
]
_VARIANTS = ["HE", "HE-ER", "SMK", "ILLUM", "HE-BB"]


def _nations() -> list[Nation]:
    nations = [Nation(code=c, memberships=[Bloc.EU, Bloc.EEA, Bloc.NATO]) for c in _EU]
    nations += [Nation(code=c, memberships=[Bloc.EEA, Bloc.NATO]) for c in _EEA_ONLY]
    nations += [Nation(code=c, memberships=[Bloc.NATO]) for c in _NATO_ONLY]
    nations += [Nation(code=c, memberships=[]) for c in _OTHER]
    return sorted(nations, key=lambda n: n.code)


def _products(count: int) -> tuple[list[Product], list[InteropGroup], dict[str, int]]:
    products: list[Product] = []
    base_price: dict[str, int] = {}
    i = 0
    while len(products) < count:
        calibre, nc, tnt, price = _CALIBRES[i % len(_CALIBRES)]
        variant = _VARIANTS[(i // len(_CALIBRES)) % len(_VARIANTS)]
        code = f"{calibre}-{variant}"
        if any(p.code == code for p in products):
            code = f"{code}-{i}"
        bill = {"NC": nc, "TNT": tnt} if variant != "SMK" else {"NC": nc}
        if calibre == "155" and variant == "HE-ER":
            bill["RDX"] = 2.0
        products.append(Product(code=code, bill=bill))
        base_price[code] = price * (13 if variant == "HE-ER" else 10) // 10
        i += 1
    groups: list[InteropGroup] = []
    for calibre, *_ in _CALIBRES:
        members = [p.code for p in products if p.code.startswith(calibre + "-")]
        if len(members) >= 2:
            groups.append(InteropGroup(code=f"IG-{calibre}", products=members))
    return products, groups, base_price


def generate(size: ScenarioSize, seed: int) -> Snapshot:
    """A snapshot of the given size; deterministic in (size, seed)."""
    shape = SHAPES[size]
    rng = random.Random(f"ampc-scenario-{size}-{seed}")
    weeks = shape.weeks
    products, groups, base_price = _products(shape.products)
    product_codes = [p.code for p in products]

    def week(i: int) -> dt.date:
        return START_WEEK + dt.timedelta(weeks=i)

    plants: list[Plant] = []
    weekly_capacity: dict[str, float] = dict.fromkeys(product_codes, 0.0)
    line_no = 0
    for k in range(shape.plants):
        nation = _PRODUCERS[k % len(_PRODUCERS)] if k < len(_PRODUCERS) else rng.choice(_PRODUCERS)
        lines: list[ProductionLine] = []
        for _ in range(rng.randint(1, 2 if size != "large" else 3)):
            # a line makes one calibre: one to three of that calibre's variants
            first = (
                product_codes[line_no % len(product_codes)]
                if line_no < len(product_codes)
                else rng.choice(product_codes)
            )
            calibre = first.split("-")[0]
            same = [c for c in product_codes if c.startswith(calibre + "-") and c != first]
            made = [first, *rng.sample(same, min(len(same), rng.randint(0, 2)))]
            final_rate = rng.randrange(400, 4000, 50)
            if first.startswith(("155", "152")):
                final_rate = rng.randrange(800, 6000, 50)
            ramp_weeks = sorted(rng.sample(range(2, max(3, weeks - 1)), min(3, max(1, weeks - 3))))
            steps = [CapacityStep(from_week=week(0), rounds_per_week=final_rate * 2 // 5)]
            for j, w in enumerate(ramp_weeks):
                steps.append(
                    CapacityStep(
                        from_week=week(w), rounds_per_week=final_rate * (3 + j * 2 + 1) // 10
                    )
                )
            steps[-1] = CapacityStep(from_week=steps[-1].from_week, rounds_per_week=final_rate)
            lot = rng.choice([None, None, None, None, 100, 250, 500])
            factor = rng.uniform(0.85, 1.3)
            lines.append(
                ProductionLine(
                    id=f"L{line_no:04d}",
                    products=[
                        LineProduct(
                            product=p, unit_price_cents=int(base_price[p] * factor) // 100 * 100
                        )
                        for p in made
                    ],
                    capacity_calendar=steps,
                    lot_size=lot,
                )
            )
            for p in made:
                weekly_capacity[p] += final_rate * 0.8 / len(made)
            line_no += 1
        plants.append(
            Plant(id=f"P{k:03d}-{nation}", nation=nation, operator=f"Works {k}", lines=lines)
        )
    # a plant burns down (or loses most capacity) for several weeks early in the horizon
    for k in range(max(1, shape.plants // 20)):
        victim = plants[(k * 7 + 1) % len(plants)]
        start = rng.randint(1, max(1, weeks // 3))
        plants[(k * 7 + 1) % len(plants)] = victim.model_copy(
            update={
                "disruptions": [
                    Disruption(
                        from_week=week(start),
                        to_week=week(min(weeks - 1, start + rng.randint(3, 8))),
                        fraction_lost=1.0 if k == 0 else round(rng.uniform(0.3, 0.8), 2),
                    )
                ]
            }
        )

    offers: list[StockOffer] = []
    for k in range(shape.offers):
        product = rng.choice(product_codes)
        origin = _OFFER_ORIGINS[k % len(_OFFER_ORIGINS)]
        offers.append(
            StockOffer(
                id=f"OFFER-{k:03d}-{origin}",
                origin=origin,
                product=product,
                quantity=rng.randrange(2_000, 40_000, 500),
                available_week=week(rng.randint(0, max(0, weeks // 2))),
                unit_price_cents=int(base_price[product] * rng.uniform(1.1, 1.8)) // 100 * 100,
            )
        )

    materials: list[MaterialSupply] = []
    use = {m: 0.0 for m in ("NC", "TNT", "RDX")}
    for prod in products:
        for m, q in prod.bill.items():
            use[m] += q * weekly_capacity[prod.code]
    for m, tight in (("NC", 0.8), ("TNT", 0.95), ("RDX", 0.7)):
        if use[m] <= 0:
            continue
        base = use[m] * tight
        materials.append(
            MaterialSupply(
                material=m,
                unit="kg",
                supply=[
                    MaterialStep(from_week=week(0), quantity_per_week=round(base * 0.7)),
                    MaterialStep(from_week=week(max(1, weeks // 4)), quantity_per_week=round(base)),
                ],
            )
        )

    routes: list[TransitRoute] = []
    for origin in sorted(set(_PRODUCERS) | set(_OFFER_ORIGINS)):
        for recipient in sorted(set(_RECIPIENTS)):
            if origin in _OVERSEAS:
                routes.append(
                    TransitRoute(origin=origin, recipient=recipient, weeks=rng.randint(5, 8))
                )
            elif origin == recipient:
                routes.append(TransitRoute(origin=origin, recipient=recipient, weeks=0))
    transit = TransitTable(default_weeks=2, routes=routes)

    refusals = [
        ExportRefusal(producer_nation="CH", refused_recipients=["UA"]),
        ExportRefusal(producer_nation="KR", refused_recipients=["UA"]),
    ]

    pools: list[FundingPool] = []
    pool_kinds = ["CZ-INITIATIVE", "EU-ASAP", "NSPA", "NATIONAL"]
    for k in range(shape.pools):
        kind = pool_kinds[k % len(pool_kinds)]
        if kind == "EU-ASAP":
            rules = PoolRules(eligible_producers=["EU", "EEA"])
        elif kind == "NSPA":
            rules = PoolRules(
                eligible_producers=["NATO"],
                max_unit_price_cents=int(base_price[product_codes[0]] * 1.25),
            )
        elif kind == "CZ-INITIATIVE":
            rules = PoolRules(excluded_origins=["TR"] if k % 3 == 0 else [])
        else:
            rules = PoolRules(earmarked_recipients=["UA"])
        pools.append(
            FundingPool(
                id=f"POOL-{k:02d}-{kind}",
                owner=kind if kind != "NATIONAL" else rng.choice(_EU),
                rules=rules,
            )
        )

    demands: list[Demand] = []
    total_capacity = sum(weekly_capacity.values()) * weeks * 0.85
    average_qty = max(100, int(total_capacity * DEMAND_TO_CAPACITY / shape.demands))
    pool_value: dict[str, float] = {p.id: 0.0 for p in pools}
    for k in range(shape.demands - 1):
        pool = pools[k % len(pools)]
        recipient = rng.choice(_RECIPIENTS)
        if pool.rules.earmarked_recipients:
            recipient = "UA"
        wanted: str | None
        interop: str | None
        if groups and rng.random() < 0.3:
            group = rng.choice(groups)
            wanted, interop = None, group.code
            price = base_price[group.products[0]]
        else:
            wanted, interop = rng.choice(product_codes), None
            price = base_price[wanted]
        roll = rng.random()
        priority = (
            Priority.URGENT if roll < 0.1 else Priority.HIGH if roll < 0.4 else (Priority.ROUTINE)
        )
        qty = max(50, int(average_qty * rng.uniform(0.3, 1.7)) // 50 * 50)
        due = rng.randint(min(weeks - 1, 3), weeks - 1)
        demand_rules = EligibilityRules()
        if rng.random() < 0.1:
            demand_rules = EligibilityRules(excluded_origins=[rng.choice(["TR", "US", "ZA"])])
        demands.append(
            Demand(
                id=f"D{k:05d}",
                requested_by=pool.owner if rng.random() < 0.5 else recipient,
                recipient=recipient,
                product=wanted,
                interop_group=interop,
                quantity=qty,
                due_week=week(due),
                priority=priority,
                pool_id=pool.id,
                rules=demand_rules,
            )
        )
        pool_value[pool.id] += qty * price
    # the urgent request nobody can meet in full: big, due soon
    big_product = product_codes[0]
    demands.append(
        Demand(
            id="D-URGENT-FRONT",
            requested_by="UA",
            recipient="UA",
            product=big_product,
            quantity=int(weekly_capacity[big_product] * min(weeks, 8) * 1.5) // 100 * 100 + 100,
            due_week=week(min(weeks - 1, 4)),
            priority=Priority.URGENT,
            pool_id=pools[0].id,
        )
    )
    pool_value[pools[0].id] += demands[-1].quantity * base_price[big_product]

    # donors pledge; some have paid in full, others part, so money binds in some pools
    donors = ["DE", "NL", "DK", "CA", "NO", "SE", "FI", "BE", "PT", "LT", "CZ", "EE"]
    for idx, pool in enumerate(pools):
        need = pool_value[pool.id]
        target_paid = need * rng.uniform(0.5, 1.1)
        n_donors = rng.randint(1, 4)
        contributions: list[Contribution] = []
        for j in range(n_donors):
            paid = int(target_paid / n_donors) // 100_000 * 100_000
            pledged = int(paid * rng.uniform(1.0, 1.8)) // 100_000 * 100_000
            contributions.append(
                Contribution(
                    donor=donors[(idx + j) % len(donors)], pledged_cents=pledged, paid_cents=paid
                )
            )
        committed = int(target_paid * 0.05) // 100_000 * 100_000
        pools[idx] = pool.model_copy(
            update={"contributions": contributions, "committed_cents": committed}
        )

    return Snapshot(
        horizon=Horizon(start_week=START_WEEK, weeks=weeks),
        frozen_horizon_weeks=min(4, weeks),
        nations=_nations(),
        products=products,
        interop_groups=groups,
        materials=materials,
        plants=plants,
        stock_offers=offers,
        transit=transit,
        demands=demands,
        pools=pools,
        export_refusals=refusals,
    )
