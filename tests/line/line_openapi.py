"""JSON Schema validators built from LINE's OpenAPI documents, with `discriminator` resolved.

Plain JSON Schema validators ignore OpenAPI's `discriminator`: `{"$ref": "Message"}` would check only the base
properties (`type`, `quickReply`, `sender`) and let anything through. So before validating:
1. every `allOf: [{$ref: Base}, {...}]` subtype is flattened into one object schema (base and own properties);
2. every subtype named in a discriminator mapping gets its `type` pinned to its mapping value;
3. every discriminated base is replaced by a dispatcher: its property must be one of the mapping's values, and
   the object must then validate against the mapped subtype (if/then per value);
4. closed world: an object schema that lists its properties rejects any other property (the spec does not say
   `additionalProperties: false`, but a typo in a field name is silently ignored by LINE, so we want to know).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

PREFIX = "#/components/schemas/"


def _name(ref: str) -> str:
    assert ref.startswith(PREFIX), ref
    return ref[len(PREFIX) :]


def _convert_openapi(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema 2020-12 for what these documents use (`nullable`)."""
    if isinstance(node, dict):
        node = {k: _convert_openapi(v) for k, v in node.items() if k not in ("example", "externalDocs")}
        if node.pop("nullable", False) and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_convert_openapi(v) for v in node]
    return node


def resolve(schemas: dict[str, Any]) -> dict[str, Any]:
    source = _convert_openapi(copy.deepcopy(schemas))
    flat: dict[str, Any] = {}

    def flatten(name: str) -> dict[str, Any]:
        if name in flat:
            return flat[name]
        schema = source[name]
        if "allOf" not in schema:
            flat[name] = copy.deepcopy(schema)
            return flat[name]
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in [*schema["allOf"], {k: v for k, v in schema.items() if k != "allOf"}]:
            part = flatten(_name(part["$ref"])) if "$ref" in part else part
            merged["properties"].update(copy.deepcopy(part.get("properties", {})))
            merged["required"] += [r for r in part.get("required", []) if r not in merged["required"]]
        if not merged["required"]:
            del merged["required"]
        flat[name] = merged
        return merged

    for name in source:
        flatten(name)
    for name, schema in source.items():
        discriminator = schema.get("discriminator")
        if not discriminator or "mapping" not in discriminator:
            continue
        prop, mapping = discriminator["propertyName"], discriminator["mapping"]
        for value, ref in mapping.items():
            flat[_name(ref)].setdefault("properties", {})[prop] = {"const": value}
        flat[name] = {
            "type": "object",
            "required": [prop],
            "properties": {prop: {"enum": sorted(mapping)}},
            "allOf": [
                {"if": {"properties": {prop: {"const": value}}, "required": [prop]}, "then": {"$ref": ref}}
                for value, ref in sorted(mapping.items())
            ],
        }
    for schema in flat.values():
        if "discriminator" in schema:
            del schema["discriminator"]
        _close(schema)
    return flat


def _close(node: Any) -> None:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node and "allOf" not in node:
            node["additionalProperties"] = False
        for key, value in node.items():
            if key != "if":  # a dispatcher's condition looks at one property only
                _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


class OpenAPISchemas:
    def __init__(self, path: Path) -> None:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.schemas = resolve(document["components"]["schemas"])

    @cache  # noqa: B019 - a handful of long-lived instances
    def validator(self, name: str) -> Draft202012Validator:
        root = {"$ref": PREFIX + name, "components": {"schemas": self.schemas}}
        Draft202012Validator.check_schema(root)
        return Draft202012Validator(root)

    def errors(self, name: str, instance: Any) -> list[str]:
        found = sorted(self.validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in _leaves(found)]


def _leaves(errors: list[Any]) -> list[Any]:
    """The most specific errors (an if/then failure names the subtype's own error in its context)."""
    out = []
    for error in errors:
        out.extend(_leaves(list(error.context)) if error.context else [error])
    return out
