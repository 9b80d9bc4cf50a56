"""The ledger's fold: one canonical event applied to the entity states it touches.

Pure domain logic, no Kafka: the adapter hands in a `Store` holding the states of one partition
and gets back an `Outcome` — `Applied` (with every state written, to publish to the compacted
topics), `Duplicate` (already applied: nothing changes) or `Rejected` (a reason a person can act
on: nothing changes).

Events reach the fold already validated and authorised by the gateway; the fold adds the rules
that need state (does the demand exist, is it cancelled, does the plant have that line, is the
payment covered by a pledge, is the plant or pledge the sender's own).

Partitioning puts everything one event touches in the same partition: shipment events are keyed
by `demand_id`, so a shipment and its demand are folded together. What lives elsewhere cannot be
checked here: a demand's pool, a shipment's source plant or offer, and the members of an interop
group (ProductDefined is keyed by product), so a shipment for a demand that names an interop
group is accepted with any product.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ampc.contract.events import (
    CapacityDeclared,
    ContributionPaid,
    ContributionPledged,
    DemandAmended,
    DemandCancelled,
    DemandSubmitted,
    Event,
    ExportPolicyDeclared,
    MaterialSupplyDeclared,
    PlantDisrupted,
    PlantRegistered,
    PlantRestored,
    PoolOpened,
    ProductDefined,
    ProductionReported,
    RejectionCode,
    ShipmentDelivered,
    ShipmentDispatched,
    StockOffered,
)
from ampc.ledger.state import (
    PRODUCTION_KEPT_WEEKS,
    STATE_MODELS,
    ContributionState,
    DemandState,
    DemandStatus,
    DisruptionState,
    EntityKind,
    EntityState,
    ExportPolicyState,
    LineState,
    MaterialSupplyState,
    OfferState,
    PlantState,
    PoolState,
    ProductionRecord,
    ProductState,
    ShipmentState,
    ShipmentStatus,
)

# --------------------------------------------------------------------------- store


class Store(Protocol):
    """The entity states of one partition, by kind and id."""

    def get(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        """The state of an entity, or None when the ledger has not seen it; to read only (it
        may be the very object the store holds)."""
        ...

    def get_for_change(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        """Like `get`, but a state the caller may change: never an object the store holds,
        so a rejected event leaves the store untouched."""
        ...

    def put(self, kind: EntityKind, entity_id: str, state: EntityState) -> None:
        """Write an entity's new state."""
        ...


