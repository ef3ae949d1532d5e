"""Three real gateway processes peered over mTLS: routing, relaying, crash and catch-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from meshgate.client import GatewayClient, Subscription
from proto import cloudevents_pb2, gateway_pb2
from tests.support.federation_fixtures import GatewayCluster
from tests.support.gateway_process import REPO
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


def event(i: int, prefix: str = "ev") -> cloudevents_pb2.CloudEvent:
    return cloudevents_pb2.CloudEvent(
        id=f"{prefix}-{i}", source="/shop", spec_version="1.0", type="order.created",
        text_data=f"payload {i}",
    )  # fmt: skip


class Collector:
    """Reads a subscription in the background; counts deliveries per event id."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.seen: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        await self.sub.start()
        self._task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        async for received in self.sub:
            ev_id = received.event.get_id()
            self.seen[ev_id] = self.seen.get(ev_id, 0) + 1

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._task
        await self.sub.aclose()

    def count(self, prefix: str) -> int:
        return sum(1 for k in self.seen if k.startswith(prefix + "-"))


async def until(pred: Callable[[], bool], what: str, timeout: float = 45.0) -> None:
    async def check() -> bool:
        return pred()

    await async_wait_for(check, timeout=timeout, interval=0.1, what=what)


async def warm_up(pub: GatewayClient, col: Collector) -> None:
    """Publish probes until one arrives: interest has reached the publisher's region."""
    async with asyncio.timeout(45):
        i = 0
        while col.count("warm") == 0:
            await pub.publish_pb("orders", [event(i, "warm")])
            i += 1
            await asyncio.sleep(0.3)


async def stored(client: GatewayClient, topic: str = "orders") -> int:
    try:
        return int((await client.topic(topic)).event_count)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return 0
        raise


@contextlib.asynccontextmanager
async def client(cluster: GatewayCluster, region: str) -> AsyncIterator[GatewayClient]:
    async with GatewayClient(cluster.gateways[region].listen) as c:
        await c.wait_ready()
        yield c


