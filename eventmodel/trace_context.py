"""W3C trace context in a CloudEvent: the Distributed Tracing extension (traceparent, tracestate).

Pure: no OpenTelemetry here (eventmodel/event_spans.py and meshgate/tracing.py use it).

Rules:
- An event's trace context is set ONCE, where it enters the mesh: by the publishing client
  before it signs (a signature covers every attribute, eventmodel/provenance.py), or by an open
  gateway at ingest when the event has none. Nothing downstream rewrites it: every later span
  (store, replicate at each hop, deliver) is a child of the context the event carries, so one
  trace id follows the event across regions.
- Reading never raises: a `traceparent` that is not a valid W3C value (wrong length, upper-case
  or non-hex digits, version `ff`, an all-zero trace or parent id, a version 00 value with a
  suffix), or is not a String attribute, reads as no context. A `tracestate` is kept only
  beside a valid `traceparent`, and only if it is a plausible W3C list (at most 512 printable
  ASCII characters, at most 32 members); otherwise it is dropped, the parent kept.

Spec: https://www.w3.org/TR/trace-context/ section 3.2 (traceparent), 3.3 (tracestate);
CloudEvents extensions/distributed-tracing.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from eventmodel.attributes import PbEvent

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
SAMPLED: Final = 0x01

MAX_TRACESTATE: Final = 512
MAX_TRACESTATE_MEMBERS: Final = 32

_TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>(?:-.*)?)",
    re.DOTALL,
)
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceContext:
    """One W3C trace context: ids as integers (as OpenTelemetry holds them)."""

    trace_id: int
    span_id: int
    flags: int = SAMPLED
    state: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.trace_id < 1 << 128:
            raise ValueError("trace_id must be a non-zero 128-bit integer")
        if not 0 < self.span_id < 1 << 64:
            raise ValueError("span_id must be a non-zero 64-bit integer")
        if not 0 <= self.flags < 1 << 8:
            raise ValueError("flags must fit one byte")

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"


def parse_traceparent(value: str, state: str = "") -> TraceContext | None:
    """The context a `traceparent` header value names, or None if it is not a valid one."""
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version = match["version"]
    if version == "ff" or (version == "00" and match["rest"]):
        return None
    trace_id, span_id = int(match["trace"], 16), int(match["parent"], 16)
    if trace_id == 0 or span_id == 0:
        return None
    return TraceContext(
        trace_id=trace_id, span_id=span_id, flags=int(match["flags"], 16), state=_state(state)
    )


def _state(value: str) -> str:
    """`value` if it is a plausible tracestate list, else "" (dropped, never an error)."""
    if len(value) > MAX_TRACESTATE or not _PRINTABLE.fullmatch(value):
        return ""
    members = [m for m in value.split(",") if m.strip()]
    if len(members) > MAX_TRACESTATE_MEMBERS or any("=" not in m for m in members):
        return ""
    return value


def read(pb: PbEvent) -> TraceContext | None:
    """The trace context `pb` carries (None when absent or invalid; never raises)."""
    if TRACEPARENT not in pb.attributes:
        return None
    parent = pb.attributes[TRACEPARENT]
    if parent.WhichOneof("attr") != "ce_string":
        return None
    state = pb.attributes.get(TRACESTATE)
    text = state.ce_string if state is not None and state.WhichOneof("attr") == "ce_string" else ""
    return parse_traceparent(parent.ce_string, text)


def read_strings(attributes: Mapping[str, str]) -> TraceContext | None:
    """The same from an event's attribute strings (`attribute_strings`, a LogRecord's)."""
    value = attributes.get(TRACEPARENT)
    if value is None:
        return None
    return parse_traceparent(value, attributes.get(TRACESTATE, ""))


def write(pb: PbEvent, context: TraceContext) -> None:
    """Set `pb`'s extension attributes to `context` (tracestate only when non-empty)."""
    pb.attributes[TRACEPARENT].ce_string = context.traceparent
    if context.state:
        pb.attributes[TRACESTATE].ce_string = context.state
    elif TRACESTATE in pb.attributes:
        del pb.attributes[TRACESTATE]
