"""The region lease (gateway/jetstream_lease.py) on the real R3 cluster: one holder at a time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.jetstream_lease import JetStreamLease, LeaseState, decide
from gateway.jetstream_store import JetStreamEventStore
from tests.support.jetstream_fixtures import JetStreamCluster

pytestmark = pytest.mark.xdist_group("jetstream")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_decide() -> None:
    assert decide(None, "a", 0)
    assert decide(LeaseState("a", 10, 1), "a", 5)  # renewal
    assert not decide(LeaseState("b", 10, 1), "a", 5)
    assert decide(LeaseState("b", 10, 1), "a", 10)  # expired


@pytest.fixture
async def store(jetstream_cluster: JetStreamCluster) -> AsyncIterator[JetStreamEventStore]:
    s = JetStreamEventStore(jetstream_cluster.urls, f"l{uuid.uuid4().hex[:10]}")
    await s.open()
    try:
        yield s
    finally:
        await s.aclose()


def lease(store: JetStreamEventStore, holder: str, clock: Clock) -> JetStreamLease:
    return store.lease("sender-us", holder=holder, ttl=10, clock=clock)


async def test_one_holder_among_contenders_then_hand_over(store: JetStreamEventStore) -> None:
    clock = Clock()
    contenders = [lease(store, f"gw{i}", clock) for i in range(5)]
    won = await asyncio.gather(*(c.acquire() for c in contenders))
    assert sum(won) == 1
    holder = contenders[won.index(True)]
    others = [c for c in contenders if c is not holder]
    assert not any(await asyncio.gather(*(c.acquire() for c in others)))
    clock.now += 5
    assert await holder.acquire()  # renewed to now + ttl
    clock.now += 9
    assert not await others[0].acquire()  # the renewal holds
    clock.now += 2
    assert await others[0].acquire()  # the holder stopped renewing: expired, taken
    assert not await holder.acquire()
    await others[0].release()
    assert await others[1].acquire()  # released: no wait for ttl
