"""The broker launcher fails with one clear line when its prerequisites are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ampc.platform import broker

pytestmark = pytest.mark.unit


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(broker.BrokerError, match="install a JDK") as caught:
        broker.require_java()
    assert "\n" not in str(caught.value)


def test_missing_maven_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(broker.BrokerError, match="apt-get install maven"):
        broker.resolve_kafka(tmp_path)


def test_only_one_or_three_nodes(tmp_path: Path) -> None:
    with pytest.raises(broker.BrokerError, match="1 or 3 nodes"):
        broker.start(tmp_path, tmp_path, nodes=2)


def test_three_node_properties_ask_for_two_in_sync(tmp_path: Path) -> None:
    ports = [(9001, 9101), (9002, 9102), (9003, 9103)]
    text = broker._server_properties(2, ports, tmp_path, replication=3)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["node.id"] == "2"
    assert props["min.insync.replicas"] == "2"
    assert props["default.replication.factor"] == "3"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    )
    assert props["listeners"].startswith("PLAINTEXT://127.0.0.1:9002,")
    assert props["auto.create.topics.enable"] == "false"


def test_no_state_means_no_broker(tmp_path: Path) -> None:
    assert broker.read_state(tmp_path) is None
    assert broker.stop(tmp_path) is None


def test_cluster_ids_never_look_like_an_option() -> None:
    ids = {broker._cluster_id() for _ in range(3000)}
    assert len(ids) == 3000
    assert all(len(cluster_id) == 22 and not cluster_id.startswith("-") for cluster_id in ids)
