"""Reader-signed interest: the proof check, the routing judge, and what routes (pure, no network).

Proofs here are real EIP-4361 messages signed by throwaway Ethereum keys; the grant view is a
set the test edits, standing in for the gateway's `may_read` (the judge's only input from the
chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.codec import message_from_pb, message_to_pb
from federation.errors import PeerProtocolError
from federation.interest_watch import InterestWatcher
from federation.messages import (
    MAX_PROOFS_PER_TOPIC,
    Interest,
    InterestProof,
    RegionInterest,
    TopicInterest,
)
from federation.routing import RoutingTable
from gateway.access import Identity
from gateway.interest import Interest as LocalInterest
from gateway.interest import InterestRegistry, ReaderProof
from gateway.interest_proofs import ProofJudge
from policy.errors import SignInExpired, SignInForged, SignInMalformed, SignInWrongChain
from policy.identity import (
    ALL_TOPICS,
    Challenge,
    SignedStatement,
    SignInConfig,
    SignInVerifier,
    verify_interest_proof,
)
from policy.sessions import SessionTokens, new_secret
from policy.signin import sign_in
from proto import federation_pb2
from tests.support.federation_fakes import MemoryInterest

CHAIN = 1337
NOW = time.time()
READER: LocalAccount = Account.create()
STRANGER: LocalAccount = Account.create()


def proof(
    account: LocalAccount = READER,
    *,
    regions: tuple[str, ...] = ("cc",),
    topics: tuple[str, ...] = ("orders",),
    issued: float = NOW,
    ttl: float = 600.0,
    chain_id: int = CHAIN,
) -> InterestProof:
    challenge = Challenge("abcdef0123456789", "meshgate-cc", "meshgate://meshgate-cc", chain_id, 0)
    signed = sign_in(account, challenge, topics, issued, ttl, regions=regions)
    return InterestProof(signed.message, signed.signature)


class Grants:
    """The judge's view of the chain: who may read what."""

    def __init__(self) -> None:
        self.readers: set[tuple[str, str]] = {(READER.address.lower(), "orders")}

    def may_read(self, address: str, topic: str) -> bool:
        return (address.lower(), topic) in self.readers


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def judge(grants: Grants | None = None, clock: Clock | None = None) -> ProofJudge:
    g = grants or Grants()
    return ProofJudge(chain_id=CHAIN, may_read=g.may_read, clock=clock or Clock())


# ---- the proof itself -----------------------------------------------------------------------


def test_a_signed_sign_in_naming_region_and_topic_is_a_proof() -> None:
    p = proof()
    proven = verify_interest_proof(p.message, p.signature, chain_id=CHAIN, now=NOW)
    assert proven.address == READER.address.lower()
    assert proven.covers("cc", "orders", NOW)
    assert not proven.covers("zz", "orders", NOW)  # another region
    assert not proven.covers("cc", "payments", NOW)  # another topic
    assert not proven.covers("cc", "orders", NOW + 601)  # after its expiry


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: proof(issued=NOW - 1000, ttl=600), SignInExpired),
        (lambda: proof(chain_id=1), SignInWrongChain),
        (
            lambda: InterestProof(proof().message, proof(STRANGER).signature),
            SignInForged,
        ),
        (
            lambda: InterestProof(
                proof().message.replace("meshgate://region/cc", "meshgate://region/zz"),
                proof().signature,
            ),
            SignInForged,
        ),
        (lambda: InterestProof("not a sign-in", b"\x00" * 65), SignInMalformed),
    ],
    ids=["expired", "wrong-chain", "foreign-signature", "re-pointed-region", "garbage"],
)
def test_bad_proofs_are_refused_with_their_reason(make: object, error: type[Exception]) -> None:
    p = make()  # type: ignore[operator]
    with pytest.raises(error):
        verify_interest_proof(p.message, p.signature, chain_id=CHAIN, now=NOW)


# ---- the judge ------------------------------------------------------------------------------


def test_judge_accepts_a_granted_reader_for_the_region_the_route_is_for() -> None:
    ti = TopicInterest("orders", (), (proof(),))
    verdict = judge()("cc", ti)
    assert verdict is not None and verdict.interest == ti
    assert verdict.until == pytest.approx(NOW + 600, abs=1)
    assert judge()("zz", ti) is None  # a region replaying cc's proof as its own


def test_judge_refuses_no_proof_an_ungranted_reader_and_an_expired_proof() -> None:
    clock = Clock()
    j = judge(clock=clock)
    assert j("cc", TopicInterest("orders")) is None  # no proof, no events
    assert j("cc", TopicInterest("orders", (), (proof(STRANGER),))) is None  # no grant
    ti = TopicInterest("orders", (), (proof(ttl=60),))
    assert j("cc", ti) is not None
    clock.now = NOW + 61
    assert j("cc", ti) is None  # expired, not renewed


