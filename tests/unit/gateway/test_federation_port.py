"""The federation ports over the real SQLite store: log, cursors, interest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cloudevents.core.v1.event import CloudEvent

from eventmodel import filters as gf
from eventmodel import sdk as events
from federation import messages as fm
from federation.codec import encode_replication
from federation.ports import InboundEvent
from gateway.access import Identity
from gateway.federation_port import (
    GatewayCursors,
    GatewayInterest,
    GatewayReplicationLog,
    federation_ports,
    peer_view,
)
from gateway.interest import Interest, InterestRegistry
from gateway.sqlite_store import SqliteEventStore
from gateway.store import NewEvent


def payload(i: int, type_: str = "t") -> bytes:
    ev = CloudEvent({"type": type_, "source": "/s", "id": str(i), "specversion": "1.0"}, {"i": i})
    return events.to_pb(ev).SerializeToString(deterministic=True)


def inbound(topic: str, i: int, origin: str = "us") -> InboundEvent:
    blob = encode_replication(
        fm.ReplicatedEvent(
            topic=topic,
            event=payload(i),
            origin_region=origin,
            origin_offset=i,
            path=(origin,),
            destinations=("eu",),
            hop_limit=4,
            signature=None,
            attributes={},
        )
    )
    return InboundEvent(topic, payload(i), blob, origin)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    s = SqliteEventStore(tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.aclose()


async def test_log_reads_local_and_relayed_records(store: SqliteEventStore) -> None:
    log = GatewayReplicationLog(store)
    await store.append("orders", [NewEvent("/s", "0", "t", payload(0))], "eu")
    fresh = await log.append_replicated([inbound("orders", 1), inbound("audit", 2)])
    assert list(fresh) == [True, True]
    again = await log.append_replicated([inbound("orders", 1), inbound("orders", 0)])
    assert list(again) == [False, False]  # dedup by (topic, source, id), local or relayed
    records = await log.read_since(0, 10)
    assert [(r.topic, r.replication is None) for r in records] == [
        ("orders", True),
        ("orders", False),
        ("audit", False),
    ]
    assert records[1].attributes["id"] == "1"
    assert log.last_seq() == records[-1].seq
    rows = await store.read("orders", 0, 10)
    assert [r.origin_region for r in rows] == ["eu", "us"]
    log.close()


async def test_wait_beyond_wakes_on_append(store: SqliteEventStore) -> None:
    log = GatewayReplicationLog(store)
    assert not await log.wait_beyond(0, 0.05)
    waiter = asyncio.create_task(log.wait_beyond(0, 30))
    await store.append("orders", [NewEvent("/s", "0", "t", payload(0))], "eu")
    assert await waiter
    assert await log.wait_beyond(0, 0)


async def test_cursors_persist(store: SqliteEventStore) -> None:
    cursors = GatewayCursors(store)
    assert await cursors.load("us") == 0
    await cursors.save("us", 17)
    assert await cursors.load("us") == 17


def test_interest_converts_filters() -> None:
    reg = InterestRegistry()
    either = gf.Any((gf.Exact("x", "1"), gf.Suffix("y", "z")))
    flt = gf.All((gf.Prefix("type", "a."), gf.Not(either)))
    reg.add(Interest("orders", (flt,)))
    reg.add_durable(Interest("audit"), Identity("0xa"))
    got = GatewayInterest(reg).local_interest()
    assert set(got) == {
        fm.TopicInterest("orders", (flt,)),
        fm.TopicInterest("audit", ()),
    }
    wanted = fm.TopicInterest("orders", (flt,))
    assert wanted.wants("orders", {"type": "a.b", "x": "2"})
    assert not wanted.wants("orders", {"type": "a.b", "x": "1"})


def test_peer_view_maps_the_peer_table() -> None:
    from federation.node import PeerInfo  # the real rows, so the adapter keeps up with them

    def row(**changes: object) -> PeerInfo:
        base: dict[str, object] = dict(
            region="us", address="127.0.0.1:1", up=True, lag_events=3, lag_seconds=0.5,
            last_seen=1_700_000_000.0, distance=1, topics=("orders",),
        )  # fmt: skip
        return PeerInfo(**{**base, **changes})  # type: ignore[arg-type]

    view = peer_view(lambda: [row(), row(region="ap", up=False, last_seen=0, topics=())])()
    us, ap = view.peers
    assert (us.region, us.up, us.lag_events, us.distance) == ("us", True, 3, 1)
    assert list(us.topics) == ["orders"]
    assert us.last_seen.seconds == 1_700_000_000
    assert (ap.region, ap.up, ap.HasField("last_seen"), list(ap.topics)) == ("ap", False, False, [])


async def test_federation_ports_bundle(store: SqliteEventStore) -> None:
    log, cursors, interest = federation_ports(store, InterestRegistry())
    assert log.last_seq() == 0
    assert await cursors.load("us") == 0
    assert list(interest.local_interest()) == []
