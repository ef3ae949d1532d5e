"""Filter dialects: examples plus hypothesis properties of the combinators."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import filters as f
from gateway import wire
from gateway.errors import InvalidFilter

NAMES = st.sampled_from(["type", "source", "subject", "region", "missing"])
TEXT = st.text(alphabet="ab.c", max_size=4)
ATTRS = st.dictionaries(st.sampled_from(["type", "source", "subject", "region"]), TEXT)


def leaf() -> st.SearchStrategy[f.Filter]:
    return st.builds(
        lambda cls, a, v: cls(a, v), st.sampled_from([f.Exact, f.Prefix, f.Suffix]), NAMES, TEXT
    )


FILTERS = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: f.All(tuple(fs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: f.Any(tuple(fs))),
        inner.map(f.Not),
    ),
    max_leaves=8,
)


def test_examples() -> None:
    attrs = {"type": "com.example.order.created", "source": "/shop/eu"}
    assert f.matches(f.Exact("type", "com.example.order.created"), attrs)
    assert not f.matches(f.Exact("type", "com.example.order"), attrs)
    assert f.matches(f.Prefix("type", "com.example."), attrs)
    assert f.matches(f.Suffix("source", "/eu"), attrs)
    assert not f.matches(f.Suffix("source", "/us"), attrs)
    assert not f.matches(f.Exact("subject", ""), attrs)  # absent attribute never matches
    assert f.matches(f.Not(f.Exact("subject", "x")), attrs)
    assert f.matches_all([], attrs)


@given(FILTERS, ATTRS)
def test_not_inverts(flt: f.Filter, attrs: dict[str, str]) -> None:
    assert f.matches(f.Not(flt), attrs) is (not f.matches(flt, attrs))


@given(st.lists(FILTERS, min_size=1, max_size=4), ATTRS)
def test_all_is_conjunction_any_is_disjunction(fs: list[f.Filter], attrs: dict[str, str]) -> None:
    each = [f.matches(x, attrs) for x in fs]
    assert f.matches(f.All(tuple(fs)), attrs) is all(each)
    assert f.matches(f.Any(tuple(fs)), attrs) is any(each)
    assert f.matches_all(fs, attrs) is all(each)


@given(NAMES, TEXT, ATTRS)
def test_exact_implies_prefix_and_suffix(name: str, value: str, attrs: dict[str, str]) -> None:
    if f.matches(f.Exact(name, value), attrs):
        assert f.matches(f.Prefix(name, value), attrs)
        assert f.matches(f.Suffix(name, value), attrs)
    assert f.matches(f.Prefix(name, ""), attrs) is (name in attrs)


@given(FILTERS, ATTRS)
def test_de_morgan(flt: f.Filter, attrs: dict[str, str]) -> None:
    other = f.Exact("type", "a")
    lhs = f.Not(f.All((flt, other)))
    rhs = f.Any((f.Not(flt), f.Not(other)))
    assert f.matches(lhs, attrs) is f.matches(rhs, attrs)


@given(FILTERS)
def test_json_and_protobuf_round_trip(flt: f.Filter) -> None:
    assert f.from_json(f.to_json(flt)) == flt
    assert wire.filter_from_pb(wire.filter_to_pb(flt)) == flt


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"exact": {}},
        {"all": []},
        {"any": []},
        {"regex": {"type": "x"}},
        {"exact": {"a": "1", "b": "2"}},
    ],
)
def test_invalid_json_filters(raw: dict[str, object]) -> None:
    with pytest.raises(InvalidFilter):
        f.from_json(raw)


def test_empty_attribute_rejected() -> None:
    with pytest.raises(InvalidFilter):
        f.check(f.Exact("", "x"))
