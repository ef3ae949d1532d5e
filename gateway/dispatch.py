"""Async shell around DeliveryState: reads pages from the store, leases, persists group offsets.

One `Dispatcher` per durable (topic, group), shared by that group's members, or one per
ephemeral subscription. `fetch(member, n)` is serialized by a lock so two members never lease
the same offset. Members are woken (their `wake` callback) when the store appends to the topic,
when leases of a leaving member become pending, or when an expired lease can be redelivered.

Ordering rule: a durable group's committed offset is persisted (store.save_group) before the
ack that moved it is considered done; after a restart the group resumes there and redelivers
everything not acknowledged.

Reads: a page of recent events comes from the store's in-memory tail (gateway/store_tail.py)
with its attributes parsed once for every reader (`attribute_strings`); the payload sent is
the stored bytes object itself.

Message size: one fetch returns at most `max_batch_bytes` of payload (but always one event),
so a DeliveryBatch never exceeds the server's message limit (gRPC would end the stream with
RESOURCE_EXHAUSTED, and the same batch would come back and fail again).

Bound: new events are leased only while the group has room under `max_ack_pending`
(DeliveryState.room); once it is full only redeliveries flow, and an ack that frees room wakes
every member (any of them may be the one waiting with credit).

Error handling: a committed offset that cannot be written because the store is full or
unavailable (StoreFull, StoreUnavailable) does not end the stream: it is logged and written
again at the next ack or leave (acks are kept in memory meanwhile; a restart before that
redelivers them: at-least-once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eventmodel import filters
from gateway.delivery import (
    DEFAULT_MAX_ACK_PENDING,
    DEFAULT_MAX_REDELIVERY_DELAY,
    DeliveryState,
)
from gateway.errors import StoreFull, StoreUnavailable
from gateway.store import EventStore, GroupRecord, StoredEvent, attribute_strings

log = logging.getLogger(__name__)

DELIVERY_OVERHEAD = 32  # bytes a Delivery adds around its event (offset, attempt, framing)
PAGE = 256  # rows read per store query: memory stays flat however long the backlog


@dataclass(frozen=True, slots=True)
class Outgoing:
    offset: int
    attempt: int
    payload: bytes


class Dispatcher:
    def __init__(
        self,
        store: EventStore,
        topic: str,
        group: str | None,
        flts: Sequence[filters.Filter],
        committed: int,
        ack_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        stored: bool = True,
        max_ack_pending: int = DEFAULT_MAX_ACK_PENDING,
        max_redelivery_delay: float = DEFAULT_MAX_REDELIVERY_DELAY,
        max_batch_bytes: int | None = None,
    ) -> None:
        """`stored=False`: a new durable group whose start is not persisted yet.
        `max_batch_bytes`: payload bytes per fetch (None: unbounded)."""
        self.max_batch_bytes = max_batch_bytes
        self.store = store
        self.topic = topic
        self.group = group
        self.filters = tuple(flts)
        self.state = DeliveryState(
            committed,
            ack_timeout,
            max_ack_pending=max_ack_pending,
            max_redelivery_delay=max_redelivery_delay,
        )
        self._clock = clock
        self._lock = asyncio.Lock()
        self._members: dict[int, Callable[[], None]] = {}
        self._next_member = 0
        self._persisted = committed if stored else -1

    @property
    def durable(self) -> bool:
        return self.group is not None

    @property
    def members(self) -> int:
        return len(self._members)

    def join(self, wake: Callable[[], None]) -> int:
        member = self._next_member
        self._next_member += 1
        self._members[member] = wake
        return member

    async def leave(self, member: int) -> None:
        self._members.pop(member, None)
        if self.state.release(member):
            self.wake_all()
        await self.persist()

    def hand_back(self, member: int) -> None:
        """`member` will not send what it leased: its leases become pending for anyone."""
        if self.state.release(member):
            self.wake_all()

    def wake_all(self) -> None:
        for wake in list(self._members.values()):
            wake()

    def appended(self) -> None:
        """The store appended to this topic (the hub calls it): members may have work."""
        self.wake_all()

    def next_deadline(self) -> float | None:
        """Monotonic time at which a lease expires (redelivery due), if any."""
        return self.state.next_deadline()

    def seconds_until_deadline(self) -> float | None:
        deadline = self.state.next_deadline()
        return None if deadline is None else max(0.0, deadline - self._clock())

    def expire(self) -> None:
        """Move due leases to pending and wake the members so one with credit takes them."""
        if self.state.expire(self._clock()):
            self.wake_all()

    async def fetch(self, member: int, limit: int) -> list[Outgoing]:
        """Lease up to `limit` events to `member`: redeliveries first, then new events."""
        if limit <= 0:
            return []
        async with self._lock:
            now = self._clock()
            if self.state.expire(now):
                self.wake_all()
            out: list[Outgoing] = []
            budget = _Budget(self.max_batch_bytes)
            pending = self.state.take_pending(member, limit, now)
            if pending:
                rows = await self.store.read_offsets(self.topic, [o for o, _ in pending])
                found = {r.offset: r for r in rows}
                unsent: list[int] = []
                for offset, attempt in pending:
                    row = found.get(offset)
                    if row is None:
                        self.state.forget(offset)
                    elif unsent or not budget.take(len(row.payload)):
                        unsent.append(offset)
                    else:
                        out.append(Outgoing(offset, attempt, row.payload))
                if unsent:
                    self.state.unsend(unsent)
                    return out
            while len(out) < limit and self.state.room() > 0:
                rows = await self.store.read(self.topic, self.state.read_pos, PAGE)
                if not rows:
                    break
                if rows[0].offset > self.state.read_pos:
                    self.state.skip_to(rows[0].offset)
                room = min(limit - len(out), self.state.room())
                taken = self._take_rows(member, rows, room, now, out, budget)
                if not taken:
                    break
            return out

    def _take_rows(
        self,
        member: int,
        rows: list[StoredEvent],
        room: int,
        now: float,
        out: list[Outgoing],
        budget: _Budget,
    ) -> bool:
        """Lease matching rows until `room` or the byte budget is used; True if the whole page
        was consumed."""
        for row in rows:
            if row.offset < self.state.read_pos:
                continue
            if self.filters and not filters.matches_all(self.filters, attribute_strings(row)):
                self.state.skip(row.offset)
                continue
            if room <= 0 or not budget.take(len(row.payload)):
                return False
            attempt = self.state.lease_new(member, row.offset, now)
            out.append(Outgoing(row.offset, attempt, row.payload))
            room -= 1
        return len(rows) == PAGE

    async def ack(self, offsets: Sequence[int]) -> None:
        was_full = self.state.room() == 0
        moved = self.state.ack(offsets)
        if was_full and self.state.room() > 0:
            self.wake_all()  # members with credit wait on the bound, not on new events
        if moved:
            await self.persist()

    async def persist(self) -> None:
        """Store the committed offset of a durable group if it moved.

        A full or unavailable store is logged and retried at the next call (see module doc).
        """
        committed = self.state.committed
        if self.group is None or committed == self._persisted:
            return
        before, self._persisted = self._persisted, committed
        try:
            await self.store.save_group(
                GroupRecord(
                    self.topic,
                    self.group,
                    committed,
                    json.dumps(filters.list_to_json(self.filters)),
                )
            )
        except (StoreFull, StoreUnavailable) as exc:
            if self._persisted == committed:
                self._persisted = before  # not written: the next ack or leave tries again
            log.warning(
                "group %r on topic %r: committed offset %d not saved yet: %s",
                self.group,
                self.topic,
                committed,
                exc,
            )


class _Budget:
    """Payload bytes left for one fetch; the first event always fits."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.left is None:
            return True
        cost = size + DELIVERY_OVERHEAD
        if self.used and cost > self.left:
            return False
        self.left -= cost
        self.used += 1
        return True
