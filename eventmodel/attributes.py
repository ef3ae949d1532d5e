"""CloudEvents v1.0 context attributes: names, the type system, one string form, `validate`.

Every door that takes an event in (gRPC publish, a federation peer) calls `validate`; filters
and every renderer read attributes through `attribute_strings` / `value_string`, so there is
exactly one rendering of each value.

Names: 1-20 lowercase ASCII letters or digits (all-digit names are legal). `id`, `source`,
`specversion`, `type` are protobuf fields, so the attributes map must not repeat them, and
`data` / `data_base64` name the payload: none of these may be an extension.

Types (spec "Type System") and their canonical string form:

    Boolean        "true" | "false"
    Integer        decimal, signed 32-bit
    String         as is; no control characters (U+0000-U+001F, U+007F-U+009F), no noncharacters
    Binary         Base64 (RFC 4648 section 4, with padding)
    URI            as is; absolute (a scheme), RFC 3986 characters only
    URI-reference  as is; RFC 3986 characters only (relative references allowed)
    Timestamp      RFC 3339 in UTC with "Z" and 0, 3, 6 or 9 fraction digits, as few as the
                   value needs: the protobuf JSON form (2026-01-02T03:04:05Z, ...05.120Z).

Spec attributes and the protobuf kinds accepted for them: `source` URI-reference (a field);
`datacontenttype` a String holding an RFC 2046 media type; `subject` a non-empty String;
`dataschema` a URI (`ce_uri`, or `ce_string` holding a URI: the SDK has no URI type and stored
events carry that); `time` a Timestamp (`ce_timestamp` only). Extensions may have any type; a
`ce_uri` / `ce_uri_ref` / `ce_string` value must be well-formed for its type.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Final

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from eventmodel.errors import InvalidEvent, UndecodableEvent
from proto import cloudevents_pb2

PbEvent = cloudevents_pb2.CloudEvent
PbValue = cloudevents_pb2.CloudEvent.CloudEventAttributeValue

SPECVERSION: Final = "1.0"
REQUIRED: Final = ("id", "source", "specversion", "type")
OPTIONAL: Final = ("datacontenttype", "dataschema", "subject", "time")
RESERVED: Final = frozenset((*REQUIRED, "data", "data_base64"))
MAX_NAME_LENGTH: Final = 20

_NAME = re.compile(r"[a-z0-9]{1,20}")
_URI_CHAR = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})"
_URI_REF = re.compile(rf"{_URI_CHAR}*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:\s*;.*)?", re.DOTALL)
# C0 and C1 controls, DEL, and the Unicode noncharacters (U+FDD0-U+FDEF, U+nFFFE, U+nFFFF).
_NONCHARACTERS = "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
_BAD_STRING = re.compile(f"[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef{_NONCHARACTERS}]")
_TS_MIN, _TS_MAX = -62135596800, 253402300799  # 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z


# ---- names and values ----------------------------------------------------------------------


def check_name(name: str) -> None:
    """Raise InvalidEvent unless `name` may be an attribute of the `attributes` map."""
    if not _NAME.fullmatch(name):
        limit = MAX_NAME_LENGTH
        raise InvalidEvent(
            f"invalid attribute name {name!r}: 1-{limit} lowercase ASCII letters or digits"
        )
    if name in RESERVED:
        raise InvalidEvent(f"attribute name {name!r} is reserved and cannot be an extension")


def is_string(text: str) -> bool:
    """The spec's String: no control characters or noncharacters."""
    return _BAD_STRING.search(text) is None


def is_uri_reference(text: str) -> bool:
    """RFC 3986 URI-reference: allowed characters, and a leading `x:` must be a scheme."""
    if not _URI_REF.fullmatch(text):
        return False
    head = re.split(r"[/?#]", text, maxsplit=1)[0]
    return ":" not in head or _SCHEME.fullmatch(head.split(":", 1)[0]) is not None


def is_uri(text: str) -> bool:
    """RFC 3986 absolute URI: a scheme, then URI characters."""
    scheme, colon, _ = text.partition(":")
    return bool(colon) and _SCHEME.fullmatch(scheme) is not None and is_uri_reference(text)


def is_media_type(text: str) -> bool:
    return _MEDIA_TYPE.fullmatch(text) is not None


def _check_timestamp(ts: Timestamp) -> None:
    if not (_TS_MIN <= ts.seconds <= _TS_MAX and 0 <= ts.nanos <= 999_999_999):
        raise InvalidEvent("is not a valid timestamp (years 0001-9999)")


def timestamp_string(ts: Timestamp) -> str:
    """The one Timestamp rendering (see the module docstring)."""
    return ts.ToJsonString()


def datetime_string(when: dt.datetime) -> str:
    """The same rendering for an aware datetime (the SDK's `time`)."""
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(dt.UTC))
    return ts.ToJsonString()


