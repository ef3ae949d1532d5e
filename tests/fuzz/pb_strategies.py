"""Hypothesis strategies for protobuf inputs at the edges: any message type, three shapes.

- `messages(cls)`: structured but wrong: every field (oneofs, maps, repeated, nested) drawn
  from its wire type's whole range, strings biased towards values a decoder treats specially.
- `mutated(seeds)`: valid encodings with bytes flipped, inserted, deleted or cut.
- `wire(cls)`: arbitrary bytes, structured messages, their mutations, and deep nests of one
  field (`nested`), mixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

F = FieldDescriptor

SPECIAL_TEXT = (
    "",
    " ",
    "*",
    "a" * 300,
    "1.0",
    "0.3",
    "id",
    "source",
    "specversion",
    "type",
    "time",
    "data",
    "datacontenttype",
    "dataschema",
    "subject",
    "1234",
    "Ünïcode",
    "x-y",
    "application/json",
    "text/plain",
    "2026-13-45T99:99:99Z",
    "1970-01-01T00:00:00Z",
    "not a uri",
    "http://[::1",
    "meshgate://topic/*",
    "meshgate://topic/orders",
    "orders",
    "eu",
    "\x00",
    "\n",
    "0x" + "ab" * 20,
)

_INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}

text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
)


def _int(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = [v for v in (lo, hi, 0, 1, -1, 2**31 - 1, 2**32 - 1, 2**63 - 1) if lo <= v <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INT_RANGES:
        return _int(*_INT_RANGES[kind])
    if kind == F.TYPE_STRING:
        return text
    if kind == F.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == F.TYPE_BOOL:
        return st.booleans()
    if kind in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return st.floats(width=32 if kind == F.TYPE_FLOAT else 64)
    if kind == F.TYPE_ENUM:
        return _int(-(2**31), 2**31 - 1)  # proto3 enums are open: any int32 arrives
    raise TypeError(f"no strategy for field type {kind}")


@st.composite
def _fill(draw: st.DrawFn, cls: type[Message], depth: int) -> Message:
    msg = cls()
    desc: Descriptor = cls.DESCRIPTOR
    oneof_fields = {f.name for o in desc.oneofs for f in o.fields}
    chosen = {o.name: draw(st.sampled_from([None, *o.fields])) for o in desc.oneofs}
    for field in desc.fields:
        if field.name in oneof_fields:
            if chosen[field.containing_oneof.name] is not field:
                continue
        elif not draw(st.booleans()):
            continue
        _set(draw, msg, field, depth)
    return msg


def _set(draw: st.DrawFn, msg: Message, field: FieldDescriptor, depth: int) -> None:
    target = getattr(msg, field.name)
    sub = field.message_type
    if sub is not None and sub.GetOptions().map_entry:
        key_field, value_field = sub.fields_by_name["key"], sub.fields_by_name["value"]
        for _ in range(draw(st.integers(0, 3))):
            key = draw(_scalar(key_field))
            if value_field.message_type is None:
                target[key] = draw(_scalar(value_field))
            elif depth > 0:
                target[key].CopyFrom(
                    draw(_fill(GetMessageClass(value_field.message_type), depth - 1))
                )
        return
    if field.is_repeated:
        for _ in range(draw(st.integers(0, 3))):
            if sub is None:
                target.append(draw(_scalar(field)))
            elif depth > 0:
                target.add().CopyFrom(draw(_fill(GetMessageClass(sub), depth - 1)))
        return
    if sub is None:
        setattr(msg, field.name, draw(_scalar(field)))
    elif depth > 0:
        target.CopyFrom(draw(_fill(GetMessageClass(sub), depth - 1)))
    else:
        target.SetInParent()


def messages(cls: type[Message], depth: int = 5) -> st.SearchStrategy[Message]:
    return _fill(cls, depth)


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "dup"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "cut":
            del data[at:]
        elif op == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint((field_number << 3) | 2) + _varint(len(payload)) + payload


def nest(path: Sequence[int], depth: int, core: bytes = b"") -> bytes:
    """`depth` levels of the field numbers in `path` (cycled) around `core`: a deep tree."""
    data = core
    for level in range(depth):
        data = length_delimited(path[level % len(path)], data)
    return data


def nested(path: Sequence[int], *, outer: Sequence[int] = ()) -> st.SearchStrategy[bytes]:
    """A nest of 1..20000 levels (e.g. a filter's `not` inside `not`), wrapped in `outer`."""

    def build(depth: int) -> bytes:
        data = nest(path, depth)
        for field_number in reversed(outer):
            data = length_delimited(field_number, data)
        return data

    return st.one_of(st.integers(1, 200), st.integers(1, 20000)).map(build)


def wire(
    cls: type[Message], *, extra: Sequence[st.SearchStrategy[bytes]] = (), depth: int = 5
) -> st.SearchStrategy[bytes]:
    structured = messages(cls, depth).map(lambda m: m.SerializeToString())
    return st.one_of(
        st.binary(max_size=256),
        structured,
        mutated(structured),
        *extra,
    )
