"""The gateway's publish check: the spec (eventmodel) then the byte-size limit."""

from __future__ import annotations

import pytest
from cloudevents.core.v1.event import CloudEvent

from eventmodel import sdk
from eventmodel.errors import InvalidEvent
from gateway import events
from gateway.errors import EventTooLarge


def make() -> CloudEvent:
    return CloudEvent({"type": "com.example.t", "source": "/s", "id": "1"}, {"n": 1})


@pytest.mark.parametrize("field", ["id", "source", "spec_version", "type"])
def test_missing_required_attribute(field: str) -> None:
    pb = sdk.to_pb(make())
    setattr(pb, field, "")
    with pytest.raises(InvalidEvent, match="missing required attribute"):
        events.validate(pb, 1024)


def test_wrong_specversion() -> None:
    pb = sdk.to_pb(make())
    pb.spec_version = "0.3"
    with pytest.raises(InvalidEvent, match="specversion"):
        events.validate(pb, 1024)


def test_size_limit() -> None:
    pb = sdk.to_pb(make())
    pb.ClearField("proto_data")
    pb.text_data = "x" * 2000
    with pytest.raises(EventTooLarge, match="over the limit of 1024"):
        events.validate(pb, 1024)
    assert events.validate(pb, 4096) == pb.ByteSize()


def test_bad_extension_name() -> None:
    pb = sdk.to_pb(make())
    pb.attributes["Bad-Name"].ce_string = "x"
    with pytest.raises(InvalidEvent, match="attribute name"):
        events.validate(pb, 1024)
