"""Local subscription interest: what this gateway's consumers want, for federation to advertise.

An `Interest` is (topic, filters). Open subscriptions that passed `check_subscribe` register
here while they stream; a revoke or an expiry ends them, and with them their interest.

Durable groups register too, and stay registered while the gateway runs (they will read
later), but only while they are *authorized*: the registry remembers which readers used each
group, and a group's interest counts only while at least one of them may still read the topic
(`may_read`, asked again on every `reevaluate()`, i.e. whenever the access view changes). A
group loaded from the store at start-up has no known reader yet and counts until one
subscribes. So a region whose readers all lost their grants stops attracting the topic's
events (grant-aware routing).

Each change bumps `version` and wakes `wait_changed` callers, so the federation layer can
re-advertise without polling.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from eventmodel.filters import Filter
from gateway.access import Identity

# (reader, topic) -> may that reader still read that topic? Pure and cheap; no audit.
MayRead = Callable[[Identity, str], bool]


@dataclass(frozen=True, slots=True)
class Interest:
    topic: str
    filters: tuple[Filter, ...] = ()  # empty = every event of the topic


def _anyone(reader: Identity, topic: str) -> bool:
    return True


class InterestRegistry:
    def __init__(self, may_read: MayRead = _anyone) -> None:
        self._counts: Counter[Interest] = Counter()
        self._durable: dict[Interest, set[Identity]] = {}  # interest -> readers seen on it
        self._may_read = may_read
        self._published: frozenset[Interest] = frozenset()
        self._version = 0
        self._changed = asyncio.Event()

    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> frozenset[Interest]:
        """Every interest currently held: open streams, and durable groups still authorized."""
        durable = {
            interest
            for interest, readers in self._durable.items()
            if not readers or any(self._may_read(r, interest.topic) for r in readers)
        }
        return frozenset(self._counts) | frozenset(durable)

    def topics(self) -> frozenset[str]:
        return frozenset(i.topic for i in self.snapshot())

    def add(self, interest: Interest) -> None:
        self._counts[interest] += 1
        self.reevaluate()

    def remove(self, interest: Interest) -> None:
        self._counts[interest] -= 1
        if self._counts[interest] <= 0:
            del self._counts[interest]
        self.reevaluate()

    def add_durable(self, interest: Interest, reader: Identity | None = None) -> None:
        """A durable group's interest; `reader` has just subscribed to it (None: loaded)."""
        readers = self._durable.setdefault(interest, set())
        if reader is not None:
            readers.add(Identity(reader.address))  # by address: not one entry per stream
        self.reevaluate()

    def reevaluate(self) -> None:
        """Recompute (e.g. the access view changed); wake waiters if the interest changed."""
        now = self.snapshot()
        if now != self._published:
            self._published = now
            self._version += 1
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_changed(self, seen_version: int) -> int:
        """Return the new version once it differs from `seen_version`."""
        while self._version == seen_version:
            await self._changed.wait()
        return self._version
