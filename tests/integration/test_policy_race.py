"""A reader who saw its grant mined is never told it has none (issue 10).

Real Ganache, real registry, a real gateway process. The gateway follows the chain over
HTTP, so its follower polls (every 0.5 s): right after `grant` returns (the tx mined) the
gateway's view is behind by up to a poll nearly every time, which is the race the
independent test pass hit 10 times in 60. Each attempt signs in first, then grants and
subscribes (or allows and publishes) with nothing in between; every attempt must pass.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account

from ledger.registry import RegistryClient
from meshgate.client import GatewayClient
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]

ATTEMPTS = 12


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    # HTTP: the follower polls, so its view lags a little behind a mined grant
    with registry_gateway(tmp_path / "gw", registry) as gw:
        yield gw


@pytest.fixture
async def clients() -> AsyncIterator[list[GatewayClient]]:
    made: list[GatewayClient] = []
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


def event(n: int) -> CloudEvent:
    return CloudEvent({"type": "t.race", "source": "/race", "id": f"r{n}"}, {"n": n})


async def test_subscribe_right_after_the_grant_is_mined_is_never_denied(
    gateway: GatewayProcess, owner: RegistryClient, clients: list[GatewayClient]
) -> None:
    topic = f"race-{uuid.uuid4().hex[:10]}"
    owner.register(topic)
    denied: list[str] = []
    for n in range(ATTEMPTS):
        reader = Account.create()
        client = GatewayClient(gateway.listen, signer=reader, signin_topics=[topic], timeout=20)
        clients.append(client)
        await client.sign_in()  # nothing but the subscribe happens after the grant
        owner.grant(topic, reader.address)
        try:
            async with client.subscribe(topic) as sub:
                assert sub.subscribed is not None
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise
            denied.append(f"attempt {n}: {exc.details()}")
    assert denied == []


async def test_publish_right_after_allow_publisher_is_never_denied(
    gateway: GatewayProcess, owner: RegistryClient, clients: list[GatewayClient]
) -> None:
    topic = f"race-{uuid.uuid4().hex[:10]}"
    owner.register(topic)
    denied: list[str] = []
    for n in range(ATTEMPTS):
        publisher = Account.create()
        client = GatewayClient(gateway.listen, signer=publisher, signin_topics=[topic], timeout=20)
        clients.append(client)
        await client.sign_in()
        owner.allow_publisher(topic, publisher.address)
        try:
            await client.publish(topic, event(n))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise
            denied.append(f"attempt {n}: {exc.details()}")
    assert denied == []


async def test_a_denial_names_the_block_of_the_gateways_view(
    gateway: GatewayProcess, owner: RegistryClient, clients: list[GatewayClient]
) -> None:
    topic = f"race-{uuid.uuid4().hex[:10]}"
    mined = owner.register(topic).block_number
    stranger = Account.create()
    client = GatewayClient(gateway.listen, signer=stranger, timeout=20)
    clients.append(client)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async with client.subscribe(topic):
            pass
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    details = str(info.value.details())
    assert "no grant" in details and stranger.address.lower() in details.lower()
    found = re.search(r"at block (\d+)", details)
    assert found is not None, details
    assert int(found[1]) >= mined  # the view had caught up to the topic's registration
