"""Key sets between two real registry gateways on a real chain (issue 12, gateway side).

aa and bb are peered registry gateways (tests/support/registry_gateway.py). The owner
registers an encrypted topic, records epoch 1's hash on chain and puts the signed set into aa:
bb serves it too (the mesh flooded it), and still after a kill -9 and restart (held on disk).
A set signed by someone else, or one whose hash the chain never recorded, is refused by both
gateways with a clear error. Plaintext is refused at the client door; a sealed event under the
chain's epoch is stored, and GetTopic says the topic is encrypted at epoch 1.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from eventmodel import provenance
from eventmodel.attributes import PbEvent
from eventmodel.encryption import seal_event
from meshgate.client import GatewayClient
from meshgate.processes import GatewayProcess
from policy import key_sets
from policy.encryption_keys import derive_x25519
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.registry_gateway import registry_pair
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]

EPOCH_KEY = b"\x11" * 32


@pytest.fixture
def pair(
    tmp_path: Path, registry: DeployedRegistry, region_tls_dir: Callable[[str], Path]
) -> Iterator[dict[str, GatewayProcess]]:
    with registry_pair(tmp_path, registry, region_tls_dir, ("aa", "bb")) as gateways:
        yield gateways


def key_set(
    registry: DeployedRegistry, topic: str, epoch: int, owner: LocalAccount
) -> tuple[bytes, bytes]:
    """A document sealed to the owner, and the owner's signature of it."""
    public = bytes(derive_x25519(bytes(owner.key)).public_key)
    doc = key_sets.build(
        topic, epoch, EPOCH_KEY, {owner.address: public},
        chain_id=registry.chain.chain_id, registry=registry.address, owner=owner.address,
        issued_at=int(time.time()),
    )  # fmt: skip
    raw = key_sets.encode(doc)
    return raw, key_sets.sign(raw, owner)


async def put(gw: GatewayProcess, topic: str, raw: bytes, signature: bytes) -> int:
    async with grpc.aio.insecure_channel(gw.listen) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        request = gateway_pb2.PutKeySetRequest(
            topic=topic, key_set=gateway_pb2.KeySet(document=raw, signature=signature)
        )
        return int((await stub.PutKeySet(request, timeout=20, wait_for_ready=True)).epoch)


async def held(gw: GatewayProcess, topic: str) -> gateway_pb2.GetKeySetsResponse:
    async with grpc.aio.insecure_channel(gw.listen) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        request = gateway_pb2.GetKeySetsRequest(topic=topic)
        return await stub.GetKeySets(request, timeout=10, wait_for_ready=True)


async def refused(
    gw: GatewayProcess, topic: str, raw: bytes, signature: bytes
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await put(gw, topic, raw, signature)
    return info.value


async def publish(
    gw: GatewayProcess, topic: str, pb: PbEvent, registry: DeployedRegistry, owner: LocalAccount
) -> gateway_pb2.PublishResponse:
    """A hand-built, owner-signed Publish (the client would seal it first)."""
    binding = provenance.Binding.of(registry.chain.chain_id, registry.address)
    provenance.sign_events([pb], topic=topic, binding=binding, signer=owner)
    async with GatewayClient(gw.listen, signer=owner) as client:
        request = gateway_pb2.PublishRequest(
            topic=topic,
            batch=cloudevents_pb2.CloudEventBatch(events=[pb]),
            credentials=await client._current_credentials(topic),
        )
        return await client.stub.Publish(request, timeout=20)


def event(name: str) -> PbEvent:
    pb = PbEvent(id=name, source="/key-sets", spec_version="1.0", type="t.created")
    pb.text_data = f"secret {name}"
    return pb


async def test_a_key_set_put_into_one_gateway_is_served_by_the_other_forgeries_by_neither(
    pair: dict[str, GatewayProcess],
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    aa, bb = pair["aa"], pair["bb"]
    owner_key = funded_account()
    owner = registry.client(owner_key)
    mallory: LocalAccount = Account.create()
    topic = f"enc-{uuid.uuid4().hex[:10]}"
    owner.register(topic, encrypted=True)

    # Before any key set is on chain: the topic is encrypted, nothing is held, plaintext no.
    error = await refused(aa, topic, *key_set(registry, topic, 1, owner_key))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "hash_not_on_chain" in (error.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as plain:
        await publish(aa, topic, event("p0"), registry, owner_key)
    assert plain.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"topic '{topic}' is encrypted: event 'p0' has no mgepoch" in (
        plain.value.details() or ""
    )

    raw, signature = key_set(registry, topic, 1, owner_key)
    owner.publish_key_set(topic, 1, key_sets.key_set_hash(raw))
    assert await put(aa, topic, raw, signature) == 1  # aa catches its view up if it must

    async def bb_holds_it() -> bool:
        return [k.document for k in (await held(bb, topic)).key_sets] == [raw]

    await async_wait_for(bb_holds_it, timeout=30, what="the key set flooded to bb")
    reply = await held(bb, topic)
    assert reply.current_epoch == 1 and reply.key_sets[0].signature == signature

    # Forgeries, at both gateways: Mallory's signature on the genuine document, Mallory's own
    # document, and an owner-signed epoch 2 whose hash the chain never recorded.
    resigned = key_sets.sign(raw, mallory)
    own_raw, own_sig = key_set(registry, topic, 1, mallory)
    unrecorded = key_set(registry, topic, 2, owner_key)
    for gw in (aa, bb):
        for forged_raw, forged_sig in ((raw, resigned), (own_raw, own_sig)):
            error = await refused(gw, topic, forged_raw, forged_sig)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, gw.region
            assert "key set refused (not_owner_signed)" in (error.details() or "")
        error = await refused(gw, topic, *unrecorded)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "hash_not_on_chain" in (error.details() or "")
        assert [k.signature for k in (await held(gw, topic)).key_sets] == [signature]

    # The client door takes a sealed event under the chain's epoch; GetTopic names it.
    await publish(aa, topic, seal_event(event("s1"), topic, 1, EPOCH_KEY), registry, owner_key)
    async with grpc.aio.insecure_channel(aa.listen) as channel:
        info = await gateway_pb2_grpc.GatewayStub(channel).GetTopic(
            gateway_pb2.GetTopicRequest(name=topic), timeout=10
        )
    assert (info.encrypted, info.key_epoch, info.event_count) == (True, 1, 1)
    with pytest.raises(grpc.aio.AioRpcError) as newer:
        await publish(aa, topic, seal_event(event("s2"), topic, 2, EPOCH_KEY), registry, owner_key)
    assert newer.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "epoch 2 is not on chain (current epoch 1)" in (newer.value.details() or "")

    # Held on disk: bb killed -9 and restarted serves the set without being sent it again.
    bb.kill9()
    bb.restart()
    assert [k.document for k in (await held(bb, topic)).key_sets] == [raw]
