"""Who may say what: the gateway's authority rules, as pure functions.

A party (the owner of the inbox an event arrived on) may speak only for itself: submit demands
as itself or as a declared participant of a joint demand, declare capacity and stock only for
its own plants and offers, report production and shipments only from its own plants, pay only
its own contributions; pools are opened by their owner. Ownership of plants, offers, demands,
pools and shipments is remembered from the events that were let through (`claims`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ampc.contract import events as ev
from ampc.contract.envelope import ContractViolation
from ampc.contract.events import RejectionCode
from ampc.contract.parties import ORGANISATIONS

OwnerBook = Mapping[str, str]
"""`"<kind>:<id>"` -> owning party(ies), comma-separated for a joint demand's participants."""

PLANT: Final = "plant"
OFFER: Final = "offer"
DEMAND: Final = "demand"
POOL: Final = "pool"
SHIPMENT: Final = "shipment"


def owner_key(kind: str, entity_id: str) -> str:
    return f"{kind}:{entity_id}"


def _refuse(message: str, field_path: str | None) -> ContractViolation:
    return ContractViolation(RejectionCode.NOT_AUTHORISED, message, field_path)


def _must_be(party: str, claimed: str, field_path: str, what: str) -> None:
    if claimed != party:
        raise _refuse(
            f"{party} may not {what} as {claimed}: a party speaks only for itself",
            field_path,
        )


def _owned_by(
    party: str, book: OwnerBook, kind: str, entity_id: str, field_path: str
) -> str | None:
    owners = book.get(owner_key(kind, entity_id))
    if owners is not None and party not in owners.split(","):
        raise _refuse(f"{kind} '{entity_id}' belongs to {owners}, not to {party}", field_path)
    return owners


def authorise(party: str, event: ev.Event, book: OwnerBook) -> None:
    """Raise ContractViolation(NOT_AUTHORISED) unless `party` may send `event`."""
    match event:
        case ev.DemandSubmitted():
            participants = {share.nation for share in event.participants}
            if event.requested_by != party and party not in participants:
                raise _refuse(
                    f"{party} may submit a demand only as itself or as a declared participant "
                    f"of a joint demand; this one is requested by {event.requested_by}",
                    "requested_by",
                )
            _owned_by(party, book, DEMAND, event.demand_id, "demand_id")
        case ev.DemandAmended() | ev.DemandCancelled():
            _must_be(party, event.requested_by, "requested_by", "change a demand")
            _owned_by(party, book, DEMAND, event.demand_id, "demand_id")
        case ev.ProductDefined():
            if party not in ORGANISATIONS:
                raise _refuse(
                    f"product reference data is declared by an agency "
                    f"({', '.join(sorted(ORGANISATIONS))}), not by {party}",
                    "product",
                )
        case ev.PlantRegistered():
            _must_be(party, event.nation, "nation", "register a plant")
            _owned_by(party, book, PLANT, event.plant_id, "plant_id")
        case ev.CapacityDeclared() | ev.PlantDisrupted() | ev.PlantRestored():
            _must_be(party, event.nation, "nation", "declare capacity")
            _owned_by(party, book, PLANT, event.plant_id, "plant_id")
        case ev.StockOffered():
            _must_be(party, event.offered_by, "offered_by", "offer stock")
            _owned_by(party, book, OFFER, event.offer_id, "offer_id")
        case ev.MaterialSupplyDeclared():
            _must_be(party, event.declared_by, "declared_by", "declare material supply")
        case ev.ExportPolicyDeclared():
            _must_be(party, event.nation, "nation", "declare an export policy")
        case ev.PoolOpened():
            _must_be(party, event.owner, "owner", "open a pool")
            _owned_by(party, book, POOL, event.pool_id, "pool_id")
        case ev.ContributionPledged() | ev.ContributionPaid():
            _must_be(party, event.donor, "donor", "pledge or pay a contribution")
        case ev.ProductionReported():
            _must_be(party, event.nation, "nation", "report production")
            _owned_by(party, book, PLANT, event.plant_id, "plant_id")
        case ev.ShipmentDispatched():
            _must_be(party, event.nation, "nation", "dispatch a shipment")
            plant = book.get(owner_key(PLANT, event.source_id))
            offer = book.get(owner_key(OFFER, event.source_id))
            if plant is None and offer is None:
                raise ContractViolation(
                    RejectionCode.UNKNOWN_ENTITY,
                    f"source '{event.source_id}' is neither a registered plant nor a stock offer",
                    "source_id",
                )
            if party not in {plant, offer}:
                raise _refuse(
                    f"source '{event.source_id}' belongs to {plant or offer}, not to {party}",
                    "source_id",
                )
            _owned_by(party, book, SHIPMENT, event.shipment_id, "shipment_id")
        case ev.ShipmentDelivered():
            _must_be(party, event.nation, "nation", "confirm a delivery")
            _owned_by(party, book, SHIPMENT, event.shipment_id, "shipment_id")
        case _:
            raise _refuse(
                f"{event.event_type()} is written by ampc itself, never by a national system",
                "header.ce_type",
            )


@dataclass(frozen=True, slots=True)
class Claim:
    """Ownership to remember once an event has been let through."""

    key: str
    owners: str


def claims(party: str, event: ev.Event) -> tuple[Claim, ...]:
    """What an accepted event establishes about who owns what."""
    match event:
        case ev.DemandSubmitted():
            parties = [event.requested_by, *(s.nation for s in event.participants)]
            return (Claim(owner_key(DEMAND, event.demand_id), ",".join(dict.fromkeys(parties))),)
        case ev.PlantRegistered():
            return (Claim(owner_key(PLANT, event.plant_id), party),)
        case ev.StockOffered():
            return (Claim(owner_key(OFFER, event.offer_id), party),)
        case ev.PoolOpened():
            return (Claim(owner_key(POOL, event.pool_id), party),)
        case ev.ShipmentDispatched():
            # The dispatcher and the recipient may both confirm the delivery.
            owners = ",".join(dict.fromkeys([party, event.recipient]))
            return (Claim(owner_key(SHIPMENT, event.shipment_id), owners),)
        case _:
            return ()


def canonical_key(event: ev.Event) -> str:
    """The key on the canonical topic. Shipments are keyed by their demand so that a shipment
    and the demand it serves share a partition and the ledger updates both in one step."""
    if isinstance(event, ev.ShipmentDispatched | ev.ShipmentDelivered):
        return event.demand_id
    return event.entity_id()
