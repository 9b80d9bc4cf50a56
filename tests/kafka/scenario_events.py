"""Valid inbox traffic for integration tests: every family, from the right parties."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ampc.contract import events as ev

WEEK = dt.date(2026, 12, 7)


def week(n: int) -> dt.date:
    return WEEK + dt.timedelta(weeks=n)


def demand(
    demand_id: str, requested_by: str = "CZ", quantity: int = 1000, **more: Any
) -> ev.DemandSubmitted:
    body = {
        "demand_id": demand_id,
        "requested_by": requested_by,
        "recipient": "UA",
        "delivery_point": "Rzeszow",
        "product": "155-HE",
        "quantity": quantity,
        "due_week": week(4).isoformat(),
        "priority": "URGENT",
        "pool_id": "P-CZI",
        **more,
    }
    return ev.DemandSubmitted.model_validate_json(json.dumps(body))


def every_family() -> list[tuple[str, ev.Event]]:
    """(party, event) for every input event type, in an order the ledger accepts."""
    line = ev.ProductionLine(
        line_id="L1",
        products=[ev.LineProduct(product="155-HE", units_per_week=2000, unit_price_cents=350_000)],
        lot_size=100,
    )
    return [
        (
            "NSPA",
            ev.ProductDefined(
                product="155-HE",
                description="155 mm HE round",
                interop_groups=["IG-155-JBMOU"],
                bill=[ev.MaterialUse(material="NC", grams_per_unit=9000)],
            ),
        ),
        (
            "CZ",
            ev.PlantRegistered(
                plant_id="CZ-VLASIM", nation="CZ", operator="CSG", plant_name="Vlasim", lines=[line]
            ),
        ),
        (
            "CZ",
            ev.CapacityDeclared(
                plant_id="CZ-VLASIM",
                nation="CZ",
                line_id="L1",
                steps=[
                    ev.CapacityStep(week=week(0), capacity_percent=50),
                    ev.CapacityStep(week=week(8), capacity_percent=100),
                ],
            ),
        ),
        (
            "CZ",
            ev.PlantDisrupted(
                plant_id="CZ-VLASIM",
                nation="CZ",
                disruption_id="FIRE-1",
                from_week=week(2),
                to_week=week(5),
                capacity_lost_percent=60,
                cause="fire in the filling hall",
            ),
        ),
        (
            "CZ",
            ev.PlantRestored(
                plant_id="CZ-VLASIM", nation="CZ", disruption_id="FIRE-1", restored_week=week(4)
            ),
        ),
        (
            "CZI",
            ev.StockOffered(
                offer_id="OFFER-KR-1",
                offered_by="CZI",
                origin="KR",
                product="155-HE",
                quantity=20_000,
                available_week=week(1),
                unit_price_cents=420_000,
            ),
        ),
        (
            "NSPA",
            ev.MaterialSupplyDeclared(
                material="NC",
                supplier_region="EU-NORTH",
                declared_by="NSPA",
                steps=[ev.MaterialStep(week=week(0), kilograms_per_week=50_000)],
            ),
        ),
        ("DE", ev.ExportPolicyDeclared(nation="DE", refused_recipients=["IL"])),
        (
            "CZI",
            ev.PoolOpened(
                pool_id="P-CZI",
                owner="CZI",
                pool_name="Czech ammunition initiative",
                rules=ev.PoolRules(price_cap_cents_per_unit=500_000),
            ),
        ),
        (
            "DK",
            ev.ContributionPledged(
                pool_id="P-CZI", contribution_id="DK-1", donor="DK", amount_cents=100_000_000_00
            ),
        ),
        (
            "DK",
            ev.ContributionPaid(
                pool_id="P-CZI", contribution_id="DK-1", donor="DK", amount_cents=40_000_000_00
            ),
        ),
        ("CZ", demand("D-1", quantity=5000)),
        ("CZ", ev.DemandAmended(demand_id="D-1", requested_by="CZ", quantity=6000)),
        ("CZ", demand("D-2")),
        (
            "CZ",
            ev.DemandCancelled(demand_id="D-2", requested_by="CZ", reason="covered bilaterally"),
        ),
        (
            "CZ",
            ev.ProductionReported(
                report_id="R-1",
                plant_id="CZ-VLASIM",
                nation="CZ",
                line_id="L1",
                product="155-HE",
                week=week(0),
                quantity=900,
            ),
        ),
        (
            "CZ",
            ev.ShipmentDispatched(
                shipment_id="S-1",
                source_id="CZ-VLASIM",
                nation="CZ",
                demand_id="D-1",
                product="155-HE",
                quantity=900,
                recipient="UA",
                dispatched_week=week(1),
                expected_arrival_week=week(2),
            ),
        ),
        (
            "UA",
            ev.ShipmentDelivered(
                shipment_id="S-1",
                nation="UA",
                demand_id="D-1",
                delivered_week=week(2),
                quantity=900,
            ),
        ),
    ]
