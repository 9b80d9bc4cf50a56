"""The topic registry: every topic ampc uses, declared once, and `apply` to create it.

Topic names, keys and value types live here and nowhere else; services, the AsyncAPI generator
and the ACLs of the secured profile all read this registry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ampc.contract.events import EVENT_MODELS, INPUT_FAMILIES, Event, Family
from ampc.contract.parties import inbox_parties
from ampc.settings import Settings

DAY_MS: Final = 24 * 3600 * 1000


class TopicRole(StrEnum):
    INBOX = "inbox"
    CANONICAL = "canonical"
    STATE = "state"
    OUTPUT = "output"
    DEADLETTER = "deadletter"
    INTERNAL = "internal"
    CHANGELOG = "changelog"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: what it carries, how it is keyed and how Kafka keeps it."""

    name: str
    role: TopicRole
    description: str
    key: str
    events: tuple[type[Event], ...]
    partitions: int
    replication: int
    cleanup_policy: str = "delete"
    retention_ms: int | None = None
    party: str | None = None
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """The topic-level configs ampc sets (and keeps in line on every apply)."""
        config = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        if self.replication >= 3:
            # With three replicas, acks=all waits for two: one broker may die without loss.
            config["min.insync.replicas"] = "2"
        config.update(self.extra_config)
        return config


INPUT_EVENTS: Final = tuple(m for m in EVENT_MODELS if m.family in INPUT_FAMILIES)

STATE_ENTITIES: Final = (
    ("demands", "demand_id", "Each demand with open quantity and status."),
    ("plants", "plant_id", "Each plant with lines, calendars and disruptions."),
    ("offers", "offer_id", "Each stock offer with what is left of it."),
    ("materials", "material:supplier_region", "Each material supply calendar."),
    ("products", "product", "Product reference data: bill and interop groups."),
    ("export-policies", "nation", "Each nation's export refusals."),
    ("pools", "pool_id", "Each pool with pledged, paid and committed money."),
    ("shipments", "shipment_id", "Each shipment with dispatch and delivery."),
)


LEDGER_TABLES: Final = (*(f"state-{entity}" for entity, _, _ in STATE_ENTITIES), "parked")
"""The ledger's faust tables (one per entity kind, and the parking lot)."""


