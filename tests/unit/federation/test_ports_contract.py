"""The ports contract, run against the in-memory fakes and the gateway's SQLite adapter alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from federation.codec import canonical_event, encode_replication
from federation.messages import ReplicatedEvent
from federation.ports import CursorStore, InboundEvent, ReplicationLog
from gateway.federation_port import federation_ports
from gateway.interest import InterestRegistry
from gateway.sqlite_store import SqliteEventStore
from gateway.store import NewEvent
from proto import cloudevents_pb2
from tests.support.federation_fakes import MemoryCursors, MemoryLog


def ce(i: int) -> bytes:
    return canonical_event(
        cloudevents_pb2.CloudEvent(id=f"e{i}", source="/s", spec_version="1.0", type="t")
    )


def inbound(i: int) -> InboundEvent:
    ev = ReplicatedEvent("orders", ce(i), "aa", i, ("aa",), ("cc",), 8, None)
    return InboundEvent("orders", ev.event, encode_replication(ev), ev.origin_region)


@dataclass
class Ports:
    log: ReplicationLog
    cursors: CursorStore
    publish: Callable[[str, bytes], Awaitable[None]]


@pytest.fixture(params=["memory", "sqlite"])
async def ports(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ports]:
    if request.param == "memory":
        mem = MemoryLog()

        async def publish_mem(topic: str, raw: bytes) -> None:
            await mem.publish(topic, raw)

        yield Ports(mem, MemoryCursors(), publish_mem)
        return
    store = SqliteEventStore(tmp_path / "data")
    await store.open()
    log, cursors, _ = federation_ports(store, InterestRegistry())

    async def publish_sql(topic: str, raw: bytes) -> None:
        pb = cloudevents_pb2.CloudEvent.FromString(raw)
        await store.append(topic, [NewEvent(pb.source, pb.id, pb.type, raw)], "cc")

    try:
        yield Ports(log, cursors, publish_sql)
    finally:
        await store.aclose()


async def test_log_reads_in_seq_order_with_blobs(ports: Ports) -> None:
    await ports.publish("orders", ce(1))
    assert await ports.log.append_replicated([inbound(2), inbound(3)]) == [True, True]
    records = await ports.log.read_since(0, 10)
    assert [r.event for r in records] == [ce(1), ce(2), ce(3)]
    assert [r.seq for r in records] == sorted({r.seq for r in records})
    assert records[0].replication is None and records[1].replication == inbound(2).replication
    assert records[2].attributes["id"] == "e3"
    assert ports.log.last_seq() == records[-1].seq
    assert [r.event for r in await ports.log.read_since(records[0].seq, 1)] == [ce(2)]


async def test_replicated_appends_dedup_by_source_and_id(ports: Ports) -> None:
    assert await ports.log.append_replicated([inbound(1)]) == [True]
    assert await ports.log.append_replicated([inbound(1), inbound(2)]) == [False, True]
    assert len(await ports.log.read_since(0, 10)) == 2


async def test_discard_deletes_records_and_their_dedup_keys(ports: Ports) -> None:
    assert await ports.log.append_replicated([inbound(1), inbound(2), inbound(3)]) == [True] * 3
    records = await ports.log.read_since(0, 10)
    last = ports.log.last_seq()
    await ports.log.discard([records[0].seq, records[2].seq, 10_000])
    assert [r.event for r in await ports.log.read_since(0, 10)] == [ce(2)]
    assert ports.log.last_seq() == last  # seqs are never reused
    assert await ports.log.append_replicated([inbound(1), inbound(2)]) == [True, False]
    [again] = await ports.log.read_since(last, 10)
    assert again.event == ce(1) and again.seq > last


async def test_wait_beyond(ports: Ports) -> None:
    assert not await ports.log.wait_beyond(ports.log.last_seq(), 0.05)
    await ports.publish("orders", ce(1))
    assert await ports.log.wait_beyond(0, 1.0)


async def test_cursors_persist_per_peer(ports: Ports) -> None:
    assert await ports.cursors.load("bb") == 0
    await ports.cursors.save("bb", 5)
    await ports.cursors.save("cc", 2)
    assert (await ports.cursors.load("bb"), await ports.cursors.load("cc")) == (5, 2)
