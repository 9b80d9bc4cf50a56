"""A small world to plan for, shared by the re-planning unit and integration tests: a
product, two plants in two nations, a funded pool, and demands made to order."""

from __future__ import annotations

import datetime as dt
import json

from ampc.contract import events as ev
from ampc.ledger.fold import Applied, EventMeta, MemoryStore, apply_event
from ampc.ledger.state import EntityKind, EntityState
from tests.kafka.scenario_events import week


def line(line_id: str, rate: int, price: int) -> ev.ProductionLine:
    return ev.ProductionLine(
        line_id=line_id,
        products=[ev.LineProduct(product="155-HE", units_per_week=rate, unit_price_cents=price)],
    )


def world() -> list[tuple[str, ev.Event]]:
    """A product, two plants in two nations, a funded pool: enough to plan for."""
    return [
        (
            "NSPA",
            ev.ProductDefined(
                product="155-HE", description="155 mm HE round", interop_groups=["IG-155-JBMOU"]
            ),
        ),
        (
            "CZ",
            ev.PlantRegistered(
                plant_id="CZ-VLASIM",
                nation="CZ",
                operator="CSG",
                plant_name="Vlasim",
                lines=[line("CZ-L1", 1000, 300_000)],
            ),
        ),
        (
            "PL",
            ev.PlantRegistered(
                plant_id="PL-NIWKA",
                nation="PL",
                operator="PGZ",
                plant_name="Niwka",
                lines=[line("PL-L1", 1000, 400_000)],
            ),
        ),
        ("CZI", ev.PoolOpened(pool_id="P-CZI", owner="CZI", pool_name="Czech initiative")),
        (
            "DK",
            ev.ContributionPledged(
                pool_id="P-CZI", contribution_id="DK-1", donor="DK", amount_cents=10**11
            ),
        ),
        (
            "DK",
            ev.ContributionPaid(
                pool_id="P-CZI", contribution_id="DK-1", donor="DK", amount_cents=10**11
            ),
        ),
    ]


def demand_event(
    demand_id: str, quantity: int, due: int, priority: str = "URGENT", requested_by: str = "CZ"
) -> ev.DemandSubmitted:
    body = {
        "demand_id": demand_id,
        "requested_by": requested_by,
        "recipient": "UA",
        "delivery_point": "Rzeszow",
        "product": "155-HE",
        "quantity": quantity,
        "due_week": week(due).isoformat(),
        "priority": priority,
        "pool_id": "P-CZI",
    }
    return ev.DemandSubmitted.model_validate_json(json.dumps(body))


def plant_fire(cause: str = "fire") -> ev.PlantDisrupted:
    """The Czech plant down for the whole twelve-week test horizon."""
    return ev.PlantDisrupted(
        plant_id="CZ-VLASIM",
        nation="CZ",
        disruption_id="FIRE",
        from_week=week(0),
        to_week=week(11),
        capacity_lost_percent=100,
        cause=cause,
    )


def fold(events: list[tuple[str, ev.Event]]) -> dict[EntityKind, dict[str, EntityState]]:
    """The ledger's states after these events (the pure fold, no Kafka)."""
    store = MemoryStore()
    for offset, (party, event) in enumerate(events):
        meta = EventMeta(f"e{offset}", party, "feed", 0, offset, dt.datetime.now(dt.UTC))
        outcome = apply_event(store, event, meta)
        assert isinstance(outcome, Applied), (type(event).__name__, outcome)
    states: dict[EntityKind, dict[str, EntityState]] = {kind: {} for kind in EntityKind}
    for kind, entity_id, state in store.items():
        states[kind][entity_id] = state
    return states
