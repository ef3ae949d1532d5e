"""JSON Schema: validation with the failing path, and the structural compatibility checker,
including a hypothesis property: whenever the checker says "writer within reader", every
document the writer accepts the reader accepts too (the checker is sound)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.schemas import json_schema
from policy.schemas.errors import DataInvalid, InvalidSchema
from policy.schemas.json_compat import subset
from policy.schemas.payload import Payload

ORDER = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "qty": {"type": "integer", "minimum": 1},
        "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
    },
    "required": ["id", "qty"],
}


def parsed(schema: Any) -> json_schema.JsonSchema:
    return json_schema.parse(json.dumps(schema).encode())


def test_valid_data_passes_in_text_and_binary_form() -> None:
    schema = parsed(ORDER)
    schema.validate(Payload(text='{"id": "o1", "qty": 2}'))
    schema.validate(Payload(binary=b'{"id": "o1", "qty": 2, "items": [{"sku": "a"}]}'))


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ('{"id": "o1", "qty": "two"}', "/qty", "is not of type"),
        ('{"id": "o1", "qty": 0}', "/qty", "less than the minimum"),
        ('{"id": "o1"}', "/", "required"),
        ('{"id": "o1", "qty": 1, "items": [{"sku": 1}, {}]}', "/items/1", "required"),
        ("not json", "/", "not JSON"),
        ('{"id": "o1", "qty": NaN}', "/", "not JSON"),
    ],
)
def test_invalid_data_is_refused_naming_the_path(data: str, path: str, words: str) -> None:
    with pytest.raises(DataInvalid) as caught:
        parsed(ORDER).validate(Payload(text=data))
    assert caught.value.path == path.rstrip("/") or (path == "/" and caught.value.path == "")
    assert words in str(caught.value)


def test_protobuf_data_is_not_json() -> None:
    with pytest.raises(DataInvalid, match="protobuf Any"):
        parsed(ORDER).validate(Payload(proto=b"", type_url="x"))


@pytest.mark.parametrize(
    "document",
    [b"{", b"[1]", b'{"type": "nope"}', b'{"$ref": "http://127.0.0.1:1/x.json"}', b"\xff"],
)
def test_bad_documents_are_invalid_schemas(document: bytes) -> None:
    with pytest.raises(InvalidSchema):
        json_schema.parse(document)


def test_remote_refs_are_never_fetched() -> None:
    with pytest.raises(InvalidSchema, match="etriev"):
        json_schema.parse(b'{"$ref": "http://127.0.0.1:9/order.json"}')


# ---- compatibility: examples -----------------------------------------------------------

WITH_OPTIONAL_NOTE = {**ORDER, "properties": {**ORDER["properties"], "note": {"type": "string"}}}
WITH_REQUIRED_NOTE = {**WITH_OPTIONAL_NOTE, "required": ["id", "qty", "note"]}
CLOSED = {**ORDER, "additionalProperties": False}
CLOSED_WITH_NOTE = {**WITH_OPTIONAL_NOTE, "additionalProperties": False}


@pytest.mark.parametrize(
    ("writer", "reader", "fragment"),
    [
        # an optional field added to a closed model: old data still reads
        (CLOSED, CLOSED_WITH_NOTE, None),
        # ... to an open model: old data may carry any "note" at all (Confluent's rule too)
        (ORDER, WITH_OPTIONAL_NOTE, "/properties/note: the writer allows type"),
        (WITH_OPTIONAL_NOTE, ORDER, None),  # the other way it is FORWARD-compatible
        (ORDER, WITH_REQUIRED_NOTE, "property 'note' is required"),
        (CLOSED, ORDER, None),  # opening up reads the closed data
        (ORDER, CLOSED, "additionalProperties"),
        ({"type": "integer"}, {"type": "number"}, None),
        ({"type": "number"}, {"type": "integer"}, "type number"),
        ({"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, None),
        ({"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, '"c"'),
        ({"type": "string"}, {"enum": ["a"]}, "restricts the values"),
        ({"type": "integer", "minimum": 5}, {"type": "integer", "minimum": 1}, None),
        ({"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 5}, "minimum 5"),
        ({"type": "integer", "maximum": 9}, {"type": "integer", "exclusiveMaximum": 9}, "9"),
        ({"type": "integer", "multipleOf": 4}, {"type": "integer", "multipleOf": 2}, None),
        ({"type": "integer", "multipleOf": 2}, {"type": "integer", "multipleOf": 4}, "multipleOf"),
        ({"type": "string", "maxLength": 3}, {"type": "string", "maxLength": 5}, None),
        ({"type": "string", "maxLength": 9}, {"type": "string", "maxLength": 5}, "maxLength"),
        ({"type": "string"}, {"type": "string", "pattern": "^a"}, "pattern"),
        ({"type": "array", "items": {"type": "integer"}}, {"type": "array"}, None),
        ({"type": "array"}, {"type": "array", "items": {"type": "integer"}}, "/items"),
        ({"type": "array", "minItems": 2}, {"type": "array", "minItems": 1}, None),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, {"type": ["string", "null"]}, None),
        ({"type": "string"}, {"anyOf": [{"type": "integer"}, {"type": "string"}]}, None),
        ({"type": "null"}, {"anyOf": [{"type": "integer"}, {"type": "string"}]}, "anyOf"),
        (
            {"$defs": {"a": {}}, "$ref": "#/$defs/a"},
            {"$defs": {"a": {}}, "$ref": "#/$defs/a"},
            None,
        ),
        ({"allOf": [{"type": "string"}]}, {"type": "string"}, "cannot compare"),
        (True, {"type": "object"}, "the writer allows type"),
        ({"type": "object"}, True, None),
        ({"type": "object"}, False, "accepts nothing"),
    ],
)
def test_compatibility_examples(writer: Any, reader: Any, fragment: str | None) -> None:
    reason = parsed(reader).reads(parsed(writer))
    if fragment is None:
        assert reason is None
    else:
        assert reason is not None and fragment in reason, reason


def test_the_reason_names_the_nested_path() -> None:
    old = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}}}}
    new = {
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}},
    }
    reason = parsed(new).reads(parsed(old))
    assert reason is not None and reason.startswith("at /properties/a/properties/b:")


# ---- compatibility: soundness on generated schemas and data ------------------------------

NAMES = st.sampled_from(["a", "b", "c"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([1.5, -0.5]),
    st.sampled_from(["", "x", "ab"]),
)


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    typed = st.sampled_from(["null", "boolean", "integer", "number", "string", "object", "array"])
    return st.one_of(
        st.builds(lambda t: {"type": t}, typed),
        st.builds(lambda t, u: {"type": sorted({t, u})}, typed, typed),
        st.builds(lambda lo: {"type": "integer", "minimum": lo}, st.integers(-3, 3)),
        st.builds(lambda hi: {"type": "number", "exclusiveMaximum": hi}, st.integers(-3, 3)),
        st.builds(lambda m: {"type": "integer", "multipleOf": m}, st.sampled_from([1, 2, 3, 4])),
        st.builds(lambda n: {"type": "string", "maxLength": n}, st.integers(0, 2)),
        st.builds(lambda n: {"minLength": n}, st.integers(0, 2)),
        st.builds(
            lambda vs: {"enum": vs}, st.lists(SCALARS, min_size=1, max_size=3, unique_by=repr)
        ),
        st.builds(lambda v: {"const": v}, SCALARS),
        st.just({}),
    )


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(
            lambda props, req, extra: {
                "type": "object",
                "properties": props,
                "required": sorted(req),
                **({} if extra is None else {"additionalProperties": extra}),
            },
            st.dictionaries(NAMES, children, max_size=3),
            st.sets(NAMES, max_size=2),
            st.one_of(st.none(), st.booleans(), children),
        ),
        st.builds(
            lambda items, lo: {"type": "array", "items": items, "minItems": lo},
            children,
            st.integers(0, 2),
        ),
        st.builds(lambda bs: {"anyOf": bs}, st.lists(children, min_size=1, max_size=3)),
        st.booleans(),
    )


SCHEMAS = st.recursive(_leaf(), _extend, max_leaves=6)
DATA = st.recursive(
    SCALARS,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(NAMES, kids, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(writer=SCHEMAS, reader=SCHEMAS, data=st.lists(DATA, min_size=1, max_size=8))
def test_checker_never_calls_compatible_what_is_not(
    writer: Any, reader: Any, data: list[Any]
) -> None:
    if subset(writer, reader) is not None:
        return
    w = jsonschema_rs.validator_for(writer)
    r = jsonschema_rs.validator_for(reader)
    for value in data:
        if w.is_valid(value):
            assert r.is_valid(value), (writer, reader, value)


@settings(max_examples=150, deadline=None)
@given(schema=SCHEMAS)
def test_every_schema_reads_itself(schema: Any) -> None:
    uses_only_modelled = "cannot compare" not in (subset(schema, schema) or "")
    if uses_only_modelled:
        assert subset(schema, schema) is None, schema


@settings(max_examples=150, deadline=None)
@given(schema=SCHEMAS, data=DATA)
def test_validation_agrees_with_the_validator(schema: Any, data: Any) -> None:
    parsed_schema = parsed(schema)
    valid = jsonschema_rs.validator_for(schema).is_valid(data)
    try:
        parsed_schema.validate(Payload(text=json.dumps(data)))
        assert valid
    except DataInvalid:
        assert not valid


def test_comparison_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from policy.schemas import json_compat

    props = {n: {"type": "object", "properties": {"x": {"type": "integer"}}} for n in "abcdef"}
    schema = {"type": "object", "properties": props}
    assert subset(schema, schema) is None
    monkeypatch.setattr(json_compat, "MAX_STEPS", 5)
    assert subset(schema, schema) == "the schemas are too complex to compare (over 5 steps)"
