"""Encrypted topics refuse what is not genuine, each with a clear error (issue 12, must-show 4).

One real registry gateway (its grace for an older epoch set to 0 by its config file) on the
chain, the owner's keys through meshgate/key_custody.py, and the reader's real client code
(`GatewayClient` and its `TopicEncryption`). Each refusal is shown where it happens:

- a tampered ciphertext: the gateway cannot tell (it holds no key) and stores it; the reader's
  subscription refuses it ('tampered'), reports it, and reads the next event (never wedges);
- a wrong epoch: an event sealed under an older epoch after a rotation is refused by the
  gateway naming both epochs, one under an epoch the chain never had too; a ciphertext
  relabelled with the current epoch is refused by the reader (the AEAD binds the epoch);
- a key set not signed by the owner, and one whose hash is not on chain: refused by the
  gateway (PutKeySet) and by the reader's client when a lying gateway serves them.
(gateway-side duplicates with two gateways: tests/integration/test_key_sets_gateways.py.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from eventmodel import provenance
from eventmodel.attributes import PbEvent
from eventmodel.encryption import EPOCH_ATTRIBUTE, seal_event
from eventmodel.errors import DecryptionError
from meshgate.client import Chain, GatewayClient
from meshgate.client.encryption import TopicEncryption
from meshgate.client.results import Undecodable
from meshgate.errors import KeyCustodyError
from meshgate.key_custody import KeyCustody
from meshgate.key_set_port import GatewayKeySets
from meshgate.processes import GatewayProcess
from policy import key_sets
from policy.encryption_keys import announced_public_key
from proto import cloudevents_pb2, gateway_pb2
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.registry_gateway import registry_gateway
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(180)]

WAIT = 30.0


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    config = tmp_path / "gateway.toml"
    config.write_text("encryption_grace = 0.0\n")  # an older epoch is refused at once
    with registry_gateway(tmp_path / "gw", registry, "--config", str(config)) as gw:
        yield gw


def event(name: str, n: int) -> PbEvent:
    pb = PbEvent(id=name, source="/refusals", spec_version="1.0", type="t.created")
    pb.text_data = f"secret {n}"
    return pb


async def publish_sealed(client: GatewayClient, topic: str, pb: PbEvent, signer: Any) -> None:
    """Publish `pb` as built (already sealed), signed by `signer`: what a publisher's own
    client would send if it sealed badly, or a tool built by hand."""
    nonce = await client.stub.GetNonce(gateway_pb2.GetNonceRequest(), timeout=10)
    binding = provenance.Binding.of(nonce.chain_id, nonce.registry)
    provenance.sign_events([pb], topic=topic, binding=binding, signer=signer)
    request = gateway_pb2.PublishRequest(
        topic=topic,
        batch=cloudevents_pb2.CloudEventBatch(events=[pb]),
    )
    credentials = await client._current_credentials(topic)
    assert isinstance(credentials, gateway_pb2.Credentials)
    request.credentials.CopyFrom(credentials)
    await client.stub.Publish(request, timeout=20)


def tampered(pb: PbEvent) -> PbEvent:
    out = PbEvent()
    out.CopyFrom(pb)
    data = bytearray(out.binary_data)
    data[-1] ^= 0x01  # one bit of the Poly1305 tag
    out.binary_data = bytes(data)
    return out


def relabelled(pb: PbEvent, epoch: int) -> PbEvent:
    out = PbEvent()
    out.CopyFrom(pb)
    out.attributes[EPOCH_ATTRIBUTE].ce_integer = epoch
    return out


async def test_tampered_ciphertext_wrong_epochs_and_forged_key_sets_are_each_refused(
    gateway: GatewayProcess,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    owner, reader = funded_account(), funded_account()
    registry.client(reader).announce_key(announced_public_key(bytes(reader.key)))
    topic = f"enc-{uuid.uuid4().hex[:10]}"
    chain = Chain(rpc_url=registry.chain.url, registry=registry.address, ttl=0.0)
    with GatewayKeySets(gateway.listen) as port:
        keys = KeyCustody(registry.client(owner), owner, port)
        keys.register_encrypted(topic)
        registry.client(owner).grant(topic, reader.address)
        keys.reissue(topic, reader.address)
        epoch1 = keys.recover(topic)[1]

        skipped: list[Undecodable] = []
        async with (
            GatewayClient(gateway.listen, signer=owner, chain=chain) as pub,
            GatewayClient(gateway.listen, signer=reader, chain=chain) as sub_client,
        ):
            sub = sub_client.subscribe(topic, on_undecodable=skipped.append)

            async def opened() -> bool:  # the gateway's view may lag the grant
                try:
                    await sub.start()
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                        return False
                    raise
                return True

            await async_wait_for(opened, timeout=WAIT, what="the reader's grant at the gateway")

            # Tampered ciphertext: stored (no key at the gateway), refused by the reader.
            bad = tampered(seal_event(event("e0", 0), topic, 1, epoch1))
            await publish_sealed(pub, topic, bad, owner)
            await publish_sealed(pub, topic, seal_event(event("e1", 1), topic, 1, epoch1), owner)
            async with asyncio.timeout(WAIT):
                got = await anext(sub)
            assert got.event.get_id() == "e1" and got.event.get_data() == "secret 1"
            assert [(s.offset, s.reason.split(":")[0]) for s in skipped] == [(0, "cannot decrypt")]
            assert "tampered" in skipped[0].reason, skipped[0].reason
            print(f"tampered refused: {skipped[0].reason}")

            # Wrong epochs at the gateway: one the chain never had, then the older one after
            # a rotation (grace 0), each naming the epochs.
            with pytest.raises(grpc.aio.AioRpcError) as never:
                await publish_sealed(
                    pub, topic, seal_event(event("e9", 9), topic, 9, epoch1), owner
                )
            assert never.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "epoch 9" in (never.value.details() or ""), never.value.details()
            keys.rotate(topic)
            with pytest.raises(grpc.aio.AioRpcError) as older:
                await publish_sealed(
                    pub, topic, seal_event(event("e2", 2), topic, 1, epoch1), owner
                )
            assert older.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            details = older.value.details() or ""
            print(
                f"older epoch refused: {details}\nnever-seen epoch refused: {never.value.details()}"
            )
            assert "epoch 1" in details and "2" in details, details
            # Relabelled to the current epoch: the gateway takes it (shape and epoch fine),
            # the reader's AEAD refuses it.
            await publish_sealed(
                pub, topic, relabelled(seal_event(event("e3", 3), topic, 1, epoch1), 2), owner
            )
            await pub.publish_pb(topic, [event("e4", 4)])  # sealed by the client, epoch 2
            async with asyncio.timeout(WAIT):
                got = await anext(sub)
            assert got.event.get_id() == "e4" and got.event.get_data() == "secret 4"
            assert len(skipped) == 2 and "cannot decrypt" in skipped[1].reason, skipped
            print(f"relabelled refused: {skipped[1].reason}")

        # Forged key sets: refused by the gateway, and by a reader whose gateway lies.
        epoch = registry.client().key_epoch_of(topic)
        mallory: LocalAccount = Account.create()
        readers_key = {str(reader.address): announced_public_key(bytes(reader.key))}

        def forged(epoch: int, signer: LocalAccount) -> tuple[bytes, bytes]:
            doc = key_sets.build(
                topic, epoch, b"\x42" * 32, readers_key,
                chain_id=registry.chain.chain_id, registry=registry.address,
                owner=owner.address, issued_at=int(time.time()),
            )  # fmt: skip
            raw = key_sets.encode(doc)
            return raw, key_sets.sign(raw, signer)

        not_owner = forged(epoch, mallory)
        not_on_chain = forged(epoch, owner)  # owner-signed, never recorded
        for (raw, sig), reason in (
            (not_owner, "not_owner_signed"),
            (not_on_chain, "hash_not_on_chain"),
        ):
            with pytest.raises(KeyCustodyError) as refused:
                port.put(topic, raw, sig)
            assert reason in str(refused.value), refused.value

            async def lying_gateway(
                topic: str, from_epoch: int, raw: bytes = raw, sig: bytes = sig
            ) -> list[gateway_pb2.KeySet]:
                return [gateway_pb2.KeySet(document=raw, signature=sig)]

            async def says_encrypted(topic: str) -> bool:
                return True

            crypto = TopicEncryption(
                chain=chain, fetch=lying_gateway, gateway_says_encrypted=says_encrypted
            )
            with pytest.raises(DecryptionError) as no_key:
                await crypto.key(topic, epoch, reader)
            assert reason in str(no_key.value), no_key.value
            print(f"{reason}: gateway {refused.value}\n  client {no_key.value}")
