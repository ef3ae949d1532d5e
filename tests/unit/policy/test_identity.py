import time

import pytest
from eth_account import Account

from policy.errors import (
    SignInExpired,
    SignInForged,
    SignInMalformed,
    SignInNotYetValid,
    SignInOutOfScope,
    SignInReplayed,
    SignInWrongChain,
    SignInWrongDomain,
    Unauthenticated,
)
from policy.identity import (
    ALL_TOPICS,
    ALL_TOPICS_RESOURCE,
    Challenge,
    NonceRegistry,
    SignInConfig,
    SignInVerifier,
    topic_resource,
    topics_from_resources,
)
from policy.signin import build_message, sign_in, sign_message

CONFIG = SignInConfig(domain="127.0.0.1:7000", uri="meshgate://127.0.0.1:7000", chain_id=1337)
ALICE = Account.from_key("0x" + "01" * 32)
MALLORY = Account.from_key("0x" + "02" * 32)


@pytest.fixture
def verifier() -> SignInVerifier:
    return SignInVerifier(CONFIG)


def test_valid_sign_in_gives_lowercase_address_and_topics(verifier: SignInVerifier) -> None:
    now = time.time()
    proof = sign_in(ALICE, verifier.challenge(now), ["orders", "a/b c"], now, ttl=60)
    identity = verifier.verify(proof.message, proof.signature, now)
    assert identity.address == ALICE.address.lower()
    assert identity.topics == frozenset({"orders", "a/b c"})
    assert identity.expires_at == pytest.approx(now + 60, abs=0.01)
    identity.require_topic("a/b c")
    with pytest.raises(SignInOutOfScope, match="other"):
        identity.require_topic("other")


def test_session_never_outlives_message_nor_session_ttl() -> None:
    short = SignInVerifier(
        SignInConfig(domain=CONFIG.domain, uri=CONFIG.uri, chain_id=1337, session_ttl=10)
    )
    now = time.time()
    proof = sign_in(ALICE, short.challenge(now), ["t"], now, ttl=600)
    identity = short.verify(proof.message, proof.signature, now)
    assert identity.expires_at == pytest.approx(now + 10)


def test_a_sign_in_without_topic_resources_is_valid_for_no_topic(verifier: SignInVerifier) -> None:
    now = time.time()
    proof = sign_in(ALICE, verifier.challenge(now), [], now)
    assert "Resources" not in proof.message
    identity = verifier.verify(proof.message, proof.signature, now)
    assert identity.topics == frozenset()
    with pytest.raises(SignInOutOfScope, match=r"no topic resources.*meshgate://topic/\*"):
        identity.require_topic("orders")


def test_the_wildcard_resource_covers_every_topic(verifier: SignInVerifier) -> None:
    now = time.time()
    proof = sign_in(ALICE, verifier.challenge(now), [ALL_TOPICS, "orders"], now)
    assert "- meshgate://topic/*" in proof.message and "orders" not in proof.message
    identity = verifier.verify(proof.message, proof.signature, now)
    assert identity.topics is None
    identity.require_topic("orders")
    identity.require_topic("anything.else")


def test_a_hand_written_message_with_a_foreign_resource_only_has_no_topic(
    verifier: SignInVerifier,
) -> None:
    now = time.time()
    text = build_message(ALICE.address, verifier.challenge(now), [], now)
    message = text + "\nResources:\n- https://example.com/"
    identity = verifier.verify(message, sign_message(ALICE, message), now)
    assert identity.topics == frozenset()


def test_replayed_message_is_rejected(verifier: SignInVerifier) -> None:
    now = time.time()
    proof = sign_in(ALICE, verifier.challenge(now), ["t"], now)
    verifier.verify(proof.message, proof.signature, now)
    with pytest.raises(SignInReplayed, match="already used"):
        verifier.verify(proof.message, proof.signature, now + 1)


def test_nonce_not_issued_here_is_rejected_as_replayed(verifier: SignInVerifier) -> None:
    now = time.time()
    foreign = Challenge("abcdef0123456789", CONFIG.domain, CONFIG.uri, 1337, now + 60)
    proof = sign_in(ALICE, foreign, ["t"], now)
    with pytest.raises(SignInReplayed):
        verifier.verify(proof.message, proof.signature, now)


def test_expired_message_is_rejected(verifier: SignInVerifier) -> None:
    now = time.time()
    proof = sign_in(ALICE, verifier.challenge(now), ["t"], now, ttl=5)
    with pytest.raises(SignInExpired, match="expired"):
        verifier.verify(proof.message, proof.signature, now + 6)


