"""The CloudEvents v1.0 type system at the door: a table of good and bad events, string forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from eventmodel import attributes
from eventmodel.errors import InvalidEvent, UndecodableEvent
from proto import cloudevents_pb2

PbEvent = cloudevents_pb2.CloudEvent
Edit = Callable[[PbEvent], None]


def event() -> PbEvent:
    return PbEvent(id="1", source="/shop/eu", spec_version="1.0", type="com.example.t")


def ext(name: str, kind: str, value: object) -> Edit:
    def apply(pb: PbEvent) -> None:
        slot = pb.attributes[name]
        if kind == "ce_timestamp":
            slot.ce_timestamp.CopyFrom(value)  # type: ignore[arg-type]
        else:
            setattr(slot, kind, value)

    return apply


def field(name: str, value: str) -> Edit:
    return lambda pb: setattr(pb, name, value)


def ts(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


GOOD: list[tuple[str, Edit]] = [
    ("all-digit extension name", ext("123", "ce_string", "x")),
    ("20-character name", ext("a" * 20, "ce_integer", 7)),
    ("every type as an extension", ext("flag", "ce_boolean", False)),
    ("binary extension", ext("blob", "ce_bytes", b"\x00\xff")),
    ("uri extension", ext("home", "ce_uri", "https://example.com/a?b=c#d")),
    ("uri-ref extension", ext("rel", "ce_uri_ref", "../x/y")),
    ("timestamp extension", ext("seen", "ce_timestamp", ts(0))),
    ("time", ext("time", "ce_timestamp", ts(1_767_225_600, 120_000_000))),
    ("dataschema as ce_uri", ext("dataschema", "ce_uri", "https://schemas.example/o.json")),
    ("dataschema as ce_string (the SDK's form)", ext("dataschema", "ce_string", "urn:x:y")),
    ("datacontenttype with parameters", ext("datacontenttype", "ce_string", "text/plain; a=b")),
    ("subject", ext("subject", "ce_string", "order-7")),
    ("absolute source", field("source", "https://example.com/shop")),
    ("urn source", field("source", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66")),
    ("percent-encoded source", field("source", "/caf%C3%A9")),
    ("non-ASCII string value", ext("note", "ce_string", "café ☕")),
]

BAD: list[tuple[str, Edit, str]] = [
    ("non-ASCII extension name", ext("café", "ce_string", "x"), "invalid attribute name"),
    ("upper-case extension name", ext("Region", "ce_string", "x"), "invalid attribute name"),
    ("21-character name", ext("a" * 21, "ce_string", "x"), "invalid attribute name"),
    ("empty name", ext("", "ce_string", "x"), "invalid attribute name"),
    ("extension named id", ext("id", "ce_string", "x"), "'id' is reserved"),
    ("extension named source", ext("source", "ce_string", "x"), "'source' is reserved"),
    ("extension named specversion", ext("specversion", "ce_string", "1.0"), "reserved"),
    ("extension named data", ext("data", "ce_string", "x"), "'data' is reserved"),
    ("time as a string", ext("time", "ce_string", "yesterday"), "'time': must be a Timestamp"),
    ("time out of range", ext("time", "ce_timestamp", ts(253402300800)), "'time': is not a valid"),
    ("negative nanos", ext("time", "ce_timestamp", ts(0, -1)), "'time'"),
    ("source with a space", field("source", "/shop eu"), "'source'"),
    ("source with a bad scheme", field("source", "1http://x"), "'source'"),
    ("source non-ASCII", field("source", "/café"), "'source'"),
    ("source bad percent", field("source", "/a%zz"), "'source'"),
    ("relative dataschema", ext("dataschema", "ce_string", "/schema.json"), "'dataschema'"),
    ("dataschema with space", ext("dataschema", "ce_uri", "https://x/a b"), "'dataschema'"),
    ("dataschema as a number", ext("dataschema", "ce_integer", 1), "'dataschema': must be a URI"),
    ("empty dataschema", ext("dataschema", "ce_string", ""), "'dataschema'"),
    ("empty subject", ext("subject", "ce_string", ""), "'subject': must not be empty"),
    ("subject as a bool", ext("subject", "ce_boolean", True), "'subject': must be a String"),
    ("datacontenttype not a media type", ext("datacontenttype", "ce_string", "json"), "media"),
    ("uri extension without scheme", ext("home", "ce_uri", "example.com"), "'home'"),
    ("uri-ref extension with space", ext("rel", "ce_uri_ref", "a b"), "'rel'"),
    ("control character", ext("note", "ce_string", "a\x07b"), "'note': holds a control"),
    ("noncharacter", ext("note", "ce_string", "a\ufffeb"), "'note'"),
    ("plane-1 noncharacter", ext("note", "ce_string", "a\U0001fffeb"), "'note'"),
    ("C1 control", ext("note", "ce_string", "a\x85b"), "'note'"),
    ("value with no kind", lambda pb: pb.attributes["empty"].Clear(), "'empty': holds no value"),
    ("missing id", field("id", ""), "missing required attribute 'id'"),
    ("missing source", field("source", ""), "missing required attribute 'source'"),
    ("missing type", field("type", ""), "missing required attribute 'type'"),
    ("missing specversion", field("spec_version", ""), "'specversion'"),
    ("specversion 0.3", field("spec_version", "0.3"), "unsupported specversion"),
    ("control character in type", field("type", "a\nb"), "'type'"),
]


@pytest.mark.parametrize(("case", "edit"), GOOD, ids=[c for c, _ in GOOD])
def test_valid_events(case: str, edit: Edit) -> None:
    pb = event()
    edit(pb)
    attributes.validate(pb)


@pytest.mark.parametrize(("case", "edit", "reason"), BAD, ids=[c for c, _, _ in BAD])
def test_invalid_events_name_the_attribute(case: str, edit: Edit, reason: str) -> None:
    pb = event()
    edit(pb)
    with pytest.raises(InvalidEvent, match=reason.replace("(", r"\(")):
        attributes.validate(pb)


def test_validate_bytes() -> None:
    pb = event()
    assert attributes.validate_bytes(pb.SerializeToString()) == pb
    with pytest.raises(UndecodableEvent):
        attributes.validate_bytes(b"\x0a\xff")
    pb.attributes["Bad"].ce_string = "x"
    with pytest.raises(InvalidEvent):
        attributes.validate_bytes(pb.SerializeToString())


# ---- the one string form ---------------------------------------------------------------------


def test_canonical_strings() -> None:
    pb = event()
    ext("flag", "ce_boolean", True)(pb)
    ext("n", "ce_integer", -5)(pb)
    ext("blob", "ce_bytes", b"\x00\x01\xfe")(pb)
    ext("home", "ce_uri", "https://x/")(pb)
    ext("time", "ce_timestamp", ts(1_767_225_600, 123_000_000))(pb)
    ext("whole", "ce_timestamp", ts(1_767_225_600))(pb)
    ext("fine", "ce_timestamp", ts(1_767_225_600, 1_000))(pb)
    got = attributes.attribute_strings(pb)
    assert got == {
        "id": "1",
        "source": "/shop/eu",
        "specversion": "1.0",
        "type": "com.example.t",
        "flag": "true",
        "n": "-5",
        "blob": "AAH+",  # Base64, not hex
        "home": "https://x/",
        "time": "2026-01-01T00:00:00.123Z",  # 3 digits, not .123000
        "whole": "2026-01-01T00:00:00Z",
        "fine": "2026-01-01T00:00:00.000001Z",
    }


@settings(deadline=None)
@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_datetime_and_timestamp_render_alike(when: dt.datetime) -> None:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    text = attributes.datetime_string(when)
    assert text == attributes.timestamp_string(stamp)
    assert text.endswith("Z")
    back = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert back == when


@settings(deadline=None)
@given(st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True))
def test_every_spec_shaped_name_is_legal_unless_reserved(name: str) -> None:
    if name in attributes.RESERVED:
        with pytest.raises(InvalidEvent, match="reserved"):
            attributes.check_name(name)
    else:
        attributes.check_name(name)


@settings(deadline=None)
@given(st.text(max_size=25))
def test_names_outside_the_alphabet_are_refused(name: str) -> None:
    legal = 1 <= len(name) <= 20 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789" for c in name)
    if legal:
        return
    with pytest.raises(InvalidEvent):
        attributes.check_name(name)


@pytest.mark.parametrize("stamp", [ts(253402300800), ts(0, 1_000_000_000), ts(0, -1)])
def test_an_out_of_range_timestamp_has_no_string_form_and_never_raises(stamp: Timestamp) -> None:
    pb = event()
    ext("seen", "ce_timestamp", stamp)(pb)
    assert "seen" not in attributes.attribute_strings(pb)
    with pytest.raises(InvalidEvent, match="'seen': is not a valid timestamp"):
        attributes.validate(pb)