class MemoryStore:
    """A store in a dict: for tests and for the read replica built from the state topics."""

    def __init__(self) -> None:
        self._states: dict[tuple[EntityKind, str], EntityState] = {}

    def get(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        return self._states.get((kind, entity_id))

    def get_for_change(self, kind: EntityKind, entity_id: str) -> EntityState | None:
        state = self._states.get((kind, entity_id))
        return None if state is None else state.model_copy(deep=True)

    def put(self, kind: EntityKind, entity_id: str, state: EntityState) -> None:
        self._states[(kind, entity_id)] = state

    def items(self) -> Iterator[tuple[EntityKind, str, EntityState]]:
        """Every (kind, id, state) held, in no particular order."""
        for (kind, entity_id), state in self._states.items():
            yield kind, entity_id, state

    def __len__(self) -> int:
        return len(self._states)


# --------------------------------------------------------------------------- inputs and outcomes


@dataclass(frozen=True)
class EventMeta:
    """Where an event came from: its CloudEvents id, the sending party and its Kafka position."""

    event_id: str
    party: str
    topic: str
    partition: int
    offset: int
    time: dt.datetime
    retried: bool = False
    """Applied from the parking lot, out of its partition's order: its offset says nothing
    about the events around it, so only its event id marks it applied (a source per parked
    event would grow the entity's applied log by one with every such event)."""

    @property
    def source(self) -> str | None:
        """The `topic:partition` the offset counts in (None for a retried event)."""
        return None if self.retried else f"{self.topic}:{self.partition}"


Change = tuple[EntityKind, str, EntityState]


@dataclass(frozen=True)
class Applied:
    """The event changed state; `changed` holds every entity written, to publish each."""

    changed: tuple[Change, ...]


@dataclass(frozen=True)
class Duplicate:
    """The event (or one with the same content) is already in the state; nothing changed."""

    reason: str


@dataclass(frozen=True)
class Rejected:
    """The event contradicts the state; nothing changed. The adapter dead-letters it."""

    code: RejectionCode
    message: str
    field_path: str | None = None


Outcome = Applied | Duplicate | Rejected

_S = TypeVar("_S", bound=EntityState)


def _get(store: Store, kind: EntityKind, entity_id: str, model: type[_S]) -> _S | None:
    state = store.get_for_change(kind, entity_id)
    if state is None:
        return None
    if not isinstance(state, model):
        raise TypeError(f"store holds a {type(state).__name__} under {kind.value}/{entity_id}")
    return state


def _seen(state: EntityState | None, meta: EventMeta) -> bool:
    return state is not None and state.applied.has_applied(meta.source, meta.offset, meta.event_id)


def _commit(store: Store, meta: EventMeta, *changes: Change) -> Applied:
    for kind, entity_id, state in changes:
        state.version += 1
        state.applied.record(meta.source, meta.offset, meta.event_id)
        store.put(kind, entity_id, state)
    return Applied(changed=changes)


def _already_applied(meta: EventMeta, kind: EntityKind, entity_id: str) -> Duplicate:
    return Duplicate(
        f"event {meta.event_id} ({meta.topic}:{meta.partition}@{meta.offset}"
        f"{', from the parking lot' if meta.retried else ''}) is already applied to "
        f"{kind.value} {entity_id}"
    )


def _unknown(message: str, field_path: str) -> Rejected:
    return Rejected(RejectionCode.UNKNOWN_ENTITY, message, field_path)


def _conflict(message: str, field_path: str | None = None) -> Rejected:
    return Rejected(RejectionCode.CONFLICTS_WITH_STATE, message, field_path)


def _not_authorised(message: str, field_path: str) -> Rejected:
    return Rejected(RejectionCode.NOT_AUTHORISED, message, field_path)


# --------------------------------------------------------------------------- entry points


def apply_event(store: Store, event: Event, meta: EventMeta) -> Outcome:
    """Fold one canonical input event into the store.

    Idempotent: an event whose source offset or event id an entity already records is a
    `Duplicate`. A `Duplicate` or `Rejected` outcome leaves the store unchanged; `Applied` lists
    every state written (already put into the store).
    """
    match event:
        case ShipmentDispatched():
            return _shipment_dispatched(store, event, meta)
        case ShipmentDelivered():
            return _shipment_delivered(store, event, meta)
    kind = _ENTITY_KINDS.get(type(event))
    if kind is None:
        return Rejected(
            RejectionCode.UNKNOWN_EVENT_TYPE,
            f"the ledger does not fold {event.event_type()} events; only demand, capacity, "
            "funding and delivery events belong on its input topics",
        )
    entity_id = event.entity_id()
    if _seen(store.get(kind, entity_id), meta):
        return _already_applied(meta, kind, entity_id)
    return _fold_one_entity(store, event, meta)


def apply_offer_dispatch(store: Store, event: ShipmentDispatched, meta: EventMeta) -> Outcome:
    """Draw a dispatched shipment's rounds from the stock offer it came from.

    Shipments are keyed by demand, offers by offer id, so this runs on a stream of
    `ShipmentDispatched` re-keyed by `source_id`, in the offers' partition. Feed it every dispatch
    that `apply_event` did not reject: an offer counts each shipment id once, so a shipment sent
    again (any offset, any event id) is a `Duplicate`. `UNKNOWN_ENTITY` means the source is not a
    known offer (usually a plant): skip it, do not dead-letter it. Rounds that already left a
    depot are recorded even beyond the offered quantity; `remaining` then stays 0.
    """
    offer = _get(store, EntityKind.OFFERS, event.source_id, OfferState)
    if offer is None:
        return _unknown(
            f"shipment {event.shipment_id} comes from {event.source_id}, which is not a known "
            "stock offer",
            "source_id",
        )
    if _seen(offer, meta):
        return _already_applied(meta, EntityKind.OFFERS, event.source_id)
    if event.shipment_id in offer.drawn_by:
        return Duplicate(
            f"shipment {event.shipment_id} already drew {offer.drawn_by[event.shipment_id]} "
            f"rounds from offer {event.source_id}"
        )
    offer.drawn_by[event.shipment_id] = event.quantity
    offer.refresh_remaining()
    return _commit(store, meta, (EntityKind.OFFERS, offer.offer_id, offer))


# --------------------------------------------------------------------------- demand family


def _demand_submitted(store: Store, event: DemandSubmitted, meta: EventMeta) -> Outcome:
    existing = _get(store, EntityKind.DEMANDS, event.demand_id, DemandState)
    if existing is not None:
        differing = [
            name
            for name in DemandSubmitted.model_fields
            if getattr(existing, name) != getattr(event, name)
        ]
        if not differing:
            return Duplicate(f"demand {event.demand_id} is already submitted with this content")
        return _conflict(
            f"demand {event.demand_id} already exists with different {', '.join(differing)}; "
            "send DemandAmended to change quantity, due week or priority, or use a new "
            "demand_id for a new demand",
            differing[0],
        )
    demand = DemandState(
        **{name: getattr(event, name) for name in DemandSubmitted.model_fields},
        open_quantity=event.quantity,
    )
    return _commit(store, meta, (EntityKind.DEMANDS, demand.demand_id, demand))


def _demand_to_change(
    store: Store, demand_id: str, requested_by: str, action: str
) -> DemandState | Rejected:
    demand = _get(store, EntityKind.DEMANDS, demand_id, DemandState)
    if demand is None:
        return _unknown(
            f"cannot {action} demand {demand_id}: the ledger has no such demand", "demand_id"
        )
    if demand.requested_by != requested_by:
        return _not_authorised(
            f"demand {demand_id} was submitted by {demand.requested_by}; "
            f"{requested_by} cannot {action} it",
            "requested_by",
        )
    if demand.status is DemandStatus.CANCELLED:
        return _conflict(
            f"cannot {action} demand {demand_id}: it is cancelled ({demand.cancellation_reason})",
            "demand_id",
        )
    return demand


def _demand_amended(store: Store, event: DemandAmended, meta: EventMeta) -> Outcome:
    demand = _demand_to_change(store, event.demand_id, event.requested_by, "amend")
    if isinstance(demand, Rejected):
        return demand
    if event.quantity is not None:
        if event.quantity < demand.delivered:
            return _conflict(
                f"demand {event.demand_id} cannot be lowered to {event.quantity} rounds: "
                f"{demand.delivered} are already delivered",
                "quantity",
            )
        demand.quantity = event.quantity
    if event.due_week is not None:
        demand.due_week = event.due_week
    if event.priority is not None:
        demand.priority = event.priority
    demand.amendment_reason = event.reason
    demand.refresh_open_quantity()
    return _commit(store, meta, (EntityKind.DEMANDS, demand.demand_id, demand))


def _demand_cancelled(store: Store, event: DemandCancelled, meta: EventMeta) -> Outcome:
    demand = _demand_to_change(store, event.demand_id, event.requested_by, "cancel")
    if isinstance(demand, Rejected):
        return demand
    demand.status = DemandStatus.CANCELLED
    demand.cancellation_reason = event.reason
    demand.refresh_open_quantity()
    return _commit(store, meta, (EntityKind.DEMANDS, demand.demand_id, demand))


# --------------------------------------------------------------------------- capacity family


def _plant_registered(store: Store, event: PlantRegistered, meta: EventMeta) -> Outcome:
    existing = _get(store, EntityKind.PLANTS, event.plant_id, PlantState)
    if existing is not None and existing.nation != event.nation:
        return _conflict(
            f"plant id {event.plant_id} is registered to {existing.nation}; {event.nation} "
            "cannot register it again — choose another plant_id",
            "plant_id",
        )
    # A re-registration replaces the lines; calendars of lines still present are kept, and
    # disruptions stay as the record of what happened.
    old_lines = existing.lines if existing is not None else {}
    lines = {
        line.line_id: LineState(
            line_id=line.line_id,
            products=list(line.products),
            lot_size=line.lot_size,
            calendar=old_lines[line.line_id].calendar if line.line_id in old_lines else [],
        )
        for line in event.lines
    }
    plant = PlantState(
        plant_id=event.plant_id,
        nation=event.nation,
        operator=event.operator,
        plant_name=event.plant_name,
        lines=lines,
    )
    if existing is not None:
        plant.disruptions = existing.disruptions
        plant.reports = existing.reports
        plant.version = existing.version
        plant.applied = existing.applied
    return _commit(store, meta, (EntityKind.PLANTS, plant.plant_id, plant))


def _own_plant(store: Store, plant_id: str, nation: str, action: str) -> PlantState | Rejected:
    plant = _get(store, EntityKind.PLANTS, plant_id, PlantState)
    if plant is None:
        return _unknown(
            f"cannot {action} plant {plant_id}: it is not registered; send PlantRegistered first",
            "plant_id",
        )
    if plant.nation != nation:
        return _not_authorised(
            f"plant {plant_id} belongs to {plant.nation}; {nation} cannot {action} it",
            "nation",
        )
    return plant


def _unknown_line(plant: PlantState, line_id: str, action: str) -> Rejected:
    return _unknown(
        f"cannot {action} line {line_id} of plant {plant.plant_id}: the plant has lines "
        f"{', '.join(sorted(plant.lines))}",
        "line_id",
    )


def _capacity_declared(store: Store, event: CapacityDeclared, meta: EventMeta) -> Outcome:
    plant = _own_plant(store, event.plant_id, event.nation, "declare capacity for")
    if isinstance(plant, Rejected):
        return plant
    line = plant.lines.get(event.line_id)
    if line is None:
        return _unknown_line(plant, event.line_id, "declare capacity for")
    line.calendar = list(event.steps)
    return _commit(store, meta, (EntityKind.PLANTS, plant.plant_id, plant))


def _plant_disrupted(store: Store, event: PlantDisrupted, meta: EventMeta) -> Outcome:
    plant = _own_plant(store, event.plant_id, event.nation, "report a disruption of")
    if isinstance(plant, Rejected):
        return plant
    if event.line_id is not None and event.line_id not in plant.lines:
        return _unknown_line(plant, event.line_id, "report a disruption of")
    # A disruption sent again under its id replaces the earlier one (e.g. extended to_week).
    plant.disruptions[event.disruption_id] = DisruptionState(
        disruption_id=event.disruption_id,
        line_id=event.line_id,
        from_week=event.from_week,
        to_week=event.to_week,
        capacity_lost_percent=event.capacity_lost_percent,
        cause=event.cause,
    )
    return _commit(store, meta, (EntityKind.PLANTS, plant.plant_id, plant))


def _plant_restored(store: Store, event: PlantRestored, meta: EventMeta) -> Outcome:
    plant = _own_plant(store, event.plant_id, event.nation, "restore")
    if isinstance(plant, Rejected):
        return plant
    disruption = plant.disruptions.get(event.disruption_id)
    if disruption is None:
        known = ", ".join(sorted(plant.disruptions)) or "none"
        return _unknown(
            f"plant {event.plant_id} has no disruption {event.disruption_id} to restore "
            f"(known disruptions: {known})",
            "disruption_id",
        )
    disruption.restored_week = event.restored_week
    return _commit(store, meta, (EntityKind.PLANTS, plant.plant_id, plant))


def _stock_offered(store: Store, event: StockOffered, meta: EventMeta) -> Outcome:
    existing = _get(store, EntityKind.OFFERS, event.offer_id, OfferState)
    drawn_by: dict[str, int] = {}
    if existing is not None:
        if existing.offered_by != event.offered_by:
            return _conflict(
                f"offer id {event.offer_id} belongs to {existing.offered_by}; "
                f"{event.offered_by} cannot re-offer it — choose another offer_id",
                "offer_id",
            )
        if event.quantity < existing.dispatched:
            return _conflict(
                f"offer {event.offer_id} cannot be lowered to {event.quantity} rounds: "
                f"{existing.dispatched} have already been dispatched",
                "quantity",
            )
        drawn_by = existing.drawn_by
    offer = OfferState(
        offer_id=event.offer_id,
        offered_by=event.offered_by,
        origin=event.origin,
        product=event.product,
        quantity=event.quantity,
        available_week=event.available_week,
        unit_price_cents=event.unit_price_cents,
        drawn_by=drawn_by,
        remaining=event.quantity,
    )
    offer.refresh_remaining()
    if existing is not None:
        offer.version, offer.applied = existing.version, existing.applied
    return _commit(store, meta, (EntityKind.OFFERS, offer.offer_id, offer))


def _material_supply_declared(
    store: Store, event: MaterialSupplyDeclared, meta: EventMeta
) -> Outcome:
    entity_id = event.entity_id()
    supply = MaterialSupplyState(
        material=event.material,
        supplier_region=event.supplier_region,
        declared_by=event.declared_by,
        steps=list(event.steps),
    )
    _carry_log(store, EntityKind.MATERIALS, entity_id, supply)
    return _commit(store, meta, (EntityKind.MATERIALS, entity_id, supply))


def _product_defined(store: Store, event: ProductDefined, meta: EventMeta) -> Outcome:
    product = ProductState(
        product=event.product,
        description=event.description,
        interop_groups=list(event.interop_groups),
        bill=list(event.bill),
    )
    _carry_log(store, EntityKind.PRODUCTS, event.product, product)
    return _commit(store, meta, (EntityKind.PRODUCTS, event.product, product))


def _export_policy_declared(store: Store, event: ExportPolicyDeclared, meta: EventMeta) -> Outcome:
    policy = ExportPolicyState(
        nation=event.nation, refused_recipients=list(event.refused_recipients)
    )
    _carry_log(store, EntityKind.EXPORT_POLICIES, event.nation, policy)
    return _commit(store, meta, (EntityKind.EXPORT_POLICIES, event.nation, policy))


def _carry_log(store: Store, kind: EntityKind, entity_id: str, replacement: EntityState) -> None:
    """A declaration replaces the business fields; version and applied log carry over."""
    existing = store.get(kind, entity_id)
    if existing is not None:
        replacement.version = existing.version
        replacement.applied = existing.applied.model_copy(deep=True)


# --------------------------------------------------------------------------- funding family


def _pool_opened(store: Store, event: PoolOpened, meta: EventMeta) -> Outcome:
    pool = _get(store, EntityKind.POOLS, event.pool_id, PoolState)
    if pool is None:
        pool = PoolState(
            pool_id=event.pool_id, owner=event.owner, pool_name=event.pool_name, rules=event.rules
        )
    elif pool.owner != event.owner:
        return _conflict(
            f"pool id {event.pool_id} is owned by {pool.owner}; {event.owner} cannot open it "
            "again — choose another pool_id",
            "pool_id",
        )
    else:
        # The owner re-opening its pool updates name and rules; contributions stay.
        pool.pool_name, pool.rules = event.pool_name, event.rules
    return _commit(store, meta, (EntityKind.POOLS, pool.pool_id, pool))


def _open_pool(store: Store, pool_id: str, action: str) -> PoolState | Rejected:
    pool = _get(store, EntityKind.POOLS, pool_id, PoolState)
    if pool is None:
        return _unknown(
            f"cannot {action} pool {pool_id}: no such pool is open; send PoolOpened first",
            "pool_id",
        )
    return pool


def _contribution_pledged(store: Store, event: ContributionPledged, meta: EventMeta) -> Outcome:
    pool = _open_pool(store, event.pool_id, "pledge to")
    if isinstance(pool, Rejected):
        return pool
    contribution = pool.contributions.get(event.contribution_id)
    if contribution is None:
        pool.contributions[event.contribution_id] = ContributionState(
            contribution_id=event.contribution_id,
            donor=event.donor,
            pledged_cents=event.amount_cents,
        )
    else:
        # A pledge sent again under its id changes the amount promised, never below what is paid.
        if contribution.donor != event.donor:
            return _not_authorised(
                f"contribution {event.contribution_id} to pool {event.pool_id} is pledged by "
                f"{contribution.donor}; {event.donor} cannot change it",
                "donor",
            )
        if event.amount_cents < contribution.paid_cents:
            return _conflict(
                f"pledge {event.contribution_id} to pool {event.pool_id} cannot be lowered to "
                f"{event.amount_cents} cents: {contribution.paid_cents} cents are already paid",
                "amount_cents",
            )
        contribution.pledged_cents = event.amount_cents
    pool.refresh_totals()
    return _commit(store, meta, (EntityKind.POOLS, pool.pool_id, pool))


def _contribution_paid(store: Store, event: ContributionPaid, meta: EventMeta) -> Outcome:
    pool = _open_pool(store, event.pool_id, "pay into")
    if isinstance(pool, Rejected):
        return pool
    contribution = pool.contributions.get(event.contribution_id)
    if contribution is None:
        return _unknown(
            f"pool {event.pool_id} has no pledge {event.contribution_id} to pay; "
            "send ContributionPledged first",
            "contribution_id",
        )
    if contribution.donor != event.donor:
        return _not_authorised(
            f"pledge {event.contribution_id} to pool {event.pool_id} was made by "
            f"{contribution.donor}; {event.donor} cannot pay it",
            "donor",
        )
    paid = contribution.paid_cents + event.amount_cents
    if paid > contribution.pledged_cents:
        return _conflict(
            f"paying {event.amount_cents} cents on pledge {event.contribution_id} to pool "
            f"{event.pool_id} would make {paid} cents paid of {contribution.pledged_cents} "
            "pledged; pledge more first",
            "amount_cents",
        )
    contribution.paid_cents = paid
    pool.refresh_totals()
    return _commit(store, meta, (EntityKind.POOLS, pool.pool_id, pool))


# --------------------------------------------------------------------------- delivery family


def _production_reported(store: Store, event: ProductionReported, meta: EventMeta) -> Outcome:
    plant = _own_plant(store, event.plant_id, event.nation, "report production of")
    if isinstance(plant, Rejected):
        return plant
    line = plant.lines.get(event.line_id)
    if line is None:
        return _unknown_line(plant, event.line_id, "report production of")
    if not line.makes(event.product):
        made = ", ".join(p.product for p in line.products)
        return _unknown(
            f"line {event.line_id} of plant {event.plant_id} makes {made}, not {event.product}",
            "product",
        )
    record = ProductionRecord(
        report_id=event.report_id,
        line_id=event.line_id,
        product=event.product,
        week=event.week,
        quantity=event.quantity,
        order_id=event.order_id,
    )
    earlier = plant.reports.get(event.report_id)
    if earlier == record:
        return Duplicate(f"production report {event.report_id} is already recorded")
    if earlier is not None:
        # No silent overwrite: a report id names one report; more production is a new report.
        return _conflict(
            f"production report {event.report_id} already records {earlier.quantity} rounds of "
            f"{earlier.product} on line {earlier.line_id} in week {earlier.week.isoformat()}; "
            "send further production under a new report_id",
            "report_id",
        )
    cutoff = plant.production_cutoff(meta.time, event.week)
    if event.week < cutoff:
        return _conflict(
            f"plant {plant.plant_id} keeps production reports from week {cutoff.isoformat()} on "
            f"({PRODUCTION_KEPT_WEEKS} weeks before its newest); week {event.week.isoformat()} "
            "is older and no plan looks at it any more, so the report is not recorded",
            "week",
        )
    plant.reports = {k: r for k, r in plant.reports.items() if r.week >= cutoff}
    plant.reports[event.report_id] = record
    return _commit(store, meta, (EntityKind.PLANTS, plant.plant_id, plant))


def _shipment_from(event: ShipmentDispatched) -> ShipmentState:
    return ShipmentState(
        shipment_id=event.shipment_id,
        source_id=event.source_id,
        nation=event.nation,
        demand_id=event.demand_id,
        product=event.product,
        quantity=event.quantity,
        recipient=event.recipient,
        dispatched_week=event.dispatched_week,
        expected_arrival_week=event.expected_arrival_week,
    )


_DISPATCH_FIELDS: set[str] = set(ShipmentDispatched.model_fields)


def _shipment_dispatched(store: Store, event: ShipmentDispatched, meta: EventMeta) -> Outcome:
    shipment = _get(store, EntityKind.SHIPMENTS, event.shipment_id, ShipmentState)
    demand = _get(store, EntityKind.DEMANDS, event.demand_id, DemandState)
    shipment_done, demand_done = _seen(shipment, meta), _seen(demand, meta)
    # A crash between the two writes leaves one entity with the event and one without; the
    # replay completes the missing half instead of calling the whole event a duplicate.
    if shipment_done and (demand_done or demand is None):
        return _already_applied(meta, EntityKind.SHIPMENTS, event.shipment_id)
    if shipment_done and demand is not None:
        demand.in_transit += event.quantity
        return _commit(store, meta, (EntityKind.DEMANDS, demand.demand_id, demand))
    if demand_done:
        return _commit(
            store, meta, (EntityKind.SHIPMENTS, event.shipment_id, _shipment_from(event))
        )
    if demand is None:
        return _unknown(
            f"shipment {event.shipment_id} is for demand {event.demand_id}, which the ledger "
            "does not know",
            "demand_id",
        )
    if demand.status is DemandStatus.CANCELLED:
        return _conflict(
            f"shipment {event.shipment_id} is for demand {event.demand_id}, which is cancelled "
            f"({demand.cancellation_reason})",
            "demand_id",
        )
    if demand.product is not None and event.product != demand.product:
        return _conflict(
            f"shipment {event.shipment_id} carries {event.product}; demand {event.demand_id} "
            f"asks for {demand.product}",
            "product",
        )
    if event.recipient != demand.recipient:
        return _conflict(
            f"shipment {event.shipment_id} goes to {event.recipient}; demand {event.demand_id} "
            f"is for {demand.recipient}",
            "recipient",
        )
    if shipment is not None:
        earlier = shipment.model_dump(include=_DISPATCH_FIELDS)
        if earlier == _shipment_from(event).model_dump(include=_DISPATCH_FIELDS):
            return Duplicate(f"shipment {event.shipment_id} is already dispatched as sent")
        return _conflict(
            f"shipment id {event.shipment_id} is already used for {shipment.quantity} rounds of "
            f"{shipment.product} from {shipment.source_id}; use a new shipment_id",
            "shipment_id",
        )
    demand.in_transit += event.quantity
    return _commit(
        store,
        meta,
        (EntityKind.SHIPMENTS, event.shipment_id, _shipment_from(event)),
        (EntityKind.DEMANDS, demand.demand_id, demand),
    )


def _receive(demand: DemandState, shipment: ShipmentState, quantity: int) -> None:
    """The demand's side of a delivery: the shipment leaves transit, what arrived counts."""
    demand.in_transit = max(0, demand.in_transit - shipment.quantity)
    demand.delivered += quantity
    demand.refresh_open_quantity()


def _shipment_delivered(store: Store, event: ShipmentDelivered, meta: EventMeta) -> Outcome:
    shipment = _get(store, EntityKind.SHIPMENTS, event.shipment_id, ShipmentState)
    demand = _get(store, EntityKind.DEMANDS, event.demand_id, DemandState)
    if shipment is None:
        return _unknown(
            f"shipment {event.shipment_id} was never dispatched; send ShipmentDispatched first",
            "shipment_id",
        )
    shipment_done, demand_done = _seen(shipment, meta), _seen(demand, meta)
    if shipment_done and (demand_done or demand is None):
        return _already_applied(meta, EntityKind.SHIPMENTS, event.shipment_id)
    if shipment_done and demand is not None:  # the demand's half was lost in a crash
        _receive(demand, shipment, event.quantity)
        return _commit(store, meta, (EntityKind.DEMANDS, demand.demand_id, demand))
    if shipment.demand_id != event.demand_id:
        return _conflict(
            f"shipment {event.shipment_id} was dispatched for demand {shipment.demand_id}, "
            f"not {event.demand_id}",
            "demand_id",
        )
    if shipment.status is ShipmentStatus.DELIVERED:
        if (shipment.delivered_quantity, shipment.delivered_week) == (
            event.quantity,
            event.delivered_week,
        ):
            return Duplicate(f"shipment {event.shipment_id} is already delivered as sent")
        return _conflict(
            f"shipment {event.shipment_id} is already delivered: {shipment.delivered_quantity} "
            f"rounds in week {shipment.delivered_week}",
            "shipment_id",
        )
    if event.quantity > shipment.quantity:
        return _conflict(
            f"delivery of {event.quantity} rounds for shipment {event.shipment_id} exceeds the "
            f"{shipment.quantity} rounds dispatched",
            "quantity",
        )
    if event.delivered_week < shipment.dispatched_week:
        return _conflict(
            f"shipment {event.shipment_id} cannot arrive in week "
            f"{event.delivered_week.isoformat()}: it was dispatched in week "
            f"{shipment.dispatched_week.isoformat()}",
            "delivered_week",
        )
    shipment.status = ShipmentStatus.DELIVERED
    shipment.delivered_quantity = event.quantity
    shipment.delivered_week = event.delivered_week
    if demand_done:  # the shipment's half was lost in a crash
        return _commit(store, meta, (EntityKind.SHIPMENTS, shipment.shipment_id, shipment))
    if demand is None:
        return _unknown(
            f"shipment {event.shipment_id} is for demand {event.demand_id}, which the ledger "
            "does not know",
            "demand_id",
        )
    # A demand cancelled after dispatch still counts what arrived: delivered stays delivered.
    _receive(demand, shipment, event.quantity)
    return _commit(
        store,
        meta,
        (EntityKind.SHIPMENTS, shipment.shipment_id, shipment),
        (EntityKind.DEMANDS, demand.demand_id, demand),
    )


def _fold_one_entity(store: Store, event: Event, meta: EventMeta) -> Outcome:
    match event:
        case DemandSubmitted():
            return _demand_submitted(store, event, meta)
        case DemandAmended():
            return _demand_amended(store, event, meta)
        case DemandCancelled():
            return _demand_cancelled(store, event, meta)
        case PlantRegistered():
            return _plant_registered(store, event, meta)
        case CapacityDeclared():
            return _capacity_declared(store, event, meta)
        case PlantDisrupted():
            return _plant_disrupted(store, event, meta)
        case PlantRestored():
            return _plant_restored(store, event, meta)
        case StockOffered():
            return _stock_offered(store, event, meta)
        case MaterialSupplyDeclared():
            return _material_supply_declared(store, event, meta)
        case ProductDefined():
            return _product_defined(store, event, meta)
        case ExportPolicyDeclared():
            return _export_policy_declared(store, event, meta)
        case PoolOpened():
            return _pool_opened(store, event, meta)
        case ContributionPledged():
            return _contribution_pledged(store, event, meta)
        case ContributionPaid():
            return _contribution_paid(store, event, meta)
        case ProductionReported():
            return _production_reported(store, event, meta)
    raise AssertionError(f"{type(event).__name__} has an entity kind but no fold")


_ENTITY_KINDS: dict[type[Event], EntityKind] = {
    DemandSubmitted: EntityKind.DEMANDS,
    DemandAmended: EntityKind.DEMANDS,
    DemandCancelled: EntityKind.DEMANDS,
    PlantRegistered: EntityKind.PLANTS,
    CapacityDeclared: EntityKind.PLANTS,
    PlantDisrupted: EntityKind.PLANTS,
    PlantRestored: EntityKind.PLANTS,
    StockOffered: EntityKind.OFFERS,
    MaterialSupplyDeclared: EntityKind.MATERIALS,
    ProductDefined: EntityKind.PRODUCTS,
    ExportPolicyDeclared: EntityKind.EXPORT_POLICIES,
    PoolOpened: EntityKind.POOLS,
    ContributionPledged: EntityKind.POOLS,
    ContributionPaid: EntityKind.POOLS,
    ProductionReported: EntityKind.PLANTS,
}
"""Events about one entity: the kind of entity each is about (its id is `entity_id()`)."""


# --------------------------------------------------------------------------- serialisation


def state_json(state: EntityState) -> bytes:
    """The value of an entity's record on its compacted state topic."""
    return state.model_dump_json().encode()


def state_from_json(kind: EntityKind, data: bytes | str) -> EntityState:
    """Read an entity state back from its compacted topic; fails loudly on drifted JSON."""
    return STATE_MODELS[kind].model_validate_json(data)


def state_checksum(store_items: Iterable[tuple[EntityKind, str, EntityState]]) -> str:
    """SHA-256 over the business state of every entity, in a canonical order.

    The applied log is left out: its offsets differ between a clean run and one that crashed
    and replayed, and the business state must not.
    """
    entries = sorted(
        (
            (kind.value, entity_id, state.model_dump(mode="json", exclude={"applied"}))
            for kind, entity_id, state in store_items
        ),
        key=lambda entry: (entry[0], entry[1]),
    )
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def touched_entities(event: Event) -> tuple[tuple[EntityKind, str], ...]:
    """The entities `apply_event` writes for this event (when it applies it).

    The adapter re-publishes their current state when a replay finds the event a Duplicate: a
    crash may have come after the table write but before the state was published.
    """
    match event:
        case ShipmentDispatched() | ShipmentDelivered():
            return (
                (EntityKind.SHIPMENTS, event.shipment_id),
                (EntityKind.DEMANDS, event.demand_id),
            )
    kind = _ENTITY_KINDS.get(type(event))
    return () if kind is None else ((kind, event.entity_id()),)
