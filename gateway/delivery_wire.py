"""A Subscribe answer's bytes, written around the stored event bytes (no decode, no re-encode).

Why: `Delivery.event` is an embedded CloudEvent message, and on the wire an embedded message is
just its serialized bytes behind a tag and a length. The stored payload IS that serialization
(canonical, what the publisher signed), so a `SubscribeResponse{batch}` is the stored bytes
with a few framing bytes around each: bytes stored = bytes sent, with no parse per event.

Rule: the output parses to the same `SubscribeResponse(batch=...)` protobuf would build, and is
byte-identical to its `SerializeToString()` whenever protobuf serializes the event as stored
(fields in number order, proto3 zero scalars omitted, the message field always present), so a
client cannot tell the difference (tests/unit/gateway/test_delivery_wire.py compares both).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

# (field number << 3) | wire type: 0 varint, 2 length-delimited
_RESPONSE_BATCH = b"\x12"  # SubscribeResponse.batch = 2
_BATCH_DELIVERY = b"\x0a"  # DeliveryBatch.deliveries = 1
_OFFSET = b"\x08"  # Delivery.offset = 1
_EVENT = b"\x12"  # Delivery.event = 2
_ATTEMPT = b"\x18"  # Delivery.attempt = 3


class Outgoing(Protocol):
    @property
    def offset(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def delivery_batch_response(batch: Iterable[Outgoing]) -> bytes:
    """The serialized `SubscribeResponse(batch=DeliveryBatch(deliveries=...))` of `batch`."""
    parts: list[bytes] = []
    for o in batch:
        head = b""
        if o.offset:
            head = _OFFSET + _varint(o.offset)
        body = b"".join(
            (
                head,
                _EVENT,
                _varint(len(o.payload)),
                o.payload,
                _ATTEMPT + _varint(o.attempt) if o.attempt else b"",
            )
        )
        parts += (_BATCH_DELIVERY, _varint(len(body)), body)
    inner = b"".join(parts)
    return _RESPONSE_BATCH + _varint(len(inner)) + inner
