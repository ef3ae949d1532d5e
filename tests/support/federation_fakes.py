"""In-memory implementations of the federation ports, for tests of the link shells.

They pass the same contract tests (tests/unit/federation/test_ports_contract.py) as the gateway's
adapter: one global seq, atomic appends, dedup by (topic, source, id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from eventmodel.attributes import attribute_strings as event_attributes
from federation.codec import event_from_bytes
from federation.messages import TopicInterest
from federation.ports import InboundEvent, LogRecord


class MemoryLog:
    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self._keys: set[tuple[str, str, str]] = set()
        self._last_seq = 0  # seqs are never reused, even after discard
        self._changed = asyncio.Condition()

    def _add(self, topic: str, event: bytes, replication: bytes | None) -> bool:
        attrs = event_attributes(event_from_bytes(event))
        key = (topic, attrs["source"], attrs["id"])
        if key in self._keys:
            return False
        self._keys.add(key)
        self._last_seq += 1
        self.records.append(LogRecord(self._last_seq, topic, event, attrs, replication))
        return True

    async def publish(self, topic: str, event: bytes) -> bool:
        """A local publish (what the gateway's Publish RPC does)."""
        added = self._add(topic, event, None)
        async with self._changed:
            self._changed.notify_all()
        return added

    async def read_since(self, seq: int, limit: int) -> Sequence[LogRecord]:
        return [r for r in self.records if r.seq > seq][:limit]

    async def append_replicated(self, events: Sequence[InboundEvent]) -> Sequence[bool]:
        result = [self._add(e.topic, e.event, e.replication) for e in events]
        async with self._changed:
            self._changed.notify_all()
        return result

    async def discard(self, seqs: Sequence[int]) -> None:
        gone = set(seqs)
        for r in self.records:
            if r.seq in gone:
                self._keys.discard((r.topic, r.attributes["source"], r.attributes["id"]))
        self.records = [r for r in self.records if r.seq not in gone]

    def last_seq(self) -> int:
        return self._last_seq

    async def wait_beyond(self, seq: int, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.last_seq() > seq)
        except TimeoutError:
            return False
        return True

    def topic_events(self, topic: str) -> list[LogRecord]:
        return [r for r in self.records if r.topic == topic]


class MemoryCursors:
    def __init__(self) -> None:
        self.cursors: dict[str, int] = {}

    async def load(self, peer: str) -> int:
        return self.cursors.get(peer, 0)

    async def save(self, peer: str, seq: int) -> None:
        if seq < self.cursors.get(peer, 0):
            raise ValueError(f"cursor for {peer} moved back: {seq}")
        self.cursors[peer] = seq


class MemoryInterest:
    def __init__(self, topics: Sequence[TopicInterest] = ()) -> None:
        self.topics = list(topics)
        self.version = 0
        self._changed = asyncio.Condition()

    def local_interest(self) -> Sequence[TopicInterest]:
        return list(self.topics)

    async def set(self, topics: Sequence[TopicInterest]) -> None:
        """Replace the interest and wake `wait_changed` (what a subscribe or revoke does)."""
        self.topics = list(topics)
        self.version += 1
        async with self._changed:
            self._changed.notify_all()

    async def wait_changed(self, seen_version: int) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self.version != seen_version)
        return self.version
