"""SDK <-> protobuf mapping and publish validation."""

from __future__ import annotations

import datetime as dt

import pytest
from cloudevents.core.v1.event import CloudEvent

from gateway import events
from gateway.errors import EventTooLarge, InvalidEvent


def make(**extra: object) -> CloudEvent:
    attrs = {"type": "com.example.t", "source": "/s", "id": "1", "specversion": "1.0"}
    attrs.update(extra)  # type: ignore[arg-type]
    return CloudEvent(attrs, {"n": 1})


def test_round_trip_keeps_attributes_and_data() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ev = make(subject="order-7", count=3, flag=True, time=when)
    back = events.from_pb(events.to_pb(ev))
    attrs = back.get_attributes()
    assert attrs["subject"] == "order-7"
    assert attrs["count"] == 3
    assert attrs["flag"] is True
    assert attrs["time"] == when
    assert back.get_data() == {"n": 1}


def test_text_and_binary_data() -> None:
    base = {"type": "t", "source": "/s", "id": "1", "specversion": "1.0"}
    assert events.from_pb(events.to_pb(CloudEvent(dict(base), "hello"))).get_data() == "hello"
    raw = events.to_pb(CloudEvent(dict(base), b"\x00\x01"))
    assert events.from_pb(raw).get_data() == b"\x00\x01"


def test_attribute_strings_cover_extensions() -> None:
    pb = events.to_pb(make(region="eu", flag=False))
    attrs = events.attribute_strings(pb)
    assert attrs["type"] == "com.example.t"
    assert attrs["region"] == "eu"
    assert attrs["flag"] == "false"


@pytest.mark.parametrize("field", ["id", "source", "spec_version", "type"])
def test_missing_required_attribute(field: str) -> None:
    pb = events.to_pb(make())
    setattr(pb, field, "")
    with pytest.raises(InvalidEvent, match="missing required attribute"):
        events.validate(pb, 1024)


def test_wrong_specversion() -> None:
    pb = events.to_pb(make())
    pb.spec_version = "0.3"
    with pytest.raises(InvalidEvent, match="specversion"):
        events.validate(pb, 1024)


def test_size_limit() -> None:
    pb = events.to_pb(make())
    pb.text_data = "x" * 2000
    with pytest.raises(EventTooLarge, match="over the limit of 1024"):
        events.validate(pb, 1024)
    assert events.validate(pb, 4096) == pb.ByteSize()


def test_bad_extension_name() -> None:
    pb = events.to_pb(make())
    pb.attributes["Bad-Name"].ce_string = "x"
    with pytest.raises(InvalidEvent, match="attribute name"):
        events.validate(pb, 1024)
