"""Federation nodes over real mutual-TLS gRPC on 127.0.0.1, with in-memory ports (phase 1)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from eventmodel.filters import Exact
from federation.certs import Identity, issue_gateway
from federation.codec import canonical_event
from federation.config import PeerConfig
from federation.link import PeerLink
from federation.messages import Member, ReplicatedEvent, TopicInterest
from federation.metrics import FederationMetrics
from federation.node import FederationNode
from federation.ports import LogRecord
from federation.protocol import CloseReason
from proto import cloudevents_pb2
from tests.support.federation_fakes import MemoryCursors, MemoryInterest, MemoryLog
from tests.support.waiting import async_wait_for

FAST = {"ping_interval": 0.5, "stale_after": 10.0, "reconnect_initial": 0.1, "reconnect_max": 1.0}


@dataclass
class Region:
    name: str
    log: MemoryLog
    cursors: MemoryCursors
    interest: MemoryInterest
    metrics: FederationMetrics
    node: FederationNode


def make_event(i: int, kind: str = "order.created") -> bytes:
    return canonical_event(
        cloudevents_pb2.CloudEvent(
            id=f"ev-{i}", source="/shop", spec_version="1.0", type=kind, text_data=f"payload {i}"
        )
    )


class Mesh:
    def __init__(self, identity: Callable[[str], Identity]) -> None:
        self._identity = identity
        self.identity = identity
        self.regions: dict[str, Region] = {}
        self._stores: dict[str, tuple[MemoryLog, MemoryCursors, MemoryInterest]] = {}
        self._ports: dict[str, int] = {}

    async def start(
        self,
        name: str,
        seeds: tuple[str, ...] = (),
        topics: tuple[TopicInterest, ...] = (),
        full_mesh: bool = True,
    ) -> Region:
        """Start (or restart, on its old port with its old stores) the node of `name`."""
        log, cursors, interest = self._stores.setdefault(
            name, (MemoryLog(), MemoryCursors(), MemoryInterest(topics))
        )
        metrics = FederationMetrics()
        node = FederationNode(
            config=PeerConfig(
                region=name,
                seeds=seeds,
                mesh=full_mesh,
                listen_port=self._ports.get(name, 0),
                **FAST,  # type: ignore[arg-type]
            ),
            identity=self._identity(name),
            log_port=log,
            cursors=cursors,
            interest=interest,
            metrics=metrics,
        )
        await node.start()
        self._ports[name] = node.port
        region = Region(name, log, cursors, interest, metrics, node)
        self.regions[name] = region
        return region

    async def stop(self, name: str) -> None:
        await self.regions.pop(name).node.aclose()

    def addr(self, name: str) -> str:
        return self.regions[name].node.address

    async def aclose(self) -> None:
        for name in list(self.regions):
            await self.stop(name)


# grpc.aio keeps per-process state bound to one event loop: share one loop in this module.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def mesh(region_identity: Callable[[str], Identity]) -> AsyncIterator[Mesh]:
    m = Mesh(region_identity)
    try:
        yield m
    finally:
        try:
            async with asyncio.timeout(20):
                await m.aclose()
        except TimeoutError:
            for task in asyncio.all_tasks():
                task.print_stack(limit=8)
            raise


ORDERS = (TopicInterest("orders"),)


def hop(region: Region, to: str) -> str | None:
    route = region.node.routing.route(to)
    return route.next_hop if route else None


def count(region: Region, topic: str = "orders") -> int:
    return len(region.log.topic_events(topic))


async def eventually(pred: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    async def check() -> bool:
        return pred()

    await async_wait_for(check, timeout=timeout, what=what)


async def test_full_mesh_sends_directly_and_skips_uninterested(mesh: Mesh) -> None:
    a = await mesh.start("aa")
    b = await mesh.start("bb", seeds=(mesh.addr("aa"),))
    c = await mesh.start("cc", seeds=(mesh.addr("bb"),), topics=ORDERS)
    await a.node.wait_linked(["bb", "cc"])
    await a.node.wait_route("cc", "orders")
    await eventually(lambda: hop(a, "cc") == "cc", "direct route aa -> cc")
    for i in range(50):
        await a.log.publish("orders", make_event(i))
    await eventually(lambda: count(c) == 50, "50 events in cc")
    assert count(b) == 0  # no interest in bb: it stores none of the topic's events
    assert a.node.routing.route("cc").distance == 1  # type: ignore[union-attr]
    assert {r.region for r in c.node.peers() if r.up} == {"aa", "bb"}
    assert a.metrics.registry.get_sample_value("meshgate_federation_peer_up", {"peer": "cc"}) == 1
    # >= : a duplicate link replaced mid-stream resends from the cursor; cc dedups
    sent = a.metrics.registry.get_sample_value(
        "meshgate_federation_events_sent_total", {"peer": "cc"}
    )
    assert (sent or 0) >= 50


async def test_line_relays_through_middle(mesh: Mesh) -> None:
    # line aa - bb - cc: aa and cc know only bb and do not dial gossiped members.
    b = await mesh.start("bb", full_mesh=False)
    a = await mesh.start("aa", seeds=(mesh.addr("bb"),), full_mesh=False)
    c = await mesh.start("cc", seeds=(mesh.addr("bb"),), topics=ORDERS, full_mesh=False)
    await a.node.wait_route("cc", "orders")
    assert hop(a, "cc") == "bb"
    for i in range(20):
        await a.log.publish("orders", make_event(i))
    await eventually(lambda: count(c) == 20, "20 events in cc")
    stored_at_b = b.metrics.registry.get_sample_value(
        "meshgate_federation_events_stored_total", {"peer": "aa"}
    )
    assert stored_at_b == 20  # the relay stores before it forwards ...
    await eventually(lambda: count(b) == 0, "bb's transit events deleted")  # ... until cc acked
    assert "cc" not in a.node.links()
    assert len({(r.attributes["source"], r.attributes["id"]) for r in c.log.records}) == 20


async def test_interest_changes_reach_the_peer_when_they_happen(mesh: Mesh) -> None:
    a = await mesh.start("aa")
    b = await mesh.start("bb", seeds=(mesh.addr("aa"),))
    await a.node.wait_linked(["bb"])
    await b.interest.set(ORDERS)  # what a subscribe does: InterestSource.wait_changed wakes bb
    await a.node.wait_route("bb", "orders", timeout=5)
    await b.interest.set(())
    await eventually(lambda: not getattr(a.node.routing.route("bb"), "topics", ()), "withdrawn")


class BrokenInterest(MemoryInterest):
    async def wait_changed(self, seen_version: int) -> int:
        raise RuntimeError("interest source broke")


async def test_a_failing_background_task_fails_the_node_loudly(
    region_identity: Callable[[str], Identity],
) -> None:
    node = FederationNode(
        config=PeerConfig(region="aa", **FAST),  # type: ignore[arg-type]
        identity=region_identity("aa"),
        log_port=MemoryLog(),
        cursors=MemoryCursors(),
        interest=BrokenInterest(),
    )
    async with asyncio.timeout(10):
        with pytest.raises(ExceptionGroup) as failed:
            await node.run()  # not swallowed: run() ends with the task's error
    assert failed.group_contains(RuntimeError, match="interest source broke")
    assert node.port != 0  # it had started, and its peer server was stopped on the way out


async def test_line_relay_restart_mid_stream_loses_nothing(mesh: Mesh) -> None:
    await mesh.start("bb", full_mesh=False)
    a = await mesh.start("aa", seeds=(mesh.addr("bb"),), full_mesh=False)
    c = await mesh.start("cc", seeds=(mesh.addr("bb"),), topics=ORDERS, full_mesh=False)
    await a.node.wait_route("cc", "orders")
    for i in range(100):
        await a.log.publish("orders", make_event(i))
    await mesh.stop("bb")  # mid-stream: some events reached cc, some are in bb or aa only
    for i in range(100, 200):
        await a.log.publish("orders", make_event(i))
    await mesh.start("bb", full_mesh=False)  # same port, same stores (durable)
    await eventually(lambda: count(c) == 200, "200 events in cc after bb restarted")
    assert len({r.attributes["id"] for r in c.log.records}) == 200


async def test_partition_then_heal_catches_up_without_duplicates(mesh: Mesh) -> None:
    a = await mesh.start("aa")
    c = await mesh.start("cc", seeds=(mesh.addr("aa"),), topics=ORDERS)
    await a.node.wait_route("cc", "orders")
    for i in range(10):
        await a.log.publish("orders", make_event(i))
    await eventually(lambda: count(c) == 10, "first 10 in cc")
    cc_addr = mesh.addr("cc")
    await mesh.stop("cc")
    for i in range(10, 60):
        await a.log.publish("orders", make_event(i))
    c = await mesh.start("cc", seeds=(mesh.addr("aa"),), topics=ORDERS)
    assert cc_addr  # the restarted node listens elsewhere; aa learns it from Hello
    await eventually(lambda: count(c) == 60, "60 events in cc after heal")
    await eventually(lambda: a.cursors.cursors.get("cc") == a.log.last_seq(), "cursor caught up")
    assert count(c) == 60


async def test_filtered_interest_routes_only_matching_events(mesh: Mesh) -> None:
    a = await mesh.start("aa")
    c = await mesh.start(
        "cc",
        seeds=(mesh.addr("aa"),),
        topics=(TopicInterest("orders", (Exact("type", "order.paid"),)),),
    )
    await a.node.wait_route("cc", "orders")
    for i in range(10):
        await a.log.publish("orders", make_event(i, "order.paid" if i % 2 else "order.created"))
    await eventually(lambda: count(c) == 5, "5 paid events in cc")
    await asyncio.sleep(0)
    assert all(r.attributes["type"] == "order.paid" for r in c.log.records)


async def test_peer_with_foreign_ca_is_refused(
    mesh: Mesh, foreign_ca: Path, tmp_path: Path
) -> None:
    a = await mesh.start("aa")
    stranger = issue_gateway(foreign_ca, "zz", tmp_path / "zz")
    log = MemoryLog()
    node = FederationNode(
        config=PeerConfig(region="zz", seeds=(mesh.addr("aa"),), **FAST),  # type: ignore[arg-type]
        identity=stranger,
        log_port=log,
        cursors=MemoryCursors(),
        interest=MemoryInterest(ORDERS),
    )
    async with node:
        await asyncio.sleep(1.5)  # give it several dial attempts
        assert node.links() == {}
        assert a.node.links() == {}
        assert "zz" not in {m.region for m in a.node.members()}


async def test_hello_claiming_another_region_is_refused(
    mesh: Mesh, region_identity: Callable[[str], Identity]
) -> None:
    a = await mesh.start("aa")
    # a gateway holding bb's certificate that says Hello as "cc"
    liar = region_identity("bb")
    node = FederationNode(
        config=PeerConfig(region="bb", seeds=(mesh.addr("aa"),), **FAST),  # type: ignore[arg-type]
        identity=liar,
        log_port=MemoryLog(),
        cursors=MemoryCursors(),
        interest=MemoryInterest(),
    )
    node.region = "cc"  # simulate a tampered build that lies in its Hello
    async with node:

        def refused() -> bool:
            value = a.metrics.registry.get_sample_value(
                "meshgate_federation_link_closes_total", {"reason": "wrong_region"}
            )
            return (value or 0) >= 1

        await eventually(refused, "aa refusing the lying Hello")
        assert "cc" not in a.node.links()
        assert "bb" not in a.node.links()


class TamperingNode(FederationNode):
    """A compromised relay/origin: changes event payloads after they were signed."""

    def outbound(self, link: PeerLink, records: Sequence[LogRecord]) -> tuple[ReplicatedEvent, ...]:
        events = super().outbound(link, records)
        return tuple(dataclasses.replace(e, event=e.event + b"\x3a\x01X") for e in events)


async def test_tampered_events_are_rejected_and_counted(
    mesh: Mesh, region_identity: Callable[[str], Identity]
) -> None:
    c = await mesh.start("cc", topics=ORDERS)
    log = MemoryLog()
    bad = TamperingNode(
        config=PeerConfig(region="aa", seeds=(mesh.addr("cc"),), **FAST),  # type: ignore[arg-type]
        identity=region_identity("aa"),
        log_port=log,
        cursors=MemoryCursors(),
        interest=MemoryInterest(),
    )
    async with bad:
        await bad.wait_route("cc", "orders")
        for i in range(5):
            await log.publish("orders", make_event(i))

        def rejected() -> float:
            value = c.metrics.registry.get_sample_value(
                "meshgate_federation_rejected_events_total", {"reason": "bad_proof"}
            )
            return value or 0.0

        await eventually(lambda: rejected() == 5, "5 rejections in cc")
        assert count(c) == 0


class PartitionableNode(FederationNode):
    """Test double of a network partition: refuses links to `blocked` regions."""

    blocked: frozenset[str] = frozenset()

    def link_up(self, link: PeerLink, members: tuple[Member, ...]) -> bool:
        if link.peer_region in self.blocked:
            return False
        return super().link_up(link, members)

    def partition(self, *regions: str) -> None:
        self.blocked = frozenset(regions)
        for region in regions:
            if region in self.links():
                self.links()[region].close(CloseReason.SHUTDOWN, "partitioned")


async def test_dropped_link_reroutes_through_relay_then_heals(mesh: Mesh) -> None:
    nodes: dict[str, PartitionableNode] = {}
    stores = {r: (MemoryLog(), MemoryCursors()) for r in ("aa", "bb", "cc")}
    try:
        for region, seeds, topics in (
            ("aa", (), ()),
            ("bb", ("aa",), ()),
            ("cc", ("aa",), ORDERS),
        ):
            log, cursors = stores[region]
            node = PartitionableNode(
                config=PeerConfig(
                    region=region,
                    seeds=tuple(nodes[s].address for s in seeds),
                    **FAST,  # type: ignore[arg-type]
                ),
                identity=mesh.identity(region),
                log_port=log,
                cursors=cursors,
                interest=MemoryInterest(topics),
            )
            await node.start()
            nodes[region] = node
        a_log, c_log, b_log = stores["aa"][0], stores["cc"][0], stores["bb"][0]
        aa, cc = nodes["aa"], nodes["cc"]
        await aa.wait_linked(["bb", "cc"])
        await nodes["bb"].wait_linked(["aa", "cc"])
        await eventually(lambda: getattr(aa.routing.route("cc"), "next_hop", "") == "cc", "direct")
        aa.partition("cc")
        cc.partition("aa")
        await eventually(lambda: getattr(aa.routing.route("cc"), "next_hop", "") == "bb", "reroute")
        for i in range(40):
            await a_log.publish("orders", make_event(i))
        await eventually(lambda: len(c_log.topic_events("orders")) == 40, "40 via bb")
        relayed = nodes["bb"].metrics.registry.get_sample_value(
            "meshgate_federation_events_sent_total", {"peer": "cc"}
        )
        assert (relayed or 0) >= 40  # relayed through bb
        # bb has no subscriber: once cc acked them, bb keeps none of the transit events
        await eventually(lambda: len(b_log.topic_events("orders")) == 0, "bb's transit gone")
        assert (
            nodes["bb"].metrics.registry.get_sample_value(
                "meshgate_federation_transit_deleted_events_total"
            )
            or 0
        ) >= 40
        aa.partition()
        cc.partition()
        await eventually(lambda: getattr(aa.routing.route("cc"), "next_hop", "") == "cc", "healed")
        await eventually(
            lambda: stores["aa"][1].cursors.get("cc") == a_log.last_seq(), "direct cursor caught up"
        )
        assert len(c_log.topic_events("orders")) == 40  # the direct resend was deduplicated
        assert (
            cc.metrics.registry.get_sample_value(
                "meshgate_federation_events_duplicate_total", {"peer": "aa"}
            )
            or 0
        ) >= 40
    finally:
        for node in nodes.values():
            await node.aclose()
