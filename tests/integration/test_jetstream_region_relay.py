"""Any replica of a JetStream region receives (issue 14): region eu as two gateway replicas on a
real 3-node R3 JetStream cluster, A holding the federation lease and B a standby, and a peer
region us whose ONLY configured peer address is B's peer port (eu's replicas dial nobody).

B's port passes the connection to A (gateway/jetstream_relay.py), so the one link us and eu keep
ends on A: us learns eu from A's Hello, A verifies and stores us's batches, and A sends eu's
events to us over the same link. A reader on A gets every event published in us once, and a
reader on us every event published on A once. Without the relay B's port is closed, us's dials
are refused forever and the first wait times out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.jetstream_client import JetStreamClient
from gateway.jetstream_layout import Layout
from gateway.jetstream_relay import holder_subject
from meshgate.client import GatewayClient
from proto import gateway_pb2
from tests.integration.gateway_helpers import event
from tests.support.gateway_process import GatewayProcess
from tests.support.jetstream_fixtures import JetStreamCluster
from tests.support.waiting import async_wait_for, free_port

pytestmark = [pytest.mark.xdist_group("jetstream"), pytest.mark.slow]

TOTAL = 60


async def _row(listen: str, region: str) -> gateway_pb2.PeerStatus | None:
    async with GatewayClient(listen, timeout=5) as gw:
        peers = await gw.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=5)
    return next((p for p in peers.peers if p.region == region), None)


async def _routes(listen: str, region: str, topic: str) -> bool:
    row = await _row(listen, region)
    return row is not None and row.up and topic in row.topics


async def _read(client: GatewayClient, topic: str, got: list[int]) -> None:
    async for _offset, ev in client.subscribe(topic, credits=1000):
        got.append(int(ev.get_id()))


async def _holder_address(store_url: str) -> str | None:
    layout = Layout("eu")
    servers = [f"nats://{hp}" for hp in store_url.removeprefix("nats://").split(",")]
    client = await JetStreamClient.connect(servers, layout.stream)
    try:
        record = await client.get_last(holder_subject(layout))
    finally:
        await client.close()
    return None if record is None else str(json.loads(record.data)["address"])


async def test_a_peer_that_knows_only_a_standby_links_to_the_holder_through_it(
    tmp_path: Path, region_tls_dir: Callable[[str], Path]
) -> None:
    cluster = JetStreamCluster(tmp_path / "nats").start_all()
    a_peer, b_peer = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"

    def replica(name: str, peer_listen: str) -> GatewayProcess:
        args = ["--store", cluster.store_url, "--peer-listen", peer_listen]
        args += ["--tls-dir", str(region_tls_dir("eu"))]
        return GatewayProcess(tmp_path / name, region="eu", metrics=False, extra_args=args)

    a, b = replica("a", a_peer), replica("b", b_peer)
    us = GatewayProcess(
        tmp_path / "us",
        region="us",
        metrics=False,
        extra_args=[
            *("--peer-listen", f"127.0.0.1:{free_port()}", "--peer", b_peer),
            *("--tls-dir", str(region_tls_dir("us"))),
        ],
    )
    at_a_got: list[int] = []
    at_us_got: list[int] = []
    tails: list[asyncio.Task[None]] = []
    try:
        a.start()

        async def a_holds() -> bool:
            return await _holder_address(cluster.store_url) == a_peer

        await async_wait_for(a_holds, timeout=20, what="A to hold the lease and publish its port")
        b.start()
        us.start()
        async with (
            GatewayClient(us.listen, timeout=30) as at_us,
            GatewayClient(a.listen, timeout=30) as at_a,
        ):
            for client, topic, got in ((at_a, "news", at_a_got), (at_us, "bulletin", at_us_got)):
                tails.append(asyncio.create_task(_read(client, topic, got)))
            await async_wait_for(
                lambda: _routes(us.listen, "eu", "news"),
                timeout=30,
                what="us linked to eu through B and routing news to it",
            )
            await async_wait_for(
                lambda: _routes(a.listen, "us", "bulletin"),
                timeout=20,
                what="A (the holder) routing bulletin to us",
            )
            for start in range(0, TOTAL, 20):
                batch = [event(i) for i in range(start, start + 20)]
                await at_us.publish_batch("news", batch)
                await at_a.publish_batch("bulletin", batch)

            async def all_came() -> bool:
                return len(set(at_a_got)) == TOTAL and len(set(at_us_got)) == TOTAL

            await async_wait_for(all_came, timeout=20, what="both readers to get every event")
            row = await _row(us.listen, "eu")
    finally:
        for tail in tails:
            tail.cancel()
        await asyncio.gather(*tails, return_exceptions=True)
        for gw in (b, a, us):
            gw.stop()
        cluster.stop()
    assert sorted(at_a_got) == list(range(TOTAL))  # every event from us, once, on the holder
    assert sorted(at_us_got) == list(range(TOTAL))  # and the holder sends over the same link
    assert row is not None and row.address == a_peer  # one member, the holder's own address
    assert a.exit_code == 0 and b.exit_code == 0
