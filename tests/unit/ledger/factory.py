"""Events with sensible defaults and a feed that stamps them with Kafka positions, so each test
states only what it is about."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from ampc.contract import events as ev
from ampc.contract.events import Event
from ampc.contract.types import Priority
from ampc.ledger.fold import EventMeta, MemoryStore, Outcome, apply_event
from ampc.ledger.state import (
    DemandState,
    EntityKind,
    EntityState,
    OfferState,
    PlantState,
    PoolState,
    ShipmentState,
)

_S = TypeVar("_S", bound=EntityState)

WEEK_1 = dt.date(2026, 1, 5)  # a Monday


def week(n: int) -> dt.date:
    """The Monday n weeks after WEEK_1 (week(0) is WEEK_1)."""
    return WEEK_1 + dt.timedelta(weeks=n)


def submitted(**changes: Any) -> ev.DemandSubmitted:
    fields: dict[str, Any] = {
        "demand_id": "D-1",
        "requested_by": "PL",
        "recipient": "UA",
        "delivery_point": "Rzeszow depot",
        "product": "155-HE",
        "quantity": 1000,
        "due_week": week(10),
        "priority": Priority.HIGH,
        "pool_id": "POOL-1",
    }
    return ev.DemandSubmitted(**{**fields, **changes})


def amended(**changes: Any) -> ev.DemandAmended:
    fields: dict[str, Any] = {"demand_id": "D-1", "requested_by": "PL", "quantity": 1500}
    return ev.DemandAmended(**{**fields, **changes})


def cancelled(**changes: Any) -> ev.DemandCancelled:
    fields: dict[str, Any] = {"demand_id": "D-1", "requested_by": "PL", "reason": "superseded"}
    return ev.DemandCancelled(**{**fields, **changes})


def line(line_id: str = "L1", *products: str, lot_size: int | None = None) -> ev.ProductionLine:
    return ev.ProductionLine(
        line_id=line_id,
        products=[
            ev.LineProduct(product=p, units_per_week=500, unit_price_cents=350_000)
            for p in (products or ("155-HE",))
        ],
        lot_size=lot_size,
    )


def registered(**changes: Any) -> ev.PlantRegistered:
    fields: dict[str, Any] = {
        "plant_id": "P-1",
        "nation": "DE",
        "operator": "Rheinmetall",
        "plant_name": "Unterluess",
        "lines": [line("L1", "155-HE", "155-CHARGE"), line("L2", "120-MORTAR", lot_size=100)],
    }
    return ev.PlantRegistered(**{**fields, **changes})


def capacity(**changes: Any) -> ev.CapacityDeclared:
    fields: dict[str, Any] = {
        "plant_id": "P-1",
        "nation": "DE",
        "line_id": "L1",
        "steps": [
            ev.CapacityStep(week=week(0), capacity_percent=50),
            ev.CapacityStep(week=week(8), capacity_percent=120),
        ],
    }
    return ev.CapacityDeclared(**{**fields, **changes})


def disrupted(**changes: Any) -> ev.PlantDisrupted:
    fields: dict[str, Any] = {
        "plant_id": "P-1",
        "nation": "DE",
        "disruption_id": "FIRE-1",
        "line_id": "L1",
        "from_week": week(2),
        "to_week": week(7),
        "capacity_lost_percent": 80,
        "cause": "fire in the filling hall",
    }
    return ev.PlantDisrupted(**{**fields, **changes})


def restored(**changes: Any) -> ev.PlantRestored:
    fields: dict[str, Any] = {
        "plant_id": "P-1",
        "nation": "DE",
        "disruption_id": "FIRE-1",
        "restored_week": week(5),
    }
    return ev.PlantRestored(**{**fields, **changes})


def offered(**changes: Any) -> ev.StockOffered:
    fields: dict[str, Any] = {
        "offer_id": "O-1",
        "offered_by": "CZ",
        "origin": "ZA",
        "product": "155-HE",
        "quantity": 20_000,
        "available_week": week(3),
        "unit_price_cents": 400_000,
    }
    return ev.StockOffered(**{**fields, **changes})


def material_supply(**changes: Any) -> ev.MaterialSupplyDeclared:
    fields: dict[str, Any] = {
        "material": "NC",
        "supplier_region": "EU-WEST",
        "declared_by": "FR",
        "steps": [ev.MaterialStep(week=week(0), kilograms_per_week=40_000)],
    }
    return ev.MaterialSupplyDeclared(**{**fields, **changes})


def product_defined(**changes: Any) -> ev.ProductDefined:
    fields: dict[str, Any] = {
        "product": "155-HE",
        "description": "155 mm high explosive",
        "interop_groups": ["IG-155-JBMOU"],
        "bill": [ev.MaterialUse(material="TNT", grams_per_unit=10_800)],
    }
    return ev.ProductDefined(**{**fields, **changes})


def export_policy(**changes: Any) -> ev.ExportPolicyDeclared:
    fields: dict[str, Any] = {"nation": "CH", "refused_recipients": ["UA"]}
    return ev.ExportPolicyDeclared(**{**fields, **changes})


def pool_opened(**changes: Any) -> ev.PoolOpened:
    fields: dict[str, Any] = {
        "pool_id": "POOL-1",
        "owner": "CZI",
        "pool_name": "Czech initiative",
        "rules": ev.PoolRules(price_cap_cents_per_unit=500_000),
    }
    return ev.PoolOpened(**{**fields, **changes})


def pledged(**changes: Any) -> ev.ContributionPledged:
    fields: dict[str, Any] = {
        "pool_id": "POOL-1",
        "contribution_id": "C-1",
        "donor": "DK",
        "amount_cents": 1_000_000,
    }
    return ev.ContributionPledged(**{**fields, **changes})


def paid(**changes: Any) -> ev.ContributionPaid:
    fields: dict[str, Any] = {
        "pool_id": "POOL-1",
        "contribution_id": "C-1",
        "donor": "DK",
        "amount_cents": 400_000,
    }
    return ev.ContributionPaid(**{**fields, **changes})


def production(**changes: Any) -> ev.ProductionReported:
    fields: dict[str, Any] = {
        "report_id": "R-1",
        "plant_id": "P-1",
        "nation": "DE",
        "line_id": "L1",
        "product": "155-HE",
        "week": week(1),
        "quantity": 450,
    }
    return ev.ProductionReported(**{**fields, **changes})


def dispatched(**changes: Any) -> ev.ShipmentDispatched:
    fields: dict[str, Any] = {
        "shipment_id": "S-1",
        "source_id": "P-1",
        "nation": "DE",
        "demand_id": "D-1",
        "product": "155-HE",
        "quantity": 400,
        "recipient": "UA",
        "dispatched_week": week(2),
        "expected_arrival_week": week(3),
    }
    return ev.ShipmentDispatched(**{**fields, **changes})


def delivered(**changes: Any) -> ev.ShipmentDelivered:
    fields: dict[str, Any] = {
        "shipment_id": "S-1",
        "nation": "UA",
        "demand_id": "D-1",
        "delivered_week": week(3),
        "quantity": 400,
    }
    return ev.ShipmentDelivered(**{**fields, **changes})


def scenario() -> list[Event]:
    """Every input event type, with a shipment delivered against a demand; the last event is
    a dispatch (tests vary it)."""
    return [
        product_defined(),
        export_policy(),
        material_supply(),
        registered(),
        capacity(),
        disrupted(),
        restored(),
        offered(),
        pool_opened(),
        pledged(),
        paid(),
        submitted(),
        amended(quantity=1200),
        submitted(demand_id="D-2", quantity=50),
        cancelled(demand_id="D-2"),
        production(),
        dispatched(quantity=400),
        delivered(quantity=400),
        dispatched(shipment_id="S-2", quantity=300),
    ]


class Feed:
    """Stands in for the adapter: stamps each event with its canonical topic, partition 0, the
    next offset and an event id derived from them, and folds it into one store."""

    def __init__(self, store: MemoryStore | None = None, *, first_offset: int = 0) -> None:
        self.store = store if store is not None else MemoryStore()
        self.first_offset = first_offset
        self.next_offset: dict[str, int] = {}
        self.sent: list[tuple[Event, EventMeta]] = []

    def meta(
        self,
        event: Event,
        *,
        event_id: str | None = None,
        offset: int | None = None,
        at: dt.datetime | None = None,
    ) -> EventMeta:
        """The position the next event of this family would get (or the one given), sent at
        `at` (default: the Monday noon of WEEK_1)."""
        topic = f"ampc.events.{event.family.value}"
        if offset is None:
            offset = self.next_offset.get(topic, self.first_offset)
        self.next_offset[topic] = max(offset + 1, self.next_offset.get(topic, 0))
        return EventMeta(
            event_id=event_id or f"{topic}/{offset}",
            party="PL",
            topic=topic,
            partition=0,
            offset=offset,
            time=at or dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC),
        )

    def send(
        self,
        event: Event,
        *,
        event_id: str | None = None,
        offset: int | None = None,
        at: dt.datetime | None = None,
    ) -> Outcome:
        """Fold one event at the next offset of its topic (or the offset given)."""
        meta = self.meta(event, event_id=event_id, offset=offset, at=at)
        self.sent.append((event, meta))
        return apply_event(self.store, event, meta)

    def send_all(self, *events: Event) -> list[Outcome]:
        return [self.send(event) for event in events]

    def replay(self) -> list[Outcome]:
        """Fold every event sent so far again, at the same positions, as after a crash."""
        return [apply_event(self.store, event, meta) for event, meta in self.sent]

    def state(self, kind: EntityKind, entity_id: str, model: type[_S]) -> _S:
        """The stored state of an entity, which must exist and be of the model given."""
        state = self.store.get(kind, entity_id)
        assert isinstance(state, model), f"{kind.value} {entity_id} is {state!r}"
        return state

    def demand(self, demand_id: str = "D-1") -> DemandState:
        return self.state(EntityKind.DEMANDS, demand_id, DemandState)

    def plant(self, plant_id: str = "P-1") -> PlantState:
        return self.state(EntityKind.PLANTS, plant_id, PlantState)

    def pool(self, pool_id: str = "POOL-1") -> PoolState:
        return self.state(EntityKind.POOLS, pool_id, PoolState)

    def shipment(self, shipment_id: str = "S-1") -> ShipmentState:
        return self.state(EntityKind.SHIPMENTS, shipment_id, ShipmentState)

    def offer(self, offer_id: str = "O-1") -> OfferState:
        return self.state(EntityKind.OFFERS, offer_id, OfferState)


def snapshot(store: MemoryStore) -> dict[tuple[EntityKind, str], str]:
    """Everything the store holds, applied logs included, for before/after comparisons."""
    return {(kind, entity_id): state.model_dump_json() for kind, entity_id, state in store.items()}


class WriteCountingTable(dict[str, bytes]):
    """A table that counts writes: each write of a faust table sends a changelog record."""

    writes = 0

    def __setitem__(self, key: str, value: bytes) -> None:
        self.writes += 1
        super().__setitem__(key, value)
