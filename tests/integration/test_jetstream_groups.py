"""Durable groups on the JetStream store (gateway/jetstream_groups.py), on the real R3 cluster.

Two stores of one region stand for two replicas, each with its own SubscriptionHub: the
members of one group on both share its work, and what a replica that went away held
unacknowledged is redelivered to the other after the ack timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cloudevents.core.v1.event import CloudEvent

from eventmodel import sdk as events
from eventmodel.filters import Exact
from gateway.hub import SubscriptionHub
from gateway.interest import InterestRegistry
from gateway.jetstream_groups import JetStreamGroup
from gateway.jetstream_store import JetStreamEventStore
from gateway.store import NewEvent
from gateway.wire import Start
from tests.support.jetstream_fixtures import JetStreamCluster, two_stores
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.xdist_group("jetstream")

ACK_TIMEOUT = 1.0


def ev(i: int, type_: str = "t") -> NewEvent:
    event = CloudEvent({"type": type_, "source": "/s", "id": str(i), "specversion": "1.0"}, {})
    return NewEvent("/s", str(i), type_, events.to_pb(event).SerializeToString(deterministic=True))


@pytest.fixture
async def replicas(
    jetstream_cluster: JetStreamCluster,
) -> AsyncIterator[tuple[JetStreamEventStore, JetStreamEventStore]]:
    async with two_stores(jetstream_cluster, "g", split=True) as two:
        yield two


def hub(store: JetStreamEventStore) -> SubscriptionHub:
    return SubscriptionHub(store, InterestRegistry(), ACK_TIMEOUT, max_batch_bytes=1 << 20)


async def test_members_on_two_replicas_share_work_and_take_over_a_dead_ones(
    replicas: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a, b = replicas
    await a.append("orders", [ev(i) for i in range(40)], "eu")
    ga = await hub(a).open("orders", "g", [], Start())
    [record] = await b.list_groups()  # written at open: the group is known before any ack
    assert (record.group, record.committed_offset) == ("g", 0)
    gb = await hub(b).open("orders", "g", [], Start())
    assert isinstance(ga, JetStreamGroup) and isinstance(gb, JetStreamGroup)
    ma, mb = ga.join(lambda: None), gb.join(lambda: None)
    first_a = await ga.fetch(ma, 10)
    first_b = await gb.fetch(mb, 10)
    assert len(first_a) == len(first_b) == 10
    assert not {o.offset for o in first_a} & {o.offset for o in first_b}  # shared, not copied
    await ga.ack([o.offset for o in first_a[:5]])  # A acks half, then dies holding the rest
    await a.aclose()
    await gb.ack([o.offset for o in first_b])
    got: dict[int, int] = {}

    async def drained() -> bool:
        batch = await gb.fetch(mb, 50)
        for out in batch:
            got[out.offset] = out.attempt
        await gb.ack([o.offset for o in batch])
        return len(got) == 25

    await async_wait_for(drained, timeout=15, what="B to take over A's in-flight events")
    held = {o.offset for o in first_a[5:]}
    assert held <= set(got)  # A's unacked deliveries, redelivered to B
    assert all(got[o] == 2 for o in held)  # as second attempts
    assert not {o.offset for o in first_a[:5]} & set(got)  # what A acked: never again
    assert set(got) | {o.offset for o in first_a[:5]} | {o.offset for o in first_b} == set(
        range(40)
    )
    await gb.persist()
    assert gb.state.committed == 40
    assert (await b.load_group("orders", "g")).committed_offset == 40  # type: ignore[union-attr]


async def test_a_filtered_group_skips_what_does_not_match_and_commits_past_it(
    replicas: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    a, b = replicas
    await a.append("t", [ev(i, "keep" if i % 2 else "drop") for i in range(10)], "eu")
    flt = [Exact("type", "keep")]
    g = await hub(b).open("t", "only-keep", flt, Start())
    m = g.join(lambda: None)
    out = await g.fetch(m, 100)
    assert [o.offset for o in out] == [1, 3, 5, 7, 9]
    await g.ack([o.offset for o in out])

    async def committed_past_the_skipped() -> bool:  # refreshed PERSIST_EVERY after the ack
        return g.state.committed == 10

    await async_wait_for(committed_past_the_skipped, timeout=10, what="committed offset 10")


async def test_a_batch_of_acks_is_recorded_whole_when_its_one_double_ack_is_answered(
    replicas: tuple[JetStreamEventStore, JetStreamEventStore],
) -> None:
    """`ack_many` publishes every ack but the last and double-acks the last: once that answer
    is in, the consumer has recorded every ack of the batch (the acks go through node 1, the
    group's consumer leader may be on another node)."""
    a, _ = replicas
    await a.append("bulk", [ev(i) for i in range(600)], "eu")
    group = await hub(a).open("bulk", "g", [], Start())
    assert isinstance(group, JetStreamGroup)
    member = group.join(lambda: None)
    for _ in range(3):
        batch = await group.fetch(member, 200)
        assert len(batch) == 200
        await group.ack([o.offset for o in reversed(batch)])  # out of order, as members ack
        info = await a.client.consumer_info(group.consumer)
        assert info["num_ack_pending"] == 0, info
    assert info["ack_floor"]["stream_seq"] == a.last_seq

    async def recorded() -> bool:  # the group record follows the ack floor (PERSIST_EVERY)
        [record] = await a.list_groups()
        return record.committed_offset == 600

    await async_wait_for(recorded, timeout=10, what="the group record to reach offset 600")