async def test_full_mesh_event_reaches_c_directly_once(gateway_cluster: GatewayCluster) -> None:
    gateway_cluster.start("aa")
    gateway_cluster.start("bb", ["aa"])
    gateway_cluster.start("cc", ["aa"])
    async with (
        client(gateway_cluster, "aa") as a,
        client(gateway_cluster, "bb") as b,
        client(gateway_cluster, "cc") as c,
        Collector(c.subscribe("orders", group="g")) as col,
    ):
        await warm_up(a, col)
        for start in range(0, 100, 20):
            await a.publish_pb("orders", [event(i) for i in range(start, start + 20)])
        await until(lambda: col.count("ev") == 100, "100 events delivered in cc")
        assert all(n == 1 for k, n in col.seen.items() if k.startswith("ev-"))
        assert await stored(b) == 0  # bb has no subscriber: it stores none of them
        c_total = await stored(c)
        assert c_total == 100 + col.count("warm")  # each stored once
        peers = (await a.stub.ListPeers(gateway_pb2.ListPeersRequest())).peers
        assert {p.region: (p.up, p.distance) for p in peers} == {"bb": (True, 1), "cc": (True, 1)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshgate", "peers", "--json",
        "--gateway", gateway_cluster.gateways["aa"].listen,
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert {p["region"] for p in json.loads(out)["peers"]} == {"bb", "cc"}


async def test_line_relay_killed_mid_stream_loses_nothing(gateway_cluster: GatewayCluster) -> None:
    gateway_cluster.start("bb", mesh=False)
    gateway_cluster.start("aa", ["bb"], mesh=False)
    gateway_cluster.start("cc", ["bb"], mesh=False)
    async with (
        client(gateway_cluster, "aa") as a,
        client(gateway_cluster, "cc") as c,
        Collector(c.subscribe("orders", group="g")) as col,
    ):
        await warm_up(a, col)
        for start in range(0, 100, 10):
            await a.publish_pb("orders", [event(i) for i in range(start, start + 10)])
        gateway_cluster.gateways["bb"].kill9()  # the relay crashes mid-stream
        for start in range(100, 200, 10):
            await a.publish_pb("orders", [event(i) for i in range(start, start + 10)])
        gateway_cluster.gateways["bb"].start(gateway_cluster.gateways["bb"].listen)
        await until(lambda: col.count("ev") == 200, "200 events delivered in cc")
        assert await stored(c) == 200 + col.count("warm")  # nothing stored twice
        assert all(n == 1 for k, n in col.seen.items() if k.startswith("ev-"))
        peers = (await a.stub.ListPeers(gateway_pb2.ListPeersRequest())).peers
        assert {p.region: p.distance for p in peers if p.up} == {"bb": 1}


async def test_partitioned_region_catches_up_without_duplicates(
    gateway_cluster: GatewayCluster,
) -> None:
    gateway_cluster.start("aa")
    gateway_cluster.start("bb", ["aa"])
    gateway_cluster.start("cc", ["aa"])
    async with client(gateway_cluster, "aa") as a:
        async with (
            client(gateway_cluster, "cc") as c,
            Collector(c.subscribe("orders", group="g")) as col,
        ):
            await warm_up(a, col)
            await a.publish_pb("orders", [event(i) for i in range(50)])
            await until(lambda: col.count("ev") == 50, "first 50 in cc")
        gateway_cluster.gateways["cc"].stop()  # cc is cut off while aa keeps publishing
        for start in range(50, 150, 25):
            await a.publish_pb("orders", [event(i) for i in range(start, start + 25)])
        cc = gateway_cluster.gateways["cc"]
        cc.start(cc.listen)  # heal; the durable group keeps cc's interest across the restart
        async with (
            client(gateway_cluster, "cc") as c,
            Collector(c.subscribe("orders", group="g")) as col,
        ):
            missed = {f"ev-{i}" for i in range(50, 150)}
            await until(lambda: missed <= col.seen.keys(), "the 100 missed events in cc")
            assert await stored(c) - 150 == await warm_stored(c)  # each stored once


async def warm_stored(c: GatewayClient) -> int:
    """Warm-up probes stored in `c` (read back, since the first collector is gone)."""
    async with c.subscribe("orders", start="earliest") as sub:
        total = await stored(c)
        ids: list[str] = []
        async with asyncio.timeout(30):
            async for received in sub:
                ids.append(received.event.get_id())
                if len(ids) == total:
                    break
    assert len(set(ids)) == len(ids)  # no event stored twice
    return sum(1 for i in ids if i.startswith("warm-"))


async def test_line_relay_keeps_no_transit_events_once_acked(
    gateway_cluster: GatewayCluster,
) -> None:
    gateway_cluster.start("bb", mesh=False)
    gateway_cluster.start("aa", ["bb"], mesh=False)
    gateway_cluster.start("cc", ["bb"], mesh=False)
    async with (
        client(gateway_cluster, "aa") as a,
        client(gateway_cluster, "bb") as b,
        client(gateway_cluster, "cc") as c,
        Collector(c.subscribe("orders", group="g")) as col,
    ):
        await warm_up(a, col)
        for start in range(0, 100, 10):
            await a.publish_pb("orders", [event(i) for i in range(start, start + 10)])
        await until(lambda: col.count("ev") == 100, "100 events delivered in cc")
        # bb relayed every one of them (nobody in bb subscribes) and cc acknowledged them:
        # the relay's store ends empty, and cc stored and delivered each exactly once.

        async def relay_empty() -> bool:
            return await stored(b) == 0

        await async_wait_for(relay_empty, timeout=30, interval=0.2, what="bb's transit deleted")
        assert await stored(c) == 100 + col.count("warm")
        assert all(n == 1 for k, n in col.seen.items() if k.startswith("ev-"))
