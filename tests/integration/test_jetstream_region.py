"""Issue 14's must-show: one region (eu) as two gateway replicas on a real 3-node R3 JetStream
cluster, a durable group with a member on each replica, a federation peer region (us), and
`kill -9` of replica A (publishing, the group's other member, the federation sender) and of one
NATS node (the stream's leader) mid-stream.

What it checks: nothing acknowledged is lost (every acked publish reaches the group and us);
no (source, id) is delivered to the group again once its ack was recorded (below the committed
offset read before the kill); what A held unacknowledged is redelivered to B, where the work
goes on; us stores every event exactly once across the federation failover (B takes the
region's lease, resends from the cursor in the cluster, us deduplicates); a re-publish of an
old (source, id) long past the stream's (shortened) duplicate window is still a duplicate.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import nats
import pytest

from gateway.jetstream_layout import stream_name
from meshgate.client import GatewayClient, Subscription
from proto import gateway_pb2
from tests.integration.gateway_helpers import event
from tests.support.gateway_process import GatewayProcess
from tests.support.jetstream_fixtures import JetStreamCluster
from tests.support.waiting import async_wait_for, free_port

pytestmark = [pytest.mark.xdist_group("jetstream"), pytest.mark.slow]

TOTAL = 600  # events published and acknowledged in all
BATCH = 20
HOLD_AT = 100  # acked publishes before A's member stops acking (it holds what comes next)
KILL_AT = 200  # acked publishes before A and a NATS node die
DUPLICATE_WINDOW = 1.0  # s: the stream's Nats-Msg-Id window, set short (2 min by default)
ACK_TIMEOUT = "4"  # s: a dead replica's in-flight deliveries come back after this


async def _stream_leader(cluster: JetStreamCluster) -> int:
    nc = await nats.connect(cluster.urls)
    try:
        info = await nc.jetstream().stream_info(stream_name("eu"))
    finally:
        await nc.close()
    assert info.cluster is not None and info.cluster.leader is not None
    return int(info.cluster.leader.removeprefix("n")) - 1


async def _peer_wants(listen: str, peer: str, topic: str) -> bool:
    """Does the gateway at `listen` route `topic` to `peer` (ListPeers: it is the sender)?"""
    async with GatewayClient(listen, timeout=5) as gw:
        peers = await gw.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=5)
    return any(p.region == peer and p.up and topic in p.topics for p in peers.peers)


async def _shorten_duplicate_window(cluster: JetStreamCluster) -> None:
    nc = await nats.connect(cluster.urls)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream_name("eu"))
        info.config.duplicate_window = DUPLICATE_WINDOW
        await js.update_stream(info.config)
    finally:
        await nc.close()


class Member:
    """A group member (auto_ack off): records what it was given, acks while `acking`."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.got: list[tuple[int, int]] = []  # (offset, id) in delivery order
        self.at: list[float] = []  # monotonic time of each delivery
        self.attempts: list[int] = []
        self.acked: set[int] = set()  # offsets it acked
        self.acking = True

    async def run(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):  # its gateway died
            async for offset, ev in self.sub:
                self.got.append((offset, int(ev.get_id())))
                self.at.append(time.monotonic())
                self.attempts.append(self.sub.last_attempt)
                if self.acking:
                    await self.sub.ack(offset)
                    self.acked.add(offset)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    async def check() -> bool:
        return predicate()

    await async_wait_for(check, timeout=timeout, what=what)


async def _committed(listen: str) -> int:
    async with GatewayClient(listen, timeout=5) as gw:
        info = await gw.topic("orders")
    return next(g.committed_offset for g in info.groups if g.name == "g")


