"""The one codec between filters (eventmodel/filters.py) and the protobuf `meshgate.v1.Filter`.

The client API (`SubscriptionOpen.filters`) and the federation interest messages carry the
same message, so both sides use these functions. Decoding enforces the filter limits
(MAX_FILTER_DEPTH, MAX_FILTER_NODES) before it descends, and raises InvalidFilter /
FilterTooComplex naming the problem; callers decide what that means (INVALID_ARGUMENT for a
client, a protocol error for a peer).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eventmodel.errors import InvalidFilter
from eventmodel.filters import All, Any, Budget, Exact, Filter, Not, Prefix, Suffix, combine, leaf
from proto import gateway_pb2


def filter_to_pb(flt: Filter) -> gateway_pb2.Filter:
    pb = gateway_pb2.Filter()
    match flt:
        case Exact(a, v):
            pb.exact.attribute, pb.exact.value = a, v
        case Prefix(a, v):
            pb.prefix.attribute, pb.prefix.value = a, v
        case Suffix(a, v):
            pb.suffix.attribute, pb.suffix.value = a, v
        case All(fs):
            pb.all.filters.extend(filter_to_pb(f) for f in fs)
        case Any(fs):
            pb.any.filters.extend(filter_to_pb(f) for f in fs)
        case Not(inner):
            getattr(pb, "not").CopyFrom(filter_to_pb(inner))
        case _:
            raise InvalidFilter(f"unknown filter {flt!r}")
    return pb


def filters_to_pb(filters: Iterable[Filter]) -> list[gateway_pb2.Filter]:
    return [filter_to_pb(f) for f in filters]


def _from_pb(pb: gateway_pb2.Filter, depth: int, budget: Budget) -> Filter:
    budget.enter(depth)
    kind = pb.WhichOneof("dialect")
    if kind in ("exact", "prefix", "suffix"):
        match = getattr(pb, kind)
        return leaf(kind, match.attribute, match.value)
    if kind in ("all", "any"):
        inner = getattr(pb, kind).filters
        return combine(kind, tuple(_from_pb(f, depth + 1, budget) for f in inner))
    if kind == "not":
        return Not(_from_pb(getattr(pb, "not"), depth + 1, budget))
    raise InvalidFilter("filter has no dialect")


def filter_from_pb(pb: gateway_pb2.Filter, budget: Budget | None = None) -> Filter:
    """Decode one filter; raises InvalidFilter (FilterTooComplex past the limits)."""
    return _from_pb(pb, 1, budget or Budget())


def filters_from_pb(pbs: Sequence[gateway_pb2.Filter]) -> tuple[Filter, ...]:
    """Decode a subscription's filter list; the node limit counts the whole list."""
    budget = Budget()
    return tuple(filter_from_pb(pb, budget) for pb in pbs)
