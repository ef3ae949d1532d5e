"""Dispatcher over the in-memory store: paging, filters, gaps, group sharing, persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cloudevents.core.v1.event import CloudEvent

from eventmodel import sdk as events
from eventmodel.filters import Exact
from gateway.dispatch import DELIVERY_OVERHEAD, PAGE, Dispatcher
from gateway.errors import StoreFull
from gateway.memory_store import MemoryEventStore
from gateway.store import GroupRecord, NewEvent


def new(i: int, type_: str = "a") -> NewEvent:
    ev = CloudEvent({"type": type_, "source": "/s", "id": str(i), "specversion": "1.0"}, {"i": i})
    return NewEvent("/s", str(i), type_, events.to_pb(ev).SerializeToString(deterministic=True))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store() -> AsyncIterator[MemoryEventStore]:
    s = MemoryEventStore()
    await s.open()
    yield s
    await s.aclose()


async def test_reads_past_a_page_of_filtered_out_events(store: MemoryEventStore) -> None:
    await store.append("t", [new(i, "b") for i in range(PAGE + 10)] + [new(9999, "a")], "eu")
    d = Dispatcher(store, "t", None, [Exact("type", "a")], 0, ack_timeout=5)
    member = d.join(lambda: None)
    out = await d.fetch(member, 5)
    assert [o.offset for o in out] == [PAGE + 10]
    assert d.state.committed == PAGE + 10  # skipped events count as done


async def test_group_members_never_share_an_offset_and_redelivery(store: MemoryEventStore) -> None:
    await store.append("t", [new(i) for i in range(10)], "eu")
    clock = Clock()
    d = Dispatcher(store, "t", "g", [], 0, ack_timeout=5, clock=clock)
    woken: list[str] = []
    a = d.join(lambda: woken.append("a"))
    b = d.join(lambda: woken.append("b"))
    first = await d.fetch(a, 4)
    second = await d.fetch(b, 4)
    assert [o.offset for o in first] == [0, 1, 2, 3]
    assert [o.offset for o in second] == [4, 5, 6, 7]
    await d.ack([0, 1, 2, 3])
    assert (await store.load_group("t", "g")) is not None
    assert (await store.load_group("t", "g")).committed_offset == 4  # type: ignore[union-attr]
    clock.now = 6  # b's leases expire
    again = await d.fetch(a, 10)
    assert [(o.offset, o.attempt) for o in again][:4] == [(4, 2), (5, 2), (6, 2), (7, 2)]
    assert [o.offset for o in again][4:] == [8, 9]
    assert "b" in woken
    await d.leave(a)
    rest = await d.fetch(b, 10)
    assert sorted(o.offset for o in rest) == [4, 5, 6, 7, 8, 9]
    assert all(o.attempt >= 2 for o in rest)


async def test_retention_gap_and_forgotten_redeliveries(store: MemoryEventStore) -> None:
    await store.append("t", [new(i) for i in range(6)], "eu")
    clock = Clock()
    d = Dispatcher(store, "t", None, [], 0, ack_timeout=1, clock=clock)
    m = d.join(lambda: None)
    assert [o.offset for o in await d.fetch(m, 2)] == [0, 1]
    one = len(new(5).payload)
    await store.apply_retention("t", older_than=None, max_bytes=one)  # keeps only the newest
    clock.now = 2
    out = await d.fetch(m, 10)
    assert [o.offset for o in out] == [5]  # 0, 1 are gone: not redelivered, not blocking
    await d.ack([5])
    assert d.state.committed == 6


async def test_ephemeral_dispatcher_persists_nothing(store: MemoryEventStore) -> None:
    await store.append("t", [new(1)], "eu")
    d = Dispatcher(store, "t", None, [], 0, ack_timeout=1)
    m = d.join(lambda: None)
    await d.fetch(m, 1)
    await d.ack([0])
    assert await store.list_groups() == []


async def test_group_leases_at_most_max_ack_pending_and_an_ack_wakes_members(
    store: MemoryEventStore,
) -> None:
    await store.append("t", [new(i) for i in range(50)], "eu")
    clock = Clock()
    d = Dispatcher(store, "t", "g", [], 0, ack_timeout=1, clock=clock, max_ack_pending=4)
    woken: list[str] = []
    a = d.join(lambda: woken.append("a"))
    b = d.join(lambda: woken.append("b"))
    assert [o.offset for o in await d.fetch(a, 100)] == [0, 1, 2, 3]
    assert await d.fetch(b, 100) == []  # the group is full: b gets nothing new
    assert await d.fetch(a, 100) == []
    clock.now = 1  # only the four leased events come back, nothing else is read
    again = await d.fetch(b, 100)
    assert [(o.offset, o.attempt) for o in again] == [(0, 2), (1, 2), (2, 2), (3, 2)]
    woken.clear()
    await d.ack([0, 1])
    assert sorted(woken) == ["a", "b"]  # room freed: every member may take it
    assert [o.offset for o in await d.fetch(a, 100)] == [4, 5]
    assert d.state.unacked == 4


class FullStore(MemoryEventStore):
    """A memory store whose group writes fail like a full disk until `full` is cleared."""

    full = True

    async def save_group(self, record: GroupRecord) -> None:
        if self.full:
            raise StoreFull("store full: database or disk is full")
        await super().save_group(record)


async def test_a_committed_offset_the_full_store_refused_is_written_at_the_next_ack() -> None:
    store = FullStore()
    await store.open()
    try:
        await store.append("t", [new(i) for i in range(3)], "eu")
        d = Dispatcher(store, "t", "g", [], 0, ack_timeout=5)
        m = d.join(lambda: None)
        await d.fetch(m, 3)
        await d.ack([0])  # does not raise: the stream goes on
        assert await store.load_group("t", "g") is None
        store.full = False
        await d.ack([1])
        record = await store.load_group("t", "g")
        assert record is not None and record.committed_offset == 2
    finally:
        await store.aclose()


async def test_a_fetch_stays_within_its_byte_budget_and_always_sends_one(
    store: MemoryEventStore,
) -> None:
    await store.append("t", [new(i) for i in range(10)], "eu")
    size = len(new(0).payload) + DELIVERY_OVERHEAD
    clock = Clock()
    d = Dispatcher(store, "t", "g", [], 0, ack_timeout=1, clock=clock, max_batch_bytes=3 * size)
    m = d.join(lambda: None)
    assert [o.offset for o in await d.fetch(m, 100)] == [0, 1, 2]
    assert [o.offset for o in await d.fetch(m, 100)] == [3, 4, 5]
    clock.now = 1  # six redeliveries due: they come three by three, attempts counted once
    again = await d.fetch(m, 100)
    assert [(o.offset, o.attempt) for o in again] == [(0, 2), (1, 2), (2, 2)]
    again = await d.fetch(m, 100)
    assert [(o.offset, o.attempt) for o in again] == [(3, 2), (4, 2), (5, 2)]
    tiny = Dispatcher(store, "t", None, [], 0, ack_timeout=1, max_batch_bytes=1)
    assert [o.offset for o in await tiny.fetch(tiny.join(lambda: None), 100)] == [0]
