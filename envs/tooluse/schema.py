"""Tool schemas: the chat-template format, BFCL's dialect, and argument validation.

A tool schema is what ``tokenizer.apply_chat_template(messages, tools=...)``
takes (the OpenAI function format)::

    {"type": "function",
     "function": {"name": "add", "description": "...",
                  "parameters": {"type": "object",
                                 "properties": {"a": {"type": "number"}, ...},
                                 "required": ["a", "b"]}}}

:func:`normalize_tool_schema` accepts that form, the bare ``{"name", "description",
"parameters"}`` form, and BFCL's dialect (``"dict"``, ``"float"``, ``"tuple"``,
``"any"`` types; dotted names, which become underscores as BFCL does for
OpenAI-style models). :func:`validate_arguments` checks a call's arguments
before it runs and says, in words, what is wrong.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

__all__ = [
    "normalize_tool_name",
    "normalize_tool_schema",
    "schema_name",
    "schema_parameters",
    "type_error",
    "validate_arguments",
]

# BFCL (and Python) type names -> JSON Schema type names.
_TYPE_ALIASES = {
    "dict": "object",
    "float": "number",
    "double": "number",
    "int": "integer",
    "long": "integer",
    "tuple": "array",
    "list": "array",
    "str": "string",
    "bool": "boolean",
}
_JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_NESTING = 8


def normalize_tool_name(name: str) -> str:
    """A function name as chat templates and OpenAI-style APIs accept it (dots become underscores)."""
    return name.replace(".", "_")


def _normalize_parameter(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ValueError(
            f"{where}: a parameter schema must be an object, not {type(spec).__name__}"
        )
    spec = dict(spec)
    kind = spec.get("type")
    if isinstance(kind, str):
        kind = _TYPE_ALIASES.get(kind, kind)
        if kind == "any":
            spec.pop("type")
        else:
            spec["type"] = kind
    if isinstance(spec.get("properties"), dict):
        spec["properties"] = {
            key: _normalize_parameter(value, f"{where}.{key}")
            for key, value in spec["properties"].items()
        }
    if isinstance(spec.get("items"), dict):
        spec["items"] = _normalize_parameter(spec["items"], f"{where}[]")
    return spec


def normalize_tool_schema(schema: Any, *, where: str = "tool") -> dict[str, Any]:
    """The chat-template form of ``schema`` (a new dict); raises ValueError saying what is wrong."""
    if not isinstance(schema, dict):
        raise ValueError(
            f"{where}: a tool schema must be a JSON object, not {type(schema).__name__}"
        )
    function = schema.get("function") if schema.get("type") == "function" else schema
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ValueError(f"{where}: a tool schema needs a string 'name'")
    name = normalize_tool_name(function["name"])
    if not _NAME_PATTERN.match(name):
        raise ValueError(
            f"{where}: tool name {function['name']!r} must be 1-64 letters, digits, _ or -"
        )
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    parameters = _normalize_parameter(parameters, f"{where} {name}")
    parameters.setdefault("type", "object")
    if parameters["type"] != "object":
        raise ValueError(f"{where}: the parameters of {name!r} must be an object schema")
    parameters.setdefault("properties", {})
    result = {
        "type": "function",
        "function": {
            "name": name,
            "description": str(function.get("description", "")),
            "parameters": parameters,
        },
    }
    return copy.deepcopy(result)


def schema_name(schema: dict[str, Any]) -> str:
    """The tool name of a normalised schema."""
    return schema["function"]["name"]


def schema_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``parameters`` object of a normalised schema."""
    return schema["function"]["parameters"]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def type_error(value: Any, kind: str | None) -> str | None:
    """Why ``value`` is not of JSON type ``kind`` (None when it is, or when ``kind`` is None).

    ``number`` accepts integers and finite floats; ``integer`` accepts ints only
    (not ``3.0``, not booleans), as BFCL's checker does. A type name outside
    JSON Schema's (BFCL's Java and JavaScript categories: ``String``, ``HashMap``)
    is not checked.
    """
    if kind is None or kind not in _JSON_TYPES:
        return None
    actual = _type_name(value)
    if kind == "number":
        if actual in ("integer", "number"):
            return None if not isinstance(value, float) or math.isfinite(value) else "not finite"
    elif kind == actual:
        return None
    return f"must be of type {kind}, not {actual}"


def _check(value: Any, spec: dict[str, Any], where: str, depth: int) -> str | None:
    if depth > MAX_NESTING:
        return f"{where} is nested too deeply"
    kinds = spec.get("type")
    if isinstance(kinds, list):  # a union such as ["string", "null"]
        if all(type_error(value, k) for k in kinds):
            return f"{where} must be one of the types {kinds}, not {_type_name(value)}"
    elif isinstance(kinds, str):
        problem = type_error(value, kinds)
        if problem:
            return f"{where} {problem}"
    enum = spec.get("enum")
    if isinstance(enum, list) and value not in enum:
        shown = ", ".join(repr(v) for v in enum[:12])
        return f"{where} must be one of {shown}, not {value!r}"
    if isinstance(value, list):
        limit = spec.get("maxItems")
        if isinstance(limit, int) and len(value) > limit:
            return f"{where} may hold at most {limit} items, not {len(value)}"
        items = spec.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                problem = _check(item, items, f"{where}[{index}]", depth + 1)
                if problem:
                    return problem
    if isinstance(value, dict) and isinstance(spec.get("properties"), dict):
        return _check_object(value, spec, where, depth + 1)
    return None


def _check_object(
    value: dict[str, Any], spec: dict[str, Any], where: str, depth: int
) -> str | None:
    properties = spec.get("properties") or {}
    for key in spec.get("required") or []:
        if key not in value:
            return (
                f"{where} lacks the key {key!r}" if where else f"missing required argument {key!r}"
            )
    extra = [key for key in value if key not in properties]
    if extra and spec.get("additionalProperties") is not True:
        allowed = ", ".join(repr(k) for k in properties) or "none"
        what = f"{where} has the unexpected key" if where else "unexpected argument"
        return f"{what} {extra[0]!r} (allowed: {allowed})"
    for key, item in value.items():
        if key in properties:
            problem = _check(item, properties[key], f"argument {key!r}", depth)
            if problem:
                return problem
    return None


def validate_arguments(schema: dict[str, Any], arguments: Any) -> str | None:
    """Why ``arguments`` do not fit the normalised ``schema``, in words; None when they fit."""
    if not isinstance(arguments, dict):
        return f"arguments must be a JSON object, not {_type_name(arguments)}"
    return _check_object(arguments, schema_parameters(schema), "", 0)
