"""In-memory EventStore: same contract as the SQLite store, nothing durable.

For tests of the layers above and for throw-away gateways; it passes the same contract tests
(tests/unit/gateway/test_store_contract.py). Appends are applied under one lock, so each call
is all-or-nothing with respect to readers; listeners run on the loop after the append, as with
the SQLite store's commits.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable, Sequence

from gateway.errors import GatewayClosing
from gateway.store import (
    AppendListener,
    AppendListeners,
    AppendResult,
    GroupRecord,
    NewEvent,
    ParsedOnce,
    ReplicatedItem,
    StoredEvent,
    TopicStats,
)


class MemoryEventStore:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._events: dict[str, list[StoredEvent]] = {}  # per topic, offset order
        self._keys: dict[tuple[str, str, str], int] = {}
        self._by_seq: list[StoredEvent] = []
        self._next_offsets: dict[str, int] = {}
        self._groups: dict[tuple[str, str], GroupRecord] = {}
        self._cursors: dict[str, int] = {}
        self._listeners = AppendListeners()
        self._last_seq = 0
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def aclose(self) -> None:
        self._open = False

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def on_append(self, listener: AppendListener) -> Callable[[], None]:
        return self._listeners.add(listener)

    def _check_open(self) -> None:
        if not self._open:
            raise GatewayClosing("store is closed")

    def _insert(
        self, topic: str, event: NewEvent, origin: str, blob: bytes | None, now: float
    ) -> AppendResult:
        key = (topic, event.source, event.id)
        if key in self._keys:
            return AppendResult(self._keys[key], True)
        offset = self._next_offsets.get(topic, 0)
        self._last_seq += 1
        row = StoredEvent(
            self._last_seq,
            topic,
            offset,
            event.payload,
            origin,
            blob,
            now,
            len(event.payload),
            ParsedOnce(event.payload, event.attributes),
        )
        self._events.setdefault(topic, []).append(row)
        self._by_seq.append(row)
        self._keys[key] = offset
        self._next_offsets[topic] = offset + 1
        return AppendResult(offset, False)

    def _notify(self, topics: set[str]) -> None:
        if not topics:
            return
        frozen, last = frozenset(topics), self._last_seq
        loop = asyncio.get_running_loop()
        for listener in self._listeners.snapshot():
            loop.call_soon(listener, frozen, last)

    async def append(
        self, topic: str, events: Sequence[NewEvent], origin_region: str
    ) -> list[AppendResult]:
        self._check_open()
        now = self._clock()
        out = [self._insert(topic, e, origin_region, None, now) for e in events]
        self._notify({topic} if any(not r.duplicate for r in out) else set())
        return out

    async def append_replicated(self, topic: str, items: Sequence[ReplicatedItem]) -> list[bool]:
        return await self.append_replicated_batch([(topic, it) for it in items])

    async def append_replicated_batch(
        self, entries: Sequence[tuple[str, ReplicatedItem]]
    ) -> list[bool]:
        self._check_open()
        now = self._clock()
        out: list[bool] = []
        touched: set[str] = set()
        for topic, it in entries:
            result = self._insert(topic, it.event, it.origin_region, it.replication, now)
            fresh = not result.duplicate
            out.append(fresh)
            if fresh:
                touched.add(topic)
        self._notify(touched)
        return out

    def _from(self, topic: str, offset: int) -> tuple[list[StoredEvent], int]:
        rows = self._events.get(topic, [])
        return rows, bisect.bisect_left([r.offset for r in rows], offset)

    async def read(self, topic: str, from_offset: int, limit: int) -> list[StoredEvent]:
        self._check_open()
        rows, start = self._from(topic, from_offset)
        return rows[start : start + limit]

    async def read_offsets(self, topic: str, offsets: Sequence[int]) -> list[StoredEvent]:
        self._check_open()
        wanted = set(offsets)
        return [r for r in self._events.get(topic, []) if r.offset in wanted]

    async def read_since(self, seq: int, limit: int) -> list[StoredEvent]:
        self._check_open()
        start = bisect.bisect_right([r.seq for r in self._by_seq], seq)
        return self._by_seq[start : start + limit]

    async def offset_at_time(self, topic: str, when: float) -> int:
        for row in self._events.get(topic, []):
            if row.received_at >= when:
                return row.offset
        return self._next_offsets.get(topic, 0)

    async def topic_stats(self, topic: str | None = None) -> list[TopicStats]:
        names = sorted(self._next_offsets) if topic is None else [topic]
        out = []
        for name in names:
            if name not in self._next_offsets:
                continue
            rows = self._events.get(name, [])
            nxt = self._next_offsets[name]
            out.append(
                TopicStats(
                    name=name,
                    first_offset=rows[0].offset if rows else nxt,
                    next_offset=nxt,
                    event_count=len(rows),
                    stored_bytes=sum(r.size for r in rows),
                )
            )
        return out

    async def topic_bounds(self, topic: str) -> tuple[int, int] | None:
        stats = await self.topic_stats(topic)
        return (stats[0].first_offset, stats[0].next_offset) if stats else None

    async def gauge_stats(self) -> list[TopicStats]:
        return await self.topic_stats()

    def writer_of(self, topic: str) -> str | None:
        return None  # one process writes every topic

    async def advertise(self, address: str) -> None:
        return None

    async def delete_events(self, seqs: Sequence[int]) -> int:
        self._check_open()
        wanted = set(seqs)
        gone = {(r.topic, r.offset) for r in self._by_seq if r.seq in wanted}
        if not gone:
            return 0
        for topic in {t for t, _ in gone}:
            self._events[topic] = [r for r in self._events[topic] if r.seq not in wanted]
        self._by_seq = [r for r in self._by_seq if r.seq not in wanted]
        self._keys = {k: o for k, o in self._keys.items() if (k[0], o) not in gone}
        return len(gone)

    async def load_group(self, topic: str, group: str) -> GroupRecord | None:
        return self._groups.get((topic, group))

    async def save_group(self, record: GroupRecord) -> None:
        self._check_open()
        self._groups[(record.topic, record.group)] = record

    async def list_groups(self) -> list[GroupRecord]:
        return [self._groups[k] for k in sorted(self._groups)]

    async def get_cursor(self, name: str) -> int | None:
        return self._cursors.get(name)

    async def set_cursor(self, name: str, seq: int) -> None:
        self._check_open()
        self._cursors[name] = seq

    def set_cursor_soon(self, name: str, seq: int) -> None:
        self._check_open()
        self._cursors[name] = seq

    async def apply_retention(
        self, topic: str, *, older_than: float | None, max_bytes: int | None
    ) -> int:
        self._check_open()
        rows = self._events.get(topic, [])
        keep = [r for r in rows if older_than is None or r.received_at >= older_than]
        if max_bytes is not None:
            total = sum(r.size for r in keep)
            while keep and total > max_bytes:
                total -= keep.pop(0).size
        gone = {r.seq for r in rows} - {r.seq for r in keep}
        self._events[topic] = keep
        self._by_seq = [r for r in self._by_seq if r.seq not in gone]
        return len(gone)
