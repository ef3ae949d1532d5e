"""Filter dialects: examples, hypothesis properties of the combinators, codecs and limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventmodel import filter_codec
from eventmodel import filters as f
from eventmodel.errors import FilterTooComplex, InvalidFilter
from proto import gateway_pb2

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


@settings(deadline=None)
@given(FILTERS, ATTRS)
def test_not_inverts(flt: f.Filter, attrs: dict[str, str]) -> None:
    assert f.matches(f.Not(flt), attrs) is (not f.matches(flt, attrs))


@settings(deadline=None)
@given(st.lists(FILTERS, min_size=1, max_size=4), ATTRS)
def test_all_is_conjunction_any_is_disjunction(fs: list[f.Filter], attrs: dict[str, str]) -> None:
    each = [f.matches(x, attrs) for x in fs]
    assert f.matches(f.All(tuple(fs)), attrs) is all(each)
    assert f.matches(f.Any(tuple(fs)), attrs) is any(each)
    assert f.matches_all(fs, attrs) is all(each)


@settings(deadline=None)
@given(NAMES, TEXT, ATTRS)
def test_exact_implies_prefix_and_suffix(name: str, value: str, attrs: dict[str, str]) -> None:
    if f.matches(f.Exact(name, value), attrs):
        assert f.matches(f.Prefix(name, value), attrs)
        assert f.matches(f.Suffix(name, value), attrs)
    assert f.matches(f.Prefix(name, ""), attrs) is (name in attrs)


@settings(deadline=None)
@given(FILTERS, ATTRS)
def test_de_morgan(flt: f.Filter, attrs: dict[str, str]) -> None:
    other = f.Exact("type", "a")
    lhs = f.Not(f.All((flt, other)))
    rhs = f.Any((f.Not(flt), f.Not(other)))
    assert f.matches(lhs, attrs) is f.matches(rhs, attrs)


@settings(deadline=None)
@given(FILTERS)
def test_json_and_protobuf_round_trip(flt: f.Filter) -> None:
    assert f.from_json(f.to_json(flt)) == flt
    assert filter_codec.filter_from_pb(filter_codec.filter_to_pb(flt)) == flt
    assert f.list_from_json(json.loads(json.dumps(f.list_to_json([flt, flt])))) == (flt, flt)


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


def test_persisted_json_of_earlier_databases_still_reads() -> None:
    # The exact form gateway/filters.py wrote for durable groups before eventmodel existed.
    stored = (
        '[{"all": [{"prefix": {"type": "com.example."}}, {"not": {"exact": {"region": "eu"}}}]},'
        ' {"any": [{"suffix": {"source": "/s"}}]}]'
    )
    back = f.list_from_json(json.loads(stored))
    assert back == (
        f.All((f.Prefix("type", "com.example."), f.Not(f.Exact("region", "eu")))),
        f.Any((f.Suffix("source", "/s"),)),
    )
    assert json.dumps(f.list_to_json(back)) == stored


def _nested_pb(depth: int) -> gateway_pb2.Filter:
    pb = gateway_pb2.Filter(exact=gateway_pb2.AttributeMatch(attribute="type", value="x"))
    for _ in range(depth - 1):
        outer = gateway_pb2.Filter()
        getattr(outer, "not").CopyFrom(pb)
        pb = outer
    return pb


def _nested_json(depth: int) -> dict[str, object]:
    raw: dict[str, object] = {"exact": {"type": "x"}}
    for _ in range(depth - 1):
        raw = {"not": raw}
    return raw


def test_depth_limit_is_inclusive_in_every_decoder() -> None:
    ok = f.MAX_FILTER_DEPTH
    assert filter_codec.filter_from_pb(_nested_pb(ok)) == f.from_json(_nested_json(ok))
    with pytest.raises(FilterTooComplex, match="deeper than 32"):
        filter_codec.filter_from_pb(_nested_pb(ok + 1))
    with pytest.raises(FilterTooComplex, match="deeper than 32"):
        f.from_json(_nested_json(ok + 1))
    with pytest.raises(FilterTooComplex):
        f.check(_deep_value(ok + 1))


def _deep_value(depth: int) -> f.Filter:
    flt: f.Filter = f.Exact("type", "x")
    for _ in range(depth - 1):
        flt = f.Not(flt)
    return flt


def test_ten_thousand_deep_json_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(FilterTooComplex):
        f.from_json(_nested_json(10_000))
    with pytest.raises(FilterTooComplex):
        f.check(_deep_value(10_000))


def test_node_limit_counts_the_whole_list() -> None:
    leaf = gateway_pb2.Filter(exact=gateway_pb2.AttributeMatch(attribute="type", value="x"))
    wide = gateway_pb2.Filter(any=gateway_pb2.FilterList(filters=[leaf] * 200_000))
    with pytest.raises(FilterTooComplex, match="more than 1024 nodes"):
        filter_codec.filters_from_pb([wide])
    half = gateway_pb2.Filter(any=gateway_pb2.FilterList(filters=[leaf] * 511))  # 512 nodes
    assert len(filter_codec.filters_from_pb([half, half])) == 2
    with pytest.raises(FilterTooComplex):
        filter_codec.filters_from_pb([half, half, leaf])
    with pytest.raises(FilterTooComplex):
        f.list_from_json([{"any": [{"exact": {"a": "b"}}] * 1024}])
    with pytest.raises(FilterTooComplex):
        f.check_all([f.Any((f.Exact("a", "b"),) * 1024)])


def test_filter_without_dialect_and_empty_lists_are_invalid() -> None:
    with pytest.raises(InvalidFilter, match="no dialect"):
        filter_codec.filter_from_pb(gateway_pb2.Filter())
    with pytest.raises(InvalidFilter, match="at least one"):
        filter_codec.filter_from_pb(gateway_pb2.Filter(all=gateway_pb2.FilterList()))
    empty_attr = gateway_pb2.Filter(prefix=gateway_pb2.AttributeMatch(attribute="", value="x"))
    with pytest.raises(InvalidFilter, match="no attribute"):
        filter_codec.filter_from_pb(empty_attr)


@pytest.mark.parametrize("raw", [[], "x", {"not": []}, {"exact": {"a": 1}}, {"all": {}}])
def test_malformed_json_shapes(raw: object) -> None:
    with pytest.raises(InvalidFilter):
        f.from_json(raw)  # type: ignore[arg-type]
