"""The ledger's state as the optimizer and the tracker hold it: a replica of every
`ampc.state.<kind>` topic."""

from __future__ import annotations

from ampc.ledger.fold import state_from_json
from ampc.ledger.state import EntityKind, EntityState
from ampc.optimizer.from_ledger import States
from ampc.platform.replica import CompactedReplica
from ampc.platform.topics import TopicRegistry
from ampc.settings import Settings


def state_replica(settings: Settings, client_id: str) -> CompactedReplica[EntityState]:
    """A replica of every `ampc.state.<kind>` topic."""
    registry = TopicRegistry(settings)
    kinds = {registry.state(kind.value): kind for kind in EntityKind}
    return CompactedReplica(
        settings.bootstrap_servers or "",
        list(kinds),
        lambda topic, value: state_from_json(kinds[topic], value),
        client_id=client_id,
    )


def states_of(replica: CompactedReplica[EntityState], registry: TopicRegistry) -> States:
    """A copy of the replica's states by kind (the replica keeps changing underneath)."""
    return {kind: dict(replica.values[registry.state(kind.value)]) for kind in EntityKind}
