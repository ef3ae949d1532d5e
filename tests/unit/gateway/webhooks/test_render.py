"""Stored events -> one POST in binary, structured and batch mode (the SDK's HTTP binding)."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from eventmodel import sdk
from eventmodel.errors import UndecodableEvent
from gateway.webhooks.render import BATCH_CONTENT_TYPE, render


def stored(data: object, **attrs: object) -> bytes:
    base = {"id": "1", "source": "/s", "type": "t", "specversion": "1.0", **attrs}
    event = CloudEvent(base, data)
    if "time" not in attrs:
        event.get_attributes().pop("time", None)
    return sdk.to_pb(event).SerializeToString()


def test_binary_mode_round_trips_through_the_sdk() -> None:
    raw = stored(b"\x00\xff", subject="x", count=3)
    out = render([raw], "binary")
    assert out.body == b"\x00\xff"
    assert "content-type" not in {k.lower() for k in out.headers}  # none invented
    assert out.headers["ce-subject"] == "x"
    back = ce_http.from_http(ce_http.HTTPMessage(out.headers, out.body), JSONFormat())
    assert back.get_data() == b"\x00\xff"
    assert back.get_attributes()["count"] == "3"  # binary mode carries every value as text
    assert "ce-time" not in out.headers  # none invented (a reading SDK fills its own)


def test_structured_and_batch() -> None:
    one = stored({"a": 1}, datacontenttype="application/json")
    two = stored("hi", id="2", datacontenttype="text/plain")
    s = render([one], "structured")
    assert s.headers["content-type"].startswith("application/cloudevents+json")
    assert json.loads(s.body)["data"] == {"a": 1}
    b = render([one, two], "batch")
    assert b.headers["Content-Type"] == BATCH_CONTENT_TYPE
    assert [e["id"] for e in json.loads(b.body)] == ["1", "2"]
    with pytest.raises(ValueError):
        render([one, two], "binary")


def test_undecodable_is_reported() -> None:
    with pytest.raises(UndecodableEvent):
        render([b"\xff\xff\xff"], "binary")
