"""Access policy end to end: Ganache + the registry + real gateway processes + real gRPC.

One chain per module (its own Ganache, so other layers' time travel cannot move its clock);
each test uses its own topic names and a gateway of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gateway.client import GatewayClient, Received, Subscription
from ledger.devchain import DevChain
from ledger.registry import RegistryClient
from policy.audit import audit_path, read_entries
from tests.support.chain_fixtures import DeployedRegistry, deploy
from tests.support.gateway_process import GatewayProcess
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("policy-chain")]


@pytest.fixture(scope="module")
def policy_chain() -> Iterator[DeployedRegistry]:
    chain = DevChain()
    try:
        chain.start()
        yield deploy(chain)
    finally:
        chain.stop()


@pytest.fixture
def owner(policy_chain: DeployedRegistry) -> RegistryClient:
    return policy_chain.client(Account.from_key(policy_chain.chain.accounts[1].private_key))


@pytest.fixture
def topic() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


def registry_args(deployed: DeployedRegistry, *extra: str) -> list[str]:
    return [
        "--rpc", deployed.chain.url,
        "--registry", deployed.address,
        "--chain-id", str(deployed.chain.chain_id),
        "--ack-timeout", "2",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def gateway(tmp_path: Path, policy_chain: DeployedRegistry) -> Iterator[GatewayProcess]:
    proc = GatewayProcess(tmp_path / "gw", metrics=False, extra_args=registry_args(policy_chain))
    try:
        yield proc.start()
    finally:
        proc.stop()


def event(n: int) -> CloudEvent:
    return CloudEvent({"type": "t.policy", "source": "/policy-test", "id": f"e{n}"}, {"n": n})


class Reader:
    """Reads a subscription in a task, so tests can wait for counts or the stream's end."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.received: list[Received] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for item in self.sub:
                self.received.append(item)
        except grpc.aio.AioRpcError as exc:
            self.error = exc

    async def wait_count(self, n: int, timeout: float = 20) -> None:
        async def enough() -> bool:
            return len(self.received) >= n

        await async_wait_for(enough, timeout=timeout, what=f"{n} events")

    async def wait_end(self, timeout: float = 20) -> grpc.aio.AioRpcError:
        async with asyncio.timeout(timeout):
            await self.task
        assert isinstance(self.error, grpc.aio.AioRpcError), "stream ended without an error"
        return self.error

    async def aclose(self) -> None:
        self.task.cancel()
        await asyncio.wait([self.task])
        await self.sub.aclose()


@pytest.fixture
async def clients() -> AsyncIterator[list[GatewayClient]]:
    made: list[GatewayClient] = []
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


def client_for(
    made: list[GatewayClient], gw: GatewayProcess, signer: LocalAccount | None
) -> GatewayClient:
    client = GatewayClient(gw.listen, signer=signer, timeout=20)
    made.append(client)
    return client


async def test_granted_reader_receives_others_are_denied(
    gateway: GatewayProcess, owner: RegistryClient, topic: str, clients: list[GatewayClient]
) -> None:
    reader, stranger, publisher = Account.create(), Account.create(), Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address)
    owner.allow_publisher(topic, publisher.address)
    pub = client_for(clients, gateway, publisher)
    await async_wait_for(lambda: _publish_ok(pub, topic), timeout=20, what="grants visible")
    sub = Reader(client_for(clients, gateway, reader).subscribe(topic))
    try:
        await sub.wait_count(1)
        assert sub.received[0].event.get_data() == {"n": 0}
        assert sub.sub.subscribed is not None
        assert sub.sub.subscribed.address == reader.address
    finally:
        await sub.aclose()

    denied = Reader(client_for(clients, gateway, stranger).subscribe(topic))
    error = await denied.wait_end()
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "no grant" in str(error.details())

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client_for(clients, gateway, reader).publish(topic, event(1))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not a publisher" in str(info.value.details())

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client_for(clients, gateway, None).publish(topic, event(2))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client_for(clients, gateway, owner.signer).publish(f"{topic}-unregistered", event(3))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "unknown topic" in str(info.value.details())


async def _publish_ok(client: GatewayClient, topic: str) -> bool:
    try:
        await client.publish(topic, event(0))
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE):
            return False
        raise
    return True


async def test_revoke_mid_stream_ends_delivery(
    gateway: GatewayProcess, owner: RegistryClient, topic: str, clients: list[GatewayClient]
) -> None:
    reader = Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address)
    pub = client_for(clients, gateway, owner.signer)
    await async_wait_for(lambda: _publish_ok(pub, topic), timeout=20, what="topic visible")
    sub = Reader(client_for(clients, gateway, reader).subscribe(topic))
    try:
        await sub.wait_count(1)
        owner.revoke(topic, reader.address)
        mined = time.monotonic()
        error = await sub.wait_end()
        print(f"revoke mined -> stream ended: {time.monotonic() - mined:.3f}s")
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "revoked" in str(error.details())
        count = len(sub.received)
        await pub.publish(topic, event(5))
        assert len(sub.received) == count
    finally:
        await sub.aclose()
    entries = list(read_entries(audit_path(gateway.data_dir), topic=topic))
    assert [e.decision for e in entries if e.address == reader.address.lower()] == [
        "allow",
        "deny",
    ]


async def test_expiry_mid_stream_ends_delivery_by_wall_clock(
    gateway: GatewayProcess, owner: RegistryClient, topic: str, clients: list[GatewayClient]
) -> None:
    reader = Account.create()
    owner.register(topic)
    expires_at = int(time.time()) + 6
    owner.grant(topic, reader.address, expires_at)
    pub = client_for(clients, gateway, owner.signer)
    await async_wait_for(lambda: _publish_ok(pub, topic), timeout=20, what="topic visible")
    sub = Reader(client_for(clients, gateway, reader).subscribe(topic))
    try:
        await sub.wait_count(1)
        error = await sub.wait_end(timeout=30)  # no block is mined, no event is published
        assert time.time() >= expires_at
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "expired" in str(error.details())
    finally:
        await sub.aclose()
