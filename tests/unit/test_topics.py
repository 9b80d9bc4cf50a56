"""The topic registry declares every topic once, with the right shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from ampc.contract.events import Family
from ampc.contract.parties import PARTICIPATING_NATIONS, Bloc, inbox_parties, memberships_of
from ampc.platform.topics import LEDGER_TABLES, TopicRegistry, TopicRole
from ampc.settings import Settings

pytestmark = pytest.mark.unit


def test_one_inbox_per_party_and_one_canonical_topic_per_input_family() -> None:
    registry = TopicRegistry(Settings())
    inboxes = registry.by_role(TopicRole.INBOX)
    assert [spec.party for spec in inboxes] == list(inbox_parties())
    assert registry.inbox("CZ") == "ampc.inbox.cz"
    canonical = {spec.name for spec in registry.by_role(TopicRole.CANONICAL)}
    assert canonical == {
        f"ampc.events.{f.value}"
        for f in (Family.DEMAND, Family.CAPACITY, Family.FUNDING, Family.DELIVERY)
    }


def test_state_topics_are_compacted_and_others_are_not() -> None:
    registry = TopicRegistry(Settings())
    for spec in registry.specs:
        compacted = spec.role in (TopicRole.STATE, TopicRole.CHANGELOG) or spec.name.endswith(
            ".gateway.owners"
        )
        expected = "compact" if compacted else "delete"
        assert spec.cleanup_policy == expected, spec.name


def test_production_orders_per_nation_only() -> None:
    registry = TopicRegistry(Settings())
    orders = [s for s in registry.specs if ".orders." in s.name]
    assert {s.party for s in orders} == set(PARTICIPATING_NATIONS)


def test_replication_three_demands_two_in_sync() -> None:
    registry = TopicRegistry(Settings(replication_factor=3))
    assert all(spec.config()["min.insync.replicas"] == "2" for spec in registry.specs)
    single = TopicRegistry(Settings(replication_factor=1))
    assert all("min.insync.replicas" not in spec.config() for spec in single.specs)


def test_prefix_isolates_tests() -> None:
    names = {s.name for s in TopicRegistry(Settings(topic_prefix="t123")).specs}
    # faust names a table's changelog after the app id, "<prefix>-ledger".
    assert all(name.startswith(("t123.", "t123-ledger-")) for name in names)


def test_every_ledger_table_has_its_changelog_declared(tmp_path: Path) -> None:
    # faust creating a changelog itself as the worker joins its group left the topic out of the
    # join's metadata now and then; every write to that table then failed (the demo bug).
    from ampc.ledger.app import build_ledger

    settings = Settings(bootstrap_servers="127.0.0.1:9", data_dir=tmp_path, topic_prefix="t9")
    registry = TopicRegistry(settings)
    declared = {s.name: s.partitions for s in registry.by_role(TopicRole.CHANGELOG)}
    ledger = build_ledger(settings)
    used = {t.changelog_topic_name: t.partitions for t in ledger.tables.values()}
    assert used == declared
    assert len(used) == len(LEDGER_TABLES) == 9
    assert registry.ledger_changelog("parked") == "t9-ledger-parked-changelog"


def test_memberships() -> None:
    assert memberships_of("CZ") == {Bloc.NATO, Bloc.EU, Bloc.EEA}
    assert memberships_of("NO") == {Bloc.NATO, Bloc.EEA}
    assert memberships_of("AT") == {Bloc.EU, Bloc.EEA}
    assert memberships_of("UA") == frozenset()
