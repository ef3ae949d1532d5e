"""Event filters in the dialects of the CloudEvents Subscriptions API (pure, no I/O).

Dialects: `Exact`, `Prefix`, `Suffix` compare one attribute (context attribute or extension,
in its canonical string form, eventmodel/attributes.py) with a value; `All`, `Any` combine
filters; `Not` negates one. An attribute the event does not carry never matches
`Exact`/`Prefix`/`Suffix` (so `Not(Exact(...))` matches it). A subscription's filter list
matches when every filter matches (an empty list matches all).

Limits (checked by `check` and by every decoder, before recursing deeper, so hostile input
costs at most MAX_FILTER_NODES steps and never reaches Python's recursion limit):
- MAX_FILTER_DEPTH = 32 levels (a leaf alone is depth 1; `Not(Exact)` is 2);
- MAX_FILTER_NODES = 1024 nodes in one subscription's whole filter list.
Beyond them: FilterTooComplex (INVALID_ARGUMENT). Hand-written filters stay far below both;
32 is also well under protobuf's 100-level parse limit.

Filters are frozen and hashable so interest sets can hold them; `to_json`/`from_json` give the
stable form the store persists for durable groups (e.g. {"prefix": {"type": "com.example."}},
{"all": [...]}, {"not": {...}}), unchanged since the first stored databases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any as AnyType
from typing import Final

from eventmodel.errors import FilterTooComplex, InvalidFilter

MAX_FILTER_DEPTH: Final = 32
MAX_FILTER_NODES: Final = 1024


@dataclass(frozen=True, slots=True)
class Exact:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class Prefix:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class Suffix:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class All:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Any:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    filter: Filter


Filter = Exact | Prefix | Suffix | All | Any | Not
MATCHERS: dict[str, Callable[[str, str], Filter]] = {
    "exact": Exact,
    "prefix": Prefix,
    "suffix": Suffix,
}


def matches(flt: Filter, attributes: Mapping[str, str]) -> bool:
    """Whether one filter matches an event's string attributes."""
    match flt:
        case Exact(attribute, value):
            return attributes.get(attribute) == value
        case Prefix(attribute, value):
            got = attributes.get(attribute)
            return got is not None and got.startswith(value)
        case Suffix(attribute, value):
            got = attributes.get(attribute)
            return got is not None and got.endswith(value)
        case All(filters):
            return all(matches(f, attributes) for f in filters)
        case Any(filters):
            return any(matches(f, attributes) for f in filters)
        case Not(inner):
            return not matches(inner, attributes)
    raise InvalidFilter(f"unknown filter {flt!r}")


def matches_all(filters: Sequence[Filter], attributes: Mapping[str, str]) -> bool:
    return all(matches(f, attributes) for f in filters)


class Budget:
    """Counts nodes and depth while a filter list is built or checked; raises past the limits."""

    def __init__(self) -> None:
        self.nodes = 0

    def enter(self, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_FILTER_NODES:
            raise FilterTooComplex(f"filters have more than {MAX_FILTER_NODES} nodes")
        if depth > MAX_FILTER_DEPTH:
            raise FilterTooComplex(f"filter nested deeper than {MAX_FILTER_DEPTH} levels")


def leaf(dialect: str, attribute: str, value: str) -> Filter:
    """An Exact/Prefix/Suffix filter by dialect name; raises InvalidFilter."""
    cls = MATCHERS.get(dialect)
    if cls is None:
        raise InvalidFilter(f"unknown filter dialect {dialect!r}")
    if not attribute:
        raise InvalidFilter("filter names no attribute")
    return cls(attribute, value)


def combine(dialect: str, filters: tuple[Filter, ...]) -> Filter:
    """An All/Any filter by dialect name; raises InvalidFilter when it is empty."""
    if not filters:
        raise InvalidFilter(f"{dialect} filter needs at least one filter")
    return All(filters) if dialect == "all" else Any(filters)


def _check(flt: Filter, depth: int, budget: Budget) -> None:
    budget.enter(depth)
    match flt:
        case Exact(attribute, _) | Prefix(attribute, _) | Suffix(attribute, _):
            if not attribute:
                raise InvalidFilter("filter names no attribute")
        case All(filters) | Any(filters):
            if not filters:
                name = type(flt).__name__.lower()
                raise InvalidFilter(f"{name} filter needs at least one filter")
            for inner in filters:
                _check(inner, depth + 1, budget)
        case Not(inner):
            _check(inner, depth + 1, budget)
        case _:
            raise InvalidFilter(f"unknown filter {flt!r}")


def check(flt: Filter, budget: Budget | None = None) -> Filter:
    """Validate a filter tree (shape and limits); raise InvalidFilter naming the problem."""
    _check(flt, 1, budget or Budget())
    return flt


def check_all(filters: Iterable[Filter]) -> tuple[Filter, ...]:
    """Validate a subscription's filter list; the node limit counts the whole list."""
    budget = Budget()
    return tuple(check(f, budget) for f in filters)


# ---- the persisted JSON form -----------------------------------------------------------------


def to_json(flt: Filter) -> dict[str, AnyType]:
    match flt:
        case Exact(a, v) | Prefix(a, v) | Suffix(a, v):
            return {type(flt).__name__.lower(): {a: v}}
        case All(fs) | Any(fs):
            return {type(flt).__name__.lower(): [to_json(f) for f in fs]}
        case Not(inner):
            return {"not": to_json(inner)}
    raise InvalidFilter(f"unknown filter {flt!r}")


def _from_json(raw: AnyType, depth: int, budget: Budget) -> Filter:
    budget.enter(depth)
    if not isinstance(raw, Mapping) or len(raw) != 1:
        got = sorted(map(str, raw)) if isinstance(raw, Mapping) else type(raw).__name__
        raise InvalidFilter(f"a filter is an object with exactly one dialect, got {got}")
    ((dialect, body),) = raw.items()
    if dialect in MATCHERS:
        if not isinstance(body, Mapping) or len(body) != 1:
            raise InvalidFilter(f"{dialect} filter needs exactly one attribute")
        ((attribute, value),) = body.items()
        if not isinstance(value, str):
            raise InvalidFilter(f"{dialect} filter value must be a string")
        return leaf(dialect, str(attribute), value)
    if dialect in ("all", "any"):
        if not isinstance(body, list):
            raise InvalidFilter(f"{dialect} filter needs a list")
        return combine(dialect, tuple(_from_json(f, depth + 1, budget) for f in body))
    if dialect == "not":
        return Not(_from_json(body, depth + 1, budget))
    raise InvalidFilter(f"unknown filter dialect {dialect!r}")


def from_json(raw: Mapping[str, AnyType], budget: Budget | None = None) -> Filter:
    """The Subscriptions API JSON form, e.g. {"prefix": {"type": "com.example."}}."""
    return _from_json(raw, 1, budget or Budget())


def list_to_json(filters: Iterable[Filter]) -> list[dict[str, AnyType]]:
    return [to_json(f) for f in filters]


def list_from_json(raw: Iterable[Mapping[str, AnyType]]) -> tuple[Filter, ...]:
    budget = Budget()
    return tuple(from_json(f, budget) for f in raw)
