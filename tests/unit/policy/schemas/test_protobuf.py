"""Protobuf: a FileDescriptorSet + message name; data parsed with the built class; field
numbers, types and labels as compatibility."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, timestamp_pb2

from policy.schemas import protobuf
from policy.schemas.errors import DataInvalid, InvalidSchema
from policy.schemas.payload import Payload

F = descriptor_pb2.FieldDescriptorProto


def order_set(
    *fields: tuple[str, int, int, int], syntax: str = "proto3", imports: bool = False
) -> bytes:
    """shop.proto with message shop.Order of (name, number, type, label) and shop.Line."""
    fdp = descriptor_pb2.FileDescriptorProto(name="shop.proto", package="shop", syntax=syntax)
    line = fdp.message_type.add(name="Line")
    line.field.add(name="sku", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    order = fdp.message_type.add(name="Order")
    for name, number, kind, label in fields:
        field = order.field.add(name=name, number=number, type=kind, label=label)
        if kind == F.TYPE_MESSAGE:
            field.type_name = ".shop.Line"
    if imports:
        fdp.dependency.append("google/protobuf/timestamp.proto")
        at = order.field.add(name="at", number=15, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL)
        at.type_name = ".google.protobuf.Timestamp"
    return descriptor_pb2.FileDescriptorSet(file=[fdp]).SerializeToString()


BASE = (
    ("id", 1, F.TYPE_STRING, F.LABEL_OPTIONAL),
    ("qty", 2, F.TYPE_INT32, F.LABEL_OPTIONAL),
    ("lines", 3, F.TYPE_MESSAGE, F.LABEL_REPEATED),
)


def schema(*fields: tuple[str, int, int, int], **kw: object) -> protobuf.ProtobufSchema:
    return protobuf.parse(protobuf.document(order_set(*fields, **kw), "shop.Order"))  # type: ignore[arg-type]


def test_binary_json_and_any_data_pass() -> None:
    s = schema(*BASE)
    msg = s.cls(id="o1", qty=2)
    msg.lines.add(sku="a")  # type: ignore[attr-defined]
    s.validate(Payload(binary=msg.SerializeToString()))
    s.validate(Payload(text='{"id": "o1", "qty": 2, "lines": [{"sku": "a"}]}'))
    s.validate(Payload(proto=msg.SerializeToString(), type_url="type.googleapis.com/shop.Order"))


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (Payload(binary=b"\xff\xff\xff"), "not a shop.Order"),
        (Payload(binary=b"\x20\x01"), "field number 4"),  # field 4 is not declared
        (Payload(binary=b"\x1a\x02\x10\x01"), "/lines/0: field number 2"),  # unknown in a Line
        (Payload(text='{"idx": 1}'), "no field named"),
        (Payload(proto=b"", type_url="type.googleapis.com/shop.Other"), "shop.Other"),
    ],
)
def test_bad_data_is_refused(payload: Payload, fragment: str) -> None:
    with pytest.raises(DataInvalid) as caught:
        schema(*BASE).validate(payload)
    assert fragment in str(caught.value)


def test_proto2_required_fields() -> None:
    s = schema(("id", 1, F.TYPE_STRING, F.LABEL_REQUIRED), syntax="proto2")
    with pytest.raises(DataInvalid, match="required"):
        s.validate(Payload(binary=b""))
    s.validate(Payload(binary=s.cls(id="x").SerializeToString()))


def test_well_known_imports_come_from_the_runtime() -> None:
    s = schema(*BASE, imports=True)
    at = timestamp_pb2.Timestamp(seconds=5)
    s.validate(
        Payload(binary=b"\x7a" + bytes([len(at.SerializeToString())]) + at.SerializeToString())
    )


def test_bad_documents() -> None:
    with pytest.raises(InvalidSchema, match="descriptor_set"):
        protobuf.parse(b'{"message": "x"}')
    with pytest.raises(InvalidSchema, match="no message"):
        protobuf.parse(protobuf.document(order_set(*BASE), "shop.Missing"))
    with pytest.raises(InvalidSchema, match="FileDescriptorSet"):
        protobuf.parse(protobuf.document(b"\xff\xff", "shop.Order"))
    fdp = descriptor_pb2.FileDescriptorProto(name="a.proto", dependency=["elsewhere.proto"])
    raw = descriptor_pb2.FileDescriptorSet(file=[fdp]).SerializeToString()
    with pytest.raises(InvalidSchema, match=r"lacks 'elsewhere\.proto'"):
        protobuf.parse(protobuf.document(raw, "x"))


@pytest.mark.parametrize(
    ("writer", "reader", "fragment"),
    [
        (BASE, BASE, None),
        (BASE, (*BASE, ("note", 4, F.TYPE_STRING, F.LABEL_OPTIONAL)), None),  # added
        (BASE, BASE[:2], None),  # removed
        (BASE, (BASE[0], ("qty", 2, F.TYPE_INT64, F.LABEL_OPTIONAL)), None),  # int32 -> int64
        (BASE, (BASE[0], ("qty", 2, F.TYPE_STRING, F.LABEL_OPTIONAL)), "changed type"),
        (BASE, (BASE[0], ("qty", 2, F.TYPE_INT32, F.LABEL_REPEATED)), "repeated"),
        (BASE, (BASE[0], ("qty", 2, F.TYPE_SINT32, F.LABEL_OPTIONAL)), "int32 written"),
        ((BASE[0],), (BASE[0], ("qty", 2, F.TYPE_INT32, F.LABEL_REQUIRED)), "required field 2"),
    ],
)
def test_field_compatibility(
    writer: tuple[tuple[str, int, int, int], ...],
    reader: tuple[tuple[str, int, int, int], ...],
    fragment: str | None,
) -> None:
    syntax = "proto2" if any(f[3] == F.LABEL_REQUIRED for f in (*writer, *reader)) else "proto3"
    reason = schema(*reader, syntax=syntax).reads(schema(*writer, syntax=syntax))
    if fragment is None:
        assert reason is None
    else:
        assert reason is not None and fragment in reason, reason
