"""The JetStream store across processes' views of one region, on the real R3 cluster.

Two `JetStreamEventStore` instances on one region stand for two gateway processes: they share
nothing but the cluster (separate connections, writers and head caches).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.js.errors
import pytest
from nats.js import JetStreamContext

from gateway.errors import StoreError, StoreUnavailable
from gateway.jetstream_layout import dedup_key, stream_name
from gateway.jetstream_reads import topic_figures
from gateway.jetstream_store import BYTES_EVERY, JetStreamEventStore
from gateway.store import NewEvent
from meshgate.processes import free_port
from tests.support.jetstream_fixtures import JetStreamCluster, two_stores
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.xdist_group("jetstream")


def ev(i: int | str, source: str = "/s") -> NewEvent:
    return NewEvent(source, str(i), "t", b"x" * 10)


@pytest.fixture
async def pair(
    jetstream_cluster: JetStreamCluster,
) -> AsyncIterator[tuple[JetStreamEventStore, JetStreamEventStore]]:
    async with two_stores(jetstream_cluster, "r", split=True) as two:
        yield two


async def test_publish_through_one_is_read_and_wakes_the_other(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a, b = pair
    woke = asyncio.Event()
    seen: list[frozenset[str]] = []

    def listener(topics: frozenset[str], last: int) -> None:
        seen.append(topics)
        woke.set()

    b.on_append(listener)
    [result] = await a.append("orders", [ev(1)], "eu")
    await asyncio.wait_for(woke.wait(), 10)
    assert seen[-1] == frozenset({"orders"})
    assert b.last_seq == a.last_seq
    [row] = await b.read("orders", 0, 10)
    assert (row.offset, row.payload) == (result.offset, b"x" * 10)


async def test_concurrent_writers_keep_offsets_dense_and_events_once(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    """Both write the same topic at once, half of the ids on both: optimistic heads and
    create-if-absent keys make one dense offset sequence with each (source, id) once."""
    a, b = pair
    ids = list(range(200))
    results = await asyncio.gather(
        *(a.append("t", [ev(i)], "eu") for i in ids),
        *(b.append("t", [ev(i)], "eu") for i in ids[100:] + list(range(200, 300))),
    )
    rows = await a.read("t", 0, 1000)
    assert [r.offset for r in rows] == list(range(300))
    by_offset = {r.offset: r for r in rows}
    answered = [res[0] for res in results]
    assert sum(not r.duplicate for r in answered) == 300
    assert all(r.offset in by_offset for r in answered)
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)


async def _duplicate_window(cluster: JetStreamCluster, region: str) -> float:
    nc = await nats.connect(cluster.urls)
    try:
        info = await nc.jetstream().stream_info(stream_name(region))
    finally:
        await nc.close()
    return float(info.config.duplicate_window)


async def test_a_repeat_after_the_duplicate_window_is_still_a_duplicate(
    jetstream_cluster: JetStreamCluster,
) -> None:
    """JetStream's Nats-Msg-Id dedup forgets after `duplicate_window`; ours has no window. The
    region's stream is set to a 1 s window, the repeat comes after it, from a new process view."""
    region = f"w{uuid.uuid4().hex[:10]}"
    first = JetStreamEventStore(jetstream_cluster.urls, region)
    await first.open()
    try:
        [stored] = await first.append("a", [ev("old")], "eu")
    finally:
        await first.aclose()
    nc = await nats.connect(jetstream_cluster.urls)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream_name(region))
        info.config.duplicate_window = 1.0
        await js.update_stream(info.config)
    finally:
        await nc.close()
    assert await _duplicate_window(jetstream_cluster, region) == 1.0
    passed = time.monotonic() + 1.5
    wait_for(lambda: time.monotonic() > passed, timeout=5, what="the duplicate window to pass")
    again = JetStreamEventStore(jetstream_cluster.urls, region)
    await again.open()
    try:
        assert await _duplicate_window(jetstream_cluster, region) == 1.0  # opening kept it
        [repeat] = await again.append("a", [ev("old")], "eu")
        assert (repeat.offset, repeat.duplicate) == (stored.offset, True)
        [fresh] = await again.append("a", [ev("new")], "eu")
        assert (fresh.offset, fresh.duplicate) == (stored.offset + 1, False)
    finally:
        await again.aclose()


