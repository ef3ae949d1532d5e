"""Key set flood: the pure core (what goes where, once, loop free), the wire bounds, the link
protocol's KeySets message, and a three-region line driven by hand with a verifying host."""

from __future__ import annotations

import pytest

from federation.codec import message_from_pb, message_to_pb
from federation.errors import PeerProtocolError
from federation.key_set_flood import KeySetFlood, SendKeySets
from federation.messages import (
    MAX_KEY_SET_BYTES,
    MAX_KEY_SETS_PER_MESSAGE,
    Hello,
    Interest,
    KeySets,
    TopicKeySet,
)
from federation.protocol import (
    CloseLink,
    CloseReason,
    LinkProtocol,
    LinkSettings,
    PeerKeySets,
    SendMessage,
)
from proto import federation_pb2, gateway_pb2


def ks(topic: str = "orders", epoch: int = 1, sig: bytes = b"s") -> TopicKeySet:
    return TopicKeySet(topic, f'{{"epoch":{epoch}}}'.encode(), sig)


A, B = ks(epoch=1), ks(epoch=2)


def sent(sends: list[SendKeySets]) -> dict[str, list[TopicKeySet]]:
    out: dict[str, list[TopicKeySet]] = {}
    for s in sends:
        out.setdefault(s.peer, []).extend(s.sets)
    return out


def test_link_up_offers_everything_held_and_nothing_when_empty() -> None:
    flood = KeySetFlood()
    assert flood.link_up("bb") == []
    assert sent(flood.accepted(A)) == {"bb": [A]}
    assert sent(flood.link_up("cc")) == {"cc": [A]}
    assert flood.held == 1


def test_a_new_set_goes_once_to_every_link_but_the_one_it_came_from() -> None:
    flood = KeySetFlood()
    for peer in ("bb", "cc", "dd"):
        flood.link_up(peer)
    assert flood.received("bb", [A]) == [A]  # to check
    assert sent(flood.accepted(A)) == {"cc": [A], "dd": [A]}
    assert flood.accepted(A) == []  # never twice
    assert flood.received("cc", [A]) == []  # held: not checked again, not forwarded


def test_a_peer_repeating_a_refused_set_costs_one_check_per_link() -> None:
    flood = KeySetFlood()
    flood.link_up("zz")
    forged = ks(sig=b"forged")
    assert flood.received("zz", [forged]) == [forged]
    assert flood.received("zz", [forged, forged]) == []
    flood.link_down("zz")
    flood.link_up("zz")  # a new link: offered again (the view may have caught up)
    assert flood.received("zz", [forged]) == [forged]


def test_a_forged_copy_sent_first_does_not_shadow_the_genuine_set() -> None:
    flood = KeySetFlood()
    flood.link_up("zz")
    flood.link_up("bb")
    forged = TopicKeySet(A.topic, A.document, b"forged")  # the genuine document, re-signed
    assert flood.received("zz", [forged]) == [forged]  # the host refuses it
    assert flood.received("zz", [A]) == [A]  # the genuine one is still checked
    assert sent(flood.accepted(A)) == {"bb": [A]}  # and not sent back to zz


def test_sets_from_a_peer_not_linked_are_ignored() -> None:
    flood = KeySetFlood()
    assert flood.received("gone", [A]) == []


def test_link_up_chunks_by_count() -> None:
    flood = KeySetFlood()
    for epoch in range(MAX_KEY_SETS_PER_MESSAGE + 3):
        flood.accepted(ks(epoch=epoch))
    chunks = flood.link_up("bb")
    assert [len(c.sets) for c in chunks] == [MAX_KEY_SETS_PER_MESSAGE, 3]


