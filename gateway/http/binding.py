"""The CloudEvents HTTP binding, pure: HTTP messages <-> protobuf CloudEvents (no I/O).

Modes (`parse` picks one by Content-Type, as the binding spec says):

    application/cloudevents+json        structured: the body is one event in the JSON format
    application/cloudevents-batch+json  batch: a JSON array of such events
    other application/cloudevents+*     415 (no other event format is spoken here)
    anything else, with ce-* headers    binary: attributes in ce-* headers, data = the body

Binary mode: header names are case-insensitive, so `ce-Foo` is attribute `foo`; values are
percent-decoded as UTF-8 (bad escapes are refused). `ce-time` becomes a Timestamp (nanoseconds
kept), `ce-dataschema` a URI, everything else a String: headers carry no types. Content-Type
is `datacontenttype` (`ce-datacontenttype` is refused: the spec says to use Content-Type). The
body is kept as it came: UTF-8 text under a JSON or text/* Content-Type becomes `text_data`
(the exact text), anything else `binary_data` (the exact bytes).

JSON format (structured and batch): strings -> String (`time` a Timestamp, `dataschema` a
URI), true/false -> Boolean, integers -> Integer (32 bits), null -> absent; other JSON kinds,
duplicate keys and NaN are refused. `data_base64` -> `binary_data`; `data` follows the rules
of eventmodel.sdk (what the gRPC SDK stores for the same event): a JSON value under a JSON
Content-Type is its compact JSON text, a string is its text, a JSON value with no Content-Type
is the JSON-value Any; a non-string value under a non-JSON type is refused.

Spec checks are not made here: every door calls `gateway.events.validate` (eventmodel), so
HTTP and gRPC refuse exactly the same events. Errors are eventmodel's (InvalidEvent: 400).

Why not the cloudevents SDK's `cloudevents.core.bindings.http` for parsing (checked on 2.2.0):
`from_binary` fills a missing `id` with a UUID (a missing ce-id must be refused) and invents
`time`; it turns any UTF-8 body into `str` (octet-stream bytes lose their type) and re-parses
JSON bodies; `time` goes through `datetime` (nanoseconds lost); and `to_binary` renders a
Binary extension as "b'...'". So both directions work on the protobuf event directly.

Rendering (for SSE, and for webhook delivery): `structured` / `to_json` (the JSON format, every
value in its eventmodel string form, Integer and Boolean as JSON numbers and booleans),
`to_batch`, and `binary` (ce-* headers percent-encoded as the spec says, body as stored).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from typing import Any, Final
from urllib.parse import quote, unquote

from google.protobuf.timestamp_pb2 import Timestamp

from eventmodel.attributes import PbEvent, PbValue, value_string
from eventmodel.errors import InvalidEvent, UndecodableEvent
from eventmodel.sdk import JSON_VALUE_TYPE_URL, is_json_type
from gateway.errors import InvalidRequest
from gateway.http.errors import UnsupportedMediaType

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
CE_PREFIX: Final = "ce-"
FIELDS: Final = ("id", "source", "specversion", "type")
_INT32 = range(-(2**31), 2**31)
# Binding spec 3.1.3.2: printable ASCII except space, '"' and '%' goes as is.
_HEADER_SAFE: Final = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')

Headers = Iterable[tuple[str, str]]


def media_type(content_type: str | None) -> str:
    """`Application/CloudEvents+JSON; charset=utf-8` -> `application/cloudevents+json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse(headers: Headers, body: bytes) -> list[PbEvent]:
    """The events of one request (one, or a batch's). Raises InvalidEvent (400), InvalidRequest
    (400: an empty batch) or UnsupportedMediaType (415)."""
    pairs = list(headers)
    content_type = next((v for k, v in pairs if k.lower() == "content-type"), None)
    kind = media_type(content_type)
    if kind == STRUCTURED:
        return [structured_event(_load_json(body))]
    if kind == BATCH:
        return batch_events(body)
    if kind.startswith("application/cloudevents"):
        raise UnsupportedMediaType(
            f"unsupported event format {kind!r}: send {STRUCTURED} or {BATCH}"
        )
    if any(k.lower().startswith(CE_PREFIX) for k, _ in pairs):
        return [binary_event(pairs, body)]
    raise UndecodableEvent(
        "not a CloudEvent: send ce-* headers (binary mode), or a body of Content-Type "
        f"{STRUCTURED} (structured) or {BATCH} (batch)"
    )


# ---- into protobuf --------------------------------------------------------------------------


def _timestamp(name: str, text: str) -> Timestamp:
    ts = Timestamp()
    try:
        ts.FromJsonString(text)
    except ValueError:
        raise InvalidEvent(f"attribute {name!r}: {text!r} is not an RFC 3339 timestamp") from None
    return ts


def _set_string(pb: PbEvent, name: str, text: str) -> None:
    """A string-valued attribute, typed by its name (the JSON format and headers alike)."""
    if name == "specversion":
        pb.spec_version = text
    elif name in FIELDS:
        setattr(pb, name, text)
    elif name == "time":
        pb.attributes[name].ce_timestamp.CopyFrom(_timestamp(name, text))
    elif name == "dataschema":
        pb.attributes[name].ce_uri = text
    else:
        pb.attributes[name].ce_string = text


def _decode_header(name: str, value: str) -> str:
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise InvalidEvent(f"header ce-{name}: percent-encoding is not UTF-8") from None


def binary_event(headers: Headers, body: bytes) -> PbEvent:
    """Binary mode: attributes from ce-* headers, Content-Type, the body as data."""
    try:
        return _binary_event(headers, body)
    except UnicodeEncodeError:  # a lone surrogate: protobuf strings are UTF-8
        raise InvalidEvent("a header value is not UTF-8 text") from None


def _binary_event(headers: Headers, body: bytes) -> PbEvent:
    pb = PbEvent()
    content_type: str | None = None
    seen: set[str] = set()
    for key, value in headers:
        lower = key.lower()
        if lower == "content-type":
            content_type = value.strip()
            continue
        if not lower.startswith(CE_PREFIX):
            continue
        name = lower[len(CE_PREFIX) :]
        if name in seen:
            raise InvalidEvent(f"header ce-{name} is repeated")
        seen.add(name)
        if name == "datacontenttype":
            raise InvalidEvent("binary mode carries datacontenttype as Content-Type, not ce-")
        if name in ("data", "data_base64"):
            raise InvalidEvent(f"header ce-{name}: {name!r} is not an attribute")
        _set_string(pb, name, _decode_header(name, value))
    if content_type:
        pb.attributes["datacontenttype"].ce_string = content_type
    if body:
        textual = is_json_type(content_type) or media_type(content_type).startswith("text/")
        try:
            text = body.decode("utf-8") if textual else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            pb.binary_data = body
        else:
            pb.text_data = text
    return pb


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidEvent(f"JSON member {key!r} is repeated")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise InvalidEvent(f"{name} is not JSON")


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, InvalidEvent):
            raise
        raise InvalidEvent(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidEvent("body is not JSON: nested too deeply") from None


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:  # loaded just under the limit, one frame deeper here
        raise InvalidEvent("data is nested too deeply") from None


def _set_data(pb: PbEvent, doc: dict[str, Any]) -> None:
    data, data_b64 = doc.get("data"), doc.get("data_base64")
    if data is not None and data_b64 is not None:
        raise InvalidEvent("an event carries data or data_base64, not both")
    if data_b64 is not None:
        if not isinstance(data_b64, str):
            raise InvalidEvent("data_base64 must be a Base64 string")
        try:
            pb.binary_data = base64.b64decode(data_b64, validate=True)
        except binascii.Error:
            raise InvalidEvent("data_base64 is not Base64 (RFC 4648)") from None
        return
    if data is None:
        return
    content_type = doc.get("datacontenttype")
    content_type = content_type if isinstance(content_type, str) else None
    if is_json_type(content_type):
        pb.text_data = _json_text(data)
    elif isinstance(data, str):
        pb.text_data = data
    elif content_type is None:
        pb.proto_data.type_url = JSON_VALUE_TYPE_URL
        pb.proto_data.value = _json_text(data).encode()
    else:
        kind = type(data).__name__
        raise InvalidEvent(f"data of type {kind} needs a JSON datacontenttype, not {content_type}")


def structured_event(doc: Any) -> PbEvent:
    """One event in the JSON format (an already parsed JSON object)."""
    if not isinstance(doc, dict):
        raise InvalidEvent("a structured event must be a JSON object")
    try:
        return _structured_event(doc)
    except UnicodeEncodeError:  # "\ud800" in JSON: protobuf strings are UTF-8
        raise InvalidEvent("a string holds a lone surrogate (not UTF-8 text)") from None


def _structured_event(doc: dict[str, Any]) -> PbEvent:
    pb = PbEvent()
    for name, value in doc.items():
        if name in ("data", "data_base64") or value is None:
            continue
        if name in FIELDS and not isinstance(value, str):
            raise InvalidEvent(f"attribute {name!r} must be a string")
        if isinstance(value, str):
            _set_string(pb, name, value)
        elif isinstance(value, bool):
            pb.attributes[name].ce_boolean = value
        elif isinstance(value, int):
            if value not in _INT32:
                raise InvalidEvent(f"attribute {name!r}: integer {value} is outside 32 bits")
            pb.attributes[name].ce_integer = value
        else:
            kind = {dict: "object", list: "array", float: "number"}.get(type(value), "value")
            raise InvalidEvent(f"attribute {name!r}: a JSON {kind} is not a CloudEvents type")
    _set_data(pb, doc)
    return pb


def batch_events(body: bytes) -> list[PbEvent]:
    """Batch mode: a JSON array of events; an error names the event's index."""
    docs = _load_json(body)
    if not isinstance(docs, list):
        raise InvalidEvent("a batch must be a JSON array of events")
    if not docs:
        raise InvalidRequest("batch carries no events")
    out = []
    for index, doc in enumerate(docs):
        try:
            out.append(structured_event(doc))
        except InvalidEvent as exc:
            raise InvalidEvent(f"event {index}: {exc}") from None
    return out


# ---- out of protobuf ------------------------------------------------------------------------


def _json_value(value: PbValue) -> Any:
    kind = value.WhichOneof("attr")
    if kind == "ce_boolean":
        return value.ce_boolean
    if kind == "ce_integer":
        return value.ce_integer
    return value_string(value)


def _data_field(pb: PbEvent, as_value: bool = True) -> tuple[str, Any] | None:
    """`data` (a JSON value when labelled JSON and `as_value`, else the text) or `data_base64`."""
    kind = pb.WhichOneof("data")
    if kind == "binary_data":
        return "data_base64", base64.b64encode(pb.binary_data).decode("ascii")
    if kind == "text_data":
        content_type = pb.attributes["datacontenttype"].ce_string if _has_type(pb) else None
        if as_value and is_json_type(content_type):
            try:
                return "data", json.loads(pb.text_data)
            except (ValueError, RecursionError):
                pass  # labelled JSON but is not (or nests too deep to load): the text as it came
        return "data", pb.text_data
    if kind == "proto_data":
        if pb.proto_data.type_url == JSON_VALUE_TYPE_URL:
            try:
                if as_value:
                    return "data", json.loads(pb.proto_data.value)
                return "data", pb.proto_data.value.decode()
            except (ValueError, RecursionError):
                pass
        return "data_base64", base64.b64encode(pb.proto_data.SerializeToString()).decode()
    return None


def _has_type(pb: PbEvent) -> bool:
    return "datacontenttype" in pb.attributes


def structured(pb: PbEvent, *, data_as_value: bool = True) -> dict[str, Any]:
    """The event as a JSON-format object: attributes, then `data` or `data_base64`.
    `data_as_value=False` gives JSON data as its text (a JSON string) instead of its value."""
    out: dict[str, Any] = {
        "specversion": pb.spec_version,
        "id": pb.id,
        "source": pb.source,
        "type": pb.type,
    }
    for name in sorted(pb.attributes):
        got = _json_value(pb.attributes[name])
        if got is not None:
            out[name] = got
    data = _data_field(pb, data_as_value)
    if data is not None:
        out[data[0]] = data[1]
    return out


def to_json(pb: PbEvent) -> str:
    """One line of JSON (no newline inside: JSON strings escape theirs). JSON data nested too
    deep to render as a value (it was stored as text, never parsed) goes as its text."""
    try:
        return json.dumps(structured(pb), ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        flat = structured(pb, data_as_value=False)
        return json.dumps(flat, ensure_ascii=False, separators=(",", ":"))


def to_batch(pbs: Sequence[PbEvent]) -> bytes:
    return ("[" + ",".join(to_json(pb) for pb in pbs) + "]").encode()


def binary(pb: PbEvent) -> tuple[dict[str, str], bytes]:
    """Binary mode: (headers, body). Values percent-encoded per binding spec 3.1.3.2."""
    headers = {
        "ce-specversion": pb.spec_version,
        "ce-id": quote(pb.id, safe=_HEADER_SAFE),
        "ce-source": quote(pb.source, safe=_HEADER_SAFE),
        "ce-type": quote(pb.type, safe=_HEADER_SAFE),
    }
    for name in sorted(pb.attributes):
        text = value_string(pb.attributes[name])
        if text is None:
            continue
        if name == "datacontenttype":
            headers["Content-Type"] = text
        else:
            headers[f"ce-{name}"] = quote(text, safe=_HEADER_SAFE)
    kind = pb.WhichOneof("data")
    if kind == "binary_data":
        body = pb.binary_data
    elif kind == "text_data":
        body = pb.text_data.encode()
    elif kind == "proto_data" and pb.proto_data.type_url == JSON_VALUE_TYPE_URL:
        body = pb.proto_data.value
        headers.setdefault("Content-Type", "application/json")
    elif kind == "proto_data":
        body = pb.proto_data.SerializeToString()
        headers.setdefault("Content-Type", "application/protobuf")
    else:
        body = b""
    return headers, body
