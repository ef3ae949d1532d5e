"""A contended topic has one writing replica; the others forward its rows
(gateway/jetstream_forward.py).

Two `JetStreamEventStore` instances on one region of a real 3-node R3 cluster stand for two
gateway replicas. What must hold: both agree on the roster; a topic each is written where it is
published (nothing forwarded, nothing refused); appends through both to shared topics land
dense and once, and once the replicas found the contention no batch is refused (nobody races
for a head); a forward whose owner vanished without a farewell, or left, is written by the
sender; a duplicate sent through the other replica is answered at the stored offset.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest

from gateway.jetstream_client import Put
from gateway.jetstream_errors import Conflict
from gateway.jetstream_forward import Forwarder
from gateway.jetstream_roster import owner_of
from gateway.jetstream_store import JetStreamEventStore
from gateway.store import NewEvent, ReplicatedItem
from tests.support.jetstream_fixtures import JetStreamCluster
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.xdist_group("jetstream")

CANDIDATES = [f"topic-{i}" for i in range(1_000)]  # about half owned by each of two replicas


def owned(replica: str, live: Sequence[str], n: int = 1) -> list[str]:
    """`n` topic names `replica` owns among `live` (never short: owners are drawn by hash of
    random replica names, and eight fixed names all fell to one replica once in 256 runs)."""
    found = [t for t in CANDIDATES if owner_of(t, live) == replica][:n]
    assert len(found) == n, f"{replica} owns fewer than {n} of {len(CANDIDATES)} topics"
    return found


def shared_topics(a: JetStreamEventStore, b: JetStreamEventStore) -> list[str]:
    """Eight topics, four owned by each replica."""
    live = forwarder(a).roster.live
    return sorted(owned(a.replica, live, 4) + owned(b.replica, live, 4))


def ev(i: int, source: str = "/s") -> NewEvent:
    return NewEvent(source, str(i), "t", f"payload {i}".encode())


def forwarder(store: JetStreamEventStore) -> Forwarder:
    assert store.forwarder is not None
    return store.forwarder


def count_refused(store: JetStreamEventStore) -> list[int]:
    """A one-cell counter of the batches the cluster refused to `store`'s writer."""
    refused = [0]
    publish = store.client.publish_batch

    async def counted(puts: Sequence[Put], what: str) -> int:
        try:
            return await publish(puts, what)
        except Conflict:
            refused[0] += 1
            raise

    store.client.publish_batch = counted  # type: ignore[method-assign]
    return refused


async def open_pair(
    cluster: JetStreamCluster, region: str
) -> tuple[JetStreamEventStore, JetStreamEventStore]:
    a = JetStreamEventStore(cluster.urls[:1], region)
    b = JetStreamEventStore(cluster.urls[1:], region)
    await a.open()
    await b.open()

    async def agreed() -> bool:
        return (
            forwarder(a).roster.live == forwarder(b).roster.live
            and len(forwarder(a).roster.live) == 2
        )

    await async_wait_for(agreed, what="both replicas to read one roster of two")
    return a, b


