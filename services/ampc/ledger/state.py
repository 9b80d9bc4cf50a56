"""What the ledger knows about each entity: the alliance-wide state a planner reads.

One model per entity kind; each is published to its compacted topic `ampc.state.<kind>`, keyed by
the entity id. Every state carries `version` (the number of events applied to it) and an
`AppliedLog` that makes the fold idempotent: an entity remembers which source offsets and event
ids it has applied, so a replay after a crash changes nothing.

Derived numbers (open quantity, what is left of an offer, pool totals) are stored fields kept up
to date by the fold rather than computed properties, so that consumers of the compacted topics in
any language read them directly and the JSON round-trips under `extra="forbid"`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Final, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from ampc.contract.events import (
    CapacityStep,
    DemandRules,
    JointShare,
    LineProduct,
    MaterialStep,
    MaterialUse,
    PoolRules,
)
from ampc.contract.parties import NationCode, PartyCode
from ampc.contract.types import (
    InteropGroupCode,
    MaterialCode,
    Priority,
    ProductCode,
    Week,
)

RECENT_EVENT_IDS: Final = 64
"""How many event ids an entity remembers besides its per-partition offsets."""

PRODUCTION_KEPT_WEEKS: Final = 26
"""How many weeks of production reports a plant keeps before its newest. Every plant event
reads and writes the whole plant state, so reports kept forever would make each event slower
and each state record larger without end (a five-line plant reporting weekly: 33 KiB after a
year, 163 KiB after five). Readers need the weeks from the plan's start on: re-planning closes
the weeks already reported, the tracker compares what was made with the plan in force."""

NonNegative = Annotated[int, Field(ge=0)]


class EntityKind(StrEnum):
    """Entity kinds; the values are the `<kind>` of the compacted topics `ampc.state.<kind>`."""

    DEMANDS = "demands"
    PLANTS = "plants"
    OFFERS = "offers"
    MATERIALS = "materials"
    PRODUCTS = "products"
    EXPORT_POLICIES = "export-policies"
    POOLS = "pools"
    SHIPMENTS = "shipments"


class StateModel(BaseModel):
    """Base of every state model: closed to unknown fields so a drifted topic fails loudly."""

    model_config = ConfigDict(extra="forbid")


_PARKED_SOURCE: Final = "parked:"


class AppliedLog(StateModel):
    """Which events an entity has applied: the highest offset per `topic:partition`, and the
    most recent event ids (for the same event arriving at another offset)."""

    offsets: dict[str, NonNegative] = {}
    event_ids: list[str] = []
    retried_ids: list[str] = []
    """The most recent events applied out of their partition's order (from the parking lot),
    apart from `event_ids` so that a burst of ordinary events cannot push them out before a
    retry after a crash comes round."""

    def has_applied(self, source: str | None, offset: int, event_id: str) -> bool:
        """True when this event (by source offset or by event id) is already in the state;
        `source` None: an event applied out of its partition's order, known by its id only."""
        if source is None:
            return event_id in self.retried_ids or event_id in self.event_ids
        last = self.offsets.get(source)
        return (last is not None and offset <= last) or event_id in self.event_ids

    def record(self, source: str | None, offset: int, event_id: str) -> None:
        """Remember an applied event, keeping only the most recent event ids."""
        if source is None:
            self.retried_ids = [*self.retried_ids, event_id][-RECENT_EVENT_IDS:]
        else:
            self.offsets[source] = max(offset, self.offsets.get(source, offset))
        if any(key.startswith(_PARKED_SOURCE) for key in self.offsets):
            # Until 2026-11-30 each event applied from the parking lot left a source of its own
            # here, one more with every such event; its id is what marks it now.
            kept = self.offsets.items()
            self.offsets = {k: last for k, last in kept if not k.startswith(_PARKED_SOURCE)}
        self.event_ids = [*self.event_ids, event_id][-RECENT_EVENT_IDS:]


class EntityStateBase(StateModel):
    """What every entity state carries besides its business fields."""

    version: NonNegative = 0
    applied: AppliedLog = Field(default_factory=AppliedLog)


# --------------------------------------------------------------------------- demands


class DemandStatus(StrEnum):
    OPEN = "OPEN"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"


