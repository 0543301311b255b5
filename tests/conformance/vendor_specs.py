"""The vendor OpenAPI specs that llm-comply ships, and validation of JSON values against their schemas.

schemathesis reads the spec files itself; this module serves the checks it cannot make: the SSE
events (the specs describe each event's JSON, not the event-stream envelope schemathesis expects)
and the classification of accepted negative data in deviations.py.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator


@dataclass(frozen=True)
class Api:
    """One vendor API under test: its spec, operation, request schema and the proxy path prefix."""

    name: str
    spec_file: str
    operation_id: str
    request_schema: str
    base_path: str  # appended to the proxy URL to form the spec's server URL


CHAT = Api("openai-chat", "openai_chat.json", "createChatCompletion", "CreateChatCompletionRequest", "/v1")
RESPONSES = Api("open-responses", "openresponses.json", "createResponse", "CreateResponseBody", "/v1")
MESSAGES = Api("anthropic", "anthropic.json", "messages_post", "CreateMessageParams", "")
APIS = (CHAT, RESPONSES, MESSAGES)


def spec_path(api: Api) -> Path:
    return Path(str(importlib.resources.files("llm_comply") / "specs" / api.spec_file))


@functools.cache
def _spec_as_json_schema(api: Api) -> dict:
    """The adjusted spec, usable as a JSON Schema root so that `#/components/...` refs resolve."""
    return _nullable_to_json_schema(adjusted_spec(api))


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` becomes a JSON Schema null alternative (3.1 specs have none)."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def validator(api: Api, schema_name: str) -> Draft202012Validator:
    root = copy.copy(_spec_as_json_schema(api))
    root["$ref"] = f"#/components/schemas/{schema_name}"
    return Draft202012Validator(root)


def schema_errors(api: Api, schema_name: str, value: Any) -> list[str]:
    """Every way `value` breaks the named schema of `api`'s spec, as "path: message" lines."""
    errors = validator(api, schema_name).iter_errors(value)
    return [f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message[:300]}" for error in errors]


def request_is_valid(api: Api, body: Any) -> bool:
    return validator(api, api.request_schema).is_valid(body)


def adjusted_spec(api: Api) -> dict:
    """The spec as the suite feeds it to schemathesis, with the adjustments README lists:

    - A discriminator without a mapping gets one from its alternatives' single `type` values.
      OpenAPI reads a missing mapping as the schema names ("Message"), which the spec's own
      `type` enums ("message") contradict; left alone, every correct output item fails.
    - createResponse takes JSON only (every client sends JSON; the form-encoded alternative the
      spec lists is rejected with a 400), and requires `model` (docs/clients.md: no model, no answer).
    """
    spec = json.loads(spec_path(api).read_text())
    _map_discriminators(spec, spec["components"]["schemas"])
    if api is RESPONSES:
        operation = spec["paths"]["/responses"]["post"]
        operation["requestBody"]["content"] = {"application/json": operation["requestBody"]["content"]["application/json"]}
        body = spec["components"]["schemas"][api.request_schema]
        body["required"] = sorted({*body.get("required", []), "model"})
        body["properties"]["model"] = {"type": "string"}
    return spec


def _map_discriminators(node: Any, schemas: dict) -> None:
    if isinstance(node, list):
        for item in node:
            _map_discriminators(item, schemas)
        return
    if not isinstance(node, dict):
        return
    discriminator = node.get("discriminator")
    if isinstance(discriminator, dict) and "mapping" not in discriminator:
        mapping = {}
        for choice in node.get("oneOf", []) + node.get("anyOf", []):
            ref = choice.get("$ref", "") if isinstance(choice, dict) else ""
            target = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref.startswith("#/components/schemas/") else {}
            tag = target.get("properties", {}).get(discriminator["propertyName"], {})
            values = tag.get("enum") or ([tag["const"]] if "const" in tag else [])
            if len(values) == 1:
                mapping[values[0]] = ref
        if mapping:
            discriminator["mapping"] = mapping
    for value in node.values():
        _map_discriminators(value, schemas)


@functools.cache
def event_schemas(api: Api) -> dict[str, str]:
    """Streamed event type → the spec's schema for it; chat chunks carry no type and have one schema.

    Anthropic's `ping` and `error` events are documented in prose only; the spec has no schema.
    """
    schemas = adjusted_spec(api)["components"]["schemas"]
    if api is CHAT:
        return {}
    if api is RESPONSES:
        stream = adjusted_spec(api)["paths"]["/responses"]["post"]["responses"]["200"]["content"]["text/event-stream"]
        refs = [choice["$ref"] for choice in stream["schema"]["oneOf"]]
    else:
        refs = list(schemas["MessageStreamEvent"]["discriminator"]["mapping"].values())
    names = [ref.rsplit("/", 1)[-1] for ref in refs]
    return {_single_type(schemas[name]): name for name in names}


def _single_type(schema: dict) -> str:
    tag = schema["properties"]["type"]
    return tag["const"] if "const" in tag else tag["enum"][0]


def event_errors(api: Api, event_type: str, payload: Any) -> list[str]:
    """How one streamed event breaks the spec; unknown event types are an error too."""
    if api is CHAT:
        return schema_errors(api, "CreateChatCompletionStreamResponse", payload)
    schema = event_schemas(api).get(event_type)
    if schema is None:
        return [f"no schema in the spec for event {event_type!r}"]
    return schema_errors(api, schema, payload)
