"""Membership driven by hand: who dials whom, which duplicate wins, backoff. No event loop."""

from __future__ import annotations

import pytest

from federation.membership import Close, Dial, DialOutcome, Membership, Register
from federation.messages import Member
from federation.protocol import CloseReason


def core(region: str = "bb", seeds: tuple[str, ...] = (), mesh: bool = True) -> Membership[str]:
    m: Membership[str] = Membership(
        local_region=region,
        seeds=seeds,
        mesh=mesh,
        reconnect_initial=0.2,
        reconnect_max=5.0,
        jitter=lambda: 0.5,  # U(0.5, 1.5) at its middle: delays are exact
    )
    m.listening(Member(region, f"{region}:1", b"pem"))
    return m


def member(region: str) -> Member:
    return Member(region, f"{region}:1", b"pem")


def test_seeds_are_probed_first_then_dialed_by_region() -> None:
    m = core(seeds=("seed:9",))
    assert m.due(0.0) == [Dial("seed:9", None)]
    assert m.due(0.0) == []  # one dial per address at a time
    probe = m.link_up("probe", region="aa", dialed=True, address="seed:9", probe=True)
    assert probe == [Close("probe", CloseReason.PROBED)]
    m.dial_ended("seed:9", DialOutcome.PROBED, 0.1)
    assert m.due(0.1) == [Dial("seed:9", "aa")]  # at once, now with the TLS name check


def test_the_smaller_region_dials_learnt_members_in_a_full_mesh() -> None:
    m = core("bb")
    assert m.learn([member("aa"), member("cc"), member("bb")])
    assert not m.learn([member("aa")])  # nothing new: nothing to gossip
    assert m.due(0.0) == [Dial("cc:1", "cc")]  # aa dials us, we dial cc
    assert [x.region for x in m.members()] == ["aa", "bb", "cc"]


def test_without_mesh_only_seeds_are_dialed() -> None:
    m = core("bb", seeds=("cc:1",), mesh=False)
    m.learn([member("cc"), member("dd")])
    assert m.due(0.0) == [Dial("cc:1", "cc")]


def test_never_dials_itself_nor_a_linked_region() -> None:
    m = core("bb", seeds=("bb:1", "cc:1"))
    m.learn([member("cc")])
    assert m.link_up("in", region="cc", dialed=False) == [Register("in", "cc")]
    assert m.due(0.0) == []
    assert m.next_due(0.0) is None  # nothing to wait for
    assert m.link_down("in") == "cc"
    assert m.due(0.0) == [Dial("cc:1", "cc")]


def test_the_link_dialed_by_the_smaller_region_wins_on_both_sides() -> None:
    # aa and bb dialed each other at once: each side sees one dialed and one accepted link.
    aa, bb = core("aa"), core("bb")
    assert aa.link_up("aa->bb", region="bb", dialed=True) == [Register("aa->bb", "bb")]
    assert bb.link_up("aa->bb", region="aa", dialed=False) == [Register("aa->bb", "aa")]
    # the second link arrives: aa keeps its dialed link; bb replaces nothing either
    assert aa.link_up("bb->aa", region="bb", dialed=False) == [
        Close("bb->aa", CloseReason.DUPLICATE)
    ]
    assert bb.link_up("bb->aa", region="aa", dialed=True) == [
        Close("bb->aa", CloseReason.DUPLICATE)
    ]
    assert aa.linked() == {"bb": "aa->bb"} and bb.linked() == {"aa": "aa->bb"}


def test_the_preferred_link_replaces_a_registered_loser() -> None:
    aa = core("aa")
    aa.link_up("bb->aa", region="bb", dialed=False)
    assert aa.link_up("aa->bb", region="bb", dialed=True) == [
        Register("aa->bb", "bb"),
        Close("bb->aa", CloseReason.DUPLICATE),
    ]
    assert aa.link_down("bb->aa") is None  # the loser's end does not withdraw the winner
    assert aa.linked() == {"bb": "aa->bb"}


def test_failed_dials_back_off_exponentially_and_a_streamed_link_resets() -> None:
    m = core("aa", seeds=("bb:1",))
    m.learn([member("bb")])
    at = 0.0
    waits = []
    for _ in range(7):
        [dial] = m.due(at)
        m.dial_ended(dial.address, DialOutcome.FAILED, at)
        assert m.due(at) == []
        wait = m.next_due(at)
        assert wait is not None
        waits.append(round(wait, 3))
        at += wait
    assert waits == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]  # jitter pinned at 1.0x
    m.due(at)
    m.dial_ended("bb:1", DialOutcome.STREAMED, at)
    assert m.next_due(at) == pytest.approx(0.2) and m.backoff("bb:1") == 0.2


def test_a_tls_name_refusal_is_a_failed_dial_like_any_other() -> None:
    # The shell reports FAILED for any link that never streamed (TLS name check, refused,
    # wrong region): ten refusals in a row spread over ~25 s, not 70 dials in 10 s.
    m = core("aa", seeds=("bb:1",))
    m.learn([member("bb")])
    at, dials = 0.0, 0
    while at < 10.0:
        for dial in m.due(at):
            dials += 1
            m.dial_ended(dial.address, DialOutcome.FAILED, at)
        at += 0.01
    assert dials <= 7
