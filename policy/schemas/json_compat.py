"""Is every document one JSON Schema accepts also accepted by another? A structural checker.

`subset(writer, reader)` answers None when it can show that every instance valid under
`writer` is valid under `reader`, else a reason naming the schema path. BACKWARD asks it with
the new version as reader, FORWARD with the new version as writer, FULL both ways.

It is sound, not complete: when it cannot prove inclusion it refuses (a false "incompatible",
never a false "compatible"). Covered keywords: type (integer within number), enum and const
(each writer value is checked against the reader with the real validator), properties,
required, additionalProperties, minProperties/maxProperties, items (one schema; or
prefixItems-free arrays), minItems/maxItems, uniqueItems, minimum/maximum and their exclusive
forms, multipleOf, minLength/maxLength, pattern and format (must be equal when the reader has
them), anyOf on the writer side (each branch must fit) and on the reader side (one branch must
fit the whole writer). Annotations (title, description, default, examples, $comment,
deprecated, readOnly, writeOnly, $schema, $id) are ignored.
NOT covered: $ref/$defs, allOf, oneOf, not, if/then/else, patternProperties, propertyNames,
dependentRequired/dependentSchemas, prefixItems, contains, unevaluated*: a subschema using one
is compatible only with an identical subschema (same JSON once canonical).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from fractions import Fraction
from typing import Any

ANNOTATIONS = frozenset(
    (
        "title", "description", "default", "examples", "$comment", "deprecated",
        "readOnly", "writeOnly", "$schema", "$id", "$anchor",
    )
)  # fmt: skip
STRUCTURAL = frozenset(
    (
        "type", "enum", "const", "properties", "required", "additionalProperties",
        "minProperties", "maxProperties", "items", "minItems", "maxItems", "uniqueItems",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minLength", "maxLength", "pattern", "format", "anyOf",
    )
)  # fmt: skip
ALL_TYPES = frozenset(("null", "boolean", "object", "array", "number", "integer", "string"))
_NUMERIC = frozenset(("number", "integer"))


def _canonical(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def _where(path: str) -> str:
    return path or "/"


def _types(schema: dict[str, Any]) -> frozenset[str]:
    declared = schema.get("type")
    if declared is None:
        return ALL_TYPES
    names = [declared] if isinstance(declared, str) else list(declared)
    out = set(names)
    if "number" in out:
        out.add("integer")
    return frozenset(out)


_NUMBER_KEYWORDS = frozenset(
    (
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
    )
)  # fmt: skip


def _unsupported(schema: dict[str, Any]) -> list[str]:
    """Keywords the checker does not model, and covered ones in a form it does not model
    (draft-04 boolean exclusiveMinimum, the tuple form of items)."""
    odd = [k for k in schema if k not in STRUCTURAL and k not in ANNOTATIONS]
    for key in _NUMBER_KEYWORDS & set(schema):
        if isinstance(schema[key], bool) or not isinstance(schema[key], int | float):
            odd.append(key)
    if not isinstance(schema.get("items", True), dict | bool):
        odd.append("items")
    if not isinstance(schema.get("anyOf", []), list):
        odd.append("anyOf")
    return sorted(odd)


def _accepts_all(schema: Any) -> bool:
    if schema is True:
        return True
    return isinstance(schema, dict) and all(k in ANNOTATIONS for k in schema)


MAX_STEPS = 20_000  # subschema comparisons per check: nested anyOf could otherwise explode
_STEPS: ContextVar[list[int]] = ContextVar("json_compat_steps")


class _TooComplex(Exception):
    pass


def subset(writer: Any, reader: Any, path: str = "") -> str | None:
    """None if writer's instances are all reader's instances (see module), else why not.
    Bounded: past MAX_STEPS comparisons the answer is a refusal ("too complex")."""
    token = _STEPS.set([0])
    try:
        return _subset(writer, reader, path)
    except _TooComplex:
        return f"the schemas are too complex to compare (over {MAX_STEPS} steps)"
    finally:
        _STEPS.reset(token)


def _subset(writer: Any, reader: Any, path: str) -> str | None:
    steps = _STEPS.get()
    steps[0] += 1
    if steps[0] > MAX_STEPS:
        raise _TooComplex
    if writer is True:
        writer = {}
    if writer is False or _accepts_all(reader):
        return None
    if reader is False:
        return f"at {_where(path)}: the reader accepts nothing, the writer does"
    if not isinstance(writer, dict) or not isinstance(reader, dict):
        return f"at {_where(path)}: not a schema"
    odd = sorted(set(_unsupported(writer)) | set(_unsupported(reader)))
    if odd:
        if _canonical(writer) == _canonical(reader):
            return None
        return f"at {_where(path)}: cannot compare changed subschemas using {', '.join(odd)}"
    if "enum" in writer or "const" in writer:
        return _values_fit(writer, reader, path)
    if "anyOf" in writer:
        rest = {k: v for k, v in writer.items() if k != "anyOf"}
        if not _accepts_all(rest) and _subset(rest, reader, path) is None:
            return None
        for i, branch in enumerate(writer["anyOf"]):
            reason = _subset(_conjoin(rest, branch), reader, f"{path}/anyOf/{i}")
            if reason is not None:
                return reason
        return None
    if "anyOf" in reader:
        rest = {k: v for k, v in reader.items() if k != "anyOf"}
        if rest and _subset(writer, rest, path) is not None:
            return _subset(writer, rest, path)
        reasons = [_subset(writer, branch, path) for branch in reader["anyOf"]]
        if any(r is None for r in reasons):
            return None
        return f"at {_where(path)}: no anyOf branch of the reader takes the writer"
    if "enum" in reader or "const" in reader:
        return (
            f"at {_where(path)}: the reader restricts the values (enum/const), the writer does not"
        )
    return _by_type(writer, reader, path)


def _conjoin(rest: dict[str, Any], branch: Any) -> Any:
    """A schema for (rest and branch), or one that includes it (sound either way)."""
    if not isinstance(branch, dict):
        return rest if branch is True else False
    shared = (set(rest) & set(branch)) - ANNOTATIONS
    return branch if shared else {**rest, **branch}


def _values_fit(writer: dict[str, Any], reader: Any, path: str) -> str | None:
    values = list(writer.get("enum", []))
    if "const" in writer:
        values = (
            [writer["const"]]
            if "enum" not in writer
            else [v for v in values if v == writer["const"]]
        )
    import jsonschema_rs  # imported on first use: ~4 MB of RSS only gateways with JSON schemas pay

    try:
        check = jsonschema_rs.validator_for(reader, offline=True)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError):
        return f"at {_where(path)}: the reader is not a valid schema"
    for value in values:
        if check.is_valid(value):
            continue
        return f"at {_where(path)}: the writer allows {json.dumps(value)[:80]}, the reader does not"
    return None


def _by_type(writer: dict[str, Any], reader: dict[str, Any], path: str) -> str | None:
    wtypes, rtypes = _types(writer), _types(reader)
    missing = sorted(wtypes - rtypes)
    if missing:
        return (
            f"at {_where(path)}: the writer allows type {', '.join(missing)}, the reader does not"
        )
    if wtypes & _NUMERIC:
        reason = _numbers(writer, reader, path, integer_only="number" not in wtypes)
        if reason:
            return reason
    if "string" in wtypes:
        reason = _strings(writer, reader, path)
        if reason:
            return reason
    if "array" in wtypes:
        reason = _arrays(writer, reader, path)
        if reason:
            return reason
    if "object" in wtypes:
        return _objects(writer, reader, path)
    return None


def _bound(
    writer: dict[str, Any], reader: dict[str, Any], key: str, path: str, *, lower: bool
) -> str | None:
    """`key` is a bound of the reader (minLength, maxItems, ...): the writer's must be as tight."""
    if key not in reader:
        return None
    limit = reader[key]
    have = writer.get(key)
    if have is None or (have < limit if lower else have > limit):
        shown = "none" if have is None else have
        return f"at {_where(path)}: the reader has {key} {limit}, the writer {shown}"
    return None


