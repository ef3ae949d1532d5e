"""Local subscription interest: what this gateway's consumers want, for federation to advertise.

An `Interest` is (topic, filters). Open subscriptions and durable groups that passed
`check_subscribe` register here; a durable group stays registered (it will read later) until
the gateway stops. Each change bumps `version` and wakes `wait_changed` callers, so the
federation layer can re-advertise without polling.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from gateway.filters import Filter


@dataclass(frozen=True, slots=True)
class Interest:
    topic: str
    filters: tuple[Filter, ...] = ()  # empty = every event of the topic


class InterestRegistry:
    def __init__(self) -> None:
        self._counts: Counter[Interest] = Counter()
        self._durable: set[Interest] = set()
        self._version = 0
        self._changed = asyncio.Event()

    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> frozenset[Interest]:
        """Every interest currently held, open streams and durable groups together."""
        return frozenset(self._counts) | frozenset(self._durable)

    def topics(self) -> frozenset[str]:
        return frozenset(i.topic for i in self.snapshot())

    def add(self, interest: Interest) -> None:
        before = self.snapshot()
        self._counts[interest] += 1
        self._bump_if(before)

    def remove(self, interest: Interest) -> None:
        before = self.snapshot()
        self._counts[interest] -= 1
        if self._counts[interest] <= 0:
            del self._counts[interest]
        self._bump_if(before)

    def add_durable(self, interest: Interest) -> None:
        before = self.snapshot()
        self._durable.add(interest)
        self._bump_if(before)

    async def wait_changed(self, seen_version: int) -> int:
        """Return the new version once it differs from `seen_version`."""
        while self._version == seen_version:
            await self._changed.wait()
        return self._version

    def _bump_if(self, before: frozenset[Interest]) -> None:
        if self.snapshot() != before:
            self._version += 1
            self._changed.set()
            self._changed = asyncio.Event()
