"""Spans along an event's path (issue 16): ingest, publish, replicate send/receive, deliver.

OFF unless meshgate/tracing.py installed a tracer (`install`). Every call site checks the
module flag first (`if event_spans.ON: event_spans.published(...)`), so with tracing off
nothing here runs and OpenTelemetry is never imported (it is imported inside the functions,
which only run when ON).

Parenting: each span of an event is a child of the trace context the event carries
(eventmodel/trace_context.py), set once where it entered the mesh, so one trace id follows
the event through every region. A span recorded while another traced operation is current
(an instrumented RPC: the Publish call, the Subscribe stream) links to that operation's span.
An event without a context gets no event spans (a registry gateway cannot give it one:
the publishing client must, before it signs). One span per event: the events of one batch may
belong to different traces. Spans are recorded after the fact with explicit start and end
times, so the hot path holds no span objects. Sampling is decided once, where the context is
set (OTEL_TRACES_SAMPLER there): an event whose context is not sampled costs each later hop a
parse of its traceparent and nothing more.

    ingest {topic}             INTERNAL  an open gateway gave the event its context (so it is
                                         the parent of everything below; under the RPC's span)
    create {topic}             PRODUCER  the same, done by the publishing client before signing
    publish {topic}            SERVER    origin gateway: arrival -> durable (checks + store)
    replicate send {topic}     PRODUCER  a region hands the event to a peer (one per hop)
    replicate receive {topic}  CONSUMER  a region verified and stored it from a peer (one per hop)
    deliver {topic}            CONSUMER  leased to a subscriber (attempt, group)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from eventmodel import trace_context
from eventmodel.attributes import PbEvent
from eventmodel.trace_context import TraceContext

ON = False  # the one flag every call site checks
_tracer: Any = None
_region = ""
SIGNATURE_ATTRIBUTE = "mgpubsig"  # eventmodel/provenance.py SIGNATURE: never rewrite a signed event


class _Staged(Protocol):
    @property
    def payload(self) -> bytes: ...


class _Result(Protocol):
    @property
    def offset(self) -> int: ...
    @property
    def duplicate(self) -> bool: ...


class _Replicated(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def origin_region(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...


class _Inbound(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def event(self) -> bytes: ...
    @property
    def origin_region(self) -> str: ...


class _Outgoing(Protocol):
    @property
    def offset(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


def install(tracer: Any, region: str = "") -> None:
    """Turn the hooks on with an OpenTelemetry `Tracer` (meshgate/tracing.py does)."""
    global ON, _tracer, _region
    _tracer, _region, ON = tracer, region, True


def uninstall() -> None:
    global ON, _tracer
    ON, _tracer = False, None


def now() -> int:
    return time.time_ns()


def _wall_ns(perf_started: float) -> int:
    """A `time.perf_counter()` reading as wall-clock nanoseconds (span start times are wall)."""
    return time.time_ns() - int((time.perf_counter() - perf_started) * 1e9)


def _of_payload(payload: bytes) -> TraceContext | None:
    try:
        return trace_context.read(PbEvent.FromString(payload))
    except Exception:  # a payload we cannot read is not traced, never an error
        return None


def _parent(context: TraceContext) -> Any:
    from opentelemetry import trace
    from opentelemetry.context import Context

    span_context = trace.SpanContext(
        context.trace_id,
        context.span_id,
        is_remote=True,
        trace_flags=trace.TraceFlags(context.flags),
        trace_state=trace.TraceState.from_header([context.state]) if context.state else None,
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context), Context())


def _links() -> list[Any]:
    from opentelemetry import trace

    current = trace.get_current_span().get_span_context()
    return [trace.Link(current)] if current.is_valid else []


def _record(
    name: str,
    kind: str,
    context: TraceContext,
    attributes: dict[str, Any],
    start: int,
    end: int | None = None,
    links: Sequence[Any] = (),
) -> None:
    from opentelemetry.trace import SpanKind

    if not context.sampled:  # decided where the context was set: nothing to record
        return
    attributes.setdefault("messaging.system", "meshgate")
    if _region:
        attributes["meshgate.region"] = _region
    span = _tracer.start_span(
        name,
        context=_parent(context),
        kind=SpanKind[kind],
        attributes=attributes,
        links=links,
        start_time=start,
    )
    span.end(end_time=end if end is not None else time.time_ns())


def _attributes(topic: str, pb: PbEvent | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"messaging.destination.name": topic}
    if pb is not None:
        out["messaging.message.id"] = pb.id
        out["cloudevents.event_source"] = pb.source
        out["cloudevents.event_type"] = pb.type
    return out


def _context_of_span(span: Any) -> TraceContext:
    sc = span.get_span_context()
    return TraceContext(
        trace_id=sc.trace_id,
        span_id=sc.span_id,
        flags=int(sc.trace_flags),
        state=sc.trace_state.to_header() if sc.trace_state else "",
    )


def _stamp(name: str, kind: str, topic: str, pbs: Iterable[PbEvent]) -> None:
    from opentelemetry.trace import SpanKind

    for pb in pbs:
        if SIGNATURE_ATTRIBUTE in pb.attributes or trace_context.read(pb) is not None:
            continue  # signed (never rewritten) or already given a context by its publisher
        span = _tracer.start_span(
            f"{name} {topic}", kind=SpanKind[kind], attributes=_attributes(topic, pb)
        )
        trace_context.write(pb, _context_of_span(span))
        span.end()


def ingest(topic: str, pbs: Iterable[PbEvent], *, stamp: bool) -> None:
    """An open gateway (`stamp`): give each unsigned event without a context its own, from an
    `ingest` span (a child of the current RPC span when the caller traces its calls)."""
    if stamp:
        _stamp("ingest", "INTERNAL", topic, pbs)


def create(topic: str, pbs: Iterable[PbEvent]) -> None:
    """The publishing client: each event without a context gets one from a `create` span (a
    child of the caller's current span), before the client signs."""
    _stamp("create", "PRODUCER", topic, pbs)


def published(
    topic: str, staged: Sequence[_Staged], results: Sequence[_Result], started: float
) -> None:
    """The origin gateway stored `staged` (`started`: `time.perf_counter()` at arrival)."""
    start, links = _wall_ns(started), _links()
    for event, result in zip(staged, results, strict=False):
        context = _of_payload(event.payload)
        if context is None:
            continue
        attributes = _attributes(topic)
        attributes["meshgate.offset"] = result.offset
        attributes["meshgate.duplicate"] = result.duplicate
        _record(f"publish {topic}", "SERVER", context, attributes, start, links=links)


def replicate_sent(peer: str, events: Sequence[_Replicated]) -> None:
    """A link hands `events` to `peer` (the sender's half of one hop)."""
    start, links = time.time_ns(), _links()
    for ev in events:
        context = trace_context.read_strings(ev.attributes)
        if context is None:
            continue
        attributes = _attributes(ev.topic)
        attributes["meshgate.peer"] = peer
        attributes["meshgate.origin_region"] = ev.origin_region
        _record(f"replicate send {ev.topic}", "PRODUCER", context, attributes, start, links=links)


def replicate_received(
    peer: str, events: Sequence[_Inbound], fresh: Sequence[bool], started: int
) -> None:
    """This region verified and stored `events` from `peer` (`started`: `now()` at arrival)."""
    links = _links()
    for ev, new in zip(events, fresh, strict=False):
        context = _of_payload(ev.event)
        if context is None:
            continue
        attributes = _attributes(ev.topic)
        attributes["meshgate.peer"] = peer
        attributes["meshgate.origin_region"] = ev.origin_region
        attributes["meshgate.duplicate"] = not new
        _record(
            f"replicate receive {ev.topic}", "CONSUMER", context, attributes, started, links=links
        )


def delivered(topic: str, group: str | None, outgoing: Sequence[_Outgoing]) -> None:
    """`outgoing` was leased to a subscriber of `topic` (`group`: None for an ephemeral one)."""
    start, links = time.time_ns(), _links()
    for out in outgoing:
        context = _of_payload(out.payload)
        if context is None:
            continue
        attributes = _attributes(topic)
        attributes["meshgate.offset"] = out.offset
        attributes["meshgate.attempt"] = out.attempt
        if group is not None:
            attributes["messaging.consumer.group.name"] = group
        _record(f"deliver {topic}", "CONSUMER", context, attributes, start, links=links)


__all__ = [
    "ON",
    "create",
    "delivered",
    "ingest",
    "install",
    "now",
    "published",
    "replicate_received",
    "replicate_sent",
    "uninstall",
]
