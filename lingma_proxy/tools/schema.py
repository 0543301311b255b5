"""Validation of tool-call arguments against the tool's declared JSON schema (docs/features.md §6)."""

from __future__ import annotations

import re
from functools import lru_cache

import jsonschema
import referencing
import referencing.exceptions
import ujson
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from ..model import ToolSpec
from .jsontext import compact_json


def validate_arguments(tool: ToolSpec, args: dict) -> str | None:
    """The first validation error as one line ("path: message"), or None when the arguments fit.

    A schema that is itself invalid, or that refers to documents we do not have, means no validation:
    a client's sloppy schema must never make every call fail.
    """
    if not tool.parameters:
        return None
    validator = _validator_for(compact_json(tool.parameters, sort_keys=True))
    if validator is None:
        return None
    try:
        error = best_match(validator.iter_errors(args))
    except (referencing.exceptions.Unresolvable, re.error):
        return None
    if error is None:
        return None
    location = "/".join(str(part) for part in error.absolute_path)
    return f"{location}: {error.message}" if location else error.message


@lru_cache(maxsize=512)
def _validator_for(schema_text: str) -> Validator | None:
    """One validator per distinct schema: agents resend the same tools on every turn."""
    schema = ujson.loads(schema_text)
    if not isinstance(schema, dict):
        return None
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None
    # An explicit empty registry: jsonschema's default would fetch remote $refs over the network.
    return cls(schema, registry=referencing.Registry())
