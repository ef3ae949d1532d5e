"""`Payload`: an event's data as a schema sees it, without the CloudEvents types (pure).

The gateway adapter (gateway/schema_checks.py) and the client hook fill one from the event's
`data` oneof; the format modules read it. Exactly one of binary / text / proto is set, or none
for an event without data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from policy.schemas.errors import DataInvalid


@dataclass(frozen=True, slots=True)
class Payload:
    binary: bytes | None = None
    text: str | None = None
    proto: bytes | None = None  # the value of a protobuf Any
    type_url: str = ""  # the Any's type URL
    content_type: str = ""

    def is_json(self) -> bool:
        base = self.content_type.split(";", 1)[0].strip().lower()
        return base == "application/json" or base.endswith("+json") or base == "text/json"


def from_event(pb: Any, *, json_value_type_url: str) -> Payload:
    """The data of `pb`, an io.cloudevents.v1.CloudEvent (duck-typed: policy imports no proto).
    A protobuf Any whose type URL is `json_value_type_url` (eventmodel.sdk's JSON value) is
    its UTF-8 JSON text."""
    declared = pb.attributes.get("datacontenttype")
    content_type = "" if declared is None else declared.ce_string
    kind = pb.WhichOneof("data")
    if kind == "binary_data":
        return Payload(binary=pb.binary_data, content_type=content_type)
    if kind == "text_data":
        return Payload(text=pb.text_data, content_type=content_type)
    if kind == "proto_data":
        if pb.proto_data.type_url == json_value_type_url:
            try:
                return Payload(text=pb.proto_data.value.decode("utf-8"), content_type=content_type)
            except UnicodeDecodeError:
                return Payload(binary=pb.proto_data.value, content_type="application/json")
        return Payload(
            proto=pb.proto_data.value, type_url=pb.proto_data.type_url, content_type=content_type
        )
    return Payload(content_type=content_type)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # one, not one per json.loads call


def json_value(payload: Payload) -> Any:
    """The data parsed as JSON (no data is JSON null); DataInvalid when it is not JSON.
    Bytes must be UTF-8 (RFC 8259 for JSON exchanged between systems)."""
    if payload.proto is not None:
        raise DataInvalid("", "the schema needs JSON data, the event carries a protobuf Any")
    try:
        if payload.text is not None:
            return _DECODER.decode(payload.text)
        if payload.binary is not None:
            return _DECODER.decode(payload.binary.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        detail = str(exc) if not isinstance(exc, RecursionError) else "nested too deep"
        raise DataInvalid("", f"data is not JSON: {detail}") from None
    return None
