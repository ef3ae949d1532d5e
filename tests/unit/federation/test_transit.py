"""Transit driven by hand: which relayed events are only passing through, and when they may go."""

from __future__ import annotations

import pytest

from federation import transit
from federation.transit import Transit


def relayed(t: Transit, seq: int, dests: tuple[str, ...] = ("cc",), **kw: object) -> None:
    args: dict[str, object] = {
        "origin": ("aa", seq),
        "topic_wanted_here": False,
        "destinations": dests,
        "path": ("aa",),
        "hop_limit": 4,
    }
    args.update(kw)
    t.read(seq, **args)  # type: ignore[arg-type]


def test_a_transit_event_goes_once_its_next_hop_acked_the_batch_that_carried_it() -> None:
    t = Transit("bb")
    relayed(t, 5)
    assert t.owed() == {5: frozenset({"cc"})}
    assert t.tracked(("aa", 5)) == 5
    t.sent("link-cc", batch_seq=7, seq=5, destinations=("cc",))
    assert t.acked("link-cc", 6) == []  # an earlier batch: not this one
    assert t.acked("link-cc", 7) == [5]
    assert t.owed() == {} and t.tracked(("aa", 5)) is None
    assert t.acked("link-cc", 9) == []  # paid once


def test_events_wanted_here_or_addressed_to_us_are_kept() -> None:
    t = Transit("bb")
    relayed(t, 1, topic_wanted_here=True)
    relayed(t, 2, dests=("bb", "cc"))
    assert t.owed() == {}
    t.sent("l", 3, 1, ("cc",))
    t.sent("l", 3, 2, ("cc",))
    assert t.acked("l", 3) == []


def test_every_destination_must_be_paid_by_its_own_next_hop() -> None:
    t = Transit("bb")
    relayed(t, 4, dests=("cc", "dd", "aa"))  # aa is on the path: never owed
    assert t.owed() == {4: frozenset({"cc", "dd"})}
    t.sent("to-cc", 4, 4, ("cc",))
    t.sent("to-dd", 4, 4, ("dd",))
    assert t.acked("to-cc", 4) == []
    assert t.acked("to-dd", 4) == [4]


def test_unacked_sends_of_a_gone_link_pay_nothing() -> None:
    t = Transit("bb")
    relayed(t, 4)
    t.sent("old", 4, 4, ("cc",))
    t.link_gone("old")
    assert t.acked("old", 4) == []
    t.sent("new", 4, 4, ("cc",))  # the next link re-reads from the cursor and resends
    assert t.acked("new", 4) == [4]


def test_an_unroutable_destination_keeps_the_event() -> None:
    t = Transit("bb")
    relayed(t, 4, dests=("cc", "zz"))
    t.sent("to-cc", 4, 4, ("cc",))
    assert t.acked("to-cc", 4) == []
    assert t.owed() == {4: frozenset({"zz"})}


def test_an_event_that_can_go_nowhere_is_dropped_at_the_next_ack() -> None:
    t = Transit("bb")
    relayed(t, 4, hop_limit=1)
    assert t.owed() == {}
    assert t.acked("any", 0) == [4]


def test_records_are_classified_once() -> None:
    t = Transit("bb")
    assert t.is_new(3)
    relayed(t, 3)
    assert not t.is_new(3) and not t.is_new(2) and t.is_new(4)


def test_tracking_is_bounded_and_untracked_events_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transit, "MAX_TRACKED", 2)
    t = Transit("bb")
    for seq in (1, 2, 3):
        relayed(t, seq)
    assert sorted(t.owed()) == [1, 2]  # the third stays in the store, untracked
    t.sent("l", 3, 3, ("cc",))
    assert t.acked("l", 3) == []
