"""CloudEvents at the edges: the SDK's CloudEvent <-> the spec's protobuf format.

The gateway stores and ships `io.cloudevents.v1.CloudEvent` protobuf bytes; producers and
consumers (CLI, GatewayClient) hold the cloudevents 2.x SDK's CloudEvent. Mapping rules:

- dict/list data -> `text_data` JSON (datacontenttype defaults to application/json), str ->
  `text_data`, bytes -> `binary_data`. Back: JSON text is parsed when the content type is JSON.
- `time` -> ce_timestamp; bool/int -> ce_boolean/ce_integer; other attributes -> ce_string.
- The SDK mutates the attributes dict it is given, so every mapping passes a fresh dict.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from gateway.errors import EventTooLarge, InvalidEvent
from proto import cloudevents_pb2

PbEvent = cloudevents_pb2.CloudEvent
REQUIRED = ("id", "source", "specversion", "type")
_CORE = {"id", "source", "specversion", "type"}


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    base = content_type.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json")


def to_pb(event: CloudEvent) -> PbEvent:
    """SDK event -> protobuf event."""
    attrs = dict(event.get_attributes())
    pb = PbEvent(
        id=str(attrs.pop("id", "")),
        source=str(attrs.pop("source", "")),
        spec_version=str(attrs.pop("specversion", "")),
        type=str(attrs.pop("type", "")),
    )
    data = event.get_data()
    if isinstance(data, dict | list):
        attrs.setdefault("datacontenttype", "application/json")
        pb.text_data = json.dumps(data, separators=(",", ":"))
    elif isinstance(data, str):
        pb.text_data = data
    elif isinstance(data, bytes | bytearray):
        pb.binary_data = bytes(data)
    for name, value in attrs.items():
        if value is None:
            continue
        slot = pb.attributes[name]
        if isinstance(value, bool):
            slot.ce_boolean = value
        elif isinstance(value, int):
            slot.ce_integer = value
        elif isinstance(value, dt.datetime):
            slot.ce_timestamp.FromDatetime(value.astimezone(dt.UTC))
        elif isinstance(value, bytes):
            slot.ce_bytes = value
        else:
            slot.ce_string = str(value)
    return pb


def _attr_value(value: PbEvent.CloudEventAttributeValue) -> Any:
    kind = value.WhichOneof("attr")
    if kind == "ce_timestamp":
        return value.ce_timestamp.ToDatetime(tzinfo=dt.UTC)
    if kind is None:
        return None
    return getattr(value, kind)


def from_pb(pb: PbEvent) -> CloudEvent:
    """Protobuf event -> SDK event (a fresh attributes dict each time)."""
    attrs: dict[str, Any] = {
        "id": pb.id,
        "source": pb.source,
        "specversion": pb.spec_version,
        "type": pb.type,
    }
    for name, value in pb.attributes.items():
        attrs[name] = _attr_value(value)
    kind = pb.WhichOneof("data")
    data: Any = None
    if kind == "binary_data":
        data = pb.binary_data
    elif kind == "text_data":
        data = pb.text_data
        if _is_json(attrs.get("datacontenttype")):
            try:
                data = json.loads(pb.text_data)
            except ValueError:
                data = pb.text_data
    elif kind == "proto_data":
        data = pb.proto_data.SerializeToString()
    return CloudEvent(attrs, data)


def attribute_strings(pb: PbEvent) -> dict[str, str]:
    """All context attributes and extensions as strings: what filters compare against."""
    out = {"id": pb.id, "source": pb.source, "specversion": pb.spec_version, "type": pb.type}
    for name, value in pb.attributes.items():
        raw = _attr_value(value)
        if isinstance(raw, bool):
            out[name] = "true" if raw else "false"
        elif isinstance(raw, dt.datetime):
            out[name] = raw.isoformat().replace("+00:00", "Z")
        elif isinstance(raw, bytes):
            out[name] = raw.hex()
        elif raw is not None:
            out[name] = str(raw)
    return out


def validate(pb: PbEvent, max_bytes: int) -> int:
    """Check a publishable event; return its encoded size. Raises InvalidEvent."""
    values: Mapping[str, str] = {
        "id": pb.id,
        "source": pb.source,
        "specversion": pb.spec_version,
        "type": pb.type,
    }
    for name in REQUIRED:
        if not values[name]:
            raise InvalidEvent(f"event is missing required attribute {name!r}")
    if pb.spec_version != "1.0":
        raise InvalidEvent(f"unsupported specversion {pb.spec_version!r}: only '1.0'")
    for name in pb.attributes:
        if name in _CORE or not name.isalnum() or not name.islower() or len(name) > 20:
            raise InvalidEvent(f"invalid attribute name {name!r}")
    size = pb.ByteSize()
    if size > max_bytes:
        raise EventTooLarge(f"event {pb.id!r} is {size} bytes, over the limit of {max_bytes}")
    return size