def test_judge_keeps_only_valid_proofs_latest_expiring_first() -> None:
    grants = Grants()
    others = [Account.create() for _ in range(3)]
    for a in others:
        grants.readers.add((a.address.lower(), "orders"))
    good = [proof(a, ttl=100 + 10 * i) for i, a in enumerate(others)]
    bad = proof(STRANGER)
    verdict = judge(grants)("cc", TopicInterest("orders", (), (bad, *good)))
    assert verdict is not None
    assert verdict.interest.proofs == tuple(reversed(good))
    assert verdict.until == pytest.approx(NOW + 120, abs=1)


def test_judge_wildcard_topic_proof_covers_every_topic() -> None:
    grants = Grants()
    grants.readers.add((READER.address.lower(), "payments"))
    p = proof(topics=(ALL_TOPICS,))
    assert judge(grants)("cc", TopicInterest("payments", (), (p,))) is not None


# ---- routing with a judge -------------------------------------------------------------------


def advert(version: int, *regions: RegionInterest) -> Interest:
    return Interest(version, regions)


def test_unproven_interest_of_a_certified_peer_attracts_nothing() -> None:
    table = RoutingTable("eu", judge())
    table.peer_up("zz")
    table.peer_advertised("zz", advert(1, RegionInterest("zz", 0, (TopicInterest("orders"),))))
    assert table.destinations("orders", {}) == ()
    assert table.refused("zz") == 1
    # an open origin (no judge) routes it, as before
    open_table = RoutingTable("eu")
    open_table.peer_up("zz")
    open_table.peer_advertised("zz", advert(1, RegionInterest("zz", 0, (TopicInterest("orders"),))))
    assert open_table.destinations("orders", {}) == ("zz",)


def test_a_peer_cannot_pass_itself_off_as_another_region_at_distance_zero() -> None:
    table = RoutingTable("eu", judge())
    table.peer_up("zz")
    ti = TopicInterest("orders", (), (proof(),))  # cc's genuine proof
    table.peer_advertised("zz", advert(1, RegionInterest("cc", 0, (ti,))))
    assert table.route("cc") is None


def test_relayed_interest_is_judged_for_the_far_region_and_carried_onward() -> None:
    ti = TopicInterest("orders", (), (proof(),))
    relay = RoutingTable("bb", judge())
    relay.peer_up("cc")
    relay.peer_advertised("cc", advert(1, RegionInterest("cc", 0, (ti,))))
    onward = relay.advertisement_for("eu")
    assert RegionInterest("cc", 1, (ti,)) in onward  # the proofs travel with the route
    origin = RoutingTable("eu", judge())
    origin.peer_up("bb")
    origin.peer_advertised("bb", advert(1, *onward))
    assert origin.destinations("orders", {}) == ("cc",)
    assert origin.partition(["cc"]) == {"bb": ("cc",)}


def test_rejudge_drops_a_revoked_reader_and_next_expiry_names_the_proof_end() -> None:
    grants, clock = Grants(), Clock()
    table = RoutingTable("eu", judge(grants, clock))
    table.peer_up("cc")
    ti = TopicInterest("orders", (), (proof(ttl=300),))
    table.peer_advertised("cc", advert(1, RegionInterest("cc", 0, (ti,))))
    assert table.destinations("orders", {}) == ("cc",)
    assert table.next_expiry() == pytest.approx(NOW + 300, abs=1)
    assert table.rejudge() is False  # nothing changed
    grants.readers.clear()  # the owner revokes
    assert table.rejudge() is True
    assert table.destinations("orders", {}) == ()
    grants.readers.add((READER.address.lower(), "orders"))  # granted again: the kept proof holds
    assert table.rejudge() is True
    clock.now = NOW + 301  # the proof expires, not renewed
    assert table.rejudge() is True
    assert table.destinations("orders", {}) == ()


# ---- the wire bound -------------------------------------------------------------------------


def test_proofs_round_trip_and_more_than_the_bound_is_a_protocol_violation() -> None:
    ti = TopicInterest("orders", (), (proof(),))
    msg = advert(3, RegionInterest("cc", 0, (ti,)))
    assert message_from_pb(message_to_pb(msg)) == msg
    pb = message_to_pb(msg)
    extra = federation_pb2.InterestProof(message="x", signature=b"y")
    pb.interest.regions[0].topics[0].proofs.extend([extra] * MAX_PROOFS_PER_TOPIC)
    with pytest.raises(PeerProtocolError, match="proofs"):
        message_from_pb(pb)


# ---- the subscribing side: which proofs a region advertises ---------------------------------


