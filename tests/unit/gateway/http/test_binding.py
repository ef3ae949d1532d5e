"""The HTTP binding core: binary, structured and batch mode into protobuf and back, no I/O."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from eventmodel import sdk
from eventmodel.attributes import PbEvent, validate
from eventmodel.errors import InvalidEvent, UndecodableEvent
from eventmodel.sdk import JSON_VALUE_TYPE_URL
from gateway.errors import InvalidRequest
from gateway.http import binding
from gateway.http.errors import UnsupportedMediaType

CE = [("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-source", "/s"), ("ce-type", "t")]


def doc(**extra: object) -> dict[str, object]:
    return {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", **extra}


def test_mode_is_chosen_by_content_type() -> None:
    body = json.dumps(doc()).encode()
    [one] = binding.parse([("Content-Type", "Application/CloudEvents+JSON; charset=utf-8")], body)
    assert one.id == "1"
    batch = binding.parse([("content-type", binding.BATCH)], json.dumps([doc(), doc(id="2")]))
    assert [pb.id for pb in batch] == ["1", "2"]
    [binary] = binding.parse([*CE, ("Content-Type", "text/plain")], b"hi")
    assert binary.text_data == "hi"
    with pytest.raises(UnsupportedMediaType):
        binding.parse([("Content-Type", "application/cloudevents+avro")], b"")
    with pytest.raises(UndecodableEvent, match="not a CloudEvent"):
        binding.parse([("Content-Type", "application/json")], b"{}")
    with pytest.raises(InvalidRequest, match="no events"):
        binding.parse([("Content-Type", binding.BATCH)], b"[]")


def test_binary_mode_keeps_bytes_text_and_nanoseconds() -> None:
    headers = [
        *CE,
        ("CE-Time", "2026-01-02T03:04:05.000000007Z"),
        ("ce-dataschema", "urn:x"),
        ("ce-note", "caf%C3%A9%20%22x%22"),
        ("Content-Type", "application/octet-stream"),
    ]
    pb = binding.binary_event(headers, b"hello")
    assert pb.binary_data == b"hello"  # the SDK would have made this a str
    assert pb.attributes["time"].ce_timestamp.nanos == 7
    assert pb.attributes["dataschema"].ce_uri == "urn:x"
    assert pb.attributes["note"].ce_string == 'café "x"'
    assert (
        binding.binary_event([*CE, ("Content-Type", "application/json")], b'{ "a":1 }').text_data
        == '{ "a":1 }'
    )
    assert (
        binding.binary_event([*CE, ("Content-Type", "text/plain")], b"\xff").binary_data == b"\xff"
    )
    assert not binding.binary_event(CE, b"").HasField("binary_data")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([*CE, ("ce-id", "2")], "repeated"),
        ([*CE, ("ce-datacontenttype", "text/plain")], "Content-Type"),
        ([*CE, ("ce-time", "yesterday")], "RFC 3339"),
        ([*CE, ("ce-x", "%FF")], "not UTF-8"),
    ],
)
def test_binary_mode_refusals(headers: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        binding.binary_event(headers, b"")


def test_a_missing_id_is_left_missing_for_validate() -> None:
    pb = binding.binary_event([h for h in CE if h[0] != "ce-id"], b"x")
    with pytest.raises(InvalidEvent, match="missing required attribute 'id'"):
        validate(pb)  # the SDK would have filled a UUID in


def test_structured_types_and_data_rules() -> None:
    pb = binding.structured_event(doc(n=5, ok=False, gone=None, time="2026-01-02T03:04:05Z"))
    assert pb.attributes["n"].ce_integer == 5 and pb.attributes["ok"].ce_boolean is False
    assert "gone" not in pb.attributes and pb.attributes["time"].ce_timestamp.seconds > 0
    as_json = binding.structured_event(doc(datacontenttype="application/json", data={"a": 1}))
    assert as_json.text_data == '{"a":1}'
    untyped = binding.structured_event(doc(data=[1, 2]))
    assert (
        untyped.proto_data.type_url == JSON_VALUE_TYPE_URL and untyped.proto_data.value == b"[1,2]"
    )
    text = binding.structured_event(doc(datacontenttype="text/plain", data="hi"))
    assert text.text_data == "hi"
    raw = binding.structured_event(doc(data_base64=base64.b64encode(b"\x00").decode()))
    assert raw.binary_data == b"\x00"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id": "1", "id": "2"}', "repeated"),
        (b'{"specversion": "1.0", "n": NaN}', "NaN is not JSON"),
        (b"[" * 100_000, "not JSON"),
        (json.dumps(doc(n=2**31)).encode(), "outside 32 bits"),
        (json.dumps(doc(n=[1])).encode(), "JSON array"),
        (json.dumps(doc(id=1)).encode(), "must be a string"),
        (json.dumps(doc(data="x", data_base64="eA==")).encode(), "not both"),
        (json.dumps(doc(data_base64="@@")).encode(), "not Base64"),
        (
            json.dumps(doc(datacontenttype="text/plain", data={"a": 1})).encode(),
            "JSON datacontenttype",
        ),
        (json.dumps(doc(id="\ud800")).encode(), "surrogate"),
        (b'"just a string"', "JSON object"),
    ],
)
def test_structured_refusals(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        binding.parse([("Content-Type", binding.STRUCTURED)], body)


def test_a_batch_error_names_the_event() -> None:
    body = json.dumps([doc(), doc(n=1.5)])
    with pytest.raises(InvalidEvent, match=r"^event 1: attribute 'n'"):
        binding.parse([("Content-Type", binding.BATCH)], body)


def full_event() -> PbEvent:
    pb = PbEvent(id="1", source="/s", spec_version="1.0", type="t", binary_data=b"\x00\xff")
    pb.attributes["n"].ce_integer = 3
    pb.attributes["ok"].ce_boolean = True
    pb.attributes["time"].ce_timestamp.FromJsonString("2026-01-02T03:04:05.123456789Z")
    pb.attributes["subject"].ce_string = 'a b "c" %'
    return pb


def test_rendering_structured_and_back() -> None:
    pb = full_event()
    out = binding.structured(pb)
    assert out["n"] == 3 and out["ok"] is True and out["time"] == "2026-01-02T03:04:05.123456789Z"
    assert out["data_base64"] == base64.b64encode(b"\x00\xff").decode()
    assert binding.structured_event(json.loads(binding.to_json(pb))) == pb
    assert json.loads(binding.to_batch([pb, pb])) == [out, out]


def test_rendering_binary_and_back() -> None:
    pb = full_event()
    headers, body = binding.binary(pb)
    assert headers["ce-subject"] == "a%20b%20%22c%22%20%25"
    assert body == b"\x00\xff"
    back = binding.binary_event(list(headers.items()), body)
    assert back.attributes["n"].ce_string == "3"  # headers carry no types
    assert back.attributes["time"] == pb.attributes["time"]
    assert back.attributes["subject"] == pb.attributes["subject"]


@given(st.text(), st.binary(max_size=64))
def test_any_string_extension_and_bytes_survive_binary_mode(text: str, data: bytes) -> None:
    pb = PbEvent(id="1", source="/s", spec_version="1.0", type="t", binary_data=data or b"x")
    try:
        pb.attributes["ext"].ce_string = text
    except UnicodeEncodeError:
        return  # a lone surrogate cannot be a protobuf string at all
    headers, body = binding.binary(pb)
    assert all(v.isascii() and " " not in v for v in headers.values())
    assert binding.binary_event(list(headers.items()), body) == pb


def test_json_data_too_deep_to_render_as_a_value_goes_as_its_text() -> None:
    body = b"[" * 5000 + b"]" * 5000
    pb = binding.binary_event([*CE, ("Content-Type", "application/json")], body)
    assert json.loads(binding.to_json(pb))["data"] == body.decode()
    shallow = binding.binary_event([*CE, ("Content-Type", "application/json")], b"[[1]]")
    assert json.loads(binding.to_json(shallow))["data"] == [[1]]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [({"a": [1, "é"]}, "application/json"), ([1, 2], None), ("text", "text/plain"), (None, None)],
)
def test_structured_mode_stores_what_the_grpc_sdk_stores(
    data: object, content_type: str | None
) -> None:
    attrs: dict[str, object] = {
        "specversion": "1.0",
        "id": "1",
        "source": "/s",
        "type": "t",
        "time": "2026-01-02T03:04:05.5Z",
        "n": 7,
        "ok": True,
    }
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    over_http = binding.structured_event({**attrs, "data": data})
    sdk_attrs = {**attrs, "time": dt.datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=dt.UTC)}
    over_grpc = sdk.to_pb(CloudEvent(sdk_attrs, data))
    assert over_http.SerializeToString(deterministic=True) == over_grpc.SerializeToString(
        deterministic=True
    )