class DemandState(EntityStateBase):
    """A demand as submitted and amended, with what has arrived and what is on its way.

    `open_quantity` is max(0, quantity - delivered) while the demand is open or fulfilled, and 0
    once it is cancelled.

    `participants` keep the shares as submitted: an amendment changes the total quantity only
    (the contract carries no new shares), so after a quantity amendment they may not add up.
    """

    demand_id: str
    requested_by: PartyCode
    participants: list[JointShare] = []
    recipient: NationCode
    delivery_point: str
    product: ProductCode | None = None
    interop_group: InteropGroupCode | None = None
    quantity: NonNegative
    due_week: Week
    priority: Priority
    pool_id: str
    rules: DemandRules = DemandRules()
    status: DemandStatus = DemandStatus.OPEN
    delivered: NonNegative = 0
    in_transit: NonNegative = 0
    open_quantity: NonNegative
    amendment_reason: str | None = None
    cancellation_reason: str | None = None

    def refresh_open_quantity(self) -> None:
        """Recompute open quantity and, unless cancelled, whether the demand is fulfilled.

        A cancelled demand has nothing open: no planner should make rounds for it.
        """
        if self.status is DemandStatus.CANCELLED:
            self.open_quantity = 0
            return
        self.open_quantity = max(0, self.quantity - self.delivered)
        self.status = DemandStatus.FULFILLED if self.open_quantity == 0 else DemandStatus.OPEN


# --------------------------------------------------------------------------- plants


class LineState(StateModel):
    """A production line: products with rates and prices, lot size, and capacity calendar.

    `calendar` is the latest declared list of steps; before any declaration the line runs at
    100 % of its rates.
    """

    line_id: str
    products: list[LineProduct]
    lot_size: int | None = None
    calendar: list[CapacityStep] = []

    def makes(self, product: str) -> bool:
        return any(p.product == product for p in self.products)


class DisruptionState(StateModel):
    """Capacity lost on a plant (or one line, `line_id`) for a range of weeks."""

    disruption_id: str
    line_id: str | None = None
    from_week: Week
    to_week: Week
    capacity_lost_percent: Annotated[int, Field(ge=1, le=100)]
    cause: str
    restored_week: Week | None = None


class ProductionRecord(StateModel):
    """One production report as received."""

    report_id: str
    line_id: str
    product: ProductCode
    week: Week
    quantity: NonNegative
    order_id: str | None = None


class PlantState(EntityStateBase):
    """A plant with its lines, calendars, disruptions and the production it has reported.

    `reports` holds the reports of the last `PRODUCTION_KEPT_WEEKS` weeks (see
    `production_cutoff`); older ones are dropped when a newer report comes in.
    """

    plant_id: str
    nation: NationCode
    operator: str
    plant_name: str
    lines: dict[str, LineState]
    disruptions: dict[str, DisruptionState] = {}
    reports: dict[str, ProductionRecord] = {}

    def produced(self, line_id: str, product: str, week: dt.date) -> int:
        """Rounds reported for one line, product and week (the sum over its reports)."""
        return sum(
            r.quantity
            for r in self.reports.values()
            if r.line_id == line_id and r.product == product and r.week == week
        )

    def production_cutoff(self, now: dt.datetime, week: dt.date) -> dt.date:
        """The oldest week of reports kept once a report for `week` arrives at `now`.

        Counted back from the older of the event's week and the newest report, so that a
        sender's clock running ahead, or a report mistyped years ahead, drops nothing recent.
        """
        newest = max((r.week for r in self.reports.values()), default=week)
        this_week = now.date() - dt.timedelta(days=now.weekday())
        return min(this_week, max(newest, week)) - dt.timedelta(weeks=PRODUCTION_KEPT_WEEKS)

    def production_kept_from(self) -> dt.date | None:
        """The oldest week whose reports this state surely still holds (None: no reports):
        reports are only dropped from `PRODUCTION_KEPT_WEEKS` weeks before the newest on."""
        newest = max((r.week for r in self.reports.values()), default=None)
        return None if newest is None else newest - dt.timedelta(weeks=PRODUCTION_KEPT_WEEKS)

    def weekly_production(self) -> dict[tuple[str, str, dt.date], int]:
        """Rounds reported per (line, product, week)."""
        totals: dict[tuple[str, str, dt.date], int] = {}
        for r in self.reports.values():
            key = (r.line_id, r.product, r.week)
            totals[key] = totals.get(key, 0) + r.quantity
        return totals


