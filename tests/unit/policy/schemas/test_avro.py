"""Avro: data in JSON and binary form, and the schema resolution rules as compatibility."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest

from policy.schemas import avro
from policy.schemas.errors import DataInvalid, InvalidSchema
from policy.schemas.payload import Payload

ORDER: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "qty", "type": "int"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
    ],
}


def parsed(schema: Any) -> avro.AvroSchema:
    return avro.parse(json.dumps(schema).encode())


def with_fields(*fields: dict[str, Any], base: dict[str, Any] = ORDER) -> dict[str, Any]:
    return {**base, "fields": [*base["fields"], *fields]}


def binary(schema: Any, record: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def test_json_and_binary_data_pass() -> None:
    schema = parsed(ORDER)
    record = {"id": "o1", "qty": 2, "kind": "A"}
    schema.validate(Payload(text=json.dumps(record)))
    schema.validate(Payload(binary=binary(ORDER, record)))
    schema.validate(Payload(binary=json.dumps(record).encode(), content_type="application/json"))


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (Payload(text='{"id": "o1", "qty": "x", "kind": "A"}'), "shop/Order/qty"),
        (Payload(text='{"id": "o1", "qty": 1, "kind": "C"}'), "kind"),
        (Payload(text='{"id": "o1", "kind": "A"}'), "qty"),
        (Payload(binary=b"\x02"), "not Avro binary"),
        (Payload(binary=binary(ORDER, {"id": "o", "qty": 1, "kind": "B"}) + b"\x00"), "left"),
        (Payload(proto=b"", type_url="x"), "Any"),
    ],
)
def test_bad_data_is_refused(payload: Payload, fragment: str) -> None:
    with pytest.raises(DataInvalid) as caught:
        parsed(ORDER).validate(payload)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "document", [b"{", b'{"type": "record", "name": "x", "fields": 3}', b'"nope"']
)
def test_bad_documents(document: bytes) -> None:
    with pytest.raises(InvalidSchema):
        avro.parse(document)


@pytest.mark.parametrize(
    ("writer", "reader", "fragment"),
    [
        (ORDER, ORDER, None),
        (ORDER, with_fields({"name": "note", "type": "string", "default": ""}), None),
        (ORDER, with_fields({"name": "note", "type": "string"}), "'note' has no default"),
        (
            with_fields({"name": "note", "type": "string"}),
            ORDER,
            None,
        ),  # extra writer field skipped
        (ORDER, {**ORDER, "fields": [{"name": "qty", "type": "long"}]}, None),  # int -> long
        (
            {**ORDER, "fields": [{"name": "qty", "type": "long"}]},
            {**ORDER, "fields": [{"name": "qty", "type": "int"}]},
            "the writer has long",
        ),
        (ORDER, {**ORDER, "name": "Invoice"}, "Invoice"),
        (ORDER, {**ORDER, "name": "Invoice", "aliases": ["Order"]}, None),
        (
            {**ORDER, "fields": [{"name": "n", "type": "int"}]},
            {**ORDER, "fields": [{"name": "count", "type": "int", "aliases": ["n"]}]},
            None,
        ),
        (
            {
                **ORDER,
                "fields": [
                    {"name": "k", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}}
                ],
            },
            {
                **ORDER,
                "fields": [{"name": "k", "type": {"type": "enum", "name": "K", "symbols": ["A"]}}],
            },
            "lacks 'B'",
        ),
        (
            {
                **ORDER,
                "fields": [
                    {"name": "k", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}}
                ],
            },
            {
                **ORDER,
                "fields": [
                    {
                        "name": "k",
                        "type": {"type": "enum", "name": "K", "symbols": ["A"], "default": "A"},
                    }
                ],
            },
            None,
        ),
        ("int", ["null", "int"], None),
        (["null", "int"], "int", "the writer has null"),
        ("string", ["null", "int"], "no branch"),
        (["null", "int"], ["null", "long"], None),
        ({"type": "array", "items": "int"}, {"type": "array", "items": "string"}, "/items"),
        ({"type": "map", "values": "int"}, {"type": "map", "values": "double"}, None),
        (
            {"type": "fixed", "name": "F", "size": 4},
            {"type": "fixed", "name": "F", "size": 8},
            "size",
        ),
        ("string", "bytes", None),
    ],
)
def test_schema_resolution(writer: Any, reader: Any, fragment: str | None) -> None:
    reason = parsed(reader).reads(parsed(writer))
    if fragment is None:
        assert reason is None
    else:
        assert reason is not None and fragment in reason, reason


def test_recursive_records_resolve() -> None:
    node = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"], "default": None}],
    }
    assert parsed(node).reads(parsed(node)) is None


def test_data_nested_too_deep_is_refused_not_a_crash() -> None:
    from policy.schemas.compatibility import Verdict
    from policy.schemas.model import Format
    from policy.schemas.selection import validate

    node = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}],
    }
    schema = parsed(node)
    verdict = Verdict(1, Format.AVRO, b"", True, "", schema)
    shallow = '{"next":' * 500 + "null" + "}" * 500
    validate(verdict, Payload(text=shallow), topic="t", event_type="n", event_id="e")
    deep = '{"next":' * 5000 + "null" + "}" * 5000
    with pytest.raises(DataInvalid, match="nested too deep"):
        validate(verdict, Payload(text=deep), topic="t", event_type="n", event_id="e")
