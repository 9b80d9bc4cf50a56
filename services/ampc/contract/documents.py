"""Generates the contract documents in schemas/ from the pydantic models and topic registry:
one JSON Schema per event type and an AsyncAPI 3.0 document. `check` reports drift, so CI fails
when the models change and the files on disk were not regenerated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ampc import __version__
from ampc.contract.envelope import CONTENT_TYPE
from ampc.contract.events import EVENT_MODELS, Event
from ampc.contract.parties import inbox_parties
from ampc.platform.topics import TopicRegistry, TopicRole, TopicSpec
from ampc.settings import Settings

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE: Final = "https://ampc.example/schemas/"
KAFKA_BINDING_VERSION: Final = "0.5.0"

ExtraSchemas = dict[str, type[BaseModel]]
"""File name (without .schema.json) -> model, for formats beyond events (snapshot, plan)."""


def _event_file(model: type[Event]) -> str:
    return f"events/{model.event_type()}.schema.json"


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def json_schema_documents(extra: ExtraSchemas | None = None) -> dict[str, str]:
    """File path (relative to schemas/) -> JSON Schema text, one per event type."""
    documents: dict[str, str] = {}
    for model in EVENT_MODELS:
        schema = model.model_json_schema(mode="validation")
        path = _event_file(model)
        documents[path] = _json(
            {
                "$schema": SCHEMA_DIALECT,
                "$id": SCHEMA_ID_BASE + path,
                "x-ampc-event-type": model.event_type(),
                **schema,
            }
        )
    for name, extra_model in (extra or {}).items():
        path = f"{name}.schema.json"
        documents[path] = _json(
            {
                "$schema": SCHEMA_DIALECT,
                "$id": SCHEMA_ID_BASE + path,
                **extra_model.model_json_schema(mode="validation"),
            }
        )
    return documents


def _headers_schema(model: type[Event]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type"],
        "properties": {
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_id": {
                "type": "string",
                "description": "Unique per event. A re-send keeps the same id, so the gateway "
                "drops the duplicate.",
            },
            "ce_source": {
                "type": "string",
                "description": "URI reference of the sending system, e.g. /nations/CZ/erp.",
            },
            "ce_type": {"type": "string", "const": model.event_type()},
            "ce_time": {"type": "string", "format": "date-time"},
            "ce_subject": {"type": "string", "description": "The entity id (also the key)."},
            "content-type": {"type": "string", "const": CONTENT_TYPE},
        },
    }


def _channel_bindings(spec: TopicSpec) -> dict[str, Any]:
    config: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
    if spec.retention_ms is not None:
        config["retention.ms"] = spec.retention_ms
    binding: dict[str, Any] = {
        "partitions": spec.partitions,
        "replicas": spec.replication,
        "topicConfiguration": config,
        "bindingVersion": KAFKA_BINDING_VERSION,
    }
    if spec.party is None:
        binding["topic"] = spec.name
    return {"kafka": binding}


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ampc as the application that owns these topics."""
    registry = TopicRegistry(Settings(topic_prefix="ampc", replication_factor=3))
    definitions, top = models_json_schema(
        [(model, "validation") for model in EVENT_MODELS],
        ref_template="#/components/schemas/{model}",
    )
    del definitions  # the refs are all in `top`
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    messages: dict[str, Any] = {}
    for model in EVENT_MODELS:
        messages[model.__name__] = {
            "name": model.event_type(),
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": CONTENT_TYPE,
            "headers": _headers_schema(model),
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": "The entity id."},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def add_channel(
        channel_id: str,
        spec: TopicSpec,
        address: str,
        action: str,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        channel: dict[str, Any] = {
            "address": address,
            "description": spec.description,
            "messages": {
                model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}
                for model in spec.events
            },
            "bindings": _channel_bindings(spec),
        }
        if parameters:
            channel["parameters"] = parameters
        channels[channel_id] = channel
        operation_id = ("receive" if action == "receive" else "send") + channel_id[0].upper()
        operations[operation_id + channel_id[1:]] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{model.__name__}"}
                for model in spec.events
            ],
        }

    parties = [party.lower() for party in inbox_parties()]
    inbox = registry.by_role(TopicRole.INBOX)[0]
    add_channel(
        "inbox",
        inbox,
        f"{registry.prefix}.inbox.{{party}}",
        "receive",
        {"party": {"enum": parties, "description": "Lower-case nation or organisation code."}},
    )
    for spec in registry.by_role(TopicRole.CANONICAL):
        add_channel(spec.name.rsplit(".", 1)[1] + "Events", spec, spec.name, "send")
    for spec in registry.by_role(TopicRole.STATE):
        add_channel(_camel(spec.name.rsplit(".", 1)[1]) + "State", spec, spec.name, "send")
    outputs = [s for s in registry.by_role(TopicRole.OUTPUT) if s.party is None]
    for spec in [*outputs, *registry.by_role(TopicRole.DEADLETTER)]:
        add_channel(_camel(spec.name.rsplit(".", 1)[1]), spec, spec.name, "send")
    orders = next(s for s in registry.by_role(TopicRole.OUTPUT) if s.party is not None)
    nations = [p for p in parties if len(p) == 2]
    add_channel(
        "productionOrders",
        orders,
        f"{registry.prefix}.orders.{{nation}}",
        "send",
        {"nation": {"enum": nations, "description": "Lower-case code of the plants' nation."}},
    )
    for spec in registry.by_role(TopicRole.INTERNAL):
        add_channel(_camel(spec.name.rsplit(".", 1)[1]), spec, spec.name, "send")

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ampc — Allied Munitions Production Coordinator",
            "version": __version__,
            "description": (
                "National systems write CloudEvents 1.0 (Kafka binary mode: ce_* headers, JSON "
                "body, entity id as key) to their own inbox topic. ampc validates them, routes "
                "valid events to canonical topics, dead-letters the rest with a reason, keeps "
                "state on compacted topics and publishes plans, production orders and alerts."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "127.0.0.1:19092",
                "protocol": "kafka",
                "description": "The embedded single-node broker started by `ampc broker start`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part.capitalize() for part in rest)


def all_documents(extra: ExtraSchemas | None = None) -> dict[str, str]:
    """Every generated file under schemas/, path -> text."""
    documents = json_schema_documents(extra)
    documents["asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    return documents


def generated_paths(schemas_dir: Path) -> set[str]:
    """Files under schemas/ that the generator owns (so stale ones can be found)."""
    owned = {p.relative_to(schemas_dir).as_posix() for p in schemas_dir.glob("events/*.json")}
    owned |= {p.name for p in schemas_dir.glob("*.schema.json")}
    if (schemas_dir / "asyncapi.yaml").exists():
        owned.add("asyncapi.yaml")
    return owned


def write(schemas_dir: Path, extra: ExtraSchemas | None = None) -> list[str]:
    """Write every document; remove generated files no model produces any more."""
    documents = all_documents(extra)
    for stale in sorted(generated_paths(schemas_dir) - set(documents)):
        (schemas_dir / stale).unlink()
    for path, text in documents.items():
        target = schemas_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return sorted(documents)


def drift(schemas_dir: Path, extra: ExtraSchemas | None = None) -> list[str]:
    """Human lines naming every file that differs from what the models generate."""
    documents = all_documents(extra)
    problems: list[str] = []
    for path, text in sorted(documents.items()):
        target = schemas_dir / path
        if not target.exists():
            problems.append(f"missing: schemas/{path}")
        elif target.read_text() != text:
            problems.append(f"out of date: schemas/{path}")
    for stale in sorted(generated_paths(schemas_dir) - set(documents)):
        problems.append(f"no longer generated: schemas/{stale}")
    return problems
