"""RegionInterest (gateway/jetstream_interest.py) on the real R3 cluster: two replicas of one
region, each with its own connection and registry; A merges B's readers, wakes when B's entry
changes, drops it at B's farewell at once and, without one, when it is ttl old."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from eventmodel.filters import Exact
from gateway.interest import Interest, InterestRegistry, ReaderProof
from gateway.jetstream_interest import RegionInterest
from gateway.jetstream_store import JetStreamEventStore
from tests.support.jetstream_fixtures import JetStreamCluster, two_stores

pytestmark = pytest.mark.xdist_group("jetstream")

TTL = 1.5  # s: short, so a dead replica's entry expires within the test
NEWS = Interest("news", (Exact("type", "breaking"),))


@pytest.fixture
async def stores(
    jetstream_cluster: JetStreamCluster,
) -> AsyncIterator[tuple[JetStreamEventStore, JetStreamEventStore]]:
    async with two_stores(jetstream_cluster, "i", split=False) as two:
        yield two


def region_interest(
    store: JetStreamEventStore, registry: InterestRegistry, ttl: float = TTL
) -> RegionInterest:
    return RegionInterest(lambda: store.client, store.layout, store.replica, registry, ttl=ttl)


async def until_topics(source: RegionInterest, want: set[str]) -> int:
    """Wait (on wake-ups, bounded) until `source` advertises exactly `want`."""
    version = await source.wait_changed(-1)
    async with asyncio.timeout(10):
        while {t.topic for t in source.local_interest()} != want:
            version = await source.wait_changed(version)
    return version


async def test_the_holder_merges_a_standbys_readers_and_drops_them_at_its_farewell(
    stores: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    reg_a, reg_b = InterestRegistry(), InterestRegistry()
    ttl = 60.0  # only the farewell can end B's entry within the test
    a, b = region_interest(stores[0], reg_a, ttl), region_interest(stores[1], reg_b, ttl)
    reg_a.add(Interest("orders"))
    proof = ReaderProof("0xb0b", "signed", b"\x01" * 65, time.time() + 3600)
    async with asyncio.TaskGroup() as tg:
        runs = [tg.create_task(a.run()), tg.create_task(b.run())]
        await until_topics(a, {"orders"})
        reg_b.add(NEWS, proof)  # a reader on B
        await until_topics(a, {"orders", "news"})
        [news] = [t for t in a.local_interest() if t.topic == "news"]
        assert news.filters == NEWS.filters
        assert [(p.message, p.signature) for p in news.proofs] == [("signed", proof.signature)]
        assert a.replicas() == [b.replica]
        reg_b.remove(NEWS)  # the reader leaves: withdrawn at once, not after ttl
        await until_topics(a, {"orders"})
        reg_b.add(NEWS, proof)
        await until_topics(a, {"orders", "news"})
        runs[1].cancel()
        await b.farewell()  # a clean stop
        started = time.monotonic()
        await until_topics(a, {"orders"})
        assert time.monotonic() - started < ttl  # the farewell, not the ttl
        runs[0].cancel()


async def test_a_dead_replicas_entry_stops_counting_after_ttl(
    stores: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a = region_interest(stores[0], InterestRegistry())
    reg_b = InterestRegistry()
    b = region_interest(stores[1], reg_b)
    reg_b.add(NEWS)
    async with asyncio.TaskGroup() as tg:
        run_a, run_b = tg.create_task(a.run()), tg.create_task(b.run())
        await until_topics(a, {"news"})
        run_b.cancel()  # dies: no farewell
        with contextlib.suppress(asyncio.CancelledError):
            await run_b
        died = time.monotonic()
        await until_topics(a, set())  # woken by the entry's expiry (bounded: 10 s), no message
        # not before the ttl (B's last heartbeat was at most ttl/3 before it died); an upper
        # bound on time would only measure how loaded the machine is
        assert time.monotonic() - died >= TTL / 2
        assert a.replicas() == []
        run_a.cancel()
