"""Hypothesis strategies that build valid instances of every event model."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from ampc.contract import events as ev
from ampc.contract.parties import PARTICIPATING_NATIONS, Bloc, inbox_parties
from ampc.contract.types import EARLIEST_WEEK, LATEST_WEEK, MAX_CENTS, MAX_ROUNDS, Priority

ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,24}\Z")
nations = st.sampled_from(PARTICIPATING_NATIONS)
parties = st.sampled_from(inbox_parties())
products = st.sampled_from(["155-HE", "155-CHARGE", "122-HE", "120-MORTAR", "155-HE-ER2"])
groups = st.sampled_from(["IG-155-JBMOU", "IG-122", "IG-120-MORTAR"])
materials = st.sampled_from(["NC", "TNT", "RDX", "NG-PASTE"])
_week_count = (LATEST_WEEK - EARLIEST_WEEK).days // 7
weeks = st.integers(0, _week_count).map(lambda i: EARLIEST_WEEK + dt.timedelta(weeks=i))
rounds = st.integers(1, MAX_ROUNDS)
cents = st.integers(1, MAX_CENTS)
text = st.from_regex(r"\A[A-Za-zÀ-ž0-9][A-Za-zÀ-ž0-9 ,.'()/-]{0,40}[A-Za-z0-9]\Z")
blocs = st.lists(st.sampled_from(list(Bloc)), unique=True, max_size=3)
priorities = st.sampled_from(list(Priority))
timestamps = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2045, 1, 1), timezones=st.just(dt.UTC)
)


def _unique_nations(max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(nations, unique=True, max_size=max_size)


@st.composite
def demand_submitted(draw: st.DrawFn) -> ev.DemandSubmitted:
    shares = draw(st.lists(st.integers(1, 1_000_000), max_size=4))
    participants = [
        ev.JointShare(nation=nation, quantity=qty)
        for nation, qty in zip(
            draw(st.lists(nations, unique=True, min_size=len(shares), max_size=len(shares))),
            shares,
            strict=True,
        )
    ]
    quantity = sum(shares) if shares else draw(rounds)
    by_product = draw(st.booleans())
    return ev.DemandSubmitted(
        demand_id=draw(ids),
        requested_by=draw(parties),
        participants=participants,
        recipient=draw(nations),
        delivery_point=draw(text),
        product=draw(products) if by_product else None,
        interop_group=None if by_product else draw(groups),
        quantity=quantity,
        due_week=draw(weeks),
        priority=draw(priorities),
        pool_id=draw(ids),
        rules=ev.DemandRules(excluded_origins=draw(_unique_nations(5)), required_blocs=draw(blocs)),
    )


@st.composite
def _increasing_weeks(draw: st.DrawFn, max_size: int = 6) -> list[dt.date]:
    indices = draw(
        st.lists(st.integers(0, _week_count), min_size=1, max_size=max_size, unique=True)
    )
    return [EARLIEST_WEEK + dt.timedelta(weeks=i) for i in sorted(indices)]


@st.composite
def capacity_declared(draw: st.DrawFn) -> ev.CapacityDeclared:
    steps = [
        ev.CapacityStep(week=week, capacity_percent=draw(st.integers(0, 400)))
        for week in draw(_increasing_weeks())
    ]
    return ev.CapacityDeclared(
        plant_id=draw(ids), nation=draw(nations), line_id=draw(ids), steps=steps
    )


@st.composite
def material_supply(draw: st.DrawFn) -> ev.MaterialSupplyDeclared:
    steps = [
        ev.MaterialStep(week=week, kilograms_per_week=draw(st.integers(0, 100_000_000)))
        for week in draw(_increasing_weeks())
    ]
    return ev.MaterialSupplyDeclared(
        material=draw(materials), supplier_region=draw(ids), declared_by=draw(parties), steps=steps
    )


@st.composite
def plant_disrupted(draw: st.DrawFn) -> ev.PlantDisrupted:
    start, end = sorted([draw(weeks), draw(weeks)])
    return ev.PlantDisrupted(
        plant_id=draw(ids),
        nation=draw(nations),
        disruption_id=draw(ids),
        line_id=draw(st.none() | ids),
        from_week=start,
        to_week=end,
        capacity_lost_percent=draw(st.integers(1, 100)),
        cause=draw(text),
    )


@st.composite
def shipment_dispatched(draw: st.DrawFn) -> ev.ShipmentDispatched:
    start, end = sorted([draw(weeks), draw(weeks)])
    return ev.ShipmentDispatched(
        shipment_id=draw(ids),
        source_id=draw(ids),
        nation=draw(nations),
        demand_id=draw(ids),
        product=draw(products),
        quantity=draw(rounds),
        recipient=draw(nations),
        dispatched_week=start,
        expected_arrival_week=end,
    )


@st.composite
def plant_registered(draw: st.DrawFn) -> ev.PlantRegistered:
    line_ids = draw(st.lists(ids, unique=True, min_size=1, max_size=3))
    lines = []
    for line_id in line_ids:
        codes = draw(st.lists(products, unique=True, min_size=1, max_size=3))
        lines.append(
            ev.ProductionLine(
                line_id=line_id,
                products=[
                    ev.LineProduct(
                        product=code,
                        units_per_week=draw(rounds),
                        unit_price_cents=draw(cents),
                    )
                    for code in codes
                ],
                lot_size=draw(st.none() | st.integers(1, 10_000)),
            )
        )
    return ev.PlantRegistered(
        plant_id=draw(ids),
        nation=draw(nations),
        operator=draw(text),
        plant_name=draw(text),
        lines=lines,
    )


def _amended(draw: st.DrawFn) -> ev.DemandAmended:
    chosen = draw(st.sets(st.sampled_from(["quantity", "due_week", "priority"]), min_size=1))
    field_strategies: dict[str, st.SearchStrategy[Any]] = {
        "quantity": rounds,
        "due_week": weeks,
        "priority": priorities,
    }
    changes = {name: draw(field_strategies[name]) for name in sorted(chosen)}
    return ev.DemandAmended(
        demand_id=draw(ids), requested_by=draw(parties), reason=draw(st.none() | text), **changes
    )


demand_amended = st.composite(_amended)()

outlook = st.builds(
    ev.DemandOutlook,
    demand_id=ids,
    requested=st.integers(0, MAX_ROUNDS),
    planned=st.integers(0, MAX_ROUNDS),
    shortfall=st.integers(0, MAX_ROUNDS),
    last_arrival_week=st.none() | weeks,
    reasons=st.lists(text, max_size=3),
)
demand_refs = st.lists(
    st.builds(ev.DemandRef, demand_id=ids, quantity=rounds), min_size=1, max_size=3
)
finite = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)

EVENT_STRATEGIES: dict[type[ev.Event], st.SearchStrategy[Any]] = {
    ev.DemandSubmitted: demand_submitted(),
    ev.DemandAmended: demand_amended,
    ev.DemandCancelled: st.builds(
        ev.DemandCancelled, demand_id=ids, requested_by=parties, reason=text
    ),
    ev.ProductDefined: st.builds(
        ev.ProductDefined,
        product=products,
        description=text,
        interop_groups=st.lists(groups, unique=True, max_size=2),
        bill=st.lists(
            st.builds(ev.MaterialUse, material=materials, grams_per_unit=st.integers(1, 1_000_000)),
            max_size=4,
            unique_by=lambda use: use.material,
        ),
    ),
    ev.PlantRegistered: plant_registered(),
    ev.CapacityDeclared: capacity_declared(),
    ev.PlantDisrupted: plant_disrupted(),
    ev.PlantRestored: st.builds(
        ev.PlantRestored, plant_id=ids, nation=nations, disruption_id=ids, restored_week=weeks
    ),
    ev.StockOffered: st.builds(
        ev.StockOffered,
        offer_id=ids,
        offered_by=parties,
        origin=nations,
        product=products,
        quantity=rounds,
        available_week=weeks,
        unit_price_cents=cents,
    ),
    ev.MaterialSupplyDeclared: material_supply(),
    ev.ExportPolicyDeclared: st.builds(
        ev.ExportPolicyDeclared, nation=nations, refused_recipients=_unique_nations(6)
    ),
    ev.PoolOpened: st.builds(
        ev.PoolOpened,
        pool_id=ids,
        owner=parties,
        pool_name=text,
        rules=st.builds(
            ev.PoolRules,
            eligible_producer_blocs=blocs,
            eligible_producer_nations=_unique_nations(5),
            min_eu_content_percent=st.none() | st.integers(0, 100),
            excluded_origins=_unique_nations(5),
            price_cap_cents_per_unit=st.none() | cents,
            earmarked_products=st.lists(products | groups, max_size=3),
            earmarked_recipients=_unique_nations(3),
        ),
    ),
    ev.ContributionPledged: st.builds(
        ev.ContributionPledged, pool_id=ids, contribution_id=ids, donor=nations, amount_cents=cents
    ),
    ev.ContributionPaid: st.builds(
        ev.ContributionPaid, pool_id=ids, contribution_id=ids, donor=nations, amount_cents=cents
    ),
    ev.ProductionReported: st.builds(
        ev.ProductionReported,
        report_id=ids,
        plant_id=ids,
        nation=nations,
        line_id=ids,
        product=products,
        week=weeks,
        quantity=rounds,
        order_id=st.none() | ids,
    ),
    ev.ShipmentDispatched: shipment_dispatched(),
    ev.ShipmentDelivered: st.builds(
        ev.ShipmentDelivered,
        shipment_id=ids,
        nation=nations,
        demand_id=ids,
        delivered_week=weeks,
        quantity=rounds,
    ),
    ev.PlanPublished: st.builds(
        ev.PlanPublished,
        plan_id=ids,
        version=st.integers(1, 10**6),
        trigger=text,
        input_offsets=st.dictionaries(ids, st.integers(0, 10**12), max_size=4),
        solver_status=st.sampled_from(list(ev.SolverStatus)),
        status_message=st.none() | text,
        objective=st.builds(
            ev.ObjectiveTerms,
            weighted_shortfall=finite,
            weighted_lateness=finite,
            cost_cents=st.integers(0, MAX_CENTS),
            churn_units=st.integers(0, MAX_ROUNDS),
        ),
        gap=st.none() | finite,
        demands=st.lists(outlook, max_size=3),
        money_committed_cents=st.dictionaries(ids, st.integers(0, MAX_CENTS), max_size=3),
    ),
    ev.ProductionOrderIssued: st.builds(
        ev.ProductionOrderIssued,
        order_id=ids,
        plant_id=ids,
        nation=nations,
        line_id=ids,
        product=products,
        week=weeks,
        quantity=rounds,
        demand_refs=demand_refs,
        plan_version=st.integers(1, 10**6),
        committed=st.booleans(),
    ),
    ev.ProductionOrderRevised: st.builds(
        ev.ProductionOrderRevised,
        order_id=ids,
        plant_id=ids,
        nation=nations,
        line_id=ids,
        product=products,
        week=weeks,
        quantity=rounds,
        previous_quantity=rounds,
        demand_refs=demand_refs,
        plan_version=st.integers(1, 10**6),
        committed=st.booleans(),
    ),
    ev.ProductionOrderCancelled: st.builds(
        ev.ProductionOrderCancelled,
        order_id=ids,
        plant_id=ids,
        nation=nations,
        plan_version=st.integers(1, 10**6),
        reason=text,
    ),
    ev.AlertRaised: st.builds(
        ev.AlertRaised,
        alert_id=ids,
        kind=st.sampled_from(list(ev.AlertKind)),
        severity=st.sampled_from(list(ev.Severity)),
        subject_id=ids,
        nation=st.none() | nations,
        message=text,
        values=st.dictionaries(st.sampled_from(["units", "weeks", "cents"]), finite, max_size=3),
    ),
    ev.EventRejected: st.builds(
        ev.EventRejected,
        rejection_id=ids,
        original_topic=st.from_regex(r"\Aampc\.inbox\.[a-z]{2}\Z"),
        original_partition=st.integers(0, 100),
        original_offset=st.integers(0, 10**12),
        original_key_base64=st.none() | st.binary(max_size=30).map(lambda b: b.hex()),
        original_value_base64=st.binary(max_size=100).map(lambda b: b.hex()),
        original_headers=st.dictionaries(st.sampled_from(["ce_id", "ce_type"]), text, max_size=2),
        nation=st.none() | parties,
        error_code=st.sampled_from(list(ev.RejectionCode)),
        field_path=st.none() | text,
        message=text,
        rejected_at=timestamps,
        rejected_by=text,
    ),
}