def _numbers(
    writer: dict[str, Any], reader: dict[str, Any], path: str, *, integer_only: bool
) -> str | None:
    for low in (True, False):
        inclusive, exclusive = (
            ("minimum", "exclusiveMinimum") if low else ("maximum", "exclusiveMaximum")
        )
        sign = 1 if low else -1
        r_in, r_ex = reader.get(inclusive), reader.get(exclusive)
        if r_in is None and r_ex is None:
            continue
        w_in, w_ex = writer.get(inclusive), writer.get(exclusive)
        # the writer's tightest bound, as (value, exclusive)
        candidates = [(v, False) for v in (w_in,) if v is not None]
        candidates += [(v, True) for v in (w_ex,) if v is not None]
        if not candidates:
            named = inclusive if r_in is not None else exclusive
            return f"at {_where(path)}: the reader has {named}, the writer no such bound"
        value, excl = max(candidates, key=lambda c: (sign * c[0], c[1]))
        if r_in is not None and sign * value < sign * r_in:
            return f"at {_where(path)}: the reader has {inclusive} {r_in}, the writer {value}"
        if r_ex is not None and (sign * value < sign * r_ex or (value == r_ex and not excl)):
            return f"at {_where(path)}: the reader has {exclusive} {r_ex}, the writer {value}"
    if "multipleOf" in reader:
        step = writer.get("multipleOf")
        if step is None and integer_only and Fraction(str(reader["multipleOf"])) == 1:
            return None
        if step is None or Fraction(str(step)) % Fraction(str(reader["multipleOf"])) != 0:
            step_r = reader["multipleOf"]
            return f"at {_where(path)}: the reader has multipleOf {step_r}, the writer {step}"
    return None


