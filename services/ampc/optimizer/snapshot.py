"""The optimizer's input: one consistent snapshot of alliance state, validated on load.

Quantities are whole rounds, money EUR in integer cents, time ISO weeks named by their Monday.
Inside the model a week is an index relative to ``horizon.start_week``; in the file it is a date.
Every model forbids unknown fields so that a typo in a hand-written snapshot is caught, and
validation errors name the field (pydantic's ``loc``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

SNAPSHOT_FORMAT_VERSION: Final = 1


def _is_monday(value: dt.date) -> dt.date:
    if value.weekday() != 0:
        raise ValueError(f"{value.isoformat()} is not a Monday; weeks are named by their Monday")
    return value


Week = Annotated[dt.date, AfterValidator(_is_monday)]
"""An ISO week, named by its Monday date."""

Rounds = Annotated[int, Field(ge=0, le=1_000_000_000)]
Cents = Annotated[int, Field(ge=0, le=10**15)]
Identifier = Annotated[str, Field(min_length=1, max_length=64)]
NationCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Bloc(StrEnum):
    """Alliances whose membership eligibility rules refer to."""

    NATO = "NATO"
    EU = "EU"
    EEA = "EEA"


class Priority(StrEnum):
    """Demand priority; the weights below make one urgent round worth many routine ones."""

    URGENT = "URGENT"
    HIGH = "HIGH"
    ROUTINE = "ROUTINE"


PRIORITY_WEIGHT: Final[dict[Priority, int]] = {
    Priority.URGENT: 100,
    Priority.HIGH: 10,
    Priority.ROUTINE: 1,
}
"""Weights of the shortfall and lateness objectives (per round, per round-week)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Horizon(_Strict):
    """The planned weeks: ``weeks`` consecutive ISO weeks from ``start_week``."""

    start_week: Week
    weeks: int = Field(ge=1, le=520)


class Nation(_Strict):
    """A nation and the blocs it belongs to (recipients may belong to none)."""

    code: NationCode
    memberships: list[Bloc] = Field(default_factory=list)


class Product(_Strict):
    """A product and its material bill: material code -> quantity per round (e.g. kg)."""

    code: Identifier
    bill: dict[str, float] = Field(default_factory=dict)


class InteropGroup(_Strict):
    """Products that may stand in for each other for a demand naming the group."""

    code: Identifier
    products: list[Identifier] = Field(min_length=1)


class CapacityStep(_Strict):
    """From ``from_week`` on (until the next step) the line makes ``rounds_per_week``."""

    from_week: Week
    rounds_per_week: Rounds


class LineProduct(_Strict):
    """A product a line can make and its unit price."""

    product: Identifier
    unit_price_cents: Cents


class ProductionLine(_Strict):
    """A line: its products share the weekly capacity given by the calendar."""

    id: Identifier
    products: list[LineProduct] = Field(min_length=1)
    capacity_calendar: list[CapacityStep] = Field(min_length=1)
    lot_size: int | None = Field(default=None, ge=1, le=1_000_000)


class Disruption(_Strict):
    """Lose ``fraction_lost`` of capacity in weeks ``from_week``..``to_week`` (inclusive)."""

    from_week: Week
    to_week: Week
    fraction_lost: float = Field(gt=0.0, le=1.0)
    line_id: Identifier | None = None
    """None: every line of the plant."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.to_week < self.from_week:
            raise ValueError("to_week is before from_week")
        return self


class Plant(_Strict):
    """A plant owned by a nation, with production lines and disruptions."""

    id: Identifier
    nation: NationCode
    operator: str = ""
    lines: list[ProductionLine] = Field(min_length=1)
    disruptions: list[Disruption] = Field(default_factory=list)


class StockOffer(_Strict):
    """Existing rounds offered for sale: a one-shot source available from a week on."""

    id: Identifier
    origin: NationCode
    product: Identifier
    quantity: Rounds
    available_week: Week
    unit_price_cents: Cents


class MaterialSupply(_Strict):
    """A scarce material's weekly supply shared by all plants (steps like a calendar)."""

    material: Identifier
    unit: str = "kg"
    supply: list[MaterialStep] = Field(min_length=1)


