"""Topic ownership among a region's replicas (gateway/jetstream_roster.py) and the routing of a
call's rows to their owners (gateway/jetstream_forward.py's pure parts), without a network."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import jetstream_roster
from gateway.jetstream_forward_rows import decode_rows, encode_rows, plan_parts, row_size
from gateway.jetstream_roster import Member, Roster, decode, encode, owner_of
from gateway.store import NewEvent, Row
from proto import region_pb2

TOPICS = [f"t{i}" for i in range(2_000)]


def test_owner_is_one_of_the_replicas_and_the_same_whatever_their_order() -> None:
    replicas = ["a", "b", "c"]
    for topic in TOPICS[:200]:
        owner = owner_of(topic, replicas)
        assert owner in replicas
        assert owner_of(topic, list(reversed(replicas))) == owner
    assert owner_of("t", []) is None


def test_topics_spread_evenly_over_the_replicas() -> None:
    counts = Counter(owner_of(t, ["a", "b", "c"]) for t in TOPICS)
    assert set(counts) == {"a", "b", "c"}
    assert min(counts.values()) > len(TOPICS) / 3 * 0.8


def test_a_joining_replica_takes_only_topics_and_a_leaving_one_gives_only_its_own() -> None:
    before = {t: owner_of(t, ["a", "b"]) for t in TOPICS}
    after = {t: owner_of(t, ["a", "b", "c"]) for t in TOPICS}
    moved = [t for t in TOPICS if before[t] != after[t]]
    assert moved and all(after[t] == "c" for t in moved)
    without_a = {t: owner_of(t, ["b", "c"]) for t in TOPICS}
    assert all(without_a[t] == after[t] for t in TOPICS if after[t] != "a")


def member(name: str, expires: float) -> Member:
    return Member(name, f"_mgw.r.{name}", expires)


def test_the_roster_counts_a_member_until_its_expiry_and_itself_always() -> None:
    roster = Roster("me")
    assert roster.live == ("me",)
    roster.observe(member("other", expires=10.0), now=1.0)
    roster.observe(member("me", expires=0.0), now=1.0)  # our own entry: ignored
    assert roster.live == ("me", "other")
    theirs = next(t for t in TOPICS if owner_of(t, ["me", "other"]) == "other")
    mine = next(t for t in TOPICS if owner_of(t, ["me", "other"]) == "me")
    assert roster.owner(mine, now=2.0) is None
    assert roster.owner(theirs, now=2.0) == member("other", 10.0)
    assert roster.owner(theirs, now=10.0) is None  # expired by time alone: we write it
    assert roster.live == ("me",)


def test_the_owner_cache_is_bounded_and_answers_stay_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jetstream_roster, "MAX_CACHED_OWNERS", 50)
    roster = Roster("me")
    roster.observe(member("other", expires=10.0), now=1.0)
    for topic in TOPICS:
        expected = None if owner_of(topic, ["me", "other"]) == "me" else member("other", 10.0)
        assert roster.owner(topic, now=2.0) == expected
        assert len(roster._owners) <= 50


def test_a_farewell_drops_a_member_and_a_renewal_brings_it_back() -> None:
    roster = Roster("me")
    roster.observe(member("other", expires=10.0), now=1.0)
    roster.observe(member("other", expires=0.0), now=2.0)
    assert roster.live == ("me",)
    roster.observe(member("other", expires=20.0), now=3.0)
    assert roster.live == ("me", "other")


def test_entries_dead_long_enough_are_stale_and_can_be_forgotten() -> None:
    roster = Roster("me")
    roster.observe(member("old", expires=5.0), now=1.0)
    roster.observe(member("new", expires=500.0), now=1.0)
    assert roster.stale(now=100.0, keep=60.0) == ["old"]
    roster.forget("old", now=100.0)
    assert roster.stale(now=100.0, keep=60.0) == []
    assert roster.live == ("me", "new")


def test_a_roster_entry_round_trips_and_junk_is_not_one() -> None:
    entry = member("x", 12.5)
    assert decode(encode(entry)) == entry
    listening = Member("x", "inbox.x", 12.5, "10.0.0.7:7000")
    assert decode(encode(listening)) == listening
    older = b'{"replica": "x", "inbox": "inbox.x", "expires": 12.5}'  # before writer hints
    assert decode(older) == Member("x", "inbox.x", 12.5, "")
    for junk in (b"", b"{", b"[]", b'{"replica": "x"}', b'{"replica":1,"inbox":2,"expires":"z"}'):
        assert decode(junk) is None


# -- routing a call's rows -------------------------------------------------------------------


def row(topic: str, i: int, size: int = 10) -> Row:
    return (topic, NewEvent("/s", str(i), "t", b"x" * size), "r", None)


def test_rows_are_grouped_by_owner_in_call_order() -> None:
    a, b = member("a", 9e9), member("b", 9e9)
    owners = {"ta": a, "tb": b, "tm": None}
    rows = [row(t, i) for i, t in enumerate(["ta", "tm", "tb", "ta", "tm", "tb"])]
    parts = plan_parts(rows, owners.__getitem__, limit=1 << 20)
    assert [(p.owner, p.indexes) for p in parts] == [(None, [1, 4]), (a, [0, 3]), (b, [2, 5])]


def test_a_forwarded_part_stays_below_the_limit_and_a_huge_row_is_written_here() -> None:
    a = member("a", 9e9)
    rows = [row("t", i, size=400) for i in range(10)] + [row("t", 10, size=5_000)]
    limit = 3 * row_size(rows[0])
    parts = plan_parts(rows, lambda _topic: a, limit=limit)
    assert parts[0].owner is None and parts[0].indexes == [10]
    assert [p.indexes for p in parts[1:]] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    for part in parts[1:]:
        assert len(encode_rows([rows[i] for i in part.indexes])) <= limit


names = st.text(min_size=1, max_size=20)


@given(
    st.lists(
        st.tuples(
            names,
            names,
            names,
            st.text(max_size=10),
            st.binary(max_size=200),
            names,
            st.none() | st.binary(max_size=50),
        ),
        max_size=20,
    )
)
def test_forwarded_rows_round_trip(
    raw: list[tuple[str, str, str, str, bytes, str, bytes | None]],
) -> None:
    rows: list[Row] = [
        (topic, NewEvent(source, id_, type_, payload), origin, blob)
        for topic, source, id_, type_, payload, origin, blob in raw
    ]
    assert decode_rows(encode_rows(rows)) == rows


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",
        region_pb2.ForwardAppend(
            rows=[region_pb2.ForwardRow(topic="t", id="1")]
        ).SerializeToString(),
    ],
)
def test_a_malformed_forward_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="malformed forward request"):
        decode_rows(data)