class TopicRegistry:
    """All of ampc's topics for one prefix and replication factor."""

    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.topic_prefix
        rf = settings.replication_factor
        forever = -1
        specs: list[TopicSpec] = [
            TopicSpec(
                name=self.inbox(party),
                role=TopicRole.INBOX,
                description=f"Raw events from {party}'s national system (or organisation).",
                key="entity id (demand_id, plant_id, pool_id, shipment_id...)",
                events=INPUT_EVENTS,
                partitions=settings.inbox_partitions,
                replication=rf,
                retention_ms=30 * DAY_MS,
                party=party,
            )
            for party in inbox_parties()
        ]
        specs += [
            TopicSpec(
                name=self.canonical(family),
                role=TopicRole.CANONICAL,
                description=f"Validated, authorised {family.value} events from every inbox.",
                key="entity id",
                events=tuple(m for m in EVENT_MODELS if m.family is family),
                partitions=settings.canonical_partitions,
                replication=rf,
                retention_ms=forever,
            )
            for family in INPUT_FAMILIES
        ]
        specs += [
            TopicSpec(
                name=self.state(entity),
                role=TopicRole.STATE,
                description=description,
                key=key,
                events=(),
                partitions=settings.canonical_partitions,
                replication=rf,
                cleanup_policy="compact",
            )
            for entity, key, description in STATE_ENTITIES
        ]
        specs += [
            TopicSpec(
                name=self.plans,
                role=TopicRole.OUTPUT,
                description="Every published plan, in version order.",
                key="plan_id",
                events=tuple(m for m in EVENT_MODELS if m.family is Family.PLAN),
                partitions=1,
                replication=rf,
                retention_ms=forever,
                extra_config={"max.message.bytes": str(16 * 1024 * 1024)},
            ),
            TopicSpec(
                name=self.alerts,
                role=TopicRole.OUTPUT,
                description="Alerts for operators.",
                key="subject id",
                events=tuple(m for m in EVENT_MODELS if m.family is Family.ALERT),
                partitions=1,
                replication=rf,
                retention_ms=90 * DAY_MS,
            ),
            TopicSpec(
                name=self.deadletter,
                role=TopicRole.DEADLETTER,
                description="Rejected events with the original bytes and the reason.",
                key="original topic:partition:offset",
                events=tuple(m for m in EVENT_MODELS if m.family is Family.DEADLETTER),
                partitions=3,
                replication=rf,
                retention_ms=90 * DAY_MS,
            ),
            TopicSpec(
                name=self.gateway_owners,
                role=TopicRole.INTERNAL,
                description="The gateway's ownership book: which party owns which plant, offer, "
                "demand, pool and shipment (for authority checks).",
                key="<kind>:<entity id>",
                events=(),
                partitions=settings.inbox_partitions,
                replication=rf,
                cleanup_policy="compact",
            ),
            TopicSpec(
                name=self.offer_dispatches,
                role=TopicRole.INTERNAL,
                description="Shipments dispatched from stock offers, re-keyed by offer id so the "
                "ledger draws them from the offer in the offer's own partition.",
                key="offer_id",
                events=(),
                partitions=settings.canonical_partitions,
                replication=rf,
                retention_ms=7 * DAY_MS,
            ),
            TopicSpec(
                name=self.ledger_ticks,
                role=TopicRole.INTERNAL,
                description="Clock ticks, one per partition, on which the ledger refuses events "
                "that waited too long for their entity (in that partition's own context).",
                key="tick",
                events=(),
                partitions=settings.canonical_partitions,
                replication=rf,
                retention_ms=DAY_MS,
            ),
            TopicSpec(
                name=self.optimizer_triggers,
                role=TopicRole.INTERNAL,
                description="Re-plan requests; one partition so exactly one planner is active.",
                key="trigger kind",
                events=(),
                partitions=1,
                replication=rf,
                retention_ms=7 * DAY_MS,
            ),
        ]
        # faust would create these itself as the ledger starts, moments before the worker joins
        # its group; on a busy broker the join's metadata can miss a topic that new, faust then
        # counts 0 partitions for it and every write to that table fails. Declared here, they
        # exist well before any ledger starts.
        specs += [
            TopicSpec(
                name=self.ledger_changelog(table),
                role=TopicRole.CHANGELOG,
                description=f"Changelog of the ledger's '{table}' table, from which a worker "
                "recovers the table (named by faust: <app id>-<table>-changelog).",
                key="entity id",
                events=(),
                partitions=settings.canonical_partitions,
                replication=rf,
                cleanup_policy="compact",
            )
            for table in LEDGER_TABLES
        ]
        specs += [
            TopicSpec(
                name=self.orders(party),
                role=TopicRole.OUTPUT,
                description=f"Production orders for {party}'s plants; only {party} reads them.",
                key="order_id",
                events=tuple(m for m in EVENT_MODELS if m.family is Family.ORDER),
                partitions=1,
                replication=rf,
                retention_ms=forever,
                party=party,
            )
            for party in inbox_parties()
            if len(party) == 2
        ]
        self.specs: tuple[TopicSpec, ...] = tuple(specs)
        names = [spec.name for spec in self.specs]
        if len(set(names)) != len(names):  # a registry bug, never an input error
            raise RuntimeError("topic registry declares a name twice")

    def inbox(self, party: str) -> str:
        return f"{self.prefix}.inbox.{party.lower()}"

    def canonical(self, family: Family) -> str:
        return f"{self.prefix}.events.{family.value}"

    def state(self, entity: str) -> str:
        return f"{self.prefix}.state.{entity}"

    def orders(self, nation: str) -> str:
        return f"{self.prefix}.orders.{nation.lower()}"

    @property
    def plans(self) -> str:
        return f"{self.prefix}.plans"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    @property
    def gateway_owners(self) -> str:
        return f"{self.prefix}.gateway.owners"

    @property
    def offer_dispatches(self) -> str:
        return f"{self.prefix}.ledger.offer-dispatches"

    @property
    def ledger_ticks(self) -> str:
        return f"{self.prefix}.ledger.ticks"

    @property
    def optimizer_triggers(self) -> str:
        return f"{self.prefix}.optimizer.triggers"

    def ledger_changelog(self, table: str) -> str:
        """faust's name for the changelog of a ledger table (the app id is `<prefix>-ledger`)."""
        return f"{self.prefix}-ledger-{table}-changelog"

    def by_role(self, role: TopicRole) -> tuple[TopicSpec, ...]:
        return tuple(spec for spec in self.specs if spec.role is role)


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """What `apply_topics` did: created, changed (configs or partitions), already right."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]


async def apply_topics(
    bootstrap_servers: str, specs: tuple[TopicSpec, ...], timeout_ms: int = 30_000
) -> ApplyReport:
    """Create missing topics and bring existing ones in line with the registry. Idempotent.

    Partitions only ever grow (Kafka cannot shrink them); a replication change of an existing
    topic is reported as an error, as it needs a reassignment plan made by a person.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        existing = await _describe(admin, [spec.name for spec in specs])
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication,
                        topic_configs=spec.config(),
                    )
                    for spec in missing
                ],
                timeout_ms=timeout_ms,
            )
        present = [spec for spec in specs if spec.name in existing]
        updated = await _reconcile(admin, present, existing)
        await _await_visible(admin, [spec.name for spec in missing])
    finally:
        await admin.close()
    created = tuple(spec.name for spec in missing)
    unchanged = tuple(s.name for s in present if s.name not in updated)
    return ApplyReport(created=created, updated=tuple(updated), unchanged=unchanged)


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts of those of `names` that exist."""
    listed = set(await admin.list_topics())
    wanted = [name for name in names if name in listed]
    if not wanted:
        return {}
    counts: dict[str, int] = {}
    for description in await admin.describe_topics(wanted):
        if description.get("error_code", 0) == 0:
            counts[description["topic"]] = len(description["partitions"])
    return counts


async def _reconcile(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], partitions: dict[str, int]
) -> list[str]:
    if not specs:
        return []
    updated: list[str] = []
    grow = {
        spec.name: NewPartitions(total_count=spec.partitions)
        for spec in specs
        if partitions[spec.name] < spec.partitions
    }
    if grow:
        await admin.create_partitions(grow)
        updated += list(grow)
    resources = [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in specs]
    described = await admin.describe_configs(resources)
    current: dict[str, dict[str, str]] = {}
    for response in described:
        for resource in response.resources:
            # (error_code, error_message, resource_type, resource_name, config_entries)
            name, entries = resource[3], resource[4]
            current[name] = {entry[0]: entry[1] for entry in entries}
    drifted = [
        spec
        for spec in specs
        if any(current.get(spec.name, {}).get(k) != v for k, v in spec.config().items())
    ]
    if drifted:
        # Kafka's legacy AlterConfigs replaces the whole set: send every config we own.
        await admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=spec.config())
                for spec in drifted
            ]
        )
        updated += [spec.name for spec in drifted if spec.name not in updated]
    return updated


async def _await_visible(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until newly created topics show up in metadata, so producers find them at once."""
    for _ in range(100):
        if not names or set(names) <= set(await admin.list_topics()):
            return
        await asyncio.sleep(0.1)


def partition_key(tp: TopicPartition) -> str:
    """`"topic:partition"`: how a plan's input offsets and a replica's positions name a
    partition."""
    return f"{tp.topic}:{tp.partition}"