async def test_an_unreachable_cluster_is_store_unavailable() -> None:
    store = JetStreamEventStore([f"nats://127.0.0.1:{free_port()}"], "eu", connect_timeout=2)
    with pytest.raises(StoreUnavailable, match="cannot reach NATS"):
        await store.open()


async def test_a_batch_without_its_commit_stores_nothing(
    pair: tuple[JetStreamEventStore, JetStreamEventStore], jetstream_cluster: JetStreamCluster
) -> None:
    """What a writer that dies mid-batch leaves: the server holds the batch apart until its
    commit, so a batch whose commit never comes is never visible (and is dropped later)."""
    a, b = pair
    await a.append("t", [ev(1)], "eu")
    layout = a.layout
    nc = await nats.connect(jetstream_cluster.urls)
    try:
        dead = layout.event("t", dedup_key("/s", "dead"))
        for i, subject in enumerate([layout.head("t"), dead], start=1):
            headers = {"Nats-Batch-Id": "dead-writer", "Nats-Batch-Sequence": str(i)}
            await nc.publish(subject, b"2", headers=headers)
        await nc.flush()
    finally:
        await nc.close()  # the writer is gone: its commit never comes
    assert [r.offset for r in await b.read("t", 0, 10)] == [0]
    [after] = await b.append("t", [ev(2)], "eu")
    assert (after.offset, after.duplicate) == (1, False)
    assert [r.offset for r in await a.read("t", 0, 10)] == [0, 1]


async def test_a_cluster_without_quorum_is_unavailable_then_serves_again(
    tmp_path: Path,
) -> None:
    cluster = JetStreamCluster(tmp_path).start_all()
    store = JetStreamEventStore(cluster.urls, "eu")
    try:
        await store.open()
        await store.append("t", [ev(1)], "eu")
        cluster.kill9(1)
        cluster.kill9(2)  # one node of three left: no quorum
        with pytest.raises(StoreUnavailable):
            await store.append("t", [ev(2)], "eu")
        cluster.start(1)
        cluster.start(2)
        cluster.wait_ready()

        async def stored() -> bool:
            try:
                await store.append("t", [ev(2)], "eu")
            except StoreUnavailable:
                return False
            return True

        await async_wait_for(stored, timeout=60, what="the store to serve again")

        async def both_read() -> bool:  # a node just back may answer direct gets a moment behind
            return [r.offset for r in await store.read("t", 0, 10)] == [0, 1]

        await async_wait_for(both_read, timeout=30, what="a read to show both appends")
    finally:
        await store.aclose()
        cluster.stop()


async def publish_once_ready(
    js: JetStreamContext, subject: str, data: bytes, headers: dict[str, str]
) -> None:
    """Publish to a stream just created: on a cluster its leader (and the subject's interest
    on the server we are connected to) may be a moment behind `add_stream`'s answer, so
    "no responders" is retried until the stream answers (bounded), never slept through."""
    deadline = time.monotonic() + 15
    while True:
        try:
            await js.publish(subject, data, headers=headers or None)
            return
        except nats.js.errors.NoStreamResponseError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_stream_of_another_store_layout_is_refused_with_one_clear_line(
    jetstream_cluster: JetStreamCluster,
) -> None:
    """A stream marked with another layout version, or holding events but no mark (layout 1,
    an event per offset subject), is refused: mixing layouts would break dedup and offsets."""
    for mark in (b"9", None):
        region = f"v{uuid.uuid4().hex[:10]}"
        nc = await nats.connect(jetstream_cluster.urls)
        try:
            js = nc.jetstream()
            await js.add_stream(name=stream_name(region), subjects=[f"mg.{region}.>"])
            if mark is not None:
                await publish_once_ready(js, f"mg.{region}.v", mark, {})
            else:
                await publish_once_ready(js, f"mg.{region}.e.t.0", b"old", {"Mg-Offset": "0"})
        finally:
            await nc.close()
        store = JetStreamEventStore(jetstream_cluster.urls, region)
        with pytest.raises(StoreError, match="store layout") as refused:
            await store.open()
        assert not isinstance(refused.value, StoreUnavailable)
        await store.aclose()