# --------------------------------------------------------------------------- other capacity


class OfferState(EntityStateBase):
    """A stock offer and how much of it has left the depot.

    `drawn_by` holds the rounds each shipment took (by shipment id), so a shipment counted twice
    is recognised whatever topic or offset it arrives at; `dispatched` is their sum.
    """

    offer_id: str
    offered_by: PartyCode
    origin: NationCode
    product: ProductCode
    quantity: NonNegative
    available_week: Week
    unit_price_cents: NonNegative
    drawn_by: dict[str, NonNegative] = {}
    dispatched: NonNegative = 0
    remaining: NonNegative

    def refresh_remaining(self) -> None:
        self.dispatched = sum(self.drawn_by.values())
        self.remaining = max(0, self.quantity - self.dispatched)


class MaterialSupplyState(EntityStateBase):
    """A supplier region's weekly supply calendar of one material."""

    material: MaterialCode
    supplier_region: str
    declared_by: PartyCode
    steps: list[MaterialStep]


class ProductState(EntityStateBase):
    """Product reference data: description, interop groups and material bill."""

    product: ProductCode
    description: str
    interop_groups: list[InteropGroupCode] = []
    bill: list[MaterialUse] = []


class ExportPolicyState(EntityStateBase):
    """The recipients a nation refuses export to."""

    nation: NationCode
    refused_recipients: list[NationCode] = []


# --------------------------------------------------------------------------- funding


class ContributionState(StateModel):
    """One donor's contribution: pledged, then paid in one or more payments."""

    contribution_id: str
    donor: NationCode
    pledged_cents: NonNegative
    paid_cents: NonNegative = 0


class PoolState(EntityStateBase):
    """A funding pool with its rules and money: pledged, paid and committed.

    `committed_cents` is money committed outside shipments, and stays 0 for now. What shipped
    rounds cost the ledger cannot see here (shipments and plants live in other partitions): the
    optimizer's snapshot adds it (`ampc.optimizer.from_ledger.spent_by_pool`).
    """

    pool_id: str
    owner: PartyCode
    pool_name: str
    rules: PoolRules = PoolRules()
    contributions: dict[str, ContributionState] = {}
    pledged_cents: NonNegative = 0
    paid_cents: NonNegative = 0
    committed_cents: NonNegative = 0

    def refresh_totals(self) -> None:
        self.pledged_cents = sum(c.pledged_cents for c in self.contributions.values())
        self.paid_cents = sum(c.paid_cents for c in self.contributions.values())


# --------------------------------------------------------------------------- shipments


class ShipmentStatus(StrEnum):
    DISPATCHED = "DISPATCHED"
    DELIVERED = "DELIVERED"


class ShipmentState(EntityStateBase):
    """A shipment from a plant or an offer's depot to a demand's recipient."""

    shipment_id: str
    source_id: str
    nation: NationCode
    demand_id: str
    product: ProductCode
    quantity: NonNegative
    recipient: NationCode
    dispatched_week: Week
    expected_arrival_week: Week
    status: ShipmentStatus = ShipmentStatus.DISPATCHED
    delivered_quantity: NonNegative | None = None
    delivered_week: Week | None = None


EntityState: TypeAlias = (
    DemandState
    | PlantState
    | OfferState
    | MaterialSupplyState
    | ProductState
    | ExportPolicyState
    | PoolState
    | ShipmentState
)

STATE_MODELS: Final[dict[EntityKind, type[EntityState]]] = {
    EntityKind.DEMANDS: DemandState,
    EntityKind.PLANTS: PlantState,
    EntityKind.OFFERS: OfferState,
    EntityKind.MATERIALS: MaterialSupplyState,
    EntityKind.PRODUCTS: ProductState,
    EntityKind.EXPORT_POLICIES: ExportPolicyState,
    EntityKind.POOLS: PoolState,
    EntityKind.SHIPMENTS: ShipmentState,
}
"""The state model of each entity kind: what its compacted topic carries."""
