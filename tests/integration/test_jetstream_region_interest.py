"""A region's interest is every replica's readers (issue 14): region eu as two gateway replicas
on a real 3-node R3 JetStream cluster, A holding the federation lease and B a standby, and a
peer region us that alone publishes `news`.

A reader on B (the standby, which runs no federation node) subscribes to `news`: B writes its
interest to the cluster, A's node advertises it, us routes `news` to eu, A stores it in the
region's stream and B delivers it: every event once. Then B dies (`kill -9`, so no farewell):
its entry stops counting after its ttl and us stops routing `news` to eu (us's ListPeers: eu
still up, `news` no longer among the topics eu wants). Without the region's merged interest,
us never routes `news` to eu at all and the first wait times out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.jetstream_interest import DEFAULT_TTL
from meshgate.client import GatewayClient
from proto import gateway_pb2
from tests.integration.gateway_helpers import event
from tests.support.gateway_process import GatewayProcess
from tests.support.jetstream_fixtures import JetStreamCluster
from tests.support.waiting import async_wait_for, free_port

pytestmark = [pytest.mark.xdist_group("jetstream"), pytest.mark.slow]

TOTAL = 60


async def _eu_at_us(listen: str) -> gateway_pb2.PeerStatus | None:
    """us's row for eu (ListPeers), None while it has none."""
    async with GatewayClient(listen, timeout=5) as gw:
        peers = await gw.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=5)
    return next((p for p in peers.peers if p.region == "eu"), None)


async def _us_routes_news(listen: str, wanted: bool) -> bool:
    row = await _eu_at_us(listen)
    return row is not None and row.up and (("news" in row.topics) == wanted)


async def test_a_standbys_reader_attracts_a_topic_until_its_entry_expires(
    tmp_path: Path, region_tls_dir: Callable[[str], Path]
) -> None:
    cluster = JetStreamCluster(tmp_path / "nats").start_all()
    us_peer = f"127.0.0.1:{free_port()}"
    us = GatewayProcess(
        tmp_path / "us",
        region="us",
        metrics=False,
        extra_args=["--peer-listen", us_peer, "--tls-dir", str(region_tls_dir("us"))],
    )

    def replica(name: str) -> GatewayProcess:
        args = ["--store", cluster.store_url, "--peer", us_peer]
        args += ["--peer-listen", f"127.0.0.1:{free_port()}"]
        args += ["--tls-dir", str(region_tls_dir("eu"))]
        return GatewayProcess(tmp_path / name, region="eu", metrics=False, extra_args=args)

    a, b = replica("a"), replica("b")
    got: list[int] = []
    tail: asyncio.Task[None] | None = None
    try:
        us.start()
        a.start()

        async def eu_up() -> bool:
            row = await _eu_at_us(us.listen)
            return row is not None and row.up

        await async_wait_for(eu_up, timeout=20, what="A (the lease holder) linked to us")
        b.start()  # a standby: A holds the lease
        async with (
            GatewayClient(us.listen, timeout=30) as at_us,
            GatewayClient(b.listen, timeout=30) as at_b,
        ):
            sub = at_b.subscribe("news", credits=1000)

            async def read() -> None:
                async for _offset, ev in sub:
                    got.append(int(ev.get_id()))

            tail = asyncio.create_task(read())
            await async_wait_for(
                lambda: _us_routes_news(us.listen, True),
                timeout=20,
                what="us to route news to eu for B's reader",
            )
            for start in range(0, TOTAL, 20):
                await at_us.publish_batch("news", [event(i) for i in range(start, start + 20)])

            async def all_came() -> bool:
                return len(set(got)) == TOTAL

            await async_wait_for(all_came, timeout=20, what="B's reader to get every event")
            b.kill9()  # no farewell: only the ttl ends B's interest
            killed = time.monotonic()
            await async_wait_for(
                lambda: _us_routes_news(us.listen, False),
                timeout=DEFAULT_TTL + 10,
                what="us to stop routing news once B's entry expired",
            )
            dropped_after = time.monotonic() - killed
    finally:
        if tail is not None:
            tail.cancel()
            await asyncio.gather(tail, return_exceptions=True)
        for gw in (a, b, us):
            gw.stop()
        cluster.stop()
    assert sorted(got) == list(range(TOTAL))  # every event, once
    assert a.exit_code == 0
    print(f"news dropped {dropped_after:.1f} s after B died (ttl {DEFAULT_TTL:.0f} s)")
