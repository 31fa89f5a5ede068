"""JSON Schema checks of gateway configs.

Every plugin ships a JSON Schema for its config; the core adds the properties common
to every gateway (``timeouts``) and checks a config against it before the gateway is
built. `config_problems` lists every violation, one line each, naming the key and the
rule it breaks and never the value: a config holds secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema

__all__ = [
    "DEFAULT_TIMEOUTS",
    "TIMEOUTS_SCHEMA",
    "config_problems",
    "full_schema",
    "load_schema",
]

TIMEOUTS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "description": "Seconds to connect, to wait for a read, and for a whole exchange.",
    "properties": {
        "connect": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
        "read": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        "total": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
    },
    "additionalProperties": False,
}


def load_schema(package: str, name: str) -> Mapping[str, Any]:
    """Read a JSON Schema shipped as package data (``schemas/<name>`` in ``package``)."""
    text = resources.files(package).joinpath("schemas", name).read_text(encoding="utf-8")
    schema: Mapping[str, Any] = json.loads(text)
    return schema


# Keyed by the schema object's id; each entry keeps that object alive, so the id can
# never be reused by another schema while the entry exists.
_FULL_SCHEMAS: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}
_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def full_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with the properties common to every gateway added."""
    key = id(schema)
    if key not in _FULL_SCHEMAS:
        full = dict(schema)
        properties = dict(full.get("properties", {}))
        properties.setdefault("timeouts", TIMEOUTS_SCHEMA)
        full["properties"] = properties
        _FULL_SCHEMAS[key] = (schema, full)
    return _FULL_SCHEMAS[key][1]


# The defaults of `paycore.gateways.base.Timeouts`, for the check across its fields.
DEFAULT_TIMEOUTS = {"connect": 5.0, "read": 30.0, "total": 60.0}


def config_problems(schema: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """Every way ``config`` breaks ``schema`` (plus the common properties), sorted."""
    validator = _validator(schema)
    problems = {line for error in validator.iter_errors(dict(config)) for line in _describe(error)}
    if not any(line.startswith("timeouts") for line in problems):
        problems.update(_timeouts_problems(config.get("timeouts")))
    return sorted(problems)


def _timeouts_problems(timeouts: Any) -> list[str]:
    # A mutation is sent only with its whole read timeout inside the total budget.
    values = {**DEFAULT_TIMEOUTS, **(timeouts if isinstance(timeouts, Mapping) else {})}
    if values["total"] < values["read"]:
        return [f"timeouts.total: must be at least timeouts.read ({values['read']:g} s)"]
    return []


def _validator(schema: Mapping[str, Any]) -> Any:
    key = id(schema)
    if key not in _VALIDATORS:
        full = full_schema(schema)
        standard = jsonschema.validators.validator_for(full)
        standard.check_schema(full)
        # JSON Schema counts 300.0 as an integer; a config says 300 where it means one
        # (TOML and JSON tell them apart), as paycore's own settings require.
        checker = standard.TYPE_CHECKER.redefine("integer", _is_integer)
        validator_class = jsonschema.validators.extend(standard, type_checker=checker)  # type: ignore[no-untyped-call]
        validator = validator_class(full, format_checker=validator_class.FORMAT_CHECKER)
        _VALIDATORS[key] = (schema, validator)
    return _VALIDATORS[key][1]


def _is_integer(_: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _describe(error: jsonschema.ValidationError) -> list[str]:
    """Lines for a schema violation, naming keys and rules but never values."""
    path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    rule: Any = error.validator
    expected: Any = error.validator_value
    schema: Any = error.schema
    instance: Any = error.instance
    if rule == "required":
        # jsonschema reports each missing key separately, each with the whole list.
        prefix = "" if path == "(top level)" else f"{path}."
        return [f"{prefix}{key}: is required" for key in expected if key not in (instance or {})]
    if rule == "additionalProperties":
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        return [f"{path}: unknown key(s) {', '.join(map(repr, extra))}"]
    return [f"{path}: {_rule_message(str(rule), expected)}"]


def _rule_message(rule: str, expected: Any) -> str:
    match rule:
        case "type":
            return f"must be of type {expected}"
        case "enum":
            return f"must be one of {', '.join(map(repr, expected))}"
        case "const":
            return f"must be {expected!r}"
        case "pattern":
            return "does not have the expected format"
        case "format":
            return f"must be a valid {expected}"
        case "minLength":
            return f"must be at least {expected} characters long"
        case "maxLength":
            return f"must be at most {expected} characters long"
        case "minimum":
            return f"must be at least {expected}"
        case "maximum":
            return f"must be at most {expected}"
        case "exclusiveMinimum":
            return f"must be greater than {expected}"
        case "exclusiveMaximum":
            return f"must be less than {expected}"
        case _ if isinstance(expected, Mapping) and isinstance(expected.get("description"), str):
            # A composite rule ("not", "oneOf" …) says what it wants in its description.
            return str(expected["description"])
        case _:
            return f"breaks the {rule!r} rule of the schema"