def test_expired_nonce_is_rejected(verifier: SignInVerifier) -> None:
    now = time.time()
    proof = sign_in(ALICE, verifier.challenge(now), ["t"], now, ttl=3600)
    with pytest.raises(SignInExpired, match="nonce"):
        verifier.verify(proof.message, proof.signature, now + CONFIG.nonce_ttl + 1)


def test_message_from_the_future_is_rejected(verifier: SignInVerifier) -> None:
    now = time.time()
    proof = sign_in(ALICE, verifier.challenge(now), ["t"], now + 3600)
    with pytest.raises(SignInNotYetValid):
        verifier.verify(proof.message, proof.signature, now)


def test_foreign_domain_is_rejected(verifier: SignInVerifier) -> None:
    now = time.time()
    c = verifier.challenge(now)
    evil = Challenge(c.nonce, "evil.example:443", c.uri, c.chain_id, c.expires_at)
    proof = sign_in(ALICE, evil, ["t"], now)
    with pytest.raises(SignInWrongDomain, match=r"evil\.example"):
        verifier.verify(proof.message, proof.signature, now)


def test_foreign_uri_is_rejected(verifier: SignInVerifier) -> None:
    now = time.time()
    c = verifier.challenge(now)
    evil = Challenge(c.nonce, c.domain, "https://evil.example/", c.chain_id, c.expires_at)
    proof = sign_in(ALICE, evil, ["t"], now)
    with pytest.raises(SignInWrongDomain, match="URI"):
        verifier.verify(proof.message, proof.signature, now)


def test_wrong_chain_is_rejected(verifier: SignInVerifier) -> None:
    now = time.time()
    c = verifier.challenge(now)
    proof = sign_in(ALICE, Challenge(c.nonce, c.domain, c.uri, 1, c.expires_at), ["t"], now)
    with pytest.raises(SignInWrongChain, match="chain 1,"):
        verifier.verify(proof.message, proof.signature, now)


def test_forged_signature_is_rejected_and_does_not_burn_the_nonce(
    verifier: SignInVerifier,
) -> None:
    now = time.time()
    challenge = verifier.challenge(now)
    message = build_message(ALICE.address, challenge, ["t"], now)
    with pytest.raises(SignInForged, match=ALICE.address):
        verifier.verify(message, sign_message(MALLORY, message), now)
    with pytest.raises(SignInForged):
        verifier.verify(message, b"\x00" * 65, now)
    with pytest.raises(SignInForged):
        verifier.verify(message, b"short", now)
    identity = verifier.verify(message, sign_message(ALICE, message), now)
    assert identity.address == ALICE.address.lower()


def test_altered_message_is_forged(verifier: SignInVerifier) -> None:
    now = time.time()
    proof = sign_in(ALICE, verifier.challenge(now), ["t"], now)
    altered = proof.message.replace(topic_resource("t"), topic_resource("secret"))
    with pytest.raises(SignInForged):
        verifier.verify(altered, proof.signature, now)


def test_garbage_is_malformed(verifier: SignInVerifier) -> None:
    with pytest.raises(SignInMalformed):
        verifier.verify("hello", b"\x00" * 65, time.time())


def test_all_sign_in_errors_are_unauthenticated() -> None:
    for cls in (SignInExpired, SignInForged, SignInReplayed, SignInWrongChain, SignInWrongDomain):
        assert issubclass(cls, Unauthenticated)


def test_nonce_registry_is_bounded_and_single_use() -> None:
    registry = NonceRegistry(ttl=10, capacity=3)
    nonces = [registry.issue(0.0)[0] for _ in range(5)]
    assert len(registry) == 3
    with pytest.raises(SignInReplayed):
        registry.consume(nonces[0], 1.0)  # evicted, oldest first
    registry.consume(nonces[4], 1.0)
    with pytest.raises(SignInReplayed):
        registry.consume(nonces[4], 1.0)
    registry.issue(20.0)  # purges the expired ones
    assert len(registry) == 1


def test_topic_resources_round_trip() -> None:
    names = ["plain", "a/b", "with space", "ünï"]
    assert topics_from_resources([topic_resource(n) for n in names]) == frozenset(names)
    assert topics_from_resources(["https://example.com/"]) == frozenset()
    assert topics_from_resources(None) == frozenset()
    assert topics_from_resources([ALL_TOPICS_RESOURCE, topic_resource("a")]) is None
    assert topic_resource(ALL_TOPICS) == ALL_TOPICS_RESOURCE == "meshgate://topic/*"
    assert topic_resource("*x") == "meshgate://topic/%2Ax"  # no topic resource is the wildcard
