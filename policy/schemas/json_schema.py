"""JSON Schema documents: parse, validate data (jsonschema-rs), and the compatibility check.

A document is a JSON object or boolean in UTF-8; its draft comes from `$schema` (2020-12 when
absent). Remote `$ref`s are never fetched (offline): a gateway must not make requests on a
schema author's behalf, and every region must judge the same document the same way.
Compatibility is judged by the structural checker in policy/schemas/json_compat.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from policy.schemas import json_compat
from policy.schemas.errors import DataInvalid, InvalidSchema
from policy.schemas.payload import Payload, json_value

MAX_DEPTH = 64  # nesting of a document; deeper is refused (the checker recurses)


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@dataclass(frozen=True, slots=True, eq=False)
class JsonSchema:
    document: Any
    validator: Any

    def validate(self, payload: Payload) -> None:
        value = json_value(payload)
        if self.validator.is_valid(value):
            return
        error = next(iter(self.validator.iter_errors(value)))
        raise DataInvalid(_pointer(error.instance_path), error.message)

    def reads(self, writer: JsonSchema) -> str | None:
        """None if every document `writer` accepts, this schema accepts; else why not."""
        return json_compat.subset(writer.document, self.document)


def parse(document: bytes) -> JsonSchema:
    try:
        value = json.loads(document.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidSchema(f"not a JSON document: {str(exc)[:200]}") from None
    if not isinstance(value, dict | bool):
        raise InvalidSchema("a JSON Schema is an object or a boolean")
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise InvalidSchema(f"the schema nests deeper than {MAX_DEPTH}")
    import jsonschema_rs  # imported on first use: ~4 MB of RSS only gateways with JSON schemas pay

    try:
        validator = jsonschema_rs.validator_for(value, offline=True)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        first = str(exc).split("\n", 1)[0]
        raise InvalidSchema(f"not a valid JSON Schema: {first[:300]}") from None
    return JsonSchema(value, validator)
