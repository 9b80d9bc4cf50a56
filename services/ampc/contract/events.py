"""Every event ampc reads or writes, as pydantic v2 models: the single source of truth for the
contract. JSON Schema files and the AsyncAPI document in schemas/ are generated from these.

Input families come from national systems (demand, capacity, funding, delivery); output families
are written by ampc's own services (plan, order, alert, dead letter). Each event names its
CloudEvents type (versioned) and the entity id that keys it on Kafka, so one entity's events
stay ordered in one partition.
"""

from __future__ import annotations

import datetime as dt
import itertools
from enum import StrEnum
from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ampc.contract.parties import Bloc, NationCode, PartyCode
from ampc.contract.types import (
    Cents,
    EntityId,
    InteropGroupCode,
    LongText,
    MaterialCode,
    Percent,
    PositiveCents,
    Priority,
    ProductCode,
    Rounds,
    RoundsOrZero,
    ShortText,
    Week,
)


class Family(StrEnum):
    """Event families; each has one canonical topic."""

    DEMAND = "demand"
    CAPACITY = "capacity"
    FUNDING = "funding"
    DELIVERY = "delivery"
    PLAN = "plan"
    ORDER = "order"
    ALERT = "alert"
    DEADLETTER = "deadletter"


INPUT_FAMILIES = (Family.DEMAND, Family.CAPACITY, Family.FUNDING, Family.DELIVERY)


class Part(BaseModel):
    """A nested part of an event: strict, closed to unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Event(Part):
    """Base of every event payload."""

    family: ClassVar[Family]
    name: ClassVar[str]
    schema_version: ClassVar[int] = 1

    @classmethod
    def event_type(cls) -> str:
        """The CloudEvents `type`, e.g. `ampc.demand.submitted.v1`."""
        return f"ampc.{cls.family.value}.{cls.name}.v{cls.schema_version}"

    def entity_id(self) -> str:
        """The id of the entity this event is about: the Kafka key."""
        raise NotImplementedError


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} '{value}' is listed twice")
        seen.add(value)


# --------------------------------------------------------------------------- demand family


class JointShare(Part):
    """One participant's share of a joint demand."""

    nation: NationCode
    quantity: Rounds


class DemandRules(Part):
    """Eligibility rules the requester adds on top of the paying pool's rules."""

    excluded_origins: Annotated[list[NationCode], Field(max_length=60)] = []
    required_blocs: Annotated[list[Bloc], Field(max_length=3)] = []


class DemandSubmitted(Event):
    """A nation or initiative asks for rounds delivered to a recipient by a due week."""

    family: ClassVar[Family] = Family.DEMAND
    name: ClassVar[str] = "submitted"

    demand_id: EntityId
    requested_by: PartyCode
    participants: Annotated[list[JointShare], Field(max_length=40)] = []
    recipient: NationCode
    delivery_point: ShortText
    product: ProductCode | None = None
    interop_group: InteropGroupCode | None = None
    quantity: Rounds
    due_week: Week
    priority: Priority
    pool_id: EntityId
    rules: DemandRules = DemandRules()

    @model_validator(mode="after")
    def _product_xor_group_and_shares_add_up(self) -> Self:
        if (self.product is None) == (self.interop_group is None):
            raise ValueError("name exactly one of 'product' or 'interop_group'")
        if self.participants:
            _unique([p.nation for p in self.participants], "participant")
            total = sum(p.quantity for p in self.participants)
            if total != self.quantity:
                raise ValueError(
                    f"participants' shares add up to {total} rounds, "
                    f"the demand asks for {self.quantity}"
                )
        return self

    def entity_id(self) -> str:
        return self.demand_id


class DemandAmended(Event):
    """The requester changes quantity, due week or priority of an open demand."""

    family: ClassVar[Family] = Family.DEMAND
    name: ClassVar[str] = "amended"

    demand_id: EntityId
    requested_by: PartyCode
    quantity: Rounds | None = None
    due_week: Week | None = None
    priority: Priority | None = None
    reason: ShortText | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.quantity is None and self.due_week is None and self.priority is None:
            raise ValueError("an amendment must change quantity, due_week or priority")
        return self

    def entity_id(self) -> str:
        return self.demand_id


