"""Real gateway processes with `--store nats://...` on their own 3-node R3 JetStream cluster.

Two gateways of one region (A, B) share the cluster and nothing else. Publishing through A goes
on while the stream's leader node is killed with SIGKILL; a subscriber tailing B live and a
reader from the start on B afterwards each get every event A acknowledged, each once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import nats
import pytest

from gateway.jetstream_layout import stream_name
from meshgate.client import GatewayClient
from tests.integration.gateway_helpers import event
from tests.support.gateway_process import GatewayProcess
from tests.support.jetstream_fixtures import JetStreamCluster

pytestmark = [pytest.mark.xdist_group("jetstream"), pytest.mark.slow]

BATCH = 20
TARGET = 1500  # events acknowledged in all
KILL_AT = 400  # acknowledged events before one NATS node dies


async def _stream_leader(cluster: JetStreamCluster) -> int:
    """The index of the node leading region eu's stream: the worst one to lose."""
    nc = await nats.connect(cluster.urls)
    try:
        info = await nc.jetstream().stream_info(stream_name("eu"))
    finally:
        await nc.close()
    return int(info.cluster.leader.removeprefix("n")) - 1


async def _drain(listen: str, topic: str, count: int) -> list[int]:
    out: list[int] = []
    async with GatewayClient(listen, timeout=30) as gw, gw.subscribe(topic, credits=500) as sub:
        async for _offset, ev in sub:
            out.append(int(ev.get_id()))
            if len(out) == count:
                break
    return out


async def test_two_gateways_on_one_cluster_survive_a_node_kill9(tmp_path: Path) -> None:
    cluster = JetStreamCluster(tmp_path / "nats").start_all()
    store = ["--store", cluster.store_url]
    a = GatewayProcess(tmp_path / "a", region="eu", metrics=False, extra_args=store)
    b = GatewayProcess(tmp_path / "b", region="eu", metrics=False, extra_args=store)
    try:
        a.start()
        b.start()
        live = asyncio.create_task(_drain(b.listen, "orders", TARGET))  # a tail on B
        acked: list[int] = []
        retried = 0
        give_up = time.monotonic() + 30
        killed = asyncio.Event()
        async with GatewayClient(a.listen, timeout=15) as gw:
            start = 0
            while len(acked) < TARGET:
                batch = [event(i) for i in range(start, start + BATCH)]
                try:
                    await gw.publish_batch("orders", batch)
                except grpc.aio.AioRpcError as exc:
                    # a leader election answers UNAVAILABLE; the retry of the same ids is
                    # idempotent, so nothing is stored twice
                    assert exc.code() in (grpc.StatusCode.UNAVAILABLE,), exc
                    retried += 1
                    assert time.monotonic() < give_up, "no failover in 30 s"
                    await asyncio.sleep(0.1)  # a client's backoff before it retries
                    continue
                acked.extend(range(start, start + BATCH))
                start += BATCH
                if len(acked) >= KILL_AT and not killed.is_set():
                    cluster.kill9(await _stream_leader(cluster))  # the other two go on
                    killed.set()
                    give_up = time.monotonic() + 30
        async with GatewayClient(b.listen, timeout=30) as gw:
            info = await gw.topic("orders")
            listed = [(t.name, t.event_count) for t in await gw.topics()]
        assert info.event_count == len(acked)  # nothing acknowledged lost, nothing twice
        assert info.backend == "jetstream"  # what `meshgate topics` shows
        assert listed == [("orders", len(acked))]
        seen = await asyncio.wait_for(_drain(b.listen, "orders", len(acked)), 120)
        assert sorted(seen) == acked
        tailed = await asyncio.wait_for(live, 60)  # woken across processes, through the cluster
        assert sorted(tailed) == acked
        print(f"acked={len(acked)} retried={retried}")
        assert (a.stop(), b.stop()) == (0, 0)  # SIGTERM: drain, close the store, exit 0
    finally:
        a.stop()
        b.stop()
        cluster.stop()
