"""EventStore contract, run against the SQLite store (real SQLite in a temp dir), the
in-memory store, and the JetStream store on a real 3-node R3 cluster (one stream per test,
tests/support/jetstream_fixtures.py). Restart tests are SQLite-only (memory keeps nothing)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.jetstream_store import JetStreamEventStore
from gateway.memory_store import MemoryEventStore
from gateway.sqlite_store import SqliteEventStore
from gateway.store import EventStore, GroupRecord, NewEvent, ReplicatedItem


def ev(i: int | str, source: str = "/s", size: int = 10) -> NewEvent:
    return NewEvent(source, str(i), "t", b"x" * size)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


JETSTREAM = pytest.param("jetstream", marks=pytest.mark.xdist_group("jetstream"))


@pytest.fixture(params=["sqlite", "memory", JETSTREAM])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[EventStore]:
    s: EventStore
    if request.param == "sqlite":
        s = SqliteEventStore(tmp_path, clock=clock)
    elif request.param == "jetstream":
        cluster = request.getfixturevalue("jetstream_cluster")
        s = JetStreamEventStore(cluster.urls, f"t{uuid.uuid4().hex[:12]}", clock=clock)
    else:
        s = MemoryEventStore(clock=clock)
    await s.open()
    try:
        yield s
    finally:
        await s.aclose()


async def test_offsets_are_dense_per_topic_and_seq_global(store: EventStore) -> None:
    a = await store.append("a", [ev(1), ev(2)], "eu")
    b = await store.append("b", [ev(1)], "eu")
    assert [r.offset for r in a] == [0, 1]
    assert [r.offset for r in b] == [0]
    rows = await store.read_since(0, 10)
    assert [(r.topic, r.offset) for r in rows] == [("a", 0), ("a", 1), ("b", 0)]
    assert [r.seq for r in rows] == sorted({r.seq for r in rows})
    assert store.last_seq == rows[-1].seq
    assert all(r.origin_region == "eu" and r.replication is None for r in rows)


async def test_duplicate_answers_first_offset(store: EventStore) -> None:
    await store.append("a", [ev(1), ev(2)], "eu")
    again = await store.append("a", [ev(3), ev(1)], "eu")
    assert [(r.offset, r.duplicate) for r in again] == [(2, False), (0, True)]
    inside = await store.append("a", [ev(9), ev(9)], "eu")
    assert [(r.offset, r.duplicate) for r in inside] == [(3, False), (3, True)]
    other_source = await store.append("a", [ev(1, source="/other")], "eu")
    assert not other_source[0].duplicate
    assert (await store.topic_stats("a"))[0].event_count == 5


async def test_concurrent_appends_group_commit_without_loss(store: EventStore) -> None:
    results = await asyncio.gather(*(store.append("a", [ev(i)], "eu") for i in range(300)))
    offsets = sorted(r[0].offset for r in results)
    assert offsets == list(range(300))
    rows = await store.read("a", 0, 1000)
    assert [r.offset for r in rows] == list(range(300))


async def test_read_pages_and_offsets(store: EventStore) -> None:
    await store.append("a", [ev(i) for i in range(20)], "eu")
    page = await store.read("a", 5, 4)
    assert [r.offset for r in page] == [5, 6, 7, 8]
    picked = await store.read_offsets("a", [9, 3, 3, 100])
    assert [r.offset for r in picked] == [3, 9]


async def test_replicated_append_dedups_and_keeps_blob(store: EventStore) -> None:
    await store.append("a", [ev(1)], "eu")
    items = [
        ReplicatedItem(ev(1), "us", b"blob-1"),
        ReplicatedItem(ev(2), "us", b"blob-2"),
        ReplicatedItem(ev(2), "us", b"blob-2"),
    ]
    assert await store.append_replicated("a", items) == [False, True, False]
    rows = await store.read("a", 0, 10)
    assert [(r.origin_region, r.replication) for r in rows] == [("eu", None), ("us", b"blob-2")]


async def test_append_wakes_listeners_after_commit(store: EventStore) -> None:
    seen: list[tuple[frozenset[str], int]] = []
    woke = asyncio.Event()

    def listener(topics: frozenset[str], last: int) -> None:
        seen.append((topics, last))
        woke.set()

    remove = store.on_append(listener)
    await store.append("a", [ev(1)], "eu")
    await asyncio.wait_for(woke.wait(), 10)
    assert seen[-1] == (frozenset({"a"}), store.last_seq)
    assert (await store.read_since(seen[-1][1] - 1, 10))[0].topic == "a"
    remove()


async def test_cursors_and_groups(store: EventStore) -> None:
    assert await store.get_cursor("peer-us") is None
    await store.set_cursor("peer-us", 42)
    await store.set_cursor("peer-us", 43)
    assert await store.get_cursor("peer-us") == 43
    assert await store.load_group("a", "g") is None
    await store.save_group(GroupRecord("a", "g", 7, "[]"))
    await store.save_group(GroupRecord("a", "g", 9, "[]"))
    assert await store.load_group("a", "g") == GroupRecord("a", "g", 9, "[]")
    assert [g.group for g in await store.list_groups()] == ["g"]


async def test_retention_by_age_and_size(store: EventStore, clock: Clock) -> None:
    await store.append("a", [ev(i, size=100) for i in range(5)], "eu")
    clock.now += 100
    await store.append("a", [ev(i, size=100) for i in range(5, 10)], "eu")
    assert await store.apply_retention("a", older_than=clock.now - 50, max_bytes=None) == 5
    stats = (await store.topic_stats("a"))[0]
    assert (stats.first_offset, stats.next_offset, stats.event_count) == (5, 10, 5)
    assert await store.apply_retention("a", older_than=None, max_bytes=250) == 3
    stats = (await store.topic_stats("a"))[0]
    assert (stats.first_offset, stats.event_count, stats.stored_bytes) == (8, 2, 200)
    assert await store.offset_at_time("a", clock.now) == 8
    assert await store.offset_at_time("a", clock.now + 1) == 10


async def test_delete_events_by_seq_removes_them_and_their_dedup_keys(store: EventStore) -> None:
    await store.append("a", [ev(1), ev(2), ev(3)], "eu")
    await store.append_replicated("b", [ReplicatedItem(ev(9), "us", b"blob")])
    rows = await store.read_since(0, 10)
    gone = [rows[1].seq, rows[3].seq]
    assert await store.delete_events([*gone, 999]) == 2  # an unknown seq is ignored
    assert await store.delete_events(gone) == 0
    assert [(r.topic, r.offset) for r in await store.read_since(0, 10)] == [("a", 0), ("a", 2)]
    assert [r.offset for r in await store.read("a", 0, 10)] == [0, 2]  # a gap, not a shift
    assert await store.read_offsets("a", [1]) == []
    stats = {s.name: (s.event_count, s.next_offset) for s in await store.topic_stats()}
    assert stats == {"a": (2, 3), "b": (0, 1)}
    assert store.last_seq == rows[-1].seq  # seqs are never reused
    assert await store.append_replicated("b", [ReplicatedItem(ev(9), "us", b"blob")]) == [True]
    [again] = await store.read("b", 0, 10)
    assert again.offset == 1 and again.seq > rows[-1].seq
    assert await store.delete_events([]) == 0


async def test_cheap_stats_agree_with_the_full_ones(store: EventStore, clock: Clock) -> None:
    """`topic_bounds` (a new reader's start) and `gauge_stats` (each second) are what
    `topic_stats` says, through gaps and retention; stored bytes once their refresh is due."""
    assert await store.topic_bounds("a") is None
    assert await store.gauge_stats() == []
    await store.append("a", [ev(i, size=100) for i in range(5)], "eu")
    await store.append("b", [ev(1)], "eu")
    assert await store.gauge_stats() == await store.topic_stats()
    rows = await store.read("a", 0, 10)
    assert await store.delete_events([rows[2].seq, (await store.read("b", 0, 1))[0].seq]) == 2
    assert await store.apply_retention("a", older_than=None, max_bytes=300) == 1
    clock.now += 3600  # every cached byte sum is due again
    full = await store.topic_stats()
    assert [(s.first_offset, s.next_offset, s.event_count) for s in full] == [(1, 5, 3), (1, 1, 0)]
    assert await store.gauge_stats() == full
    assert await store.topic_bounds("a") == (1, 5)
    assert await store.topic_bounds("b") == (1, 1)


async def test_offsets_and_seq_survive_restart_after_everything_expired(
    tmp_path: Path, clock: Clock
) -> None:
    s = SqliteEventStore(tmp_path, clock=clock)
    await s.open()
    await s.append("a", [ev(1), ev(2)], "eu")
    last = s.last_seq
    await s.apply_retention("a", older_than=clock.now + 1, max_bytes=None)
    await s.aclose()
    s = SqliteEventStore(tmp_path, clock=clock)
    await s.open()
    try:
        assert s.last_seq == last
        again = await s.append("a", [ev(3)], "eu")
        assert again[0].offset == 2
        assert (await s.read_since(last, 10))[0].seq == last + 1
    finally:
        await s.aclose()


async def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    s = SqliteEventStore(tmp_path)
    await s.open()
    await s.aclose()
    await s.aclose()  # idempotent
    from gateway.errors import GatewayClosing

    with pytest.raises(GatewayClosing):
        await s.append("a", [ev(1)], "eu")


async def test_cancelled_callers_do_not_break_the_writer(store: EventStore) -> None:
    """A caller cancelled mid-write (a client that hung up) leaves later writes working."""
    tasks = [asyncio.create_task(store.append("c", [ev(i)], "eu")) for i in range(200)]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    after = await asyncio.wait_for(store.append("c", [ev("after")], "eu"), 30)
    assert not after[0].duplicate
    stored = {r.offset for r in await store.read("c", 0, 1000)}
    assert after[0].offset in stored
    done = [t for t in tasks if not t.cancelled()]
    assert {t.result()[0].offset for t in done} <= stored