class MaterialStep(_Strict):
    """From ``from_week`` on the material's weekly supply is ``quantity_per_week``."""

    from_week: Week
    quantity_per_week: float = Field(ge=0.0)


class TransitRoute(_Strict):
    """Weeks from an origin nation to a recipient nation."""

    origin: NationCode
    recipient: NationCode
    weeks: int = Field(ge=0, le=52)


class TransitTable(_Strict):
    """Transit weeks by (origin, recipient); ``default_weeks`` when the pair is not listed."""

    default_weeks: int = Field(default=1, ge=0, le=52)
    routes: list[TransitRoute] = Field(default_factory=list)


class EligibilityRules(_Strict):
    """Who may make rounds for a demand or be paid by a pool.

    ``eligible_producers`` lists nation codes or blocs (``EU``, ``EEA``, ``NATO``); empty means any.
    """

    eligible_producers: list[str] = Field(default_factory=list)
    excluded_origins: list[NationCode] = Field(default_factory=list)
    max_unit_price_cents: Cents | None = None


class PoolRules(EligibilityRules):
    """Pool rules: eligibility plus earmarks (empty earmark lists mean no earmark)."""

    earmarked_products: list[Identifier] = Field(default_factory=list)
    earmarked_recipients: list[NationCode] = Field(default_factory=list)


class Contribution(_Strict):
    """A donor's contribution: pledged, and the part of it actually paid."""

    donor: Identifier
    pledged_cents: Cents
    paid_cents: Cents


class FundingPool(_Strict):
    """A pool of money; only paid money may be committed (no buying on credit).

    ``committed_cents`` is money already committed outside this plan (delivered or contracted
    earlier); the plan may commit at most ``paid - committed``.
    """

    id: Identifier
    owner: Identifier
    contributions: list[Contribution] = Field(default_factory=list)
    committed_cents: Cents = 0
    rules: PoolRules = Field(default_factory=PoolRules)

    @property
    def paid_cents(self) -> int:
        """Money donors have actually paid in."""
        return sum(c.paid_cents for c in self.contributions)

    @property
    def pledged_cents(self) -> int:
        """Money donors have promised."""
        return sum(c.pledged_cents for c in self.contributions)


class Demand(_Strict):
    """A request for rounds: a product or an interop group, due in a week, paid by a pool."""

    id: Identifier
    requested_by: Identifier
    recipient: NationCode
    product: Identifier | None = None
    interop_group: Identifier | None = None
    quantity: Rounds
    due_week: Week
    priority: Priority
    pool_id: Identifier
    rules: EligibilityRules = Field(default_factory=EligibilityRules)

    @model_validator(mode="after")
    def _product_xor_group(self) -> Self:
        if (self.product is None) == (self.interop_group is None):
            raise ValueError("a demand names exactly one of product or interop_group")
        return self


class ExportRefusal(_Strict):
    """A producer nation refuses (re-)export consent towards these recipients."""

    producer_nation: NationCode
    refused_recipients: list[NationCode] = Field(min_length=1)


class PlannedFlow(_Strict):
    """Rounds of a product from a source (line id or offer id) made in a week for a demand."""

    source_id: Identifier
    product: Identifier
    production_week: Week
    demand_id: Identifier
    quantity: Rounds


class PreviousPlan(_Strict):
    """The allocations of the plan in force, compared against for churn."""

    version: int = Field(ge=0)
    allocations: list[PlannedFlow] = Field(default_factory=list)


