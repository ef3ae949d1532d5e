"""Catch-up across real processes: a consumer's region killed -9 gets, once back and
resubscribed, every event published while its interest was unknown (federation/catch_up.py).

aa publishes; bb (dialing aa) holds a durable group. bb is killed -9 and stays down until aa
has dropped the link (its stale_after is 5 s), aa publishes, bb restarts without its readers'
proofs (as if they expired while it was down: its persisted group attracts nothing until a
reader with a live grant subscribes, issue 11), aa publishes more, then the reader
resubscribes: it must read every event exactly once. Without catch-up it never got the events
published from the kill until its interest was back (aa's cursor for bb had moved past them).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gateway.interest_file import FILE_NAME as INTEREST_PROOFS
from meshgate.client import GatewayClient
from meshgate.processes import GatewayProcess
from proto import gateway_pb2
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.registry_gateway import registry_pair
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]

GROUP = "billing"


@pytest.fixture
def pair(
    tmp_path: Path, registry: DeployedRegistry, region_tls_dir: Callable[[str], Path]
) -> Iterator[dict[str, GatewayProcess]]:
    with registry_pair(tmp_path, registry, region_tls_dir, ("aa", "bb")) as gateways:
        yield gateways


async def peer_row(client: GatewayClient, region: str) -> gateway_pb2.PeerStatus | None:
    reply = await client.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=10)
    return next((p for p in reply.peers if p.region == region), None)


async def test_a_consumer_region_killed_past_stale_after_gets_every_event_once(
    pair: dict[str, GatewayProcess],
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    topic = f"cu-{uuid.uuid4().hex[:10]}"
    owner_key = funded_account()
    owner = registry.client(owner_key)
    reader: LocalAccount = Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address)
    aa, bb = pair["aa"], pair["bb"]
    published: list[str] = []

    async def publish(client: GatewayClient, n: int) -> None:
        for _ in range(n):
            ev = CloudEvent({"type": "t", "source": "/catch-up", "id": uuid.uuid4().hex})
            await client.publish(topic, ev)
            published.append(ev.get_id())

    async with GatewayClient(aa.listen, signer=owner_key) as publisher:

        async def bb_wants_it() -> bool:
            row = await peer_row(publisher, "bb")
            return row is not None and row.up and topic in row.topics

        async def bb_down() -> bool:
            row = await peer_row(publisher, "bb")
            return row is None or not row.up

        async with (
            GatewayClient(bb.listen, signer=reader) as consumer,
            consumer.subscribe(topic, group=GROUP) as sub,
        ):
            await async_wait_for(bb_wants_it, timeout=30, what="bb's interest at aa")
            await publish(publisher, 5)
            async with asyncio.timeout(30):
                first = [(await anext(sub)).event.get_id() for _ in range(5)]
            assert first == published

        bb.kill9()
        await publish(publisher, 20)  # aa may still think bb is there (stale_after 5 s)
        await async_wait_for(bb_down, timeout=30, what="aa drops its link to bb")
        await publish(publisher, 20)  # bb is down for aa

        # Its readers' proofs are gone when it comes back (as if they expired while it was
        # down): its durable group attracts nothing until the reader subscribes again.
        (bb.data_dir / INTEREST_PROOFS).unlink(missing_ok=True)
        bb.start(bb.listen)  # same port, same store; its reader is not back yet

        async def bb_linked() -> bool:
            row = await peer_row(publisher, "bb")
            return row is not None and row.up

        await async_wait_for(bb_linked, timeout=60, what="bb linked again")
        await publish(publisher, 20)  # bb is up, its interest unknown (no reader yet)

        async with GatewayClient(bb.listen, signer=reader) as consumer:
            async with consumer.subscribe(topic, group=GROUP) as sub:
                after: list[str] = []
                async with asyncio.timeout(60):
                    while not set(published) <= {*first, *after}:
                        after.append((await anext(sub)).event.get_id())
            missed = published[len(first) :]
            # every event, once and in publish order (a redelivered last event of the first
            # session, if its ack had not gone out, is the group's at-least-once, not ours)
            assert [i for i in after if i in missed] == missed
            assert len(after) == len(set(after))
            reply = await consumer.topic(topic)
            assert int(reply.event_count) == len(published)  # bb stored each one once