async def test_reading_on_from_where_a_read_ended_needs_no_search(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    """Events are named by their dedup key, so a read from an offset searches; a reader going
    on from where its last read ended is one get (the store remembers that position)."""
    a, b = pair
    await a.append("other", [ev(i) for i in range(5)], "eu")
    await a.append("t", [ev(i) for i in range(30)], "eu")
    await a.append("other", [ev(i) for i in range(5, 9)], "eu")
    await a.append("t", [ev(i) for i in range(30, 50)], "eu")
    gets = 0
    get_next = b.client.get_next

    async def counted_next(seq: int, subject: str) -> object:
        nonlocal gets
        gets += 1
        return await get_next(seq, subject)

    b.client.get_next = counted_next  # type: ignore[method-assign,assignment]
    first = await b.read("t", 17, 10)
    assert [e.offset for e in first] == list(range(17, 27))
    assert gets > 1  # a search
    gets = 0
    rest = await b.read("t", 27, 100)
    assert [e.offset for e in rest] == list(range(27, 50)) and gets == 0
    assert await b.read("t", 50, 10) == [] and gets == 0
    picked = await b.read_offsets("t", [49, 3, 33])
    assert [e.offset for e in picked] == [3, 33, 49]


async def test_an_event_expired_by_retention_is_new_again_as_in_sqlite(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    """Dedup lasts as long as the event is stored (its subject is its (topic, source, id)): a
    re-publish after retention removed it is stored again at a new offset, as SQLite does."""
    a, b = pair
    await a.append("t", [ev(1), ev(2)], "eu")
    assert await a.apply_retention("t", older_than=time.time() + 1, max_bytes=None) == 2
    [again] = await b.append("t", [ev(1)], "eu")
    assert (again.offset, again.duplicate) == (2, False)
    [dup] = await a.append("t", [ev(1)], "eu")
    assert (dup.offset, dup.duplicate) == (2, True)


async def test_the_gauges_are_the_servers_figures_and_sum_only_a_topic_with_a_gap(
    jetstream_cluster: JetStreamCluster,
) -> None:
    """The metrics loop asks each second: counts, offsets and (from the heads' running byte
    totals) stored bytes are exact with no scan; a topic with a gap (a discarded event) has
    its bytes summed by a scan, again only once BYTES_EVERY has passed."""
    now = [1000.0]
    store = JetStreamEventStore(
        jetstream_cluster.urls, f"g{uuid.uuid4().hex[:12]}", clock=lambda: now[0]
    )
    await store.open()
    try:
        await store.append("a", [ev(i) for i in range(3)], "eu")
        [first] = await store.gauge_stats()
        assert (first.event_count, first.next_offset, first.stored_bytes) == (3, 3, 30)
        await store.append("a", [ev(i) for i in range(3, 5)], "eu")
        [grown] = await store.gauge_stats()
        assert (grown.event_count, grown.next_offset, grown.stored_bytes) == (5, 5, 50)
        middle = (await store.read("a", 2, 1))[0]
        assert await store.delete_events([middle.seq]) == 1
        [gapped] = await store.gauge_stats()
        assert (gapped.event_count, gapped.stored_bytes) == (4, 40)  # summed now
        await store.append("a", [ev(5)], "eu")
        now[0] += BYTES_EVERY - 1
        [kept] = await store.gauge_stats()
        assert (kept.event_count, kept.next_offset, kept.stored_bytes) == (5, 6, 40)
        now[0] += 1
        [due] = await store.gauge_stats()
        assert due.stored_bytes == 50 and [due] == await store.topic_stats()
    finally:
        await store.aclose()


async def test_the_running_byte_total_passes_between_replicas_writing_one_topic(
    jetstream_cluster: JetStreamCluster,
) -> None:
    """Each head carries the bytes ever appended to its topic; a replica that writes after
    another continues that total (from the follower or a refused batch), so the bytes stored
    stay exact when both write one topic."""
    async with two_stores(jetstream_cluster, "b", split=True, forward=False) as (a, b):
        for i in range(6):
            writer = a if i % 2 else b
            await writer.append("t", [ev(f"{i}.{j}") for j in range(i + 1)], "eu")
        figures = await topic_figures(a._js(), a._layout, "t")
        assert figures == (0, 21, 21, 210)
        assert await a.topic_stats("t") == await b.gauge_stats()
