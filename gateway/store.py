"""The event store contract: what the gateway (and, through an adapter, federation) needs.

Invariants every implementation keeps (tests/unit/gateway/test_store_contract.py checks them):

- `seq` is global and strictly increasing in commit order; `offset` is per topic, dense at
  append time (0, 1, 2, ...), never reused, even after retention deletes events.
- (topic, source, id) is stored once: a repeat answers the first offset with duplicate=True.
- `append` / `append_replicated` are all-or-nothing per call and return only after the data is
  durable (persist before ack). Listeners registered with `on_append` run after the commit.
- Reads never block writers and return at most `limit` rows (memory does not grow with backlog).
- A stored payload is parsed for its filterable attributes at most once per process where the
  store can help it: `NewEvent.attributes` (what the door already parsed) and
  `StoredEvent.parsed` are optional caches; `attribute_strings(row)` reads through them, and
  a store that fills neither (e.g. a read from disk) just costs a parse.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from eventmodel import attributes as _attributes


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A validated event ready to append: its protobuf bytes plus the keys the store indexes."""

    source: str
    id: str
    type: str
    payload: bytes  # serialized io.cloudevents.v1.CloudEvent
    # The filterable attribute strings of `payload` (eventmodel.attributes.attribute_strings),
    # when the caller already parsed it; None: parsed later, once, if a reader needs them.
    attributes: dict[str, str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ReplicatedItem:
    """An event relayed from another region (federation's input)."""

    event: NewEvent
    origin_region: str
    replication: bytes | None  # opaque to the gateway; stored and returned as is


# One row to append: (topic, event, origin region, replication blob or None for a local publish).
Row = tuple[str, NewEvent, str, bytes | None]


class RowAppends(abc.ABC):
    """The three ways in (`append`, `append_replicated`, `append_replicated_batch`) as one write
    of rows, for a backend that appends local and relayed events alike (`_append_rows`)."""

    @abc.abstractmethod
    async def _append_rows(self, rows: Sequence[Row]) -> list[AppendResult]:
        """Store `rows` as one all-or-nothing write; one result per row, in order."""

    async def append(
        self, topic: str, events: Sequence[NewEvent], origin_region: str
    ) -> list[AppendResult]:
        return await self._append_rows([(topic, e, origin_region, None) for e in events])

    async def append_replicated(self, topic: str, items: Sequence[ReplicatedItem]) -> list[bool]:
        return await self.append_replicated_batch([(topic, it) for it in items])

    async def append_replicated_batch(
        self, entries: Sequence[tuple[str, ReplicatedItem]]
    ) -> list[bool]:
        rows = [(topic, it.event, it.origin_region, it.replication) for topic, it in entries]
        return [not r.duplicate for r in await self._append_rows(rows)]


@dataclass(frozen=True, slots=True)
class AppendResult:
    offset: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    topic: str
    offset: int
    payload: bytes
    origin_region: str
    replication: bytes | None
    received_at: float  # unix seconds at the storing gateway
    size: int
    # Shared by every reader of this row in this process (delivery, each peer link): see
    # `attribute_strings`. None for rows that carry no cache (read from disk, other stores).
    parsed: ParsedOnce | None = field(default=None, compare=False, repr=False)


class ParsedOnce:
    """The filterable attribute strings of one payload, parsed on first use and kept."""

    __slots__ = ("_payload", "_value")

    def __init__(self, payload: bytes, value: dict[str, str] | None = None) -> None:
        self._payload = payload
        self._value = value

    def get(self) -> dict[str, str]:
        if self._value is None:
            self._value = _attributes.attribute_strings(_attributes.parse(self._payload))
        return self._value


def attribute_strings(row: StoredEvent) -> dict[str, str]:
    """`row`'s filterable attribute strings, from its cache when it has one (never mutate)."""
    if row.parsed is not None:
        return row.parsed.get()
    return _attributes.attribute_strings(_attributes.parse(row.payload))


@dataclass(frozen=True, slots=True)
class TopicStats:
    name: str
    first_offset: int
    next_offset: int
    event_count: int
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class GroupRecord:
    topic: str
    group: str
    committed_offset: int  # next offset the group has not acknowledged
    filters_json: str  # the group's filters (eventmodel/filters.py JSON), for interest


AppendListener = Callable[[frozenset[str], int], None]  # (topics touched, last seq)


class AppendListeners:
    """The listener registry every store shares; each store decides how it calls them."""

    def __init__(self) -> None:
        self._listeners: dict[int, AppendListener] = {}
        self._next = 0

    def add(self, listener: AppendListener) -> Callable[[], None]:
        """Register `listener`; returns the function that removes it."""
        key = self._next
        self._next += 1
        self._listeners[key] = listener

        def remove() -> None:
            self._listeners.pop(key, None)

        return remove

    def snapshot(self) -> list[AppendListener]:
        return list(self._listeners.values())


class EventStore(Protocol):
    """Durable, ordered, deduplicated event storage.

    Error handling: every method may raise StoreError; a full disk or database is StoreFull,
    a transient I/O failure StoreUnavailable (nothing of the failed write is stored, and the
    store serves again once the cause is gone). `open` raises StoreUnavailable, in one line,
    when the data directory cannot be written.
    """

    async def open(self) -> None: ...

    async def aclose(self) -> None:
        """Finish queued writes, then close. Idempotent."""

    def on_append(self, listener: AppendListener) -> Callable[[], None]:
        """Call `listener` on the event loop after each commit that appended events."""

    @property
    def last_seq(self) -> int:
        """The highest committed seq (0 when empty)."""

    async def append(
        self, topic: str, events: Sequence[NewEvent], origin_region: str
    ) -> list[AppendResult]:
        """Append local publishes, all-or-nothing; duplicates answer their first offset."""

    async def append_replicated(self, topic: str, items: Sequence[ReplicatedItem]) -> list[bool]:
        """Append relayed events in one transaction; True for each item that was new."""

    async def append_replicated_batch(
        self, entries: Sequence[tuple[str, ReplicatedItem]]
    ) -> list[bool]:
        """Like append_replicated, for (topic, item) pairs of many topics, in ONE transaction."""

    async def read(self, topic: str, from_offset: int, limit: int) -> list[StoredEvent]:
        """Events of `topic` with offset >= from_offset, in offset order."""

    async def read_offsets(self, topic: str, offsets: Sequence[int]) -> list[StoredEvent]:
        """The named events still stored, in offset order (for redelivery)."""

    async def read_since(self, seq: int, limit: int) -> list[StoredEvent]:
        """Events of every topic with seq > `seq`, in seq order (per-peer cursors)."""

    async def offset_at_time(self, topic: str, when: float) -> int:
        """The first offset received at or after `when` (next offset if none)."""

    async def topic_stats(self, topic: str | None = None) -> list[TopicStats]:
        """Stats of one topic (empty list if unknown) or of every topic."""

    async def topic_bounds(self, topic: str) -> tuple[int, int] | None:
        """(first offset, next offset) of `topic`, None if unknown: where a new reader starts,
        cheap whatever the topic holds."""

    async def gauge_stats(self) -> list[TopicStats]:
        """Every topic's stats for the gauges, refreshed each second: exact offsets and counts;
        stored_bytes may be older where summing it means reading every event (JetStream)."""

    def writer_of(self, topic: str) -> str | None:
        """Where clients reach the replica that writes `topic`, when that is another process
        (a writer hint, proto/gateway.proto); None for a store this process alone writes."""

    async def advertise(self, address: str) -> None:
        """This process's client address (host:port), for the writer hints of the region's
        other replicas; nothing to do for a store this process alone writes."""

    async def load_group(self, topic: str, group: str) -> GroupRecord | None: ...

    async def save_group(self, record: GroupRecord) -> None: ...

    async def list_groups(self) -> list[GroupRecord]: ...

    async def get_cursor(self, name: str) -> int | None: ...

    async def set_cursor(self, name: str, seq: int) -> None: ...

    async def apply_retention(
        self, topic: str, *, older_than: float | None, max_bytes: int | None
    ) -> int:
        """Delete the oldest events beyond the limits; return how many were deleted."""

    async def delete_events(self, seqs: Sequence[int]) -> int:
        """Delete the events with these seqs (unknown ones ignored); return how many went.

        Their dedup keys go with them: the same event appended again is stored anew. Federation
        uses it to drop relayed events this region only forwarded (federation/transit.py).
        """
