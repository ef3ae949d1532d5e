"""PublisherRights: signature and signer's right in the gateway's own view, for both doors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_account import Account

from eventmodel.attributes import PbEvent
from eventmodel.errors import ProvenanceError
from eventmodel.provenance import Binding, sign_events
from federation.errors import AdmissionPaused
from federation.ports import InboundEvent
from gateway.publishers import PublisherRights
from policy.access_policy import AccessPolicy, AccessPolicyConfig
from policy.decision import DecisionConfig
from policy.errors import AccessDenied, AccessPaused
from policy.grant_view import Checkpoint, GrantView, PublisherAdded, TopicRegistered
from policy.identity import SignInConfig
from policy.sessions import new_secret

OWNER = Account.from_key("0x" + "0c" * 32)
WRITER = Account.from_key("0x" + "0d" * 32)
MALLORY = Account.from_key("0x" + "0e" * 32)
BINDING = Binding(1337, b"\x42" * 20)


def rights(tmp_path: Path, *, fresh: bool = True) -> PublisherRights:
    view = GrantView()
    view.apply(TopicRegistered(topic="t", owner=OWNER.address, block=1))
    view.apply(PublisherAdded(topic="t", publisher=WRITER.address, block=2))
    observed = time.time() if fresh else time.time() - 3600
    view.checkpoint(Checkpoint(block=2, block_timestamp=0, observed_at=observed))
    config = AccessPolicyConfig(
        signin=SignInConfig(domain="gw:1", uri="meshgate://gw:1", chain_id=1337),
        decision=DecisionConfig(staleness_bound=30.0),
    )
    policy = AccessPolicy(config, view=view, session_secret=new_secret())
    return PublisherRights(binding=BINDING, policy=policy)


def events(signer: object | None, n: int = 2, binding: Binding = BINDING) -> list[PbEvent]:
    out = [PbEvent(id=f"e{i}", source="/s", spec_version="1.0", type="t") for i in range(n)]
    if signer is not None:
        sign_events(out, topic="t", binding=binding, signer=signer)  # type: ignore[arg-type]
    return out


async def test_publish_takes_the_owner_and_allowed_publishers(tmp_path: Path) -> None:
    check = rights(tmp_path)
    await check.check_publish("t", events(OWNER))
    await check.check_publish("t", events(WRITER))


async def test_publish_refuses_unsigned_other_registry_and_non_publishers(tmp_path: Path) -> None:
    check = rights(tmp_path)
    with pytest.raises(ProvenanceError, match="unsigned: event 'e0'"):
        await check.check_publish("t", events(None))
    with pytest.raises(ProvenanceError, match="bad signature"):
        await check.check_publish("t", events(OWNER, binding=Binding(1337, b"\x01" * 20)))
    with pytest.raises(AccessDenied) as info:
        await check.check_publish("t", events(MALLORY))
    assert f"publisher {MALLORY.address} may not publish to 't' at block 2" in str(info.value)
    mixed = events(OWNER, 1) + events(MALLORY, 1)
    with pytest.raises(AccessDenied):  # all or nothing: one bad signer refuses the call
        await check.check_publish("t", mixed)


async def test_a_stale_view_pauses_rather_than_decides(tmp_path: Path) -> None:
    check = rights(tmp_path, fresh=False)
    with pytest.raises(AccessPaused):
        await check.check_publish("t", events(WRITER))
    inbound = [InboundEvent("t", events(WRITER)[0].SerializeToString(), b"", "zz")]
    with pytest.raises(AdmissionPaused):
        await check.admit(inbound)


async def test_admit_answers_a_reason_per_replicated_event(tmp_path: Path) -> None:
    check = rights(tmp_path)
    tampered = events(WRITER, 1)[0]
    tampered.text_data = "changed"
    batch = [
        events(WRITER, 1)[0],
        events(None, 1)[0],
        events(MALLORY, 1)[0],
        tampered,
    ]
    inbound = [InboundEvent("t", pb.SerializeToString(), b"", "zz") for pb in batch]
    inbound.append(InboundEvent("t", b"\xff\xff not protobuf", b"", "zz"))
    inbound.append(InboundEvent("other", batch[0].SerializeToString(), b"", "zz"))  # wrong topic
    assert await check.admit(inbound) == [
        None,
        "unsigned",
        "not_publisher",
        "bad_proof",
        "invalid_event",
        "bad_signature",
    ]
