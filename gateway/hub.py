"""Open subscriptions and durable groups of one gateway, and how they are woken.

The hub owns every `Dispatcher`: one per durable (topic, group), created on first open from
the persisted committed offset (or the open's start position), and one per ephemeral stream.
It listens to store appends and wakes the dispatchers of the touched topics, and it registers
interest (gateway/interest.py) for subscriptions that passed `check_subscribe`.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from eventmodel import filters
from gateway.access import Identity
from gateway.delivery import DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_REDELIVERY_DELAY
from gateway.dispatch import Dispatcher
from gateway.errors import InvalidRequest
from gateway.interest import Interest, InterestRegistry, reader_proof
from gateway.store import EventStore, GroupRecord
from gateway.wire import Start


@runtime_checkable
class SharedGroups(Protocol):
    """A store that keeps durable groups' dispatch state itself, shared by every gateway of a
    region (gateway/jetstream_groups.py); the hub then opens groups through it."""

    async def open_group(
        self,
        topic: str,
        group: str,
        flts: Sequence[filters.Filter],
        committed: int,
        *,
        ack_timeout: float,
        max_ack_pending: int,
        max_redelivery_delay: float,
        max_batch_bytes: int | None,
    ) -> Dispatcher: ...


class SubscriptionHub:
    def __init__(
        self,
        store: EventStore,
        interest: InterestRegistry,
        ack_timeout: float,
        *,
        max_ack_pending: int = DEFAULT_MAX_ACK_PENDING,
        max_redelivery_delay: float = DEFAULT_MAX_REDELIVERY_DELAY,
        max_batch_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.interest = interest
        self.ack_timeout = ack_timeout
        self.max_ack_pending = max_ack_pending
        self.max_redelivery_delay = max_redelivery_delay
        self.max_batch_bytes = max_batch_bytes  # payload per DeliveryBatch (message limit)
        self._groups: dict[tuple[str, str], Dispatcher] = {}
        self._by_topic: dict[str, set[Dispatcher]] = defaultdict(set)
        self._lock = asyncio.Lock()
        self._remove_listener = store.on_append(self._on_append)
        self.closing = asyncio.Event()

    async def load_durable_interest(self) -> None:
        """Durable groups are known again after a restart with the anonymous reader (on an
        open gateway they attract as before) and their kept readers' unexpired proofs; on a
        registry gateway a group whose readers all lost their grant attracts nothing, until a
        granted reader subscribes (gateway/interest.py)."""
        for record in await self.store.list_groups():
            flts = filters.list_from_json(json.loads(record.filters_json or "[]"))
            self.interest.restore_durable(Interest(record.topic, flts))

    def _on_append(self, topics: frozenset[str], last_seq: int) -> None:
        for topic in topics:
            for dispatcher in list(self._by_topic.get(topic, ())):
                dispatcher.appended()

    async def resolve_start(self, topic: str, start: Start) -> int:
        if start.kind == "offset":
            return start.offset
        if start.kind == "time" and start.time is not None:
            return await self.store.offset_at_time(topic, start.time.timestamp())
        bounds = await self.store.topic_bounds(topic)
        if bounds is None:
            return 0
        first, nxt = bounds
        return nxt if start.kind == "latest" else first

    async def open(
        self,
        topic: str,
        group: str | None,
        flts: Sequence[filters.Filter],
        start: Start,
        reader: Identity | None = None,
    ) -> Dispatcher:
        """The dispatcher for a new stream: the group's shared one, or a fresh ephemeral one."""
        interest = Interest(topic, tuple(flts))
        proof = reader_proof(reader)
        if group is None:
            dispatcher = Dispatcher(
                self.store,
                topic,
                None,
                flts,
                await self.resolve_start(topic, start),
                self.ack_timeout,
                max_ack_pending=self.max_ack_pending,
                max_redelivery_delay=self.max_redelivery_delay,
                max_batch_bytes=self.max_batch_bytes,
            )
        else:
            async with self._lock:
                existing = self._groups.get((topic, group))
                if existing is not None:
                    if existing.filters != tuple(flts) and existing.members == 0:
                        existing.filters = tuple(flts)  # nobody reading: the group re-filters
                    elif existing.filters != tuple(flts):
                        raise InvalidRequest(
                            f"group {group!r} on topic {topic!r} is open with other filters; "
                            "members of a group share one filter set"
                        )
                    dispatcher = existing
                else:
                    record = await self.store.load_group(topic, group)
                    if record is not None:
                        committed = record.committed_offset
                    else:
                        committed = await self.resolve_start(topic, start)
                    dispatcher = await self._new_group(topic, group, flts, committed, record)
                    await dispatcher.persist()
                    self._groups[(topic, group)] = dispatcher
            self.interest.add_durable(Interest(topic, dispatcher.filters), reader, proof)
        self._by_topic[topic].add(dispatcher)
        self.interest.add(interest, proof)
        return dispatcher

    async def _new_group(
        self,
        topic: str,
        group: str,
        flts: Sequence[filters.Filter],
        committed: int,
        record: GroupRecord | None,
    ) -> Dispatcher:
        """In this process, or in the store when the store shares groups among replicas."""
        if isinstance(self.store, SharedGroups):
            return await self.store.open_group(
                topic,
                group,
                flts,
                committed,
                ack_timeout=self.ack_timeout,
                max_ack_pending=self.max_ack_pending,
                max_redelivery_delay=self.max_redelivery_delay,
                max_batch_bytes=self.max_batch_bytes,
            )
        return Dispatcher(
            self.store,
            topic,
            group,
            flts,
            committed,
            self.ack_timeout,
            stored=record is not None,
            max_ack_pending=self.max_ack_pending,
            max_redelivery_delay=self.max_redelivery_delay,
            max_batch_bytes=self.max_batch_bytes,
        )

    def close(self, dispatcher: Dispatcher, flts: Sequence[filters.Filter]) -> None:
        """A stream ended; ephemeral dispatchers are dropped, durable ones stay for the group."""
        self.interest.remove(Interest(dispatcher.topic, tuple(flts)))
        if not dispatcher.durable:
            self._by_topic[dispatcher.topic].discard(dispatcher)

    def groups(self) -> dict[tuple[str, str], Dispatcher]:
        return dict(self._groups)

    def shutdown(self) -> None:
        """Tell every open stream to finish."""
        self.closing.set()
        for dispatchers in self._by_topic.values():
            for dispatcher in list(dispatchers):
                dispatcher.wake_all()
        self._remove_listener()
