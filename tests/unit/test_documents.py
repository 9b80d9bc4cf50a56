"""schemas/ is generated from the models, and `--check` catches any drift."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import ClassVar

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from ampc.cli import app, extra_schemas
from ampc.contract import documents
from ampc.contract import events as ev

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_models() -> None:
    assert documents.drift(REPO / "schemas", extra_schemas()) == []


def test_check_fails_after_a_model_field_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents.write(tmp_path, extra_schemas())
    runner = CliRunner()
    assert (
        runner.invoke(app, ["schemas", "generate", "--check", "--out", str(tmp_path)]).exit_code
        == 0
    )

    class DemandCancelled(ev.DemandCancelled):
        """The requester withdraws a demand (with a new field)."""

        family: ClassVar[ev.Family] = ev.Family.DEMAND
        name: ClassVar[str] = "cancelled"
        cancelled_on: dt.date | None = None

    changed = tuple(DemandCancelled if m is ev.DemandCancelled else m for m in ev.EVENT_MODELS)
    monkeypatch.setattr(documents, "EVENT_MODELS", changed)
    result = runner.invoke(app, ["schemas", "generate", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "ampc.demand.cancelled.v1.schema.json" in result.output
    assert "asyncapi.yaml" in result.output


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    documents.write(tmp_path)
    (tmp_path / "events" / "ampc.demand.exploded.v1.schema.json").write_text("{}")
    assert documents.drift(tmp_path) == [
        "no longer generated: schemas/events/ampc.demand.exploded.v1.schema.json"
    ]
    documents.write(tmp_path)
    assert documents.drift(tmp_path) == []


def test_json_schemas_accept_valid_events_and_refuse_bad_ones() -> None:
    schema = json.loads(
        (REPO / "schemas" / "events" / "ampc.demand.submitted.v1.schema.json").read_text()
    )
    valid = {
        "demand_id": "D-1",
        "requested_by": "CZ",
        "recipient": "UA",
        "delivery_point": "Rzeszow",
        "product": "155-HE",
        "quantity": 100,
        "due_week": "2026-12-07",
        "priority": "URGENT",
        "pool_id": "P-1",
    }
    jsonschema.validate(valid, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**valid, "quantity": 0}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**valid, "extra": 1}, schema)


def test_asyncapi_names_every_message_and_topic_binding() -> None:
    document = yaml.safe_load((REPO / "schemas" / "asyncapi.yaml").read_text())
    assert document["asyncapi"] == "3.0.0"
    names = {m["name"] for m in document["components"]["messages"].values()}
    assert names == {model.event_type() for model in ev.EVENT_MODELS}
    inbox = document["channels"]["inbox"]
    assert inbox["address"] == "ampc.inbox.{party}"
    assert "cz" in inbox["parameters"]["party"]["enum"]
    assert document["channels"]["demandsState"]["bindings"]["kafka"]["topicConfiguration"][
        "cleanup.policy"
    ] == ["compact"]
    for message in document["components"]["messages"].values():
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert message["headers"]["properties"]["ce_type"]["const"] == message["name"]
