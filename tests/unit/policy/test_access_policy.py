import gc
from pathlib import Path

import pytest
from eth_account import Account

from policy.access_policy import AccessPolicy, AccessPolicyConfig
from policy.audit import AuditLog, audit_path, read_entries, verify_file
from policy.decision import Allow, DecisionConfig, Deny, DenyReason, Pause
from policy.errors import SessionInvalid, SignInOutOfScope
from policy.grant_view import Checkpoint, GrantRevoked, GrantSet, GrantView, TopicRegistered
from policy.identity import Identity, SignInConfig
from policy.sessions import new_secret
from policy.signin import sign_in

OWNER = Account.from_key("0x" + "0a" * 32)
READER = Account.from_key("0x" + "0b" * 32)
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Stream:
    """Stands in for the gateway's per-stream identity object (any weak-referenceable key)."""


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def policy(tmp_path: Path, clock: Clock) -> AccessPolicy:
    view = GrantView()
    view.apply(TopicRegistered(topic="t", owner=OWNER.address, block=1))
    view.checkpoint(Checkpoint(block=1, block_timestamp=0, observed_at=T0))
    config = AccessPolicyConfig(
        signin=SignInConfig(domain="gw:1", uri="meshgate://gw:1", chain_id=1337),
        decision=DecisionConfig(staleness_bound=2.0),
    )
    return AccessPolicy(
        config,
        view=view,
        session_secret=new_secret(),
        audit=AuditLog.open(audit_path(tmp_path)),
        clock=clock,
    )


def reader(topics: frozenset[str] | None = None) -> Identity:
    return Identity(address=READER.address.lower(), expires_at=T0 + 3600, topics=topics)


def test_sign_in_then_token(policy: AccessPolicy, clock: Clock) -> None:
    proof = sign_in(READER, policy.challenge(), ["t"], clock.now)
    token, identity = policy.sign_in(proof.message, proof.signature)
    assert policy.verify_token(token) == identity
    assert identity.address == READER.address.lower()


def test_stream_lifecycle_is_audited_on_changes_only(
    policy: AccessPolicy, clock: Clock, tmp_path: Path
) -> None:
    stream, who = Stream(), reader()
    policy.view.apply(GrantSet(topic="t", grantee=READER.address, expires_at=None, block=2))
    assert isinstance(policy.check_subscribe(stream, who, "t"), Allow)
    for _ in range(3):
        assert isinstance(policy.check_delivery(stream, who, "t"), Allow)
    assert policy.next_recheck() == T0 + 2.0
    clock.now += 3  # chain node silent beyond the bound
    assert isinstance(policy.check_delivery(stream, who, "t"), Pause)
    assert policy.next_recheck() == who.expires_at  # a paused stream still ends with its session
    policy.view.checkpoint(Checkpoint(block=3, block_timestamp=0, observed_at=clock.now))
    assert isinstance(policy.check_delivery(stream, who, "t"), Allow)
    policy.view.apply(GrantRevoked(topic="t", grantee=READER.address, block=4))
    decision = policy.check_delivery(stream, who, "t")
    assert isinstance(decision, Deny) and decision.reason is DenyReason.REVOKED
    path = audit_path(tmp_path)
    entries = list(read_entries(path))
    assert [(e.action, e.decision) for e in entries] == [
        ("subscribe", "allow"),
        ("stream", "pause"),
        ("stream", "resume"),
        ("stream", "deny"),
    ]
    assert "revoked" in entries[-1].reason and entries[-1].block == 3
    assert verify_file(path).ok


def test_expiring_grant_sets_recheck_and_streams_are_forgotten(
    policy: AccessPolicy, clock: Clock
) -> None:
    policy.view.apply(GrantSet(topic="t", grantee=READER.address, expires_at=int(T0) + 1, block=2))
    stream = Stream()
    assert isinstance(policy.check_subscribe(stream, reader(), "t"), Allow)
    assert policy.next_recheck() == T0 + 1
    assert policy.open_streams() == 1
    del stream
    gc.collect()
    assert policy.open_streams() == 0 and policy.next_recheck() is None


def test_publish_is_audited_each_time_and_scope_is_enforced(
    policy: AccessPolicy, tmp_path: Path
) -> None:
    assert isinstance(policy.check_publish(reader(), "t"), Deny)
    owner = Identity(address=OWNER.address.lower(), expires_at=T0 + 10, topics=None)
    assert isinstance(policy.check_publish(owner, "t"), Allow)
    assert isinstance(policy.check_publish(owner, "t"), Allow)
    with pytest.raises(SignInOutOfScope):
        policy.check_publish(reader(frozenset({"other"})), "t")
    decisions = [e.decision for e in read_entries(audit_path(tmp_path))]
    assert decisions == ["deny", "allow", "allow"]


def test_a_stream_ends_when_its_sign_in_expires(
    policy: AccessPolicy, clock: Clock, tmp_path: Path
) -> None:
    stream = Stream()
    who = Identity(address=READER.address.lower(), expires_at=T0 + 1.5, topics=frozenset({"t"}))
    policy.view.apply(GrantSet(topic="t", grantee=READER.address, expires_at=None, block=2))
    assert isinstance(policy.check_subscribe(stream, who, "t"), Allow)
    assert policy.next_recheck() == T0 + 1.5  # before the view's staleness (T0 + 2)
    clock.now = T0 + 1.5
    with pytest.raises(SessionInvalid, match="session expired; sign in again"):
        policy.check_delivery(stream, who, "t")
    with pytest.raises(SessionInvalid, match="session expired"):
        policy.check_delivery(stream, who, "t")  # stays ended; audited once
    with pytest.raises(SessionInvalid, match="session expired"):
        policy.check_publish(who, "t")
    assert policy.next_recheck() is None
    entries = [(e.action, e.decision, e.reason) for e in read_entries(audit_path(tmp_path))]
    assert entries[0][:2] == ("subscribe", "allow")
    assert entries[1][:2] == ("stream", "deny") and "session expired" in entries[1][2]
    assert len(entries) == 2
