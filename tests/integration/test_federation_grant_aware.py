"""Grant-aware routing across real gateway processes: interest follows the chain's grants.

A durable group keeps its region interested after its reader disconnects (it will read later),
but only while that reader still holds a grant: once the owner revokes it, the region stops
attracting the topic, and events published afterwards are not replicated there at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account
from eth_account.signers.local import LocalAccount

from meshgate.client import GatewayClient
from meshgate.processes import GatewayProcess
from proto import gateway_pb2
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.registry_gateway import registry_pair
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]


@pytest.fixture
def two_regions(
    tmp_path: Path, registry: DeployedRegistry, region_tls_dir: Callable[[str], Path]
) -> Iterator[dict[str, GatewayProcess]]:
    with registry_pair(tmp_path, registry, region_tls_dir, ("aa", "cc")) as gateways:
        yield gateways


async def routed_topics(client: GatewayClient, region: str) -> set[str]:
    reply = await client.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=10)
    return {t for p in reply.peers if p.region == region for t in p.topics}


async def stored(client: GatewayClient, topic: str) -> int:
    try:
        return int((await client.topic(topic)).event_count)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return 0
        raise


async def test_revoking_the_last_reader_of_a_durable_group_stops_replication(
    two_regions: dict[str, GatewayProcess],
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    topic = f"ga-{uuid.uuid4().hex[:10]}"
    owner_key = funded_account()
    owner = registry.client(owner_key)
    reader: LocalAccount = Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address)

    aa, cc = two_regions["aa"], two_regions["cc"]
    async with (
        GatewayClient(aa.listen, signer=owner_key) as publisher,
        GatewayClient(cc.listen, signer=reader) as consumer,
    ):

        async def cc_wants_it() -> bool:
            return topic in await routed_topics(publisher, "cc")

        # The reader joins a durable group in cc, then goes away: cc stays interested.
        async with consumer.subscribe(topic, group="billing") as sub:
            # Interest-only routing: aa sends cc nothing before it knows cc wants the topic.
            await async_wait_for(cc_wants_it, timeout=30, what="cc's interest at aa")
            await publisher.publish(topic, CloudEvent({"type": "t", "source": "/s"}, {"n": 0}))
            async with asyncio.timeout(30):
                first = await anext(sub)
            assert first.offset == 0

        await async_wait_for(cc_wants_it, timeout=30, what="cc's durable interest at aa")

        owner.revoke(topic, reader.address)

        async def cc_no_longer_wants_it() -> bool:
            return topic not in await routed_topics(publisher, "cc")

        await async_wait_for(cc_no_longer_wants_it, timeout=30, what="cc's interest withdrawn")
        for n in range(1, 6):
            await publisher.publish(topic, CloudEvent({"type": "t", "source": "/s"}, {"n": n}))
        assert await stored(publisher, topic) == 6
        assert await stored(consumer, topic) == 1  # only what came while the grant held
