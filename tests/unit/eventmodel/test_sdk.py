"""SDK <-> protobuf mapping: examples, fidelity (no invented attribute, data keeps its type) and
hypothesis round trips."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from eventmodel import attributes, sdk
from eventmodel.errors import InvalidEvent, UndecodableEvent
from proto import cloudevents_pb2

BASE = {"type": "com.example.t", "source": "/s", "id": "1", "specversion": "1.0"}


def make(**extra: object) -> CloudEvent:
    attrs: dict[str, Any] = dict(BASE)
    attrs.update(extra)
    return CloudEvent(attrs, {"n": 1})


def test_round_trip_keeps_attributes_and_data() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ev = make(subject="order-7", count=3, flag=True, time=when)
    back = sdk.from_pb(sdk.to_pb(ev))
    attrs = back.get_attributes()
    assert attrs["subject"] == "order-7"
    assert attrs["count"] == 3
    assert attrs["flag"] is True
    assert attrs["time"] == when
    assert back.get_data() == {"n": 1}


def test_text_and_binary_data() -> None:
    assert sdk.from_pb(sdk.to_pb(CloudEvent(dict(BASE), "hello"))).get_data() == "hello"
    raw = sdk.to_pb(CloudEvent(dict(BASE), b"\x00\x01"))
    assert sdk.from_pb(raw).get_data() == b"\x00\x01"


def test_attribute_strings_cover_extensions() -> None:
    pb = sdk.to_pb(make(region="eu", flag=False))
    attrs = attributes.attribute_strings(pb)
    assert attrs["type"] == "com.example.t"
    assert attrs["region"] == "eu"
    assert attrs["flag"] == "false"


def _pb_without_time(**data: Any) -> cloudevents_pb2.CloudEvent:
    return cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t", **data)


def test_an_event_without_time_is_read_without_time_every_time() -> None:
    pb = _pb_without_time(text_data="x")
    first, second = sdk.from_pb(pb), sdk.from_pb(pb)
    assert first.get_time() is None and second.get_time() is None
    assert "time" not in first.get_attributes()
    assert "time" not in sdk.to_pb(first).attributes


def test_json_string_data_stays_a_string() -> None:
    ev = CloudEvent({**BASE, "datacontenttype": "application/json"}, "123")
    pb = sdk.to_pb(ev)
    assert pb.text_data == '"123"'  # the JSON text of a JSON string
    assert sdk.from_pb(pb).get_data() == "123"
    # A protobuf producer's JSON text is the JSON value it holds.
    foreign = _pb_without_time(text_data="123")
    foreign.attributes["datacontenttype"].ce_string = "application/json"
    assert sdk.from_pb(foreign).get_data() == 123


def test_a_json_value_gains_no_content_type() -> None:
    ev = CloudEvent(dict(BASE), [])
    back = sdk.from_pb(sdk.to_pb(ev))
    assert back.get_data() == []
    assert back.get_datacontenttype() is None
    assert "datacontenttype" not in sdk.to_pb(ev).attributes


def test_text_that_only_looks_like_json_stays_text() -> None:
    for content_type in (None, "text/plain"):
        attrs: dict[str, Any] = dict(BASE)
        if content_type:
            attrs["datacontenttype"] = content_type
        assert sdk.from_pb(sdk.to_pb(CloudEvent(attrs, "[1, 2]"))).get_data() == "[1, 2]"


def test_unmappable_values_are_refused() -> None:
    with pytest.raises(InvalidEvent, match="outside 32 bits"):
        sdk.to_pb(make(big=2**40))
    with pytest.raises(InvalidEvent, match="not a CloudEvents type"):
        sdk.to_pb(make(f=1.5))
    with pytest.raises(InvalidEvent, match="needs a JSON datacontenttype"):
        sdk.to_pb(CloudEvent({**BASE, "datacontenttype": "text/plain"}, {"a": 1}))
    with pytest.raises(InvalidEvent, match="not a JSON value"):
        sdk.to_pb(CloudEvent(dict(BASE), {"x": float("nan")}))


def test_an_event_the_sdk_refuses_is_undecodable_not_a_crash() -> None:
    pb = _pb_without_time()
    pb.attributes["Bad-Name"].ce_string = "x"
    with pytest.raises(UndecodableEvent, match="not a valid CloudEvent"):
        sdk.from_pb(pb)
    with pytest.raises(UndecodableEvent):
        sdk.from_bytes(b"\xff\xff\xff")


# ---- round trips -------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
    lambda n: n not in attributes.RESERVED and n not in attributes.OPTIONAL
)
TIMES = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn")))
VALUES = st.one_of(
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    TEXT,
    st.binary(max_size=16),
    TIMES,
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
DATA = st.one_of(
    st.tuples(st.none(), st.none()),
    st.tuples(st.binary(max_size=32), st.sampled_from([None, "application/octet-stream"])),
    st.tuples(TEXT, st.sampled_from([None, "text/plain", "application/json", "a/b+json"])),
    st.tuples(
        st.one_of(st.lists(JSON, max_size=3), st.dictionaries(TEXT, JSON, max_size=3)),
        st.sampled_from([None, "application/json", "application/cloudevents+json"]),
    ),
)


@settings(deadline=None)
@given(st.dictionaries(NAMES, VALUES, max_size=5), DATA, st.none() | TIMES)
def test_sdk_round_trip_is_faithful(
    extensions: dict[str, Any], data: tuple[Any, str | None], when: dt.datetime | None
) -> None:
    value, content_type = data
    attrs: dict[str, Any] = {**BASE, **extensions}
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    if when is not None:
        attrs["time"] = when
    wanted = dict(attrs)
    ev = CloudEvent(attrs, value)
    if when is None:
        ev.get_attributes().pop("time")  # what a producer without `time` sends
    pb = sdk.to_pb(ev)
    attributes.validate(pb)  # whatever the SDK maps is a valid event
    back = sdk.from_pb(pb)
    assert back.get_attributes() == wanted
    assert type(back.get_data()) is type(value)
    assert back.get_data() == value
    again = sdk.to_pb(back)
    assert again.SerializeToString(deterministic=True) == pb.SerializeToString(deterministic=True)


def test_an_out_of_range_timestamp_is_undecodable() -> None:
    pb = _pb_without_time()
    pb.attributes["seen"].ce_timestamp.seconds = 253402300800  # year 10000
    with pytest.raises(UndecodableEvent, match="'seen'"):
        sdk.from_pb(pb)
