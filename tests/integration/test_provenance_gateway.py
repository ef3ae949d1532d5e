"""Publisher-signed events at one registry gateway and at its readers (issue 11).

Real gateway process, real chain. The origin gateway refuses an unsigned event and an event
signed by an account that may not publish (even when the caller may); a reader verifies each
event itself: a signature altered in the gateway's store is caught by the client, and with its
own chain check the client refuses events of a publisher the chain no longer allows. An
unsigned event stored before signing existed stays readable (publisher None) unless the client
checks the chain itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account
from eth_account.signers.local import LocalAccount

from eventmodel import provenance
from eventmodel import sdk as events
from eventmodel.attributes import parse
from meshgate.client import Chain, GatewayClient, Undecodable
from proto import gateway_pb2
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    with registry_gateway(tmp_path / "gw", registry) as gw:
        yield gw


def event(name: str) -> CloudEvent:
    return CloudEvent({"type": "t.prov", "source": "/prov", "id": name}, {"name": name})


async def test_the_origin_refuses_unsigned_and_unauthorised_signatures(
    gateway: GatewayProcess,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    topic = f"prov-{uuid.uuid4().hex[:10]}"
    owner_key = funded_account()
    registry.client(owner_key).register(topic)
    mallory: LocalAccount = Account.create()

    # The caller may publish, the key that signed the events may not.
    async with GatewayClient(gateway.listen, signer=owner_key, publisher=mallory) as client:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.publish(topic, event("by-mallory"))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    details = info.value.details() or ""
    assert f"publisher {mallory.address} may not publish to {topic!r} at block" in details

    async with GatewayClient(gateway.listen, signer=owner_key, signin_topics=[topic]) as client:
        creds = await client.sign_in()
        assert isinstance(creds, gateway_pb2.Credentials)
        request = gateway_pb2.PublishRequest(topic=topic, credentials=creds)
        request.batch.events.append(events.to_pb(event("unsigned")))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.stub.Publish(request, timeout=20)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unsigned: event 'unsigned' carries no publisher signature" in (
            info.value.details() or ""
        )
        await client.publish(topic, event("signed"))  # signed by the owner: stored
        assert (await client.topic(topic)).event_count == 1


async def test_readers_verify_what_the_gateway_stored(
    gateway: GatewayProcess,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    topic = f"prov-{uuid.uuid4().hex[:10]}"
    owner_key = funded_account()
    owner = registry.client(owner_key)
    writer: LocalAccount = Account.create()
    reader: LocalAccount = Account.create()
    owner.register(topic)
    owner.allow_publisher(topic, writer.address)
    owner.grant(topic, reader.address)
    async with GatewayClient(gateway.listen, signer=writer) as client:
        await client.publish_batch(topic, [event("e0"), event("e1"), event("e2")])

    # A store edited behind the gateway: e1's signature altered in its SQLite row.
    await asyncio.to_thread(gateway.stop)
    db = sqlite3.connect(gateway.data_dir / "events.sqlite3")
    with db:
        (payload,) = db.execute(
            "SELECT payload FROM events WHERE topic = ? AND id = 'e1'", (topic,)
        ).fetchone()
        pb = parse(payload)
        sig = bytearray(pb.attributes[provenance.SIGNATURE].ce_bytes)
        sig[10] ^= 0xFF
        pb.attributes[provenance.SIGNATURE].ce_bytes = bytes(sig)
        db.execute(
            "UPDATE events SET payload = ? WHERE topic = ? AND id = 'e1'",
            (pb.SerializeToString(deterministic=True), topic),
        )
        # e2 as if stored before signing existed: no provenance at all.
        (payload,) = db.execute(
            "SELECT payload FROM events WHERE topic = ? AND id = 'e2'", (topic,)
        ).fetchone()
        old = parse(payload)
        for name in provenance.NAMES:
            del old.attributes[name]
        db.execute(
            "UPDATE events SET payload = ? WHERE topic = ? AND id = 'e2'",
            (old.SerializeToString(deterministic=True), topic),
        )
    db.close()
    await asyncio.to_thread(gateway.restart)

    async def read(client: GatewayClient, verify: bool = True) -> tuple[list[str], list[str]]:
        skipped: list[Undecodable] = []
        got: list[str] = []
        async with client.subscribe(topic, on_undecodable=skipped.append, verify=verify) as sub:
            async with asyncio.timeout(30):
                async for received in sub:
                    got.append(f"{received.event.get_id()}:{received.publisher}")
                    if received.offset == 2:
                        break
        return got, [s.reason for s in skipped]

    async with GatewayClient(gateway.listen, signer=reader) as client:
        got, skipped = await read(client)
        assert got == [f"e0:{writer.address}", "e2:None"]  # an old unsigned event stays readable
        assert len(skipped) == 1 and "publisher check failed: bad signature" in skipped[0]
        got, skipped = await read(client, verify=False)  # the opt-out delivers it as stored
        assert [g.split(":")[0] for g in got] == ["e0", "e1", "e2"] and skipped == []

    # The chain stops allowing the writer: a client checking the chain itself refuses its
    # events, whatever the gateway keeps serving; one trusting the signature alone does not.
    owner.deny_publisher(topic, writer.address)
    async with GatewayClient(gateway.listen, signer=owner_key) as client:
        await client.publish(topic, event("e3"))  # the owner still may
    chain = Chain(rpc_url=registry.chain.url, registry=registry.address)
    async with GatewayClient(gateway.listen, signer=reader, chain=chain) as client:
        skipped_all: list[Undecodable] = []
        async with client.subscribe(topic, on_undecodable=skipped_all.append) as sub:
            async with asyncio.timeout(30):
                first = await anext(sub)
    assert (first.event.get_id(), first.publisher) == ("e3", owner_key.address)
    reasons = [s.reason for s in skipped_all]
    assert len(reasons) == 3, reasons
    assert sum("not publisher" in r for r in reasons) == 1, reasons  # e0
    assert sum("bad signature" in r for r in reasons) == 1, reasons  # e1
    assert sum("unsigned" in r for r in reasons) == 1, reasons  # e2: a chain check wants a signer
