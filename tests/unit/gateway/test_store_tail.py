"""CommittedTail (pure) and the SQLite store reading through it: a read it answers is what the
database answers; one below its coverage goes to the database (slow readers never miss)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.sqlite_store import SqliteEventStore
from gateway.store import NewEvent, StoredEvent, attribute_strings
from gateway.store_tail import CommittedTail
from proto import cloudevents_pb2


def row(seq: int, topic: str, offset: int, size: int = 10) -> StoredEvent:
    return StoredEvent(seq, topic, offset, b"x" * size, "eu", None, 0.0, size)


def test_empty_tail_answers_reads_at_the_committed_end_without_the_database() -> None:
    tail = CommittedTail(5, {"a": 3})
    assert tail.read("a", 3, 10) == []
    assert tail.read("new", 0, 10) == []  # a topic never appended to
    assert tail.since(5, 10) == []
    assert tail.read("a", 2, 10) is None  # before the tail: the database answers
    assert tail.since(4, 10) is None


def test_committed_rows_are_served_in_order_and_deletions_leave() -> None:
    tail = CommittedTail(0, {})
    tail.committed([row(1, "a", 0), row(2, "b", 0), row(3, "a", 1)], [], {"a": 2, "b": 1}, 3)
    assert [r.seq for r in tail.since(0, 10) or []] == [1, 2, 3]
    assert [r.seq for r in tail.since(1, 1) or []] == [2]
    assert [r.offset for r in tail.read("a", 0, 10) or []] == [0, 1]
    assert [r.offset for r in tail.offsets("a", [1]) or []] == [1]
    tail.committed([], [2], {}, 3)
    assert [r.seq for r in tail.since(0, 10) or []] == [1, 3]
    assert tail.read("b", 0, 10) == []


def test_eviction_moves_coverage_up() -> None:
    tail = CommittedTail(0, {}, max_bytes=25, max_events=100)
    tail.committed([row(i + 1, "a", i) for i in range(5)], [], {"a": 5}, 5)
    assert len(tail) == 2 and tail.bytes == 20 and tail.low == 3
    assert tail.read("a", 2, 10) is None and tail.offsets("a", [2, 3]) is None
    assert [r.offset for r in tail.read("a", 3, 10) or []] == [3, 4]
    assert tail.since(2, 10) is None
    assert [r.seq for r in tail.since(3, 10) or []] == [4, 5]


async def test_slow_reader_behind_an_evicted_tail_reads_the_database(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path, tail=CommittedTail(0, {}, max_events=8))
    await store.open()
    try:
        for i in range(30):
            await store.append("t", [NewEvent("/s", f"{i}", "t", b"%d" % i)], "eu")
        assert store.tail.low > 0
        old = await store.read("t", 0, 100)  # from disk
        recent = await store.read("t", 28, 100)  # from the tail
        since = await store.read_since(0, 100)
        again = await store.read_offsets("t", [1, 29])
    finally:
        await store.aclose()
    assert [r.offset for r in old] == list(range(30))
    assert [r.payload for r in old] == [b"%d" % i for i in range(30)]
    assert [r.offset for r in recent] == [28, 29]
    assert recent == old[28:]  # the tail answers what the database answers
    assert [r.seq for r in since] == list(range(1, 31))
    assert [r.offset for r in again] == [1, 29]


async def test_a_tail_row_is_the_stored_bytes_with_attributes_parsed_once(tmp_path: Path) -> None:
    pb = cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t.a")
    payload = pb.SerializeToString(deterministic=True)
    store = SqliteEventStore(tmp_path)
    await store.open()
    try:
        await store.append("t", [NewEvent("/s", "1", "t.a", payload)], "eu")
        first, second = await asyncio.gather(store.read("t", 0, 1), store.read_since(0, 1))
    finally:
        await store.aclose()
    assert first[0] is second[0] and first[0].payload is payload  # bytes stored = bytes sent
    attrs = attribute_strings(first[0])
    assert attrs["type"] == "t.a" and attribute_strings(second[0]) is attrs


async def test_retention_and_deletes_leave_the_tail_too(tmp_path: Path) -> None:
    now = [100.0]
    store = SqliteEventStore(tmp_path, clock=lambda: now[0])
    await store.open()
    try:
        await store.append("t", [NewEvent("/s", f"{i}", "t", b"x") for i in range(3)], "eu")
        now[0] = 200.0
        await store.append("t", [NewEvent("/s", "3", "t", b"x")], "eu")
        assert await store.apply_retention("t", older_than=150.0, max_bytes=None) == 3
        assert [r.offset for r in await store.read("t", 0, 10)] == [3]
        assert await store.delete_events([4]) == 1
        assert await store.read("t", 0, 10) == [] and await store.read_since(0, 10) == []
    finally:
        await store.aclose()
