"""The client SDK on an encrypted topic, against a real registry gateway and the chain (issue 12).

One gateway (the mesh is tests/integration/test_encryption_mesh.py's): the owner's keys go
through meshgate/key_custody.py; the publisher and readers are plain `GatewayClient`s with
`chain=`. Shown: what the gateway holds and delivers is sealed (no marker in any delivered
byte), a granted reader with a key reads the plaintext and its publisher, a granted reader
with no key gets each event reported (`no key`) and acked, so after a re-issue its group
resumes with the next event, not the old ones; a client without a chain refuses to publish
and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from eth_account.signers.local import LocalAccount

from eventmodel.encryption import EPOCH_ATTRIBUTE, epoch_of
from meshgate.client import Chain, GatewayClient, Undecodable
from meshgate.errors import EncryptionUnavailable
from meshgate.key_custody import KeyCustody
from meshgate.key_set_port import GatewayKeySets
from policy.encryption_keys import announced_public_key
from proto import cloudevents_pb2
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]

MARKER = b"MARKER-" + uuid.uuid4().hex.encode()
WAIT = 45.0


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    with registry_gateway(tmp_path / "gw", registry) as gw:
        yield gw


def event(i: int) -> cloudevents_pb2.CloudEvent:
    return cloudevents_pb2.CloudEvent(
        id=f"e{i}",
        source="/enc",
        spec_version="1.0",
        type="t.enc",
        binary_data=MARKER + b"-%d" % i,
    )


async def publish_when_allowed(client: GatewayClient, topic: str, pbs: list[object]) -> None:
    """Publish once the gateway's view has the grant and the epoch (refused attempts store
    nothing: publish is all-or-nothing)."""

    async def attempt() -> bool:
        try:
            await client.publish_pb(topic, pbs)  # type: ignore[arg-type]
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE):
                return False
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:  # epoch not in the view yet
                return False
            raise
        return True

    await async_wait_for(attempt, timeout=WAIT, interval=0.2, what="publish allowed")


async def collect(
    client: GatewayClient, topic: str, group: str, want: int, bad: list[Undecodable]
) -> list[bytes]:
    """Read `group` until `want` events were delivered or reported; the delivered data."""
    got: list[bytes] = []
    done = asyncio.Event()

    def count() -> None:
        if len(got) + len(bad) >= want:
            done.set()

    def report(skipped: Undecodable) -> None:
        bad.append(skipped)
        count()

    async def read() -> None:
        async with client.subscribe(topic, group=group, on_undecodable=report) as sub:
            async for received in sub:
                got.append(bytes(received.event.get_data()))  # type: ignore[arg-type]
                assert received.publisher is not None
                count()

    async def opened() -> bool:
        reader = asyncio.create_task(read())
        waiter = asyncio.create_task(done.wait())
        try:
            await asyncio.wait({reader, waiter}, timeout=WAIT, return_when="FIRST_COMPLETED")
            if reader.done():
                exc = reader.exception()
                denied = grpc.StatusCode.PERMISSION_DENIED  # the grant is not in view yet
                if isinstance(exc, grpc.aio.AioRpcError) and exc.code() == denied:
                    return False
                reader.result()
            assert done.is_set(), f"{group}: {len(got)} read, {len(bad)} reported of {want}"
            return True
        finally:
            for task in (reader, waiter):
                task.cancel()
            await asyncio.gather(reader, waiter, return_exceptions=True)

    await async_wait_for(opened, timeout=WAIT, interval=0.2, what=f"{group} read {want}")
    return got


async def test_sealed_at_the_gateway_plaintext_for_key_holders_reported_for_others(
    gateway: GatewayProcess,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    topic = f"enc-{uuid.uuid4().hex[:10]}"
    owner_key, bob, alice, eve = (funded_account() for _ in range(4))
    for account in (bob, alice):
        registry.client(account).announce_key(announced_public_key(bytes(account.key)))
    owner = registry.client(owner_key)
    with GatewayKeySets(gateway.listen) as port:
        custody = KeyCustody(owner, owner_key, port)
        custody.register_encrypted(topic)
        owner.allow_publisher(topic, bob.address)
        owner.grant(topic, alice.address)
        owner.grant(topic, eve.address)  # granted, but no key announced: sealed nothing
        assert custody.rotate(topic).epoch == 2
    chain = Chain(rpc_url=registry.chain.url, registry=registry.address)

    async with contextlib.AsyncExitStack() as stack:
        pub = await stack.enter_async_context(
            GatewayClient(gateway.listen, signer=bob, chain=chain)
        )
        await publish_when_allowed(pub, topic, [event(i) for i in range(5)])

        # Without a chain the client refuses before sending anything.
        bare = await stack.enter_async_context(GatewayClient(gateway.listen, signer=bob))
        with pytest.raises(EncryptionUnavailable, match="is encrypted"):
            await bare.publish_pb(topic, [event(99)])
        assert (await pub.topic(topic)).event_count == 5

        # What the gateway delivers is sealed under epoch 2.
        raw_reader = await stack.enter_async_context(GatewayClient(gateway.listen, signer=alice))
        seen = []
        async with raw_reader.subscribe(topic, group="raw") as sub:
            async for delivery in sub.deliveries():
                seen.append(delivery.event)
                if len(seen) == 5:
                    break
        assert [epoch_of(pb) for pb in seen] == [2] * 5
        assert all(MARKER not in pb.SerializeToString() for pb in seen)
        assert all(EPOCH_ATTRIBUTE in pb.attributes for pb in seen)

        # A key holder reads the plaintext; a grantee without a key gets reports, acked.
        reader = await stack.enter_async_context(
            GatewayClient(gateway.listen, signer=alice, chain=chain)
        )
        bad: list[Undecodable] = []
        got = await collect(reader, topic, "alice", 5, bad)
        assert got == [MARKER + b"-%d" % i for i in range(5)] and bad == []

        locked = await stack.enter_async_context(
            GatewayClient(gateway.listen, signer=eve, chain=chain)
        )
        reports: list[Undecodable] = []
        assert await collect(locked, topic, "eve", 5, reports) == []
        assert len(reports) == 5
        assert all("no key" in r.reason and "epoch 2" in r.reason for r in reports)

    # Eve announces a key and the owner re-issues epoch 2 to her: her group goes on with the
    # next event (the five it could not open were acked, not redelivered).
    registry.client(eve).announce_key(announced_public_key(bytes(eve.key)))
    with GatewayKeySets(gateway.listen) as port:
        KeyCustody(owner, owner_key, port).reissue(topic, eve.address)
    async with contextlib.AsyncExitStack() as stack:
        pub = await stack.enter_async_context(
            GatewayClient(gateway.listen, signer=bob, chain=chain)
        )
        await publish_when_allowed(pub, topic, [event(5)])
        again = await stack.enter_async_context(
            GatewayClient(gateway.listen, signer=eve, chain=chain)
        )
        more: list[Undecodable] = []
        assert await collect(again, topic, "eve", 1, more) == [MARKER + b"-5"]
        assert more == []