class DemandCancelled(Event):
    """The requester withdraws a demand; what is already delivered stays delivered."""

    family: ClassVar[Family] = Family.DEMAND
    name: ClassVar[str] = "cancelled"

    demand_id: EntityId
    requested_by: PartyCode
    reason: ShortText

    def entity_id(self) -> str:
        return self.demand_id


# --------------------------------------------------------------------------- capacity family


class MaterialUse(Part):
    """Grams of a material consumed per round made."""

    material: MaterialCode
    grams_per_unit: Annotated[int, Field(gt=0, le=1_000_000)]


class ProductDefined(Event):
    """Reference data: a product, the interop groups it qualifies for and its material bill."""

    family: ClassVar[Family] = Family.CAPACITY
    name: ClassVar[str] = "product-defined"

    product: ProductCode
    description: ShortText
    interop_groups: Annotated[list[InteropGroupCode], Field(max_length=10)] = []
    bill: Annotated[list[MaterialUse], Field(max_length=20)] = []

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        _unique(list(self.interop_groups), "interop group")
        _unique([use.material for use in self.bill], "material")
        return self

    def entity_id(self) -> str:
        return self.product


class LineProduct(Part):
    """A product a line can make, at what rate and price."""

    product: ProductCode
    units_per_week: Rounds
    unit_price_cents: PositiveCents


class ProductionLine(Part):
    """A production line; its products share the line's weekly capacity."""

    line_id: EntityId
    products: Annotated[list[LineProduct], Field(min_length=1, max_length=30)]
    lot_size: Rounds | None = None

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        _unique([p.product for p in self.products], "product")
        return self


