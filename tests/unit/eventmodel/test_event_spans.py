"""The span hooks: parented on the event's context, stamped once, nothing when off or absent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from eventmodel import event_spans, trace_context
from eventmodel.trace_context import TraceContext
from proto import cloudevents_pb2

PbEvent = cloudevents_pb2.CloudEvent
GIVEN = TraceContext(trace_id=0xABC, span_id=0xDEF, state="k=v")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    event_spans.install(provider.get_tracer("test"), "eu")
    try:
        yield exporter
    finally:
        event_spans.uninstall()
        provider.shutdown()


def event(i: int = 1, context: TraceContext | None = None) -> PbEvent:
    pb = PbEvent(id=f"e{i}", source="/shop", spec_version="1.0", type="t")
    if context is not None:
        trace_context.write(pb, context)
    return pb


@dataclass(frozen=True)
class Staged:
    payload: bytes


@dataclass(frozen=True)
class Result:
    offset: int
    duplicate: bool = False


@dataclass(frozen=True)
class Replicated:
    topic: str
    origin_region: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Inbound:
    topic: str
    event: bytes
    origin_region: str


@dataclass(frozen=True)
class Outgoing:
    offset: int
    attempt: int
    payload: bytes


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def child_of(span: ReadableSpan, context: TraceContext) -> bool:
    return (
        span.parent is not None
        and span.parent.trace_id == context.trace_id
        and span.parent.span_id == context.span_id
        and span.context.trace_id == context.trace_id
    )


def test_ingest_stamps_an_event_without_a_context_once(spans: InMemorySpanExporter) -> None:
    pb = event()
    event_spans.ingest("orders", [pb], stamp=True)
    ingest = only(spans)
    assert ingest.name == "ingest orders"
    stamped = trace_context.read(pb)
    assert stamped is not None
    assert (stamped.trace_id, stamped.span_id) == (ingest.context.trace_id, ingest.context.span_id)
    event_spans.ingest("orders", [pb], stamp=True)  # already has one: left as it is
    assert trace_context.read(pb) == stamped and len(spans.get_finished_spans()) == 1


def test_ingest_keeps_a_given_context_and_never_touches_a_signed_event(
    spans: InMemorySpanExporter,
) -> None:
    given, signed, registry = event(1, GIVEN), event(2), event(3)
    signed.attributes[event_spans.SIGNATURE_ATTRIBUTE].ce_bytes = b"sig"
    event_spans.ingest("orders", [given, signed], stamp=True)
    event_spans.ingest("orders", [registry], stamp=False)  # a registry gateway: never
    assert trace_context.read(given) == GIVEN
    assert "traceparent" not in signed.attributes and "traceparent" not in registry.attributes
    assert spans.get_finished_spans() == ()


def test_create_stamps_at_the_client(spans: InMemorySpanExporter) -> None:
    pb = event()
    event_spans.create("orders", [pb])
    span = only(spans)
    assert span.name == "create orders" and span.kind == SpanKind.PRODUCER
    assert trace_context.read(pb) is not None


def test_every_later_span_is_a_child_of_the_events_context(spans: InMemorySpanExporter) -> None:
    payload = event(1, GIVEN).SerializeToString()
    started = time.perf_counter()
    event_spans.published("orders", [Staged(payload)], [Result(7)], started)
    event_spans.replicate_sent(
        "ap", [Replicated("orders", "eu", {"traceparent": GIVEN.traceparent})]
    )
    event_spans.replicate_received("eu", [Inbound("orders", payload, "eu")], [True], 1)
    event_spans.delivered("orders", "billing", [Outgoing(7, 2, payload)])
    got = {s.name: s for s in spans.get_finished_spans()}
    assert set(got) == {
        "publish orders",
        "replicate send orders",
        "replicate receive orders",
        "deliver orders",
    }
    assert all(child_of(s, GIVEN) for s in got.values())
    assert all(s.attributes is not None for s in got.values())
    assert got["publish orders"].attributes["meshgate.offset"] == 7  # type: ignore[index]
    assert got["deliver orders"].attributes["meshgate.attempt"] == 2  # type: ignore[index]
    assert got["deliver orders"].attributes["messaging.consumer.group.name"] == "billing"  # type: ignore[index]
    assert got["replicate send orders"].attributes["meshgate.peer"] == "ap"  # type: ignore[index]
    assert got["publish orders"].attributes["meshgate.region"] == "eu"  # type: ignore[index]
    assert got["publish orders"].start_time <= got["publish orders"].end_time  # type: ignore[operator]


def test_events_without_a_context_or_unreadable_get_no_spans(
    spans: InMemorySpanExporter,
) -> None:
    plain = event().SerializeToString()
    event_spans.published("orders", [Staged(plain), Staged(b"\xff")], [Result(1), Result(2)], 0.0)
    event_spans.replicate_sent("ap", [Replicated("orders", "eu")])
    event_spans.delivered("orders", None, [Outgoing(1, 1, b"not protobuf \xff")])
    assert spans.get_finished_spans() == ()


def test_off_by_default() -> None:
    assert event_spans.ON is False


def test_an_unsampled_context_records_nothing_downstream(spans: InMemorySpanExporter) -> None:
    unsampled = TraceContext(trace_id=0xABC, span_id=0xDEF, flags=0)
    payload = event(1, unsampled).SerializeToString()
    event_spans.published("orders", [Staged(payload)], [Result(1)], time.perf_counter())
    event_spans.delivered("orders", None, [Outgoing(1, 1, payload)])
    assert spans.get_finished_spans() == ()


def test_a_context_set_before_signing_is_covered_and_never_rewritten(
    spans: InMemorySpanExporter,
) -> None:
    from eth_account import Account

    from eventmodel.errors import ProvenanceError
    from eventmodel.provenance import Binding, ProvenanceVerifier, sign_events

    binding = Binding.of(1337, "0x" + "ab" * 20)
    pbs = [event(1), event(2)]
    event_spans.create("orders", pbs)  # the client's order: context, then signature
    sign_events(pbs, topic="orders", binding=binding, signer=Account.from_key(b"\x11" * 32))
    stamped = [trace_context.read(pb) for pb in pbs]
    event_spans.ingest("orders", pbs, stamp=True)  # an open gateway leaves signed events be
    assert [trace_context.read(pb) for pb in pbs] == stamped and None not in stamped
    for pb in pbs:
        ProvenanceVerifier(binding).verify(pb, "orders")
    forged = PbEvent()
    forged.CopyFrom(pbs[0])
    trace_context.write(forged, TraceContext(trace_id=1, span_id=1))
    with pytest.raises(ProvenanceError, match="not in the signed batch"):
        ProvenanceVerifier(binding).verify(forged, "orders")
