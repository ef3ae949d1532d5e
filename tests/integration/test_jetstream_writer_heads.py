"""The writer's cached topic heads follow other processes' commits (the store's head follower).

Two `JetStreamEventStore` instances on one region stand for two gateway replicas: without the
follower, a replica learns of the other's commit on a topic only from its own refused batch
(a conflict, the whole batch sent again), which is the cost of two replicas on one topic.
Both stores write every topic themselves (`forward=False`): what is tested is the writer's
own concurrency, which still matters while replicas disagree on a topic's owner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from gateway.jetstream_client import Put
from gateway.jetstream_errors import Conflict
from gateway.jetstream_store import JetStreamEventStore
from gateway.store import NewEvent
from tests.support.jetstream_fixtures import JetStreamCluster, two_stores
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.xdist_group("jetstream")


def ev(i: int) -> NewEvent:
    return NewEvent("/s", str(i), "t", b"x" * 10)


@pytest.fixture
async def pair(
    jetstream_cluster: JetStreamCluster,
) -> AsyncIterator[tuple[JetStreamEventStore, JetStreamEventStore]]:
    async with two_stores(jetstream_cluster, "r", split=True, forward=False) as two:
        yield two


async def test_a_replica_plans_on_the_head_another_moved_without_a_refused_batch(
    pair: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a, b = pair
    await a.append("t", [ev(i) for i in range(10)], "r")
    await b.append("t", [ev(10)], "r")  # b has the topic's head cached now
    await a.append("t", [ev(i) for i in range(11, 21)], "r")  # ... and a moved it on

    async def b_saw_it() -> bool:
        return b.last_seq >= a.last_seq

    await async_wait_for(b_saw_it, what="b's follower to see a's commit")
    refused = 0
    publish = b.client.publish_batch

    async def counted(puts: Sequence[Put], what: str) -> int:
        nonlocal refused
        try:
            return await publish(puts, what)
        except Conflict:
            refused += 1
            raise

    b.client.publish_batch = counted  # type: ignore[method-assign]
    results = await b.append("t", [ev(21)], "r")
    assert [(r.offset, r.duplicate) for r in results] == [(21, False)]
    assert refused == 0
    assert [e.offset for e in await a.read("t", 0, 100)] == list(range(22))