class Snapshot(_Strict):
    """Everything the optimizer needs, consistent at one point of the event streams."""

    format_version: int = Field(default=SNAPSHOT_FORMAT_VERSION, ge=1, le=SNAPSHOT_FORMAT_VERSION)
    horizon: Horizon
    frozen_horizon_weeks: int = Field(default=4, ge=0, le=52)
    max_early_weeks: int = Field(default=13, ge=0, le=520)
    """Rounds arrive at most this many weeks before the due week (storage, shelf life)."""
    max_late_weeks: int = Field(default=13, ge=0, le=520)
    """Rounds arriving later than this after the due week are of no use: they count as short."""
    nations: list[Nation] = Field(default_factory=list)
    products: list[Product] = Field(min_length=1)
    interop_groups: list[InteropGroup] = Field(default_factory=list)
    materials: list[MaterialSupply] = Field(default_factory=list)
    plants: list[Plant] = Field(default_factory=list)
    stock_offers: list[StockOffer] = Field(default_factory=list)
    transit: TransitTable = Field(default_factory=TransitTable)
    demands: list[Demand] = Field(default_factory=list)
    pools: list[FundingPool] = Field(default_factory=list)
    export_refusals: list[ExportRefusal] = Field(default_factory=list)
    committed_orders: list[PlannedFlow] = Field(default_factory=list)
    """Production orders inside the frozen horizon: fixed input, never moved by a re-plan."""
    previous_plan: PreviousPlan | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        products = {p.code for p in self.products}
        groups = {g.code for g in self.interop_groups}
        pools = {p.id for p in self.pools}
        _unique("products", [p.code for p in self.products])
        _unique("plants", [p.id for p in self.plants])
        line_ids = [ln.id for p in self.plants for ln in p.lines]
        offer_ids = [o.id for o in self.stock_offers]
        _unique("lines and stock_offers", line_ids + offer_ids)
        _unique("demands", [d.id for d in self.demands])
        _unique("pools", [p.id for p in self.pools])
        for g in self.interop_groups:
            for code in g.products:
                _known(f"interop_groups[{g.code}].products", code, products)
        for plant in self.plants:
            for line in plant.lines:
                for lp in line.products:
                    _known(f"plants[{plant.id}].lines[{line.id}].products", lp.product, products)
            for disruption in plant.disruptions:
                if disruption.line_id is not None:
                    _known(
                        f"plants[{plant.id}].disruptions.line_id",
                        disruption.line_id,
                        {ln.id for ln in plant.lines},
                    )
        for offer in self.stock_offers:
            _known(f"stock_offers[{offer.id}].product", offer.product, products)
        for d in self.demands:
            if d.product is not None:
                _known(f"demands[{d.id}].product", d.product, products)
            if d.interop_group is not None:
                _known(f"demands[{d.id}].interop_group", d.interop_group, groups)
            _known(f"demands[{d.id}].pool_id", d.pool_id, pools)
        sources = set(line_ids) | set(offer_ids)
        demand_ids = {d.id for d in self.demands}
        for order in self.committed_orders:
            _known("committed_orders.source_id", order.source_id, sources)
            _known("committed_orders.product", order.product, products)
            _known("committed_orders.demand_id", order.demand_id, demand_ids)
            week = self.week_index(order.production_week)
            if not 0 <= week < self.frozen_horizon_weeks:
                raise ValueError(
                    f"committed_orders: order {order.source_id}/{order.product} in "
                    f"{order.production_week} lies outside the frozen horizon"
                )
        return self

    # -- week arithmetic -------------------------------------------------------------------

    def week_index(self, week: dt.date) -> int:
        """Index of a Monday relative to the horizon start (may be negative or past the end)."""
        return (week - self.horizon.start_week).days // 7

    def week_date(self, index: int) -> dt.date:
        """Monday of the week with this index."""
        return self.horizon.start_week + dt.timedelta(weeks=index)

    # -- file I/O ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Snapshot:
        """Read and validate a snapshot JSON file (raises pydantic.ValidationError)."""
        return cls.model_validate_json(Path(path).read_bytes())

    def dump_json(self) -> str:
        """Canonical JSON text: same snapshot, same bytes."""
        return self.model_dump_json(indent=1) + "\n"


def _unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{what}: duplicate id {i!r}")
        seen.add(i)


def _known(field: str, value: str, known: set[str]) -> None:
    if value not in known:
        raise ValueError(f"{field}: unknown reference {value!r}")


MaterialSupply.model_rebuild()