async def test_a_region_of_two_replicas_survives_kill9_of_one_and_of_a_nats_node(
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
        args = ["--store", cluster.store_url, "--ack-timeout", ACK_TIMEOUT, "--peer", us_peer]
        args += ["--peer-listen", f"127.0.0.1:{free_port()}", "--tls-dir"]
        args.append(str(region_tls_dir("eu")))
        return GatewayProcess(tmp_path / name, region="eu", metrics=False, extra_args=args)

    a, b = replica("a"), replica("b")
    tasks: list[asyncio.Task[None]] = []
    try:
        us.start()
        a.start()  # first: A takes the region's federation lease
        await _shorten_duplicate_window(cluster)
        window_set = time.monotonic()
        async with (
            GatewayClient(us.listen, timeout=30) as at_us,
            GatewayClient(a.listen, timeout=30) as at_a,
        ):
            us_sub = at_us.subscribe("orders", credits=1000)
            us_ids: list[int] = []

            async def tail_us() -> None:
                async for _offset, ev in us_sub:
                    us_ids.append(int(ev.get_id()))

            tasks.append(asyncio.create_task(tail_us()))
            await async_wait_for(
                lambda: _peer_wants(a.listen, "us", "orders"), timeout=30, what="A -> us route"
            )
            b.start()
            async with GatewayClient(b.listen, timeout=30) as at_b:
                ma = Member(at_a.subscribe("orders", group="g", credits=50, auto_ack=False))
                mb = Member(at_b.subscribe("orders", group="g", credits=50, auto_ack=False))
                await ma.sub.start()
                await mb.sub.start()
                tasks += [asyncio.create_task(ma.run()), asyncio.create_task(mb.run())]
                acked = await _publish(at_a, at_b, a, cluster, ma)
                everyone = set(range(TOTAL))

                def group_done() -> bool:
                    done = {i for o, i in ma.got if o in ma.acked} | {i for _, i in mb.got}
                    return done >= everyone

                try:
                    await until(group_done, "the group's work on B", timeout=40)
                except TimeoutError:
                    done = {i for o, i in ma.got if o in ma.acked} | {i for _, i in mb.got}
                    print(
                        "DIAG",
                        len(ma.got),
                        len(ma.acked),
                        len(mb.got),
                        sorted(everyone - done)[:50],
                    )
                    print(b.stderr_tail(60))
                    raise
                await until(lambda: set(us_ids) >= everyone, "us to get every event", timeout=40)
                async with GatewayClient(us.listen, timeout=10) as check:
                    stored_at_us = (await check.topic("orders")).event_count
                # JetStream's own dedup (Nats-Msg-Id) would have forgotten id 0 by now
                assert time.monotonic() - window_set > 2 * DUPLICATE_WINDOW
                [repeat] = await at_b.publish_batch("orders", [event(0)])
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for gw in (a, b, us):
            gw.stop()
        cluster.stop()
    assert acked.ids == everyone
    assert len({i for _, i in ma.got + mb.got}) == TOTAL  # the group got every event
    offset_of = {i: o for o, i in ma.got + mb.got}
    assert (repeat.duplicate, repeat.offset) == (True, offset_of[0])  # no time window
    # shared work: what A's member acked (all recorded before the kill) never went to B
    assert not {i for o, i in ma.got if o in ma.acked} & {i for _, i in mb.got}
    # no (source, id) handed to the group again once its ack was recorded: the committed
    # offset read from the cluster just before the kill covers only recorded acks
    floor = acked.committed_before_kill
    assert floor > 0, "nothing recorded before the kill"
    after = [o for (o, _), t in zip(mb.got, mb.at, strict=True) if t >= acked.killed_at]
    assert after and min(after) >= floor
    # B was given an event again only if its ack was not recorded when the node died
    seen_b = collections.Counter(i for _, i in mb.got)
    again = {i for i, n in seen_b.items() if n > 1}
    assert all(n <= 2 for n in seen_b.values())
    assert all(o >= floor for o, i in mb.got if i in again)
    held = {i for o, i in ma.got if o not in ma.acked}
    assert held, "A held nothing in flight when it died"
    assert held <= set(seen_b)  # A's in-flight deliveries, redelivered to B
    print(f"floor={floor} held_by_A={len(held)} given_to_B_again={len(again)}")
    # the federation peer: every event once, across the failover of its sender
    assert sorted(us_ids) == sorted(everyone)
    assert stored_at_us == TOTAL


class _Published:
    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.committed_before_kill = 0
        self.killed_at = 0.0


async def _publish(
    at_a: GatewayClient,
    at_b: GatewayClient,
    a: GatewayProcess,
    cluster: JetStreamCluster,
    ma: Member,
) -> _Published:
    """Publish TOTAL events through A, then (A dead) through B; retries are idempotent."""
    out = _Published()
    client = at_a
    give_up = time.monotonic() + 60
    start = 0
    while start < TOTAL:
        batch = [event(i) for i in range(start, start + BATCH)]
        try:
            await client.publish_batch("orders", batch)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in (grpc.StatusCode.UNAVAILABLE,), exc
            assert time.monotonic() < give_up, "no failover in 60 s"
            await asyncio.sleep(0.1)  # a client's backoff before the retry
            continue
        out.ids.update(range(start, start + BATCH))
        start += BATCH
        if start == HOLD_AT:
            await until(lambda: len(ma.acked) >= 10, "A's member to ack some")
            ma.acking = False  # from now on A's member holds what it is given
        if start == KILL_AT:
            await _kill_a(a, at_b, cluster, ma, out)
            client = at_b  # the client fails over to the region's other replica
    return out


async def _kill_a(
    a: GatewayProcess,
    at_b: GatewayClient,
    cluster: JetStreamCluster,
    ma: Member,
    out: _Published,
) -> None:
    assert ma.acked, "A's member acked nothing before it stopped acking"
    floor = max(ma.acked) + 1

    async def recorded() -> bool:
        return await _committed(at_b.target) >= floor

    await async_wait_for(recorded, timeout=20, what="A's acks recorded in the cluster")
    await until(lambda: any(o not in ma.acked for o, _ in ma.got), "A to hold some")
    out.committed_before_kill = await _committed(at_b.target)
    a.kill9()
    cluster.kill9(await _stream_leader(cluster))
    out.killed_at = time.monotonic()