@pytest.fixture
async def pair(
    jetstream_cluster: JetStreamCluster,
) -> AsyncIterator[tuple[JetStreamEventStore, JetStreamEventStore]]:
    a, b = await open_pair(jetstream_cluster, f"r{uuid.uuid4().hex[:10]}")
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_topic_each_is_written_where_it_is_published_whoever_owns_it(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a, b = pair
    refused = [count_refused(a), count_refused(b)]
    live = forwarder(a).roster.live
    [of_b], [of_a] = owned(b.replica, live), owned(a.replica, live)
    for start in range(0, 50, 10):  # each replica publishes only the topic the other owns
        await a.append(of_b, [ev(i) for i in range(start, start + 10)], "r")
        await b.append(of_a, [ev(i) for i in range(start, start + 10)], "r")
    assert [e.offset for e in await b.read(of_b, 0, 100)] == list(range(50))
    assert [e.offset for e in await a.read(of_a, 0, 100)] == list(range(50))
    assert forwarder(a).forwarded == forwarder(b).forwarded == 0
    assert refused[0][0] + refused[1][0] == 0


async def test_both_replicas_write_shared_topics_densely_once_and_stop_racing(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a, b = pair
    refused = [count_refused(a), count_refused(b)]
    topics = shared_topics(a, b)

    async def publish(store: JetStreamEventStore, source: str, rounds: range) -> None:
        for start in rounds:
            for topic in topics:
                await store.append(topic, [ev(i, source) for i in range(start, start + 6)], "r")

    async def both(rounds: range) -> None:
        await asyncio.gather(
            *(publish(s, f"/{s.replica}{n}", rounds) for s in (a, b) for n in "xy")
        )

    await both(range(0, 30, 6))  # the replicas race, find the contention, and route
    contended = forwarder(a).contended_topics() | forwarder(b).contended_topics()
    assert contended, "two writers on one topic should have been noticed"
    refused[0][0] = refused[1][0] = 0
    for f in (forwarder(a), forwarder(b)):
        f.contended(frozenset(topics))  # as the first race would have, for every topic
    await both(range(30, 60, 6))

    for topic in topics:
        events = await b.read(topic, 0, 1_000)
        assert [e.offset for e in events] == list(range(240)), topic
    assert refused[0][0] + refused[1][0] == 0  # routed: nobody raced for a head again
    assert forwarder(a).forwarded > 0 and forwarder(b).forwarded > 0
    assert forwarder(a).answered == forwarder(b).forwarded
    assert forwarder(b).answered == forwarder(a).forwarded
    assert forwarder(a).fallbacks == forwarder(b).fallbacks == 0


async def test_a_duplicate_through_the_other_replica_is_answered_at_its_offset(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a, b = pair
    first = await a.append("dup", [ev(1), ev(2)], "r")
    again = await b.append("dup", [ev(2), ev(1), ev(3)], "r")
    assert [(r.offset, r.duplicate) for r in first] == [(0, False), (1, False)]
    assert [(r.offset, r.duplicate) for r in again] == [(1, True), (0, True), (2, False)]


async def test_a_call_across_topics_of_both_owners_answers_in_order(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a, b = pair
    live = forwarder(a).roster.live
    [mine], [theirs] = owned(a.replica, live), owned(b.replica, live)
    forwarder(a).contended(frozenset({mine, theirs}))  # as a race with b would have
    entries = [
        (mine if i % 2 else theirs, ReplicatedItem(ev(i), "eu", f"blob {i}".encode()))
        for i in range(10)
    ]
    assert await a.append_replicated_batch(entries) == [True] * 10
    again = await a.append_replicated_batch(entries[3:6])
    assert again == [False] * 3
    for topic, wanted in ((theirs, [0, 2, 4, 6, 8]), (mine, [1, 3, 5, 7, 9])):
        stored = await b.read(topic, 0, 10)
        assert [e.offset for e in stored] == list(range(5))
        assert [e.replication for e in stored] == [f"blob {i}".encode() for i in wanted]
        assert {e.origin_region for e in stored} == {"eu"}


async def test_a_forward_to_an_owner_that_vanished_is_written_here(
    jetstream_cluster: JetStreamCluster,
) -> None:
    a, b = await open_pair(jetstream_cluster, f"r{uuid.uuid4().hex[:10]}")
    try:
        [theirs] = owned(a.replica, forwarder(b).roster.live)
        forwarder(b).contended(frozenset({theirs}))  # as a race with a would have
        await b.append(theirs, [ev(0)], "r")
        assert forwarder(b).forwarded == 1
        # a's connection drops without a farewell (as a kill -9 does): its entry stays live
        await a.client.nc.close()
        results = await b.append(theirs, [ev(0), ev(1), ev(2)], "r")
        assert [(r.offset, r.duplicate) for r in results] == [(0, True), (1, False), (2, False)]
        assert forwarder(b).fallbacks == 3
        assert a.replica in forwarder(b).roster.live
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_replica_that_leaves_is_dropped_from_the_roster_at_once(
    jetstream_cluster: JetStreamCluster,
) -> None:
    a, b = await open_pair(jetstream_cluster, f"r{uuid.uuid4().hex[:10]}")
    try:
        await a.aclose()

        async def alone() -> bool:
            return forwarder(b).roster.live == (b.replica,)

        await async_wait_for(alone, timeout=3.0, what="the farewell to reach b")
        theirs = owned(a.replica, tuple(sorted((a.replica, b.replica))), 4)
        for topic in theirs:
            assert [r.offset for r in await b.append(topic, [ev(0)], "r")] == [0]
        assert forwarder(b).fallbacks == 0
    finally:
        await a.aclose()
        await b.aclose()