def value_string(value: PbValue) -> str | None:
    """The canonical string form of one attribute value.

    None when it holds no value or one without a string form (an out-of-range Timestamp in an
    event that was never validated): filters then treat the attribute as absent. Never raises.
    """
    kind = value.WhichOneof("attr")
    if kind == "ce_string":
        return value.ce_string
    if kind == "ce_boolean":
        return "true" if value.ce_boolean else "false"
    if kind == "ce_integer":
        return str(value.ce_integer)
    if kind == "ce_bytes":
        return base64.b64encode(value.ce_bytes).decode("ascii")
    if kind == "ce_uri":
        return value.ce_uri
    if kind == "ce_uri_ref":
        return value.ce_uri_ref
    if kind == "ce_timestamp":
        try:
            return timestamp_string(value.ce_timestamp)
        except ValueError:
            return None  # out of range: no string form (validate refuses it at the door)
    return None


def attribute_strings(pb: PbEvent) -> dict[str, str]:
    """Every context attribute and extension in its string form: what filters compare."""
    out = {"id": pb.id, "source": pb.source, "specversion": pb.spec_version, "type": pb.type}
    for name, value in pb.attributes.items():
        text = value_string(value)
        if text is not None:
            out[name] = text
    return out


# ---- validation ------------------------------------------------------------------------------

_SPEC_KINDS: Final[dict[str, frozenset[str]]] = {
    "datacontenttype": frozenset({"ce_string"}),
    "subject": frozenset({"ce_string"}),
    "dataschema": frozenset({"ce_uri", "ce_string"}),
    "time": frozenset({"ce_timestamp"}),
}
_KIND_NAMES: Final = {
    "ce_boolean": "Boolean",
    "ce_integer": "Integer",
    "ce_string": "String",
    "ce_bytes": "Binary",
    "ce_uri": "URI",
    "ce_uri_ref": "URI-reference",
    "ce_timestamp": "Timestamp",
}
_SPEC_TYPES: Final = {
    "datacontenttype": "a String",
    "subject": "a String",
    "dataschema": "a URI",
    "time": "a Timestamp",
}


def _check_value(name: str, value: PbValue) -> None:
    kind = value.WhichOneof("attr")
    if kind is None:
        raise InvalidEvent("holds no value")
    allowed = _SPEC_KINDS.get(name)
    if allowed is not None and kind not in allowed:
        raise InvalidEvent(f"must be {_SPEC_TYPES[name]}, got {_KIND_NAMES[kind]}")
    if kind == "ce_timestamp":
        _check_timestamp(value.ce_timestamp)
        return
    if kind in ("ce_boolean", "ce_integer", "ce_bytes"):
        return
    text: str = getattr(value, kind)
    must_be_uri = kind == "ce_uri" or name == "dataschema"
    if must_be_uri and not is_uri(text):
        raise InvalidEvent(f"{text!r} is not a URI (RFC 3986, with a scheme)")
    if kind == "ce_uri_ref" and not is_uri_reference(text):
        raise InvalidEvent(f"{text!r} is not a URI-reference (RFC 3986)")
    if not is_string(text):
        raise InvalidEvent("holds a control character or a noncharacter")
    if name in _SPEC_KINDS and not text:
        raise InvalidEvent("must not be empty")
    if name == "datacontenttype" and not is_media_type(text):
        raise InvalidEvent(f"{text!r} is not a media type (RFC 2046, e.g. application/json)")


def _check_required(pb: PbEvent) -> None:
    for name, text in (("id", pb.id), ("source", pb.source), ("type", pb.type)):
        if not text:
            raise InvalidEvent(f"event is missing required attribute {name!r}")
        if not is_string(text):
            raise InvalidEvent(f"attribute {name!r} holds a control character or a noncharacter")
    if not pb.spec_version:
        raise InvalidEvent("event is missing required attribute 'specversion'")
    if pb.spec_version != SPECVERSION:
        raise InvalidEvent(f"unsupported specversion {pb.spec_version!r}: only {SPECVERSION!r}")
    if not is_uri_reference(pb.source):
        raise InvalidEvent(f"attribute 'source': {pb.source!r} is not a URI-reference (RFC 3986)")


def validate(pb: PbEvent) -> None:
    """Check an event against the CloudEvents v1.0 type system.

    Raises InvalidEvent whose message names the attribute and the reason. Pure; the gateway's
    size limit is checked by the gateway (gateway/events.py).
    """
    _check_required(pb)
    for name, value in pb.attributes.items():
        check_name(name)
        try:
            _check_value(name, value)
        except InvalidEvent as exc:
            raise InvalidEvent(f"attribute {name!r}: {exc}") from None


def parse(raw: bytes) -> PbEvent:
    """Serialised protobuf event -> protobuf event. Raises UndecodableEvent."""
    try:
        return PbEvent.FromString(raw)
    except DecodeError as exc:
        raise UndecodableEvent(f"not a protobuf CloudEvent: {exc}") from exc


def validate_bytes(raw: bytes) -> PbEvent:
    """`parse` then `validate`: for a door that receives serialised events (federation)."""
    pb = parse(raw)
    validate(pb)
    return pb
