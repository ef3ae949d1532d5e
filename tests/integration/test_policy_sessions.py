"""Sign-in sessions against a real gateway: they end open streams on time, and they
survive a gateway restart (the secret lives in the data directory) (issue 10)."""

from __future__ import annotations

import asyncio
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account.signers.local import LocalAccount

from gateway.access import Credentials
from ledger.registry import RegistryClient
from meshgate.client import GatewayClient
from policy.identity import Challenge
from policy.sessions import session_secret_path
from policy.signin import sign_in
from proto import gateway_pb2
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    with registry_gateway(tmp_path / "gw", registry) as gw:
        yield gw


async def session_token(
    client: GatewayClient, signer: LocalAccount, topic: str, ttl: float = 600.0
) -> tuple[str, float]:
    """A session for `topic` from a sign-in message valid for `ttl` seconds."""
    n = await client.stub.GetNonce(gateway_pb2.GetNonceRequest(), timeout=20)
    challenge = Challenge(n.nonce, n.domain, n.uri, n.chain_id, n.expires_at.seconds)
    proof = sign_in(signer, challenge, [topic], time.time(), ttl=ttl)
    answer = await client.stub.SignIn(
        gateway_pb2.SignInRequest(
            proof=gateway_pb2.SignInProof(message=proof.message, signature=proof.signature)
        ),
        timeout=20,
    )
    return answer.session_token, answer.expires_at.seconds + answer.expires_at.nanos / 1e9


def event(n: int) -> CloudEvent:
    return CloudEvent({"type": "t.session", "source": "/session", "id": f"s{n}"}, {"n": n})


async def published(client: GatewayClient, topic: str, n: int) -> bool:
    try:
        await client.publish(topic, event(n))
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE):
            return False
        raise
    return True


async def test_an_open_stream_ends_when_its_session_expires(
    gateway: GatewayProcess, owner: RegistryClient
) -> None:
    topic = f"sess-{uuid.uuid4().hex[:10]}"
    owner.register(topic)
    assert owner.signer is not None
    async with GatewayClient(gateway.listen, timeout=20) as anonymous:
        token, expires_at = await session_token(anonymous, owner.signer, topic, ttl=6.0)
    async with GatewayClient(
        gateway.listen,
        credentials=Credentials(session_token=token),
        timeout=20,
        publisher=owner.signer,  # a token signs in; the key signs the events (issue 11)
    ) as client:
        await async_wait_for(lambda: published(client, topic, 0), timeout=30, what="topic seen")
        async with client.subscribe(topic) as sub:
            async with asyncio.timeout(20):
                assert (await anext(sub)).event is not None  # the stream delivers...
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async with asyncio.timeout(30):
                    async for _ in sub:  # ...until the session ends, with no traffic needed
                        pass
        ended = time.time()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "session expired; sign in again" in str(info.value.details())
    assert expires_at <= ended < expires_at + 10


async def test_a_session_token_survives_a_gateway_restart(
    gateway: GatewayProcess, owner: RegistryClient
) -> None:
    topic = f"sess-{uuid.uuid4().hex[:10]}"
    owner.register(topic)
    assert owner.signer is not None
    async with GatewayClient(gateway.listen, timeout=20) as anonymous:
        token, _ = await session_token(anonymous, owner.signer, topic)
    credentials = Credentials(session_token=token)
    async with GatewayClient(
        gateway.listen, credentials=credentials, timeout=20, publisher=owner.signer
    ) as client:
        await async_wait_for(lambda: published(client, topic, 1), timeout=30, what="accepted")
    secret = session_secret_path(gateway.data_dir)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    before = secret.read_bytes()

    await asyncio.to_thread(gateway.restart)
    assert secret.read_bytes() == before
    async with GatewayClient(
        gateway.listen, credentials=credentials, timeout=20, publisher=owner.signer
    ) as client:
        await async_wait_for(lambda: published(client, topic, 2), timeout=30, what="same token")
