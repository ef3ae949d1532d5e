"""The Distributed Tracing extension codec: valid contexts round-trip, others read as none."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventmodel import event_spans, provenance, trace_context
from eventmodel.trace_context import TraceContext, parse_traceparent
from proto import cloudevents_pb2

PbEvent = cloudevents_pb2.CloudEvent

_KEY = st.from_regex(r"[a-z][a-z0-9_\-*/]{0,20}", fullmatch=True)
_VALUE = st.from_regex(r"[\x21-\x2b\x2d-\x3c\x3e-\x7e]{1,20}", fullmatch=True)
STATES = st.lists(st.tuples(_KEY, _VALUE), max_size=5).map(
    lambda kvs: ",".join(f"{k}={v}" for k, v in kvs)
)
CONTEXTS = st.builds(
    TraceContext,
    trace_id=st.integers(1, (1 << 128) - 1),
    span_id=st.integers(1, (1 << 64) - 1),
    flags=st.integers(0, 255),
    state=STATES,
)


def event() -> PbEvent:
    return PbEvent(id="1", source="/shop", spec_version="1.0", type="t")


@given(CONTEXTS)
def test_a_valid_context_round_trips_through_an_event(context: TraceContext) -> None:
    pb = event()
    trace_context.write(pb, context)
    again = PbEvent.FromString(pb.SerializeToString())
    assert trace_context.read(again) == context
    assert trace_context.read_strings({k: v.ce_string for k, v in again.attributes.items()}) == (
        context
    )
    assert parse_traceparent(context.traceparent, context.state) == context


def test_the_w3c_example_parses() -> None:
    ctx = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "rojo=00f")
    assert ctx == TraceContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        flags=1,
        state="rojo=00f",
    )
    assert ctx.sampled


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # no flags
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero parent id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # 00 has no suffix
        "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",  # short trace id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
        " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n",
    ],
)
def test_an_invalid_traceparent_is_no_context(value: str) -> None:
    assert parse_traceparent(value) is None
    pb = event()
    pb.attributes["traceparent"].ce_string = value
    assert trace_context.read(pb) is None


def test_a_later_version_may_carry_more_fields() -> None:
    ctx = parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-ever")
    assert ctx is not None and ctx.span_id == 0xB7AD6B7169203331


def test_a_traceparent_of_another_type_is_no_context() -> None:
    pb = event()
    pb.attributes["traceparent"].ce_integer = 7
    assert trace_context.read(pb) is None


def test_an_implausible_tracestate_is_dropped_and_the_parent_kept() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for state in ("no-equals-sign", "a=1\x01", "x=" + "y" * 600, ",".join(["a=1"] * 33)):
        ctx = parse_traceparent(parent, state)
        assert ctx is not None and ctx.state == ""


def test_writing_an_empty_state_removes_an_old_one() -> None:
    pb = event()
    pb.attributes["tracestate"].ce_string = "old=1"
    trace_context.write(pb, TraceContext(trace_id=1, span_id=2))
    assert "tracestate" not in pb.attributes
    assert pb.attributes["traceparent"].ce_string == f"00-{1:032x}-{2:016x}-01"


@given(st.text(max_size=80), st.text(max_size=80))
def test_reading_never_raises(parent: str, state: str) -> None:
    parse_traceparent(parent, state)
    trace_context.read_strings({"traceparent": parent, "tracestate": state})


@given(st.binary(max_size=80), st.binary(max_size=40))
def test_reading_arbitrary_attribute_bytes_never_raises(parent: bytes, state: bytes) -> None:
    pb = event()
    pb.attributes["traceparent"].ce_string = parent.decode("latin-1")
    pb.attributes["tracestate"].ce_bytes = state
    trace_context.read(pb)


def test_out_of_range_ids_are_refused_when_built() -> None:
    with pytest.raises(ValueError):
        TraceContext(trace_id=0, span_id=1)
    with pytest.raises(ValueError):
        TraceContext(trace_id=1, span_id=1 << 64)


def test_the_hooks_know_the_signature_attribute() -> None:
    assert event_spans.SIGNATURE_ATTRIBUTE == provenance.SIGNATURE