class Region:
    """A flood with a host that accepts only sets signed b"ok" (stands for the chain check)."""

    def __init__(self, name: str) -> None:
        self.name, self.flood = name, KeySetFlood()
        self.stored: list[TopicKeySet] = []

    def put(self, key_set: TopicKeySet) -> list[SendKeySets]:
        self.stored.append(key_set)
        return self.flood.accepted(key_set)

    def receive(self, peer: str, sets: tuple[TopicKeySet, ...]) -> list[SendKeySets]:
        out = []
        for key_set in self.flood.received(peer, sets):
            if key_set.signature == b"ok":
                out += self.put(key_set)
        return out


def run_mesh(regions: dict[str, Region], sends: list[tuple[str, SendKeySets]]) -> int:
    """Deliver messages until none are left (bounded); returns how many were delivered."""
    delivered = 0
    while sends:
        delivered += 1
        assert delivered < 100, "the flood loops"
        origin, send = sends.pop(0)
        target = regions[send.peer]
        sends += [(target.name, s) for s in target.receive(origin, send.sets)]
    return delivered


def test_a_ring_of_three_floods_a_good_set_everywhere_once_and_stops_a_forged_one() -> None:
    regions = {n: Region(n) for n in ("aa", "bb", "cc")}
    for x, y in (("aa", "bb"), ("bb", "cc"), ("cc", "aa")):
        regions[x].flood.link_up(y)
        regions[y].flood.link_up(x)
    good = ks(sig=b"ok")
    sends = [("aa", s) for s in regions["aa"].put(good)]
    # aa->bb, aa->cc, then bb->cc and cc->bb cross: each link carries it at most once each way
    assert run_mesh(regions, sends) == 4
    assert all(r.stored == [good] for r in regions.values())
    forged = ks(epoch=9, sig=b"forged")
    regions["zz"] = Region("zz")
    regions["zz"].flood.link_up("bb")
    regions["bb"].flood.link_up("zz")
    run_mesh(regions, [("zz", SendKeySets("bb", (forged,)))])
    assert all(forged not in r.stored for r in regions.values())


# -- wire and protocol ----------------------------------------------------------------------


def test_key_sets_round_trip_the_codec() -> None:
    msg = KeySets((A, ks("other", 3, b"\x00" * 65)))
    assert message_from_pb(message_to_pb(msg)) == msg


def _pb(n: int, size: int = 10) -> federation_pb2.PeerMessage:
    one = federation_pb2.TopicKeySet(
        topic="t", key_set=gateway_pb2.KeySet(document=b"d" * size, signature=b"")
    )
    return federation_pb2.PeerMessage(key_sets=federation_pb2.KeySets(sets=[one] * n))


def test_the_codec_refuses_more_or_larger_sets_than_a_sender_sends() -> None:
    with pytest.raises(PeerProtocolError, match="key sets in one message"):
        message_from_pb(_pb(MAX_KEY_SETS_PER_MESSAGE + 1))
    with pytest.raises(PeerProtocolError, match="over"):
        message_from_pb(_pb(1, MAX_KEY_SET_BYTES + 1))


def _streaming() -> LinkProtocol:
    p = LinkProtocol(
        local_region="aa", expected_region="bb", members=(), cursor=0,
        settings=LinkSettings(), now=0.0,
    )  # fmt: skip
    p.start()
    p.receive(Hello(1, "bb", ()), 0.1)
    return p


def test_the_protocol_hands_key_sets_up_and_sends_them_only_once_linked() -> None:
    p = _streaming()
    assert p.receive(KeySets((A, B)), 0.2) == [PeerKeySets((A, B))]
    assert p.receive(KeySets(()), 0.3) == []
    assert p.receive(Interest(1, ()), 0.4) != []
    assert p.send_key_sets((A,)) == [SendMessage(KeySets((A,)))]
    assert p.send_key_sets(()) == []
    handshaking = LinkProtocol(
        local_region="aa", expected_region="bb", members=(), cursor=0,
        settings=LinkSettings(), now=0.0,
    )  # fmt: skip
    assert handshaking.send_key_sets((A,)) == []
    assert handshaking.receive(KeySets((A,)), 0.1)[0] == CloseLink(
        CloseReason.PROTOCOL_VIOLATION, "KeySets while handshaking"
    )
