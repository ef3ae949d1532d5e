"""Protobuf <-> gateway value types for the client API (filters, start positions, credentials).

Events are mapped in gateway/events.py. Only shells (service, client, CLI) import this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway import filters as f
from gateway.access import Credentials
from gateway.errors import InvalidFilter, InvalidRequest
from proto import gateway_pb2


@dataclass(frozen=True, slots=True)
class Start:
    """Where a subscription without a committed offset begins."""

    kind: str = "earliest"  # earliest | latest | offset | time
    offset: int = 0
    time: dt.datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Start:
        """earliest | latest | an offset | an ISO 8601 time (CLI form)."""
        if text in ("earliest", "latest"):
            return cls(text)
        if text.isdigit():
            return cls("offset", offset=int(text))
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidRequest(
                f"invalid start {text!r}: earliest, latest, an offset or an ISO 8601 time"
            ) from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return cls("time", time=when)


_KINDS = {
    "earliest": gateway_pb2.StartPosition.EARLIEST,
    "latest": gateway_pb2.StartPosition.LATEST,
    "offset": gateway_pb2.StartPosition.OFFSET,
    "time": gateway_pb2.StartPosition.TIME,
}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}


def start_to_pb(start: Start) -> gateway_pb2.StartPosition:
    pb = gateway_pb2.StartPosition(kind=_KINDS[start.kind], offset=start.offset)
    if start.time is not None:
        pb.time.FromDatetime(start.time.astimezone(dt.UTC))
    return pb


def start_from_pb(pb: gateway_pb2.StartPosition) -> Start:
    kind = _KIND_NAMES.get(pb.kind)
    if kind is None:
        raise InvalidRequest(f"unknown start position kind {pb.kind}")
    when = pb.time.ToDatetime(tzinfo=dt.UTC) if kind == "time" else None
    return Start(kind, offset=pb.offset, time=when)


def filter_to_pb(flt: f.Filter) -> gateway_pb2.Filter:
    match flt:
        case f.Exact(a, v):
            return gateway_pb2.Filter(exact=gateway_pb2.AttributeMatch(attribute=a, value=v))
        case f.Prefix(a, v):
            return gateway_pb2.Filter(prefix=gateway_pb2.AttributeMatch(attribute=a, value=v))
        case f.Suffix(a, v):
            return gateway_pb2.Filter(suffix=gateway_pb2.AttributeMatch(attribute=a, value=v))
        case f.All(fs):
            return gateway_pb2.Filter(all=gateway_pb2.FilterList(filters=filters_to_pb(fs)))
        case f.Any(fs):
            return gateway_pb2.Filter(any=gateway_pb2.FilterList(filters=filters_to_pb(fs)))
        case f.Not(inner):
            out = gateway_pb2.Filter()
            getattr(out, "not").CopyFrom(filter_to_pb(inner))
            return out
    raise InvalidFilter(f"unknown filter {flt!r}")


def filters_to_pb(filters: Iterable[f.Filter]) -> list[gateway_pb2.Filter]:
    return [filter_to_pb(x) for x in filters]


def filter_from_pb(pb: gateway_pb2.Filter) -> f.Filter:
    kind = pb.WhichOneof("dialect")
    if kind in ("exact", "prefix", "suffix"):
        match = getattr(pb, kind)
        cls = f.MATCHERS[kind]
        return f.check(cls(match.attribute, match.value))
    if kind == "all":
        return f.check(f.All(filters_from_pb(pb.all.filters)))
    if kind == "any":
        return f.check(f.Any(filters_from_pb(pb.any.filters)))
    if kind == "not":
        return f.Not(filter_from_pb(getattr(pb, "not")))
    raise InvalidFilter("filter has no dialect")


def filters_from_pb(pbs: Sequence[gateway_pb2.Filter]) -> tuple[f.Filter, ...]:
    return tuple(filter_from_pb(x) for x in pbs)


def credentials_from_pb(pb: gateway_pb2.Credentials, present: bool) -> Credentials | None:
    if not present:
        return None
    kind = pb.WhichOneof("kind")
    if kind == "proof":
        return Credentials(message=pb.proof.message, signature=pb.proof.signature)
    if kind == "session_token":
        return Credentials(session_token=pb.session_token)
    return None
