"""A rogue region `zz` holding a valid federation certificate attracts nothing it cannot prove.

Real gateway processes, a real chain (Ganache) and the federation CA. `zz` is either a real
gateway run `--open` (no registry) with an anonymous subscriber, or a hand-built peer that
speaks the federation protocol through federation's own codec over mTLS with zz's certificate
(`RoguePeer`), sending whatever Interest or Members it likes.

"Nothing reached zz" is only asserted after the opposite was shown possible: a granted honest
region received every event, and zz's advertisement reached the origin and was refused there
(meshgate_federation_refused_interest_total{peer="zz"}).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account
from eth_account.signers.local import LocalAccount

from federation.certs import Identity
from federation.messages import (
    Interest,
    InterestProof,
    RegionInterest,
    TopicInterest,
)
from meshgate.client import GatewayClient
from meshgate.processes import GatewayProcess
from proto import gateway_pb2
from tests.integration.gateway_helpers import metric, scrape
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.rogue_peer import RecordingPeer as RoguePeer
from tests.support.rogue_peer import interest_proof
from tests.support.waiting import async_wait_for, free_port

pytestmark = [pytest.mark.chain, pytest.mark.timeout(300)]


class Regions:
    """Real gateways by region: `start("eu", registry=True, peers=["cc"])`."""

    def __init__(
        self, root: Path, registry: DeployedRegistry, tls_dir: Callable[[str], Path]
    ) -> None:
        self.root, self.registry, self.tls_dir = root, registry, tls_dir
        self.peer_port: dict[str, int] = {}
        self.gateways: dict[str, GatewayProcess] = {}

    def peer_addr(self, region: str) -> str:
        return f"127.0.0.1:{self.peer_port.setdefault(region, free_port())}"

    def start(
        self, region: str, *, registry: bool, peers: tuple[str, ...] = (), mesh: bool = True
    ) -> GatewayProcess:
        args = ["--peer-listen", self.peer_addr(region), "--tls-dir", str(self.tls_dir(region))]
        for p in peers:
            args += ["--peer", self.peer_addr(p)]
        if not mesh:
            args.append("--no-mesh")
        if registry:
            r = self.registry
            args += ["--rpc", r.chain.url, "--registry", r.address]
            args += ["--chain-id", str(r.chain.chain_id)]
        gw = GatewayProcess(self.root / region, region=region, extra_args=args, ready_timeout=60)
        self.gateways[region] = gw
        return gw.start()

    def stop_all(self) -> None:
        for gw in self.gateways.values():
            gw.stop()


@pytest.fixture
def regions(
    tmp_path: Path, registry: DeployedRegistry, region_tls_dir: Callable[[str], Path]
) -> Iterator[Regions]:
    r = Regions(tmp_path, registry, region_tls_dir)
    try:
        yield r
    finally:
        r.stop_all()


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


def refused_interest(gw: GatewayProcess, peer: str) -> float:
    assert gw.metrics_url is not None
    name = "meshgate_federation_refused_interest_total"
    return metric(scrape(gw.metrics_url), name, peer=peer) or 0.0


def new_topic(registry: DeployedRegistry, owner: LocalAccount, *readers: str) -> str:
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    client = registry.client(owner)
    client.register(topic)
    for reader in readers:
        client.grant(topic, reader)
    return topic


@contextlib.asynccontextmanager
async def clients(
    *specs: tuple[GatewayProcess, LocalAccount | None],
) -> AsyncIterator[list[GatewayClient]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(GatewayClient(gw.listen, signer=signer))
            for gw, signer in specs
        ]


N = 10


async def test_open_rogue_region_with_an_anonymous_subscriber_stores_no_event(
    regions: Regions, registry: DeployedRegistry, funded_account: Callable[[], LocalAccount]
) -> None:
    owner, reader = funded_account(), Account.create()
    topic = new_topic(registry, owner, reader.address)
    eu = regions.start("eu", registry=True)
    cc = regions.start("cc", registry=True, peers=("eu",))
    zz = regions.start("zz", registry=False, peers=("eu",))  # --open, valid certificate
    async with (
        clients((eu, owner), (cc, reader), (zz, None)) as (pub, honest, rogue),
        honest.subscribe(topic, group="g") as sub,
        rogue.subscribe(topic) as rsub,
    ):
        await rsub.start()  # the anonymous stream is open at zz: zz advertises the topic

        async def cc_routed() -> bool:
            return topic in await routed_topics(pub, "cc")

        async def zz_refused() -> bool:
            return refused_interest(eu, "zz") >= 1

        await async_wait_for(cc_routed, timeout=45, what="cc's proven interest at eu")
        await async_wait_for(zz_refused, timeout=45, what="zz's interest refused at eu")
        assert topic not in await routed_topics(pub, "zz")
        for n in range(N):
            await pub.publish(topic, CloudEvent({"type": "t", "source": "/eu"}, {"n": n}))
        async with asyncio.timeout(45):
            got = [await anext(sub) for _ in range(N)]
        assert [r.offset for r in got] == list(range(N))
        assert await stored(rogue, topic) == 0


async def test_forged_or_expired_interest_proofs_attract_nothing(
    regions: Regions,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
    region_identity: Callable[[str], Identity],
) -> None:
    owner, reader, stranger = funded_account(), Account.create(), Account.create()
    topic = new_topic(registry, owner, reader.address)
    chain_id = registry.chain.chain_id
    eu = regions.start("eu", registry=True)

    def proof(signer: LocalAccount = reader, **kw: object) -> InterestProof:
        args: dict[str, object] = {"region": "zz", "topic": topic, "chain_id": chain_id, **kw}
        return interest_proof(signer, **args)  # type: ignore[arg-type]

    genuine = proof()
    bad = {
        "forged signature": InterestProof(genuine.message, proof(stranger).signature),
        "expired": proof(issued=time.time() - 1000, ttl=60),
        "another region's": proof(region="cc"),
        "ungranted signer": proof(stranger),
        "another chain": proof(chain_id=chain_id + 1),
    }
    async with (
        clients((eu, owner)) as (pub,),
        RoguePeer(region_identity("zz"), regions.peer_addr("eu"), "eu") as zz,
    ):
        for version, (what, p) in enumerate(bad.items(), start=1):
            before = refused_interest(eu, "zz")
            ti = TopicInterest(topic, (), (p,))
            await zz.send(Interest(version, (RegionInterest("zz", 0, (ti,)),)))

            async def refused(before: float = before) -> bool:
                return refused_interest(eu, "zz") > before

            await async_wait_for(refused, timeout=30, what=f"the {what} proof refused")
            assert topic not in await routed_topics(pub, "zz"), what

        # The control: the granted reader's genuine short-lived proof does attract the topic,
        # and the route goes when the proof expires without renewal.
        short = proof(ttl=8)
        await zz.send(
            Interest(100, (RegionInterest("zz", 0, (TopicInterest(topic, (), (short,)),)),))
        )

        async def zz_routed() -> bool:
            return topic in await routed_topics(pub, "zz")

        async def zz_dropped() -> bool:
            return not await zz_routed()

        await async_wait_for(zz_routed, timeout=30, what="a genuine proof routed")
        await async_wait_for(zz_dropped, timeout=30, what="the route dropped at proof expiry")

        # A genuine proof also stops counting when the owner revokes the reader's grant.
        await zz.send(
            Interest(101, (RegionInterest("zz", 0, (TopicInterest(topic, (), (genuine,)),)),))
        )
        await async_wait_for(zz_routed, timeout=30, what="the genuine proof routed again")
        registry.client(owner).revoke(topic, reader.address)
        await async_wait_for(zz_dropped, timeout=30, what="the route dropped at the revoke")


async def test_restart_of_a_region_whose_group_reader_was_revoked_attracts_nothing(
    regions: Regions, registry: DeployedRegistry, funded_account: Callable[[], LocalAccount]
) -> None:
    owner, reader, other = funded_account(), Account.create(), Account.create()
    topic = new_topic(registry, owner, reader.address)
    probe = new_topic(registry, owner, other.address)
    eu = regions.start("eu", registry=True)
    cc = regions.start("cc", registry=True, peers=("eu",))
    async with clients((eu, owner), (cc, reader)) as (pub, consumer):

        async def cc_wants(t: str) -> bool:
            return t in await routed_topics(pub, "cc")

        async with consumer.subscribe(topic, group="billing") as sub:
            await async_wait_for(lambda: cc_wants(topic), timeout=45, what="cc's interest")
            await pub.publish(topic, CloudEvent({"type": "t", "source": "/eu"}, {"n": 0}))
            async with asyncio.timeout(30):
                assert (await anext(sub)).offset == 0
        registry.client(owner).revoke(topic, reader.address)

        async def withdrawn() -> bool:
            return not await cc_wants(topic)

        await async_wait_for(withdrawn, timeout=45, what="cc's interest withdrawn at the revoke")

    cc.restart()  # the group "billing" is persisted in cc; its only reader holds no grant
    async with clients((eu, owner), (cc, other)) as (pub, prober):
        # Another granted reader subscribes after the restart: once its interest is routed,
        # every advertisement of the restarted cc has reached eu.
        async with prober.subscribe(probe) as psub:
            await psub.start()
            await async_wait_for(lambda: cc_wants(probe), timeout=60, what="cc's new interest")
            assert topic not in await routed_topics(pub, "cc")
            for n in range(1, N + 1):
                await pub.publish(topic, CloudEvent({"type": "t", "source": "/eu"}, {"n": n}))
            await pub.publish(probe, CloudEvent({"type": "t", "source": "/eu"}, {"n": 0}))
            async with asyncio.timeout(45):
                await anext(psub)  # published after the topic's events, on the same link
        assert await stored(prober, topic) == 1  # only what came while the grant held


async def test_a_relay_passes_the_far_readers_proofs_on_and_the_origin_judges_them(
    regions: Regions, registry: DeployedRegistry, funded_account: Callable[[], LocalAccount]
) -> None:
    """aa - bb - cc on a line (--no-mesh): cc's reader's proof reaches aa through bb, and aa
    routes to cc on it; a revoke drops the route at aa. (That each hop judges the relayed proofs
    itself: tests/unit/federation/test_interest_proofs.py.)"""
    owner, reader = funded_account(), Account.create()
    topic = new_topic(registry, owner, reader.address)
    for region, peers in (("aa", ()), ("bb", ("aa",)), ("cc", ("bb",))):
        regions.start(region, registry=True, peers=peers, mesh=False)
    aa, cc = regions.gateways["aa"], regions.gateways["cc"]
    async with (
        clients((aa, owner), (cc, reader)) as (pub, consumer),
        consumer.subscribe(topic) as sub,
    ):

        async def cc_via_bb() -> bool:
            reply = await pub.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=10)
            return any(
                p.region == "cc" and p.distance == 2 and topic in p.topics for p in reply.peers
            )

        await async_wait_for(cc_via_bb, timeout=60, what="cc's proven interest at aa via bb")
        await pub.publish(topic, CloudEvent({"type": "t", "source": "/aa"}, {"n": 0}))
        async with asyncio.timeout(45):
            assert (await anext(sub)).offset == 0
        registry.client(owner).revoke(topic, reader.address)

        async def dropped() -> bool:
            return topic not in await routed_topics(pub, "cc")

        await async_wait_for(dropped, timeout=45, what="cc's route dropped at aa")
