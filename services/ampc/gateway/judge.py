"""The gateway's decision for one inbox record, without Kafka: validate the envelope and the
payload, check authority, drop exact duplicates, and say what to write where."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ampc.contract.envelope import ContractViolation, KafkaRecord, decode
from ampc.contract.events import EVENT_MODELS, INPUT_FAMILIES, Event, RejectionCode
from ampc.gateway.authority import authorise, canonical_key, claims
from ampc.platform.deadletter import SourceRecord, dead_letter
from ampc.platform.topics import TopicRegistry, TopicRole

SERVICE: Final = "gateway"
PARTY_HEADER: Final = "ampc-party"
ORIGIN_HEADER: Final = "ampc-origin"
INPUT_TYPES: Final = frozenset(m.event_type() for m in EVENT_MODELS if m.family in INPUT_FAMILIES)


class Verdict(StrEnum):
    ROUTED = "routed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one inbox record."""

    verdict: Verdict
    topic: str | None
    record: KafkaRecord | None
    event_type: str
    party: str | None
    reason: RejectionCode | None = None


class RecentEventIds:
    """Event id -> digest of what it carried, for the last `capacity` ids (bounded memory).

    An exact re-send (same id, same bytes) is a duplicate; the same id with other content is a
    conflict the sender must hear about.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, bytes] = OrderedDict()

    def check(self, event_id: str, digest: bytes) -> bool | None:
        """True: seen with the same digest; False: seen with another; None: new."""
        previous = self._seen.get(event_id)
        if previous is None:
            return None
        self._seen.move_to_end(event_id)
        return previous == digest

    def remember(self, event_id: str, digest: bytes) -> None:
        self._seen[event_id] = digest
        self._seen.move_to_end(event_id)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)


class Judge:
    """Decides the fate of inbox records. `owners` is the ownership book (a faust table in the
    service, a dict in tests); it is updated for every event let through."""

    def __init__(
        self,
        registry: TopicRegistry,
        owners: MutableMapping[str, str],
        recent: RecentEventIds | None = None,
    ) -> None:
        self.registry = registry
        self.owners = owners
        self.recent = recent or RecentEventIds()
        self._party_of_topic = {
            spec.name: spec.party for spec in registry.by_role(TopicRole.INBOX) if spec.party
        }

    def party_of(self, topic: str) -> str | None:
        return self._party_of_topic.get(topic)

    def judge(self, source: SourceRecord) -> Decision:
        """Route, reject or drop one record. Never raises for bad input."""
        party = self.party_of(source.topic)
        event_type = "invalid"
        try:
            if party is None:
                raise ContractViolation(
                    RejectionCode.NOT_AUTHORISED,
                    f"topic {source.topic} is not an inbox of the registry",
                    "topic",
                )
            envelope = decode(source.key, source.value, source.headers, allowed_types=INPUT_TYPES)
            event_type = envelope.event_type
            digest = _digest(event_type, source.value or b"")
            seen = self.recent.check(envelope.event_id, digest)
            if seen is True:
                return Decision(Verdict.DUPLICATE, None, None, event_type, party)
            if seen is False:
                raise ContractViolation(
                    RejectionCode.CONFLICTS_WITH_STATE,
                    f"event id {envelope.event_id} was already used for a different event; "
                    "a re-send must repeat the original exactly, a new event needs a new id",
                    "header.ce_id",
                )
            authorise(party, envelope.payload, self.owners)
        except ContractViolation as violation:
            record = dead_letter(source, violation, party=party, rejected_by=SERVICE)
            return Decision(
                Verdict.REJECTED,
                self.registry.deadletter,
                record,
                event_type,
                party,
                violation.code,
            )
        for claim in claims(party, envelope.payload):
            self.owners[claim.key] = claim.owners
        self.recent.remember(envelope.event_id, digest)
        return Decision(
            Verdict.ROUTED,
            self.registry.canonical(envelope.payload.family),
            _canonical_record(envelope.payload, source, party),
            event_type,
            party,
        )


def _digest(event_type: str, value: bytes) -> bytes:
    return hashlib.blake2b(event_type.encode() + b"\0" + value, digest_size=16).digest()


def _canonical_record(event: Event, source: SourceRecord, party: str) -> KafkaRecord:
    """The canonical record: the sender's CloudEvents headers, the normalised JSON body, the
    canonical key, and where it came from (party, inbox position) for the ledger's bookkeeping."""
    kept = [(name, value) for name, value in source.headers if name.startswith("ce_")]
    kept += [
        ("content-type", b"application/json"),
        (PARTY_HEADER, party.encode()),
        (ORIGIN_HEADER, f"{source.topic}:{source.partition}:{source.offset}".encode()),
    ]
    return KafkaRecord(
        key=canonical_key(event).encode(),
        value=event.model_dump_json().encode(),
        headers=kept,
    )
