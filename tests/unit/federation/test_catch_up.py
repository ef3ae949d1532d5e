"""CatchUp: which topics a peer is re-sent after its route was lost, and the cursor we persist.

Pure: reads and acks by hand, no event loop. LINK_1/LINK_2 stand for two successive links to bb.
"""

from __future__ import annotations

from federation.catch_up import CatchUp

LINK_1, LINK_2 = "link-1", "link-2"
ORDERS, OTHER = ("bb", "orders"), ("bb", "other")


def test_a_topic_routed_for_the_first_time_opens_no_gap_and_gets_nothing_older() -> None:
    c = CatchUp()
    c.read("bb", LINK_1, first=1, last=10, routed=[])
    plan = c.read("bb", LINK_1, first=11, last=20, routed=[ORDERS])
    assert not plan.rewind and plan.gaps == {}
    assert c.acked("bb", 20) == 20  # issue 11: nothing held back for a region never interested


def test_a_lost_route_holds_the_cursor_and_its_return_rewinds_the_link() -> None:
    c = CatchUp()
    c.read("bb", LINK_1, first=1, last=10, routed=[ORDERS])
    assert c.acked("bb", 10) == 10
    # bb restarted: its reader has not subscribed again, the pump reads past 10 without it
    c.link_gone(LINK_1)
    plan = c.read("bb", LINK_2, first=11, last=30, routed=[])
    assert not plan.rewind and c.gaps("bb") == {ORDERS: 10}
    assert c.acked("bb", 30) == 10  # held at the gap: a restart of either side resends
    # the reader is back, this link already read past 10: it must restart from the cursor
    plan = c.read("bb", LINK_2, first=31, last=40, routed=[ORDERS])
    assert plan.rewind
    c.link_gone(LINK_2)
    plan = c.read("bb", "link-3", first=11, last=40, routed=[ORDERS])  # from the held cursor
    assert not plan.rewind
    assert [s for s in range(11, 41) if plan.wanted(s, "orders")] == list(range(11, 41))
    assert not plan.wanted(25, "other")  # acked before: not resent
    assert plan.wanted(35, "other")  # never sent yet
    assert c.acked("bb", 40) == 40 and c.gaps("bb") == {}


def test_a_route_lost_again_before_the_catch_up_is_acked_keeps_the_gap() -> None:
    c = CatchUp()
    c.read("bb", LINK_1, first=1, last=5, routed=[ORDERS])
    c.acked("bb", 5)
    c.read("bb", LINK_1, first=6, last=9, routed=[])
    c.link_gone(LINK_1)
    c.read("bb", LINK_2, first=6, last=9, routed=[ORDERS])  # catching up...
    c.read("bb", LINK_2, first=10, last=12, routed=[])  # ...lost again before the ack
    assert c.acked("bb", 12) == 5 and c.gaps("bb") == {ORDERS: 5}


def test_a_closing_gap_survives_a_dead_link_and_closes_on_the_next_links_ack() -> None:
    c = CatchUp()
    c.read("bb", LINK_1, first=1, last=5, routed=[ORDERS])
    c.acked("bb", 5)
    c.read("bb", LINK_1, first=6, last=9, routed=[])
    c.link_gone(LINK_1)
    c.read("bb", LINK_2, first=6, last=9, routed=[ORDERS])
    c.link_gone(LINK_2)  # died before its ack
    assert c.acked("bb", 5) == 5
    plan = c.read("bb", "link-3", first=6, last=9, routed=[ORDERS])
    assert not plan.rewind and plan.wanted(6, "orders")
    assert c.acked("bb", 9) == 9 and c.gaps("bb") == {}


def test_peers_are_independent() -> None:
    c = CatchUp()
    c.read("bb", LINK_1, first=1, last=5, routed=[ORDERS])
    c.read("bb", LINK_1, first=6, last=9, routed=[])
    c.read("cc", "cc-link", first=1, last=9, routed=[ORDERS])
    assert c.acked("cc", 9) == 9 and c.acked("bb", 9) == 5


def test_a_route_back_on_an_idle_link_rewinds_without_waiting_for_the_next_event() -> None:
    c = CatchUp()
    c.read("bb", LINK_1, first=1, last=5, routed=[ORDERS])
    c.read("bb", LINK_1, first=6, last=9, routed=[])  # gap at 5; then nothing is published
    assert not c.idle("bb", LINK_1, routed=[])
    assert not c.idle("bb", LINK_1, routed=[OTHER])  # a first-time topic: nothing to resend
    assert c.idle("bb", LINK_1, routed=[ORDERS])  # the reader is back: rewind now
    assert not c.idle("bb", LINK_2, routed=[ORDERS])  # a fresh link reads from the cursor


def test_a_region_behind_the_peer_losing_its_route_opens_its_own_gap() -> None:
    c = CatchUp()
    cc, dd = ("cc", "orders"), ("dd", "orders")  # both reached through bb
    c.read("bb", LINK_1, first=1, last=5, routed=[cc, dd])
    c.read("bb", LINK_1, first=6, last=9, routed=[dd])  # cc's reader is gone, dd's stays
    assert c.gaps("bb") == {cc: 5} and c.acked("bb", 9) == 5
    assert c.read("bb", LINK_1, first=10, last=12, routed=[cc, dd]).rewind
    plan = c.read("bb", LINK_2, first=6, last=12, routed=[cc, dd])
    assert plan.wanted(6, "orders") and not plan.wanted(6, "other")


def test_a_region_now_routed_through_another_peer_drops_its_gap_here() -> None:
    c = CatchUp()
    cc = ("cc", "orders")
    c.read("bb", LINK_1, first=1, last=5, routed=[cc])
    c.read("bb", LINK_1, first=6, last=9, routed=[])  # cc's route left bb...
    assert c.acked("bb", 9) == 5
    c.read("bb", LINK_1, first=10, last=12, routed=[], elsewhere=[cc])  # ...for a direct link
    assert c.gaps("bb") == {} and c.acked("bb", 12) == 12  # bb's cursor is not held for ever