def test_local_interest_carries_live_proofs_of_readers_who_may_read() -> None:
    allowed = {"0xa", "0xb"}
    clock = Clock()
    reg = InterestRegistry(may_read=lambda r, t: r.address in allowed, clock=clock)
    i = LocalInterest("orders")
    reg.add(i, ReaderProof("0xa", "m-a", b"s", NOW + 10))
    reg.add_durable(i, Identity("0xb"), ReaderProof("0xb", "m-b", b"s", NOW + 20))
    assert [p.address for p in reg.proven()[i]] == ["0xb", "0xa"]
    allowed.discard("0xb")
    reg.reevaluate()
    assert [p.address for p in reg.proven()[i]] == ["0xa"]
    clock.now = NOW + 11
    reg.reevaluate()
    assert reg.proven() == {i: ()}  # the stream still reads; no proof left to forward
    assert reg.next_expiry() == NOW + 20


def test_local_interest_keeps_at_most_the_bound_per_topic() -> None:
    reg = InterestRegistry(clock=Clock())  # the test's clock: NOW is fixed at import
    i = LocalInterest("orders")
    for n in range(10):
        reg.add(i, ReaderProof(f"0x{n}", "m", b"s", NOW + 100 + n))
    kept = reg.proven()[i]
    assert len(kept) == MAX_PROOFS_PER_TOPIC
    assert [p.address for p in kept] == ["0x9", "0x8", "0x7", "0x6"]


def test_a_sign_in_naming_a_region_keeps_its_proof_through_the_session_token() -> None:
    verifier = SignInVerifier(
        SignInConfig(domain="meshgate-cc", uri="meshgate://meshgate-cc", chain_id=CHAIN)
    )
    signed = sign_in(READER, verifier.challenge(NOW), ["orders"], NOW, regions=["cc"])
    identity = verifier.verify(signed.message, signed.signature, NOW)
    assert identity.proof == SignedStatement(signed.message, signed.signature)
    tokens = SessionTokens(new_secret())
    assert tokens.check(tokens.issue(identity), NOW).proof == identity.proof
    plain = sign_in(READER, verifier.challenge(NOW), ["orders"], NOW)  # names no region
    assert verifier.verify(plain.message, plain.signature, NOW).proof is None


CC_ORDERS = proof()
ANYONE_JUDGE = ProofJudge(chain_id=CHAIN, may_read=lambda address, topic: True, clock=Clock())


@settings(max_examples=200, deadline=None)
@given(
    region=st.sampled_from(["cc", "zz", "c", "cc "]) | st.text(max_size=8),
    topic=st.text(max_size=8) | st.just("orders"),
)
def test_a_proof_attracts_only_the_region_and_topic_it_names(region: str, topic: str) -> None:
    verdict = ANYONE_JUDGE(region, TopicInterest(topic, (), (CC_ORDERS,)))
    assert (verdict is not None) == (region == "cc" and topic == "orders")


def test_a_remembered_route_stops_at_its_proof_expiry_too() -> None:
    clock = Clock()
    table = RoutingTable("eu", judge(clock=clock))
    table.peer_up("cc")
    ti = TopicInterest("orders", (), (proof(ttl=100),))
    table.peer_advertised("cc", advert(1, RegionInterest("cc", 0, (ti,))))
    table.peer_down("cc")
    table.peer_up("cc")  # linked again, not yet re-advertised: the remembered route holds
    assert table.destinations("orders", {}) == ("cc",)
    assert table.next_expiry() == pytest.approx(NOW + 100, abs=1)
    clock.now = NOW + 101
    table.rejudge()
    assert table.destinations("orders", {}) == ()


def test_forged_and_ungranted_proofs_are_never_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing EIP-4361 is the expensive step: only a granted reader's genuine proof gets it."""
    import gateway.interest_proofs as ip

    parsed: list[str] = []

    def counting(message: str, signature: bytes, **kw: object) -> object:
        parsed.append(message)
        return verify_interest_proof(message, signature, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ip, "verify_interest_proof", counting)
    j = judge()
    forged = InterestProof(proof().message, proof(STRANGER).signature)
    garbage = InterestProof("x\ny", b"\x01" * 65)
    for p in (forged, garbage, proof(STRANGER)):
        assert j("cc", TopicInterest("orders", (), (p,))) is None
    assert parsed == []
    assert j("cc", TopicInterest("orders", (), (proof(),))) is not None
    assert len(parsed) == 1


async def test_the_watcher_drops_a_route_when_its_proof_expires_unrenewed() -> None:
    """No access change, no advertisement: the proof's own expiry wakes the watcher."""
    table = RoutingTable("eu", judge(clock=time.time))  # type: ignore[arg-type]
    table.peer_up("cc")
    ti = TopicInterest("orders", (), (proof(issued=time.time(), ttl=3.0),))
    table.peer_advertised("cc", advert(1, RegionInterest("cc", 0, (ti,))))
    assert table.destinations("orders", {}) == ("cc",)
    changed = asyncio.Event()
    task = asyncio.create_task(InterestWatcher(table, MemoryInterest(), changed.set).run())
    try:
        async with asyncio.timeout(10):
            await changed.wait()
        assert table.destinations("orders", {}) == ()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
