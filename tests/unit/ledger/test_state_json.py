"""Entity states on the compacted state topics: JSON out and back, closed to drift."""

from __future__ import annotations

import json

import pydantic
import pytest

from ampc.ledger.fold import state_from_json, state_json
from ampc.ledger.state import STATE_MODELS, EntityKind
from ampc.platform.topics import STATE_ENTITIES
from tests.unit.ledger.factory import Feed, scenario

pytestmark = pytest.mark.unit


def test_entity_kinds_are_the_state_topics_of_the_registry() -> None:
    assert {kind.value for kind in EntityKind} == {name for name, _, _ in STATE_ENTITIES}
    assert set(STATE_MODELS) == set(EntityKind)


def test_every_state_survives_its_topic() -> None:
    feed = Feed()
    feed.send_all(*scenario())

    for kind, entity_id, state in feed.store.items():
        data = state_json(state)
        back = state_from_json(kind, data)
        assert back == state, (kind, entity_id)
        assert type(back) is STATE_MODELS[kind]


def test_state_with_an_unknown_field_is_refused() -> None:
    feed = Feed()
    feed.send_all(*scenario())
    state = feed.demand()
    data = json.loads(state_json(state))
    data["surprise"] = 1

    with pytest.raises(pydantic.ValidationError, match="surprise"):
        state_from_json(EntityKind.DEMANDS, json.dumps(data).encode())


def test_state_read_as_the_wrong_kind_is_refused() -> None:
    feed = Feed()
    feed.send_all(*scenario())

    with pytest.raises(pydantic.ValidationError):
        state_from_json(EntityKind.PLANTS, state_json(feed.demand()))
