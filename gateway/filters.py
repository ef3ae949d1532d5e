"""Event filters in the dialects of the CloudEvents Subscriptions API (pure, no I/O).

Dialects: `Exact`, `Prefix`, `Suffix` compare one attribute (context attribute or extension,
as a string) with a value; `All`, `Any` combine filters; `Not` negates one. An attribute the
event does not carry never matches `Exact`/`Prefix`/`Suffix` (so `Not(Exact(...))` matches it).
A subscription's filter list matches when every filter matches (an empty list matches all).

Filters are frozen and hashable so interest sets can hold them; `to_json`/`from_json` give the
stable form the store persists for durable groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any as AnyType

from gateway.errors import InvalidFilter


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


def check(flt: Filter) -> Filter:
    """Validate a filter tree; raise InvalidFilter naming the problem."""
    match flt:
        case Exact(attribute, _) | Prefix(attribute, _) | Suffix(attribute, _):
            if not attribute:
                raise InvalidFilter("filter names no attribute")
        case All(filters) | Any(filters):
            if not filters:
                name = type(flt).__name__.lower()
                raise InvalidFilter(f"{name} filter needs at least one filter")
            for inner in filters:
                check(inner)
        case Not(inner):
            check(inner)
        case _:
            raise InvalidFilter(f"unknown filter {flt!r}")
    return flt


def to_json(flt: Filter) -> dict[str, AnyType]:
    match flt:
        case Exact(a, v) | Prefix(a, v) | Suffix(a, v):
            return {type(flt).__name__.lower(): {a: v}}
        case All(fs) | Any(fs):
            return {type(flt).__name__.lower(): [to_json(f) for f in fs]}
        case Not(inner):
            return {"not": to_json(inner)}
    raise InvalidFilter(f"unknown filter {flt!r}")


def from_json(raw: Mapping[str, AnyType]) -> Filter:
    """The Subscriptions API JSON form, e.g. {"prefix": {"type": "com.example."}}."""
    if len(raw) != 1:
        raise InvalidFilter(f"a filter has exactly one dialect, got {sorted(raw)}")
    ((dialect, body),) = raw.items()
    if dialect in ("exact", "prefix", "suffix"):
        if not isinstance(body, Mapping) or len(body) != 1:
            raise InvalidFilter(f"{dialect} filter needs exactly one attribute")
        ((attribute, value),) = body.items()
        cls = MATCHERS[dialect]
        return check(cls(str(attribute), str(value)))
    if dialect in ("all", "any"):
        if not isinstance(body, list):
            raise InvalidFilter(f"{dialect} filter needs a list")
        inner = tuple(from_json(f) for f in body)
        return check(All(inner) if dialect == "all" else Any(inner))
    if dialect == "not":
        if not isinstance(body, Mapping):
            raise InvalidFilter("not filter needs one filter")
        return Not(from_json(body))
    raise InvalidFilter(f"unknown filter dialect {dialect!r}")


def list_to_json(filters: Iterable[Filter]) -> list[dict[str, AnyType]]:
    return [to_json(f) for f in filters]


def list_from_json(raw: Iterable[Mapping[str, AnyType]]) -> tuple[Filter, ...]:
    return tuple(from_json(f) for f in raw)
