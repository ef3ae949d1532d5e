"""The one mapping: the SDK's CloudEvent (cloudevents 2.x) <-> `io.cloudevents.v1.CloudEvent`.

Fidelity rules: an event comes out as it went in.

- Never invent an attribute. The SDK constructor fills `time` (and `id`, `specversion`) when
  they are absent; `from_pb` removes a `time` the protobuf event did not carry. A JSON value
  is given no `datacontenttype`.
- `data` keeps its type:
  - bytes -> `binary_data` -> bytes;
  - str with no or a non-JSON content type -> `text_data` -> the same str;
  - str with a JSON content type (application/json, */*+json) is a JSON string value, as in
    the SDK's own JSON format: `text_data` holds its JSON text ("\\"123\\"") -> the same str;
  - any other value (dict, list, number, bool) is a JSON value: with a JSON content type,
    `text_data` holds its JSON text; with no content type (the protobuf format has no default
    one, and we must not add one) it travels as `proto_data`, an Any with type URL
    JSON_VALUE_TYPE_URL whose value is the UTF-8 JSON text. Both come back as the value.
  - A JSON value with a non-JSON content type is refused (InvalidEvent): it has no text form.
  - Other `proto_data` comes back as the serialised Any (bytes).
- Attribute types: `time` and other datetimes -> Timestamp; `dataschema` -> URI; bool ->
  Boolean; int -> Integer (signed 32-bit, else InvalidEvent); bytes -> Binary; str -> String.
  Back: every string kind -> str, Timestamp -> aware UTC datetime (microseconds: Python's
  datetime holds no nanoseconds).
- The SDK keeps and mutates the attributes dict it is given, so each event gets a fresh dict.

`from_pb` raises UndecodableEvent when the protobuf event cannot become an SDK event (e.g. an
event stored before validation existed); readers report and skip it (meshgate/client).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Final

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.v1.event import CloudEvent
from google.protobuf import any_pb2

from eventmodel.attributes import PbEvent, PbValue, parse
from eventmodel.errors import InvalidEvent, UndecodableEvent

JSON_VALUE_TYPE_URL: Final = "meshgate.dev/cloudevents/json-value"
_JSON_TYPE = re.compile(r"(application|text)/([a-zA-Z0-9\-.]+\+)?json", re.IGNORECASE)
_INT32 = range(-(2**31), 2**31)


def is_json_type(content_type: str | None) -> bool:
    """application/json, text/json or */*+json (parameters ignored)."""
    if not content_type:
        return False
    return _JSON_TYPE.fullmatch(content_type.split(";", 1)[0].strip()) is not None


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"data is not a JSON value: {exc}") from exc


def _set_data(pb: PbEvent, data: Any, content_type: str | None) -> None:
    if data is None:
        return
    if isinstance(data, bytes | bytearray):
        pb.binary_data = bytes(data)
    elif is_json_type(content_type):
        pb.text_data = _json_text(data)
    elif isinstance(data, str):
        pb.text_data = data
    elif content_type is None:
        pb.proto_data.CopyFrom(
            any_pb2.Any(type_url=JSON_VALUE_TYPE_URL, value=_json_text(data).encode())
        )
    else:
        name = type(data).__name__
        raise InvalidEvent(f"data of type {name} needs a JSON datacontenttype, not {content_type}")


def _set_value(slot: PbValue, name: str, value: Any) -> None:
    if isinstance(value, bool):
        slot.ce_boolean = value
    elif isinstance(value, int):
        if value not in _INT32:
            raise InvalidEvent(f"attribute {name!r}: integer {value} is outside 32 bits")
        slot.ce_integer = value
    elif isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InvalidEvent(f"attribute {name!r}: a timestamp needs a time zone")
        slot.ce_timestamp.FromDatetime(value.astimezone(dt.UTC))
    elif isinstance(value, bytes | bytearray):
        slot.ce_bytes = bytes(value)
    elif isinstance(value, str):
        if name == "dataschema":
            slot.ce_uri = value
        else:
            slot.ce_string = value
    else:
        kind = type(value).__name__
        raise InvalidEvent(f"attribute {name!r}: a {kind} is not a CloudEvents type")


def to_pb(event: CloudEvent) -> PbEvent:
    """SDK event -> protobuf event. Raises InvalidEvent for values with no CloudEvents type."""
    attrs = dict(event.get_attributes())
    pb = PbEvent(
        id=str(attrs.pop("id", "")),
        source=str(attrs.pop("source", "")),
        spec_version=str(attrs.pop("specversion", "")),
        type=str(attrs.pop("type", "")),
    )
    content_type = attrs.get("datacontenttype")
    _set_data(pb, event.get_data(), content_type if isinstance(content_type, str) else None)
    for name, value in attrs.items():
        if value is not None:
            _set_value(pb.attributes[name], name, value)
    return pb


def _value(value: PbValue) -> Any:
    kind = value.WhichOneof("attr")
    if kind == "ce_timestamp":
        return value.ce_timestamp.ToDatetime(tzinfo=dt.UTC)
    if kind is None:
        return None
    return getattr(value, kind)


def _data(pb: PbEvent, content_type: Any) -> Any:
    kind = pb.WhichOneof("data")
    if kind == "binary_data":
        return pb.binary_data
    if kind == "text_data":
        if is_json_type(content_type if isinstance(content_type, str) else None):
            try:
                return json.loads(pb.text_data)
            except ValueError:
                return pb.text_data  # labelled JSON but is not: the text as it came
            except RecursionError as exc:  # valid JSON nested deeper than Python parses
                raise UndecodableEvent(f"event {pb.id!r}: JSON data nested too deep") from exc
        return pb.text_data
    if kind == "proto_data":
        if pb.proto_data.type_url == JSON_VALUE_TYPE_URL:
            try:
                return json.loads(pb.proto_data.value.decode())
            except ValueError as exc:
                raise UndecodableEvent(f"event {pb.id!r}: JSON data is not JSON: {exc}") from exc
            except RecursionError as exc:
                raise UndecodableEvent(f"event {pb.id!r}: JSON data nested too deep") from exc
        return pb.proto_data.SerializeToString()
    return None


def from_pb(pb: PbEvent) -> CloudEvent:
    """Protobuf event -> SDK event (a fresh attributes dict). Raises UndecodableEvent."""
    attrs: dict[str, Any] = {
        "id": pb.id,
        "source": pb.source,
        "specversion": pb.spec_version,
        "type": pb.type,
    }
    try:
        for name, value in pb.attributes.items():
            got = _value(value)
            if got is not None:
                attrs[name] = got
    except ValueError as exc:  # e.g. a Timestamp out of range (never validated)
        raise UndecodableEvent(f"event {pb.id!r}: attribute {name!r}: {exc}") from exc
    had_time = "time" in attrs
    data = _data(pb, attrs.get("datacontenttype"))
    try:
        event = CloudEvent(attrs, data)
    except (BaseCloudEventException, TypeError, ValueError) as exc:
        reason = str(exc).replace("\n", " ")
        raise UndecodableEvent(f"event {pb.id!r} is not a valid CloudEvent: {reason}") from exc
    if not had_time:
        # The constructor filled `time`; it keeps (and returns) the dict we passed.
        event.get_attributes().pop("time", None)
    return event


def from_bytes(raw: bytes) -> CloudEvent:
    """Serialised protobuf event -> SDK event. Raises UndecodableEvent."""
    return from_pb(parse(raw))
