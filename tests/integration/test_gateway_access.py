"""The gateway enforces its AccessControl: deny, pause (fail closed), and re-check on change.

Runs an in-process Gateway over real gRPC and SQLite with a switchable access control (the
policy layer's own tests cover the on-chain implementation).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from gateway.access import (
    ALLOW,
    AccessView,
    Credentials,
    Decision,
    Deny,
    Identity,
    NonceChallenge,
    OpenAccess,
    Pause,
    Session,
)
from gateway.app import Gateway
from gateway.config import GatewayConfig
from meshgate.client import GatewayClient
from tests.integration.gateway_helpers import event
from tests.support.channels import ready_channel


class SwitchableAccess(OpenAccess):
    """Open access whose delivery/publish decisions the test flips."""

    def __init__(self) -> None:
        super().__init__()
        self.view = AccessView()
        self.delivery: Decision = ALLOW
        self.publish: Decision = ALLOW
        self.seen: list[Credentials | None] = []

    async def authenticate(self, credentials: Credentials | None) -> Identity:
        self.seen.append(credentials)
        return Identity("0x" + "ab" * 20)

    def check_publish(self, identity: Identity, topic: str) -> Decision:
        return self.publish

    def check_delivery(self, identity: Identity, topic: str) -> Decision:
        return self.delivery

    async def get_nonce(self) -> NonceChallenge:
        return await super().get_nonce()

    async def sign_in(self, message: str, signature: bytes) -> Session:
        return await super().sign_in(message, signature)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, SwitchableAccess]]:
    access = SwitchableAccess()
    async with Gateway(GatewayConfig(region="eu", data_dir=tmp_path), access=access) as gw:
        yield gw, access


async def test_publish_denied_and_paused(gateway: tuple[Gateway, SwitchableAccess]) -> None:
    gw, access = gateway
    async with GatewayClient(gw.listen, credentials=Credentials(session_token="tok")) as client:
        access.publish = Deny("no grant")
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await client.publish("t", event(1))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "no grant" in (denied.value.details() or "")
        access.publish = Pause("chain unreachable")
        with pytest.raises(grpc.aio.AioRpcError) as paused:
            await client.publish("t", event(1))
        assert paused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "chain unreachable" in (paused.value.details() or "")
        assert access.seen[-1] == Credentials(session_token="tok")
        assert await client.topics() == []


async def test_pause_holds_deliveries_and_revoke_ends_a_quiet_stream(
    gateway: tuple[Gateway, SwitchableAccess],
) -> None:
    gw, access = gateway
    async with GatewayClient(gw.listen) as client:
        await client.publish_batch("t", [event(i) for i in range(3)])
        access.delivery = Pause("view stale")
        async with client.subscribe("t", credits=10) as sub:
            assert sub.subscribed is not None
            assert sub.subscribed.address == "0x" + "ab" * 20
            it = aiter(sub)
            pending = asyncio.ensure_future(anext(it))
            done, _ = await asyncio.wait({pending}, timeout=1.0)
            assert not done, "delivered while paused"
            access.delivery = ALLOW
            access.view.changed()
            offset, _ev = await asyncio.wait_for(pending, 30)
            assert offset == 0
            assert (await anext(it))[0] == 1
            assert (await anext(it))[0] == 2
            # Nothing more to send: a revoke must still end the stream at once.
            access.delivery = Deny("grant revoked")
            access.view.changed()
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(anext(it), 30)
            assert ended.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "grant revoked" in (ended.value.details() or "")


async def test_open_gateway_has_no_sign_in(tmp_path: Path) -> None:
    async with (
        Gateway(GatewayConfig(region="eu", data_dir=tmp_path)) as gw,
        ready_channel(gw.listen) as channel,
    ):
        from proto import gateway_pb2, gateway_pb2_grpc

        stub = gateway_pb2_grpc.GatewayStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetNonce(gateway_pb2.GetNonceRequest())
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.details() == "gateway runs without a registry"
        peers = await stub.ListPeers(gateway_pb2.ListPeersRequest())
        assert (peers.region, list(peers.peers)) == ("eu", [])


class BrokenAccess(SwitchableAccess):
    async def authenticate(self, credentials: Credentials | None) -> Identity:
        raise RuntimeError("secret internals")


async def test_unknown_errors_are_internal_without_details(tmp_path: Path) -> None:
    config = GatewayConfig(region="eu", data_dir=tmp_path)
    async with (
        Gateway(config, access=BrokenAccess()) as gw,
        GatewayClient(gw.listen) as client,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.publish("t", event(1))
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details() == "internal error"


async def test_server_reflection_lists_the_services(tmp_path: Path) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with (
        Gateway(GatewayConfig(region="eu", data_dir=tmp_path)) as gw,
        ready_channel(gw.listen) as channel,
    ):
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request])):
            names = {s.name for s in reply.list_services_response.service}
            assert {"meshgate.v1.Gateway", "grpc.health.v1.Health"} <= names
            break
