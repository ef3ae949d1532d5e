"""The printed JSON form uses the one string form, and the SDK's JSON reader reads it back."""

from __future__ import annotations

import datetime as dt
import json

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from eventmodel import json_form, sdk

BASE = {"type": "t", "source": "/s", "id": "1"}


def test_canonical_strings_and_data_members() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC)
    ev = CloudEvent({**BASE, "time": when, "blob": b"\x00\x01\xfe", "n": 3}, b"\xff")
    out = json.loads(json_form.to_json(ev))
    assert out["time"] == "2026-01-02T03:04:05.120Z"  # not .120000Z
    assert out["blob"] == "AAH+"  # Base64, not hex
    assert out["n"] == 3
    assert out["data_base64"] == "/w==" and "data" not in out


def test_data_keeps_its_type_in_print() -> None:
    as_string = CloudEvent({**BASE, "datacontenttype": "application/json"}, "123")
    assert json.loads(json_form.to_json(as_string))["data"] == "123"
    no_time = sdk.from_pb(sdk.to_pb(CloudEvent(dict(BASE), [])))
    no_time.get_attributes().pop("time", None)
    printed = json.loads(json_form.to_json(no_time))
    assert printed["data"] == [] and "time" not in printed and "datacontenttype" not in printed


def test_the_sdk_reads_what_we_print() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ev = CloudEvent({**BASE, "time": when, "subject": "x"}, {"k": [1, 2]})
    back = JSONFormat().read(None, json_form.to_json(ev))
    assert back.get_attributes() == ev.get_attributes()
    assert back.get_data() == {"k": [1, 2]}
