import asyncio
import time
from pathlib import Path

import pytest
from eth_account import Account

from gateway.access import Allow, Credentials, Deny, Pause
from gateway.registry_access import RegistryAccess, SignedInIdentity
from policy.access_policy import AccessPolicy, AccessPolicyConfig
from policy.audit import AuditLog, audit_path, read_entries
from policy.decision import DecisionConfig
from policy.errors import (
    CredentialsMissing,
    SessionInvalid,
    SignInOutOfScope,
    SignInReplayed,
)
from policy.grant_view import Checkpoint, GrantSet, GrantView, TopicRegistered
from policy.identity import Challenge, SignInConfig
from policy.sessions import new_secret
from policy.signin import sign_in

OWNER = Account.from_key("0x" + "0c" * 32)
READER = Account.from_key("0x" + "0d" * 32)


def make_access(tmp_path: Path, bound: float = 30.0) -> RegistryAccess:
    view = GrantView()
    view.apply(TopicRegistered(topic="t", owner=OWNER.address, block=1))
    view.checkpoint(Checkpoint(block=1, block_timestamp=0, observed_at=time.time()))
    config = AccessPolicyConfig(
        signin=SignInConfig(domain="gw:1", uri="meshgate://gw:1", chain_id=1337),
        decision=DecisionConfig(staleness_bound=bound),
    )
    policy = AccessPolicy(
        config, view=view, session_secret=new_secret(), audit=AuditLog.open(audit_path(tmp_path))
    )
    return RegistryAccess(policy)


async def signed_in(access: RegistryAccess, account: object) -> SignedInIdentity:
    n = await access.get_nonce()
    challenge = Challenge(n.nonce, n.domain, n.uri, n.chain_id, n.expires_at.timestamp())
    proof = sign_in(account, challenge, ["t"], time.time())
    session = await access.sign_in(proof.message, proof.signature)
    assert session.address == account.address  # type: ignore[attr-defined]
    identity = await access.authenticate(Credentials(session_token=session.token))
    assert isinstance(identity, SignedInIdentity)
    return identity


async def test_credentials_are_required_and_checked(tmp_path: Path) -> None:
    access = make_access(tmp_path)
    with pytest.raises(CredentialsMissing, match="sign in"):
        await access.authenticate(None)
    with pytest.raises(SessionInvalid):
        await access.authenticate(Credentials(session_token="x.y"))
    n = await access.get_nonce()
    challenge = Challenge(n.nonce, n.domain, n.uri, n.chain_id, n.expires_at.timestamp())
    proof = sign_in(READER, challenge, ["t"], time.time())
    creds = Credentials(message=proof.message, signature=proof.signature)
    first = await access.authenticate(creds)
    assert first.address == READER.address
    with pytest.raises(SignInReplayed):
        await access.authenticate(creds)


async def test_each_authentication_is_a_distinct_stream_key(tmp_path: Path) -> None:
    access = make_access(tmp_path)
    n = await access.get_nonce()
    challenge = Challenge(n.nonce, n.domain, n.uri, n.chain_id, n.expires_at.timestamp())
    proof = sign_in(READER, challenge, ["t"], time.time())
    session = await access.sign_in(proof.message, proof.signature)
    a = await access.authenticate(Credentials(session_token=session.token))
    b = await access.authenticate(Credentials(session_token=session.token))
    assert a.address == b.address and a != b


async def test_expiry_wakes_open_streams_without_traffic(tmp_path: Path) -> None:
    access = make_access(tmp_path)
    expires = int(time.time()) + 2
    access.policy.view.apply(
        GrantSet(topic="t", grantee=READER.address, expires_at=expires, block=2)
    )
    identity = await signed_in(access, READER)
    assert access.check_subscribe(identity, "t") == Allow()
    woken = asyncio.Event()
    access.view.subscribe(woken.set)
    timer = asyncio.create_task(access.run())
    try:
        async with asyncio.timeout(10):
            await woken.wait()
        assert time.time() >= expires
        decision = access.check_delivery(identity, "t")
        assert isinstance(decision, Deny) and decision.reason.startswith("expired")
    finally:
        timer.cancel()
    decisions = [e.decision for e in read_entries(audit_path(tmp_path))]
    assert decisions == ["allow", "deny"]


async def test_stale_view_pauses_streams_and_raises_for_publish(tmp_path: Path) -> None:
    access = make_access(tmp_path, bound=1.0)
    owner = await signed_in(access, OWNER)
    # Fresh from now: signing in may take longer than the bound on a loaded machine.
    access.policy.view.checkpoint(Checkpoint(block=1, block_timestamp=0, observed_at=time.time()))
    assert access.check_delivery(owner, "t") == Allow()
    woken = asyncio.Event()
    access.view.subscribe(woken.set)
    timer = asyncio.create_task(access.run())
    try:
        async with asyncio.timeout(10):
            await woken.wait()  # the view turned stale: no traffic needed
        assert isinstance(access.check_delivery(owner, "t"), Pause)
        paused = access.check_publish(owner, "t")  # the service raises AccessPaused for it
        assert isinstance(paused, Pause) and "stale view" in paused.reason
        access.policy.view.checkpoint(
            Checkpoint(block=2, block_timestamp=0, observed_at=time.time())
        )
        access.changed()
        assert access.check_delivery(owner, "t") == Allow()
    finally:
        timer.cancel()
    entries = [(e.action, e.decision) for e in read_entries(audit_path(tmp_path))]
    assert entries == [
        ("stream", "allow"),
        ("stream", "pause"),
        ("publish", "pause"),
        ("stream", "resume"),
    ]


async def test_missing_grant_and_out_of_scope_topic(tmp_path: Path) -> None:
    access = make_access(tmp_path)
    reader = await signed_in(access, READER)
    decision = access.check_subscribe(reader, "t")
    assert isinstance(decision, Deny) and decision.reason.startswith("no grant")
    publish = access.check_publish(reader, "t")
    assert isinstance(publish, Deny) and publish.reason.startswith("not a publisher")
    with pytest.raises(SignInOutOfScope):
        access.check_subscribe(reader, "other")
