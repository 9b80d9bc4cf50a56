"""What makes ampc re-plan, and when: pure, so the policy is tested without Kafka.

A trigger is a small JSON record on the single-partition topic `ampc.optimizer.triggers`. The
router turns canonical events into triggers (`trigger_for`); the tracker writes its own re-plan
requests. The active planner reads them in order and coalesces them (`Coalescer`): an urgent
trigger is planned at once, routine ones wait a short window so that a burst of 200 routine
demands costs a handful of solves, not 200.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ampc.contract.events import (
    CapacityDeclared,
    ContributionPaid,
    DemandAmended,
    DemandCancelled,
    DemandSubmitted,
    Event,
    ExportPolicyDeclared,
    MaterialSupplyDeclared,
    PlantDisrupted,
    PlantRegistered,
    PlantRestored,
    ProductDefined,
    StockOffered,
)
from ampc.contract.types import Priority
from ampc.ledger.fold import touched_entities


class TriggerKind(StrEnum):
    EVENT = "event"  # a canonical event that changes what can or must be planned
    TRACKER = "tracker"  # reality drifted from the plan
    MANUAL = "manual"  # an operator asked


class AwaitedState(BaseModel):
    """The ledger state that must show the triggering event before the snapshot is taken."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    entity_id: str
    source: str  # "topic:partition" of the canonical event
    offset: int = Field(ge=0)
    event_id: str


class Trigger(BaseModel):
    """One re-plan request, as written to the trigger topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger_id: str = Field(min_length=1, max_length=200)
    kind: TriggerKind
    urgent: bool
    reason: str = Field(min_length=1, max_length=200)
    created_at: dt.datetime
    awaits: list[AwaitedState] = Field(default_factory=list)
    state_offsets: dict[str, int] = Field(default_factory=dict)
    """State-topic positions (`topic:partition` -> next offset) the snapshot must include: an
    operator's request made after the ledger showed something, e.g. a whole scenario."""

    def dump(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def load(cls, raw: bytes) -> Trigger:
        return cls.model_validate_json(raw)


# Events after which the plan may be wrong; the rest (pledges, production reports, shipments)
# change nothing the optimizer reads, or are the tracker's to judge.
_ROUTINE: tuple[type[Event], ...] = (
    DemandSubmitted,
    DemandAmended,
    DemandCancelled,
    PlantRegistered,
    CapacityDeclared,
    PlantRestored,
    StockOffered,
    MaterialSupplyDeclared,
    ExportPolicyDeclared,
    ProductDefined,
    ContributionPaid,
)


def trigger_for(
    event: Event,
    *,
    event_id: str,
    source: str,
    offset: int,
    now: dt.datetime,
    priority_of: Callable[[str], Priority | None],
) -> Trigger | None:
    """The trigger a canonical event raises, or None when it cannot change the plan.

    Urgent: a demand that is (or becomes, or was) URGENT, and a plant disruption — the cases
    where allied plants must get new orders within seconds. `priority_of` looks up a demand's
    current priority (an amendment or cancellation does not carry it).
    """
    if isinstance(event, PlantDisrupted):
        urgent, reason = True, f"plant {event.plant_id} disrupted"
    elif isinstance(event, _ROUTINE):
        urgent = False
        reason = f"{event.event_type()} {event.entity_id()}"
        if isinstance(event, DemandSubmitted | DemandAmended | DemandCancelled):
            priorities = {getattr(event, "priority", None), priority_of(event.demand_id)}
            urgent = Priority.URGENT in priorities
            if urgent:
                reason = f"URGENT demand {event.demand_id} ({event.name})"
    else:
        return None
    awaits = [
        AwaitedState(
            kind=kind.value, entity_id=entity_id, source=source, offset=offset, event_id=event_id
        )
        for kind, entity_id in touched_entities(event)
    ]
    return Trigger(
        trigger_id=f"event:{event_id}"[:200],
        kind=TriggerKind.EVENT,
        urgent=urgent,
        reason=reason[:200],
        created_at=now,
        awaits=awaits,
    )


class Coalescer:
    """Collects triggers and says when to solve: at once for an urgent one, otherwise when the
    oldest waiting routine trigger has waited `window_s`. Times are monotonic seconds."""

    def __init__(self, window_s: float) -> None:
        if window_s < 0:
            raise ValueError("the coalescing window cannot be negative")
        self.window_s = window_s
        self._pending: list[tuple[int, Trigger]] = []
        self._first_at: float | None = None

    def add(self, offset: int, trigger: Trigger, now: float) -> None:
        if self._first_at is None:
            self._first_at = now
        self._pending.append((offset, trigger))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def deadline(self) -> float | None:
        """When the pending triggers must be planned (None when nothing waits)."""
        if not self._pending or self._first_at is None:
            return None
        if any(trigger.urgent for _, trigger in self._pending):
            return self._first_at  # already passed: plan now
        return self._first_at + self.window_s

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def take(self) -> list[tuple[int, Trigger]]:
        """Everything pending (with its trigger-topic offset), in arrival order."""
        taken, self._pending, self._first_at = self._pending, [], None
        return taken


def describe(batch: list[tuple[int, Trigger]]) -> str:
    """A plan's `trigger` text: the first urgent reason (or the first), and how many more."""
    if not batch:
        return "manual"
    urgent = [t for _, t in batch if t.urgent]
    lead = (urgent or [t for _, t in batch])[0]
    more = len(batch) - 1
    text = lead.reason if more == 0 else f"{lead.reason} and {more} more"
    return text[:200]


def requested(reason: str, state_offsets: dict[str, int], now: dt.datetime) -> Trigger:
    """An operator's re-plan request: planned at once, from state at least this recent."""
    return Trigger(
        trigger_id=f"manual:{now.isoformat()}",
        kind=TriggerKind.MANUAL,
        urgent=True,
        reason=reason[:200] or "re-plan requested",
        created_at=now,
        state_offsets=state_offsets,
    )