class PlantRegistered(Event):
    """A nation registers one of its plants with its lines."""

    family: ClassVar[Family] = Family.CAPACITY
    name: ClassVar[str] = "plant-registered"

    plant_id: EntityId
    nation: NationCode
    operator: ShortText
    plant_name: ShortText
    lines: Annotated[list[ProductionLine], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        _unique([line.line_id for line in self.lines], "line")
        return self

    def entity_id(self) -> str:
        return self.plant_id


class CapacityStep(Part):
    """From this week on (until the next step) the line runs at this share of its rate."""

    week: Week
    capacity_percent: Annotated[int, Field(ge=0, le=400)]


class CapacityDeclared(Event):
    """A plant's capacity calendar for one line: ramp-up and planned changes over weeks."""

    family: ClassVar[Family] = Family.CAPACITY
    name: ClassVar[str] = "capacity-declared"

    plant_id: EntityId
    nation: NationCode
    line_id: EntityId
    steps: Annotated[list[CapacityStep], Field(min_length=1, max_length=260)]

    @model_validator(mode="after")
    def _weeks_increase(self) -> Self:
        weeks = [step.week for step in self.steps]
        if any(later <= earlier for earlier, later in itertools.pairwise(weeks)):
            raise ValueError("capacity steps must be in strictly increasing week order")
        return self

    def entity_id(self) -> str:
        return self.plant_id


class PlantDisrupted(Event):
    """A plant (or one of its lines) loses a share of capacity for a range of weeks."""

    family: ClassVar[Family] = Family.CAPACITY
    name: ClassVar[str] = "plant-disrupted"

    plant_id: EntityId
    nation: NationCode
    disruption_id: EntityId
    line_id: EntityId | None = None
    from_week: Week
    to_week: Week
    capacity_lost_percent: Annotated[int, Field(ge=1, le=100)]
    cause: ShortText

    @model_validator(mode="after")
    def _range_ordered(self) -> Self:
        if self.to_week < self.from_week:
            raise ValueError("to_week is before from_week")
        return self

    def entity_id(self) -> str:
        return self.plant_id


class PlantRestored(Event):
    """A disruption ends earlier than declared (or as declared, confirmed)."""

    family: ClassVar[Family] = Family.CAPACITY
    name: ClassVar[str] = "plant-restored"

    plant_id: EntityId
    nation: NationCode
    disruption_id: EntityId
    restored_week: Week

    def entity_id(self) -> str:
        return self.plant_id


class StockOffered(Event):
    """Existing rounds offered for sale: a one-shot source."""

    family: ClassVar[Family] = Family.CAPACITY
    name: ClassVar[str] = "stock-offered"

    offer_id: EntityId
    offered_by: PartyCode
    origin: NationCode
    product: ProductCode
    quantity: Rounds
    available_week: Week
    unit_price_cents: PositiveCents

    def entity_id(self) -> str:
        return self.offer_id


class MaterialStep(Part):
    """From this week on, the region supplies this many kilograms per week."""

    week: Week
    kilograms_per_week: Annotated[int, Field(ge=0, le=100_000_000)]


class MaterialSupplyDeclared(Event):
    """Weekly supply of a scarce upstream material from one supplier region."""

    family: ClassVar[Family] = Family.CAPACITY
    name: ClassVar[str] = "material-supply-declared"

    material: MaterialCode
    supplier_region: EntityId
    declared_by: PartyCode
    steps: Annotated[list[MaterialStep], Field(min_length=1, max_length=260)]

    @model_validator(mode="after")
    def _weeks_increase(self) -> Self:
        weeks = [step.week for step in self.steps]
        if any(later <= earlier for earlier, later in itertools.pairwise(weeks)):
            raise ValueError("material steps must be in strictly increasing week order")
        return self

    def entity_id(self) -> str:
        return f"{self.material}:{self.supplier_region}"


class ExportPolicyDeclared(Event):
    """A nation names the recipients it refuses export (re-export consent) to."""

    family: ClassVar[Family] = Family.CAPACITY
    name: ClassVar[str] = "export-policy-declared"

    nation: NationCode
    refused_recipients: Annotated[list[NationCode], Field(max_length=250)]

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        _unique(list(self.refused_recipients), "recipient")
        return self

    def entity_id(self) -> str:
        return self.nation


# --------------------------------------------------------------------------- funding family


class PoolRules(Part):
    """What a pool may buy: producer blocs or nations, excluded origins, price cap, earmarks."""

    eligible_producer_blocs: Annotated[list[Bloc], Field(max_length=3)] = []
    eligible_producer_nations: Annotated[list[NationCode], Field(max_length=250)] = []
    min_eu_content_percent: Percent | None = None
    excluded_origins: Annotated[list[NationCode], Field(max_length=250)] = []
    price_cap_cents_per_unit: PositiveCents | None = None
    earmarked_products: Annotated[list[ProductCode | InteropGroupCode], Field(max_length=50)] = []
    earmarked_recipients: Annotated[list[NationCode], Field(max_length=250)] = []


class PoolOpened(Event):
    """A nation, agency or initiative opens a funding pool with its rules."""

    family: ClassVar[Family] = Family.FUNDING
    name: ClassVar[str] = "pool-opened"

    pool_id: EntityId
    owner: PartyCode
    pool_name: ShortText
    rules: PoolRules = PoolRules()

    def entity_id(self) -> str:
        return self.pool_id


class ContributionPledged(Event):
    """A donor promises money to a pool; pledged money may not be committed yet."""

    family: ClassVar[Family] = Family.FUNDING
    name: ClassVar[str] = "contribution-pledged"

    pool_id: EntityId
    contribution_id: EntityId
    donor: NationCode
    amount_cents: PositiveCents

    def entity_id(self) -> str:
        return self.pool_id


class ContributionPaid(Event):
    """A donor pays (part of) a pledge; only paid money may be committed."""

    family: ClassVar[Family] = Family.FUNDING
    name: ClassVar[str] = "contribution-paid"

    pool_id: EntityId
    contribution_id: EntityId
    donor: NationCode
    amount_cents: PositiveCents

    def entity_id(self) -> str:
        return self.pool_id


# --------------------------------------------------------------------------- delivery family


class ProductionReported(Event):
    """A plant reports rounds produced in a week."""

    family: ClassVar[Family] = Family.DELIVERY
    name: ClassVar[str] = "production-reported"

    report_id: EntityId
    plant_id: EntityId
    nation: NationCode
    line_id: EntityId
    product: ProductCode
    week: Week
    quantity: Rounds
    order_id: EntityId | None = None

    def entity_id(self) -> str:
        return self.plant_id


class ShipmentDispatched(Event):
    """Rounds leave a plant (or an offer's depot) for a demand's recipient."""

    family: ClassVar[Family] = Family.DELIVERY
    name: ClassVar[str] = "shipment-dispatched"

    shipment_id: EntityId
    source_id: EntityId
    nation: NationCode
    demand_id: EntityId
    product: ProductCode
    quantity: Rounds
    recipient: NationCode
    dispatched_week: Week
    expected_arrival_week: Week

    @model_validator(mode="after")
    def _arrives_after_dispatch(self) -> Self:
        if self.expected_arrival_week < self.dispatched_week:
            raise ValueError("expected_arrival_week is before dispatched_week")
        return self

    def entity_id(self) -> str:
        return self.shipment_id


class ShipmentDelivered(Event):
    """The recipient confirms rounds received; this reduces the demand's open quantity."""

    family: ClassVar[Family] = Family.DELIVERY
    name: ClassVar[str] = "shipment-delivered"

    shipment_id: EntityId
    nation: NationCode
    demand_id: EntityId
    delivered_week: Week
    quantity: Rounds

    def entity_id(self) -> str:
        return self.shipment_id


# --------------------------------------------------------------------------- outputs


class SolverStatus(StrEnum):
    """What the optimizer can honestly say about a plan."""

    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"
    TIME_LIMIT = "TIME_LIMIT"
    INFEASIBLE = "INFEASIBLE"
    ERROR = "ERROR"


class ObjectiveTerms(Part):
    """The four lexicographic objective values, in order of precedence."""

    weighted_shortfall: Annotated[float, Field(ge=0)]
    weighted_lateness: Annotated[float, Field(ge=0)]
    cost_cents: Cents
    churn_units: RoundsOrZero


class DemandOutlook(Part):
    """How the plan serves one demand."""

    demand_id: EntityId
    requested: RoundsOrZero
    planned: RoundsOrZero
    shortfall: RoundsOrZero
    last_arrival_week: Week | None = None
    reasons: Annotated[list[ShortText], Field(max_length=20)] = []


class PlannedAllocation(Part):
    """Rounds of a product from a source (a plant's line or a stock offer), made or released in
    a week and arriving at the recipient in a later week; `demand_id` None is a lot's surplus."""

    source_kind: Annotated[str, Field(pattern=r"^(line|offer)$")]
    source_id: EntityId
    plant_id: EntityId | None = None
    origin: NationCode
    product: ProductCode
    production_week: Week
    arrival_week: Week
    demand_id: EntityId | None = None
    quantity: Rounds
    unit_price_cents: Cents
    frozen: bool = False


class PlanPublished(Event):
    """A new plan: its inputs (state-topic offsets, snapshot digest, solver settings), solver
    verdict, objective terms, per-demand outlook and every allocation, so that tracker and
    replay need nothing but this record."""

    family: ClassVar[Family] = Family.PLAN
    name: ClassVar[str] = "published"

    plan_id: EntityId
    version: Annotated[int, Field(ge=1)]
    trigger: ShortText
    input_offsets: Annotated[dict[str, Annotated[int, Field(ge=0)]], Field(max_length=5000)]
    snapshot_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    solver_settings: Annotated[dict[str, str | int | float], Field(max_length=50)] = {}
    horizon_start: Week | None = None
    weeks: Annotated[int, Field(ge=1, le=520)] | None = None
    frozen_horizon_weeks: Annotated[int, Field(ge=0, le=52)] = 0
    solver_status: SolverStatus
    status_message: LongText | None = None
    objective: ObjectiveTerms
    gap: Annotated[float, Field(ge=0)] | None = None
    solve_seconds: Annotated[float, Field(ge=0)] = 0.0
    demands: Annotated[list[DemandOutlook], Field(max_length=20_000)]
    allocations: Annotated[list[PlannedAllocation], Field(max_length=500_000)] = []
    money_committed_cents: Annotated[dict[str, Cents], Field(max_length=1000)] = {}

    def entity_id(self) -> str:
        return self.plan_id


class DemandRef(Part):
    """The part of a production order that serves one demand."""

    demand_id: EntityId
    quantity: Rounds


class ProductionOrderIssued(Event):
    """A plant is asked to make rounds in a week."""

    family: ClassVar[Family] = Family.ORDER
    name: ClassVar[str] = "issued"

    order_id: EntityId
    plant_id: EntityId
    nation: NationCode
    line_id: EntityId
    product: ProductCode
    week: Week
    quantity: Rounds
    demand_refs: Annotated[list[DemandRef], Field(min_length=1, max_length=5000)]
    plan_version: Annotated[int, Field(ge=1)]
    committed: bool

    def entity_id(self) -> str:
        return self.order_id


class ProductionOrderRevised(Event):
    """A provisional order changes quantity or demand references after a re-plan."""

    family: ClassVar[Family] = Family.ORDER
    name: ClassVar[str] = "revised"

    order_id: EntityId
    plant_id: EntityId
    nation: NationCode
    line_id: EntityId
    product: ProductCode
    week: Week
    quantity: Rounds
    previous_quantity: Rounds
    demand_refs: Annotated[list[DemandRef], Field(min_length=1, max_length=5000)]
    plan_version: Annotated[int, Field(ge=1)]
    committed: bool

    def entity_id(self) -> str:
        return self.order_id


class ProductionOrderCancelled(Event):
    """A provisional order is withdrawn by a re-plan."""

    family: ClassVar[Family] = Family.ORDER
    name: ClassVar[str] = "cancelled"

    order_id: EntityId
    plant_id: EntityId
    nation: NationCode
    plan_version: Annotated[int, Field(ge=1)]
    reason: ShortText

    def entity_id(self) -> str:
        return self.order_id


class AlertKind(StrEnum):
    """What operators are alerted about."""

    URGENT_DEMAND_SHORT = "URGENT_DEMAND_SHORT"
    DELIVERY_SLIPPED = "DELIVERY_SLIPPED"
    PLANT_BEHIND_PLAN = "PLANT_BEHIND_PLAN"
    POOL_OVERCOMMITTED = "POOL_OVERCOMMITTED"
    OPTIMIZER_FAILED = "OPTIMIZER_FAILED"


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    WARNING = "WARNING"
    INFO = "INFO"


class AlertRaised(Event):
    """Something operators must look at, in plain words with the numbers behind it."""

    family: ClassVar[Family] = Family.ALERT
    name: ClassVar[str] = "raised"

    alert_id: EntityId
    kind: AlertKind
    severity: Severity
    subject_id: EntityId
    nation: NationCode | None = None
    message: LongText
    values: Annotated[dict[str, float], Field(max_length=50)] = {}

    def entity_id(self) -> str:
        return self.subject_id


class RejectionCode(StrEnum):
    """Why an event was dead-lettered; each code tells the sender what to fix."""

    NOT_JSON = "NOT_JSON"
    MISSING_HEADER = "MISSING_HEADER"
    BAD_HEADER = "BAD_HEADER"
    UNSUPPORTED_SPECVERSION = "UNSUPPORTED_SPECVERSION"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    NOT_AUTHORISED = "NOT_AUTHORISED"
    UNKNOWN_ENTITY = "UNKNOWN_ENTITY"
    CONFLICTS_WITH_STATE = "CONFLICTS_WITH_STATE"
    PROCESSING_FAILED = "PROCESSING_FAILED"


class EventRejected(Event):
    """A dead letter: the original record, where it came from, and why it was refused."""

    family: ClassVar[Family] = Family.DEADLETTER
    name: ClassVar[str] = "event-rejected"

    rejection_id: EntityId
    original_topic: Annotated[str, Field(min_length=1, max_length=249)]
    original_partition: Annotated[int, Field(ge=0)]
    original_offset: Annotated[int, Field(ge=0)]
    original_key_base64: Annotated[str, Field(max_length=4096)] | None = None
    original_value_base64: Annotated[str, Field(max_length=4_000_000)]
    original_headers: Annotated[dict[str, str], Field(max_length=64)] = {}
    nation: PartyCode | None = None
    error_code: RejectionCode
    field_path: Annotated[str, Field(max_length=500)] | None = None
    message: LongText
    rejected_at: dt.datetime
    rejected_by: ShortText

    def entity_id(self) -> str:
        return f"{self.original_topic}:{self.original_partition}:{self.original_offset}"


EVENT_MODELS: tuple[type[Event], ...] = (
    DemandSubmitted,
    DemandAmended,
    DemandCancelled,
    ProductDefined,
    PlantRegistered,
    CapacityDeclared,
    PlantDisrupted,
    PlantRestored,
    StockOffered,
    MaterialSupplyDeclared,
    ExportPolicyDeclared,
    PoolOpened,
    ContributionPledged,
    ContributionPaid,
    ProductionReported,
    ShipmentDispatched,
    ShipmentDelivered,
    PlanPublished,
    ProductionOrderIssued,
    ProductionOrderRevised,
    ProductionOrderCancelled,
    AlertRaised,
    EventRejected,
)

EVENTS_BY_TYPE: dict[str, type[Event]] = {model.event_type(): model for model in EVENT_MODELS}
