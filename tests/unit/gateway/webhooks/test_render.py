"""Stored events -> one POST in binary, structured and batch mode (the HTTP edge's binding)."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from eventmodel import sdk
from eventmodel.attributes import PbEvent
from eventmodel.errors import UndecodableEvent
from gateway.webhooks.render import BATCH_CONTENT_TYPE, render


def stored(data: object, **attrs: object) -> bytes:
    base = {"id": "1", "source": "/s", "type": "t", "specversion": "1.0", **attrs}
    event = CloudEvent(base, data)
    if "time" not in attrs:
        event.get_attributes().pop("time", None)
    return sdk.to_pb(event).SerializeToString()


def test_binary_mode_keeps_bytes_and_invents_nothing() -> None:
    raw = stored(b"\x00\xff", subject="x y", count=3, blob=b"\x01\x02")
    out = render([raw], "binary")
    assert out.body == b"\x00\xff"
    assert "content-type" not in {k.lower() for k in out.headers}  # no datacontenttype: none
    assert "ce-time" not in out.headers
    assert out.headers["ce-subject"] == "x%20y"  # percent-encoded, as the binding spec says
    assert out.headers["ce-blob"] == "AQI="  # Binary as Base64, not "b'...'"
    back = ce_http.from_http(ce_http.HTTPMessage(out.headers, out.body), JSONFormat())
    assert back.get_data() == b"\x00\xff" and back.get_subject() == "x y"


def test_timestamps_keep_their_nanoseconds() -> None:
    pb = PbEvent(id="1", source="/s", spec_version="1.0", type="t")
    pb.attributes["time"].ce_timestamp.FromJsonString("2026-01-02T03:04:05.123456789Z")
    out = render([pb.SerializeToString()], "binary")
    assert out.headers["ce-time"] == "2026-01-02T03:04:05.123456789Z"


def test_structured_and_batch() -> None:
    one = stored({"a": 1}, datacontenttype="application/json")
    two = stored("hi", id="2", datacontenttype="text/plain")
    s = render([one], "structured")
    assert s.headers["Content-Type"].startswith("application/cloudevents+json")
    assert json.loads(s.body)["data"] == {"a": 1}
    b = render([one, two], "batch")
    assert b.headers["Content-Type"].startswith(BATCH_CONTENT_TYPE.split(";")[0])
    assert [e["id"] for e in json.loads(b.body)] == ["1", "2"]
    with pytest.raises(ValueError):
        render([one, two], "binary")


def test_undecodable_is_reported() -> None:
    with pytest.raises(UndecodableEvent):
        render([b"\xff\xff\xff"], "binary")