def _strings(writer: dict[str, Any], reader: dict[str, Any], path: str) -> str | None:
    for key, lower in (("minLength", True), ("maxLength", False)):
        reason = _bound(writer, reader, key, path, lower=lower)
        if reason:
            return reason
    for key in ("pattern", "format"):
        if key in reader and writer.get(key) != reader[key]:
            have = writer.get(key)
            return f"at {_where(path)}: the reader has {key} {reader[key]!r}, the writer {have!r}"
    return None


def _arrays(writer: dict[str, Any], reader: dict[str, Any], path: str) -> str | None:
    for key, lower in (("minItems", True), ("maxItems", False)):
        reason = _bound(writer, reader, key, path, lower=lower)
        if reason:
            return reason
    if reader.get("uniqueItems") is True and writer.get("uniqueItems") is not True:
        return f"at {_where(path)}: the reader has uniqueItems, the writer not"
    return _subset(writer.get("items", True), reader.get("items", True), f"{path}/items")


def _objects(writer: dict[str, Any], reader: dict[str, Any], path: str) -> str | None:
    for key, lower in (("minProperties", True), ("maxProperties", False)):
        reason = _bound(writer, reader, key, path, lower=lower)
        if reason:
            return reason
    w_required, r_required = set(writer.get("required", ())), set(reader.get("required", ()))
    w_props, r_props = writer.get("properties", {}), reader.get("properties", {})
    w_extra = writer.get("additionalProperties", True)
    r_extra = reader.get("additionalProperties", True)
    missing = sorted(r_required - w_required)
    if missing:
        name = missing[0]
        return f"at {_where(path)}: property {name!r} is required by the reader, not by the writer"
    for name in sorted(set(w_props) | set(r_props)):
        w_schema = w_props.get(name, w_extra)
        r_schema = r_props.get(name, r_extra)
        reason = _subset(w_schema, r_schema, f"{path}/properties/{name}")
        if reason:
            return reason
    return _subset(w_extra, r_extra, f"{path}/additionalProperties")
