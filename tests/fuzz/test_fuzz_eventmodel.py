"""Fuzz the event model (`eventmodel`): CloudEvents protobuf and JSON, and filters.

Documented outcomes:
- protobuf bytes: `validate_bytes` gives an event or raises `EventModelError` (InvalidEvent /
  UndecodableEvent); a validated event renders (`attribute_strings`), maps to the SDK and back,
  and prints as JSON; readers' `sdk.from_bytes` raises only `UndecodableEvent`.
- CloudEvents JSON (what a client builds with the SDK's JSON format): `sdk.to_pb` and
  `validate` raise only `InvalidEvent`.
- filters: protobuf and JSON forms decode or raise `InvalidFilter` (FilterTooComplex past the
  depth/node limits); decoded filters match any attributes without raising and survive a
  round trip through both forms unchanged.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from eventmodel import attributes, filter_codec, filters, json_form, sdk
from eventmodel.errors import EventModelError, InvalidEvent, InvalidFilter, UndecodableEvent
from proto import cloudevents_pb2, gateway_pb2
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.pb_strategies import SPECIAL_TEXT, messages, mutated, nest, text, wire


def _seed_events() -> list[bytes]:
    out = []
    for data in ("text", b"\x00\x01", '{"a": 1}'):
        event = cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t")
        event.attributes["time"].ce_timestamp.seconds = 1_800_000_000
        event.attributes["subject"].ce_string = "x"
        event.attributes["ext1"].ce_integer = -5
        if isinstance(data, bytes):
            event.binary_data = data
        else:
            event.attributes["datacontenttype"].ce_string = "application/json"
            event.text_data = data
        out.append(event.SerializeToString())
    return out


def _deep_json_event(depth: int) -> bytes:
    event = cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t")
    event.attributes["datacontenttype"].ce_string = "application/json"
    event.text_data = "[" * depth + "]" * depth
    return event.SerializeToString()


EVENT_BYTES = wire(
    cloudevents_pb2.CloudEvent,
    extra=[
        mutated(st.sampled_from(_seed_events())),
        st.integers(1, 5000).map(_deep_json_event),
    ],
)


@fuzz_settings()
@given(raw=EVENT_BYTES)
def test_protobuf_events_validate_or_raise_event_model_errors(raw: bytes) -> None:
    try:
        pb = attributes.validate_bytes(raw)
    except EventModelError:
        return
    assert isinstance(attributes.attribute_strings(pb), dict)
    try:
        event = sdk.from_pb(pb)
    except UndecodableEvent:
        return
    json.loads(json_form.to_json(event))
    attributes.validate(sdk.to_pb(event))


@fuzz_settings()
@given(raw=EVENT_BYTES)
def test_readers_decode_stored_bytes_or_raise_undecodable(raw: bytes) -> None:
    with contextlib.suppress(UndecodableEvent):
        sdk.from_bytes(raw)
    with contextlib.suppress(EventModelError):
        attributes.attribute_strings(attributes.parse(raw))


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
ATTRIBUTE_NAMES = st.one_of(
    st.sampled_from([s for s in SPECIAL_TEXT if s]),
    st.text("abcxyz0123456789ÄA_-", min_size=1, max_size=22),
)


@st.composite
def json_events(draw: st.DrawFn) -> str:
    doc: dict[str, Any] = {
        "specversion": draw(st.sampled_from(["1.0", "1.0", "0.3", "2"])),
        "id": draw(text),
        "source": draw(text),
        "type": draw(text),
    }
    for name in draw(st.lists(ATTRIBUTE_NAMES, max_size=4)):
        doc[name] = draw(json_values)
    if draw(st.booleans()):
        doc.pop(draw(st.sampled_from(["id", "source", "type", "specversion"])))
    return json.dumps(doc) if draw(st.integers(0, 9)) else draw(text)


@fuzz_settings()
@given(raw=json_events())
def test_cloudevents_json_maps_to_protobuf_or_raises_invalid_event(raw: str) -> None:
    try:
        event = JSONFormat().read(None, raw)
    except (BaseCloudEventException, ValueError, TypeError, KeyError, AttributeError):
        return  # the SDK's own parser refused it: nothing reaches meshgate
    try:
        pb = sdk.to_pb(event)
        attributes.validate(pb)
    except InvalidEvent:
        return
    json.loads(json_form.to_json(sdk.from_pb(pb)))


FILTER_ATTRS = st.dictionaries(
    st.sampled_from(["type", "source", "subject", "x", ""]), text, max_size=4
)
FILTER_PBS = st.lists(messages(gateway_pb2.Filter, depth=6), max_size=4)


def _deep(depth: int, path: tuple[int, ...]) -> list[gateway_pb2.Filter]:
    core = gateway_pb2.AttributeMatch(attribute="type", value="t").SerializeToString()
    raw = nest(path, depth, nest([1], 1, core))
    try:
        return [gateway_pb2.Filter.FromString(raw)]
    except DecodeError:  # past protobuf's own recursion limit: never reaches the codec
        return []


DEEP_PBS = st.builds(
    _deep, st.one_of(st.integers(1, 120), st.integers(1, 20000)), st.sampled_from([(6,), (4, 1)])
)


@fuzz_settings()
@given(pbs=st.one_of(FILTER_PBS, DEEP_PBS), attrs=FILTER_ATTRS)
def test_protobuf_filters_decode_or_raise_invalid_filter_and_round_trip(
    pbs: list[gateway_pb2.Filter], attrs: dict[str, str]
) -> None:
    try:
        decoded = filter_codec.filters_from_pb(pbs)
    except InvalidFilter:
        return
    assert isinstance(filters.matches_all(decoded, attrs), bool)
    assert filter_codec.filters_from_pb(filter_codec.filters_to_pb(decoded)) == decoded
    assert filters.list_from_json(filters.list_to_json(decoded)) == decoded
    assert filters.list_from_json(json.loads(json.dumps(filters.list_to_json(decoded)))) == decoded


filter_json = st.recursive(
    st.one_of(
        json_scalars,
        st.builds(
            lambda d, a, v: {d: {a: v}},
            st.sampled_from(["exact", "prefix", "suffix", "other"]),
            text,
            json_scalars,
        ),
    ),
    lambda inner: st.one_of(
        st.builds(
            lambda d, fs: {d: fs}, st.sampled_from(["all", "any"]), st.lists(inner, max_size=3)
        ),
        st.builds(lambda f: {"not": f}, inner),
        st.dictionaries(text, inner, max_size=2),
    ),
    max_leaves=12,
)


@fuzz_settings()
@given(raw=st.lists(filter_json, max_size=3), attrs=FILTER_ATTRS)
def test_json_filters_decode_or_raise_invalid_filter(raw: list[Any], attrs: dict[str, str]) -> None:
    try:
        decoded = filters.list_from_json(raw)
    except InvalidFilter:
        return
    assert isinstance(filters.matches_all(decoded, attrs), bool)
    assert filter_codec.filters_from_pb(filter_codec.filters_to_pb(decoded)) == decoded


def _event_with_bad_timestamp_extension() -> bytes:
    event = cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t")
    event.attributes["when"].ce_timestamp.nanos = 2**30  # not a valid Timestamp
    return event.SerializeToString()


def test_a_stored_event_with_an_out_of_range_timestamp_is_undecodable() -> None:
    # Found by fuzzing: from_pb raised a plain ValueError here; now UndecodableEvent.
    with pytest.raises(UndecodableEvent, match="Timestamp is not valid"):
        sdk.from_bytes(_event_with_bad_timestamp_extension())


def test_attribute_strings_of_an_out_of_range_timestamp_do_not_raise() -> None:
    """Found by fuzzing (fixed in f7cd2df): the value has no string form, so no key."""
    strings = attributes.attribute_strings(attributes.parse(_event_with_bad_timestamp_extension()))
    assert "when" not in strings


def test_a_stored_event_with_deeply_nested_json_data_is_undecodable_or_refused() -> None:
    """Found by fuzzing: JSON data nested 1000 arrays deep made every reader raise
    RecursionError; now it is an UndecodableEvent, which readers report and skip."""
    raw = _deep_json_event(1000)
    try:
        attributes.validate_bytes(raw)
    except EventModelError:
        return  # refusing it at the door is a fix too
    with contextlib.suppress(UndecodableEvent):
        sdk.from_bytes(raw)
