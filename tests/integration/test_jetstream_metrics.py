"""RegionMetrics on the real R3 cluster: the region's gauges come from the cluster, so every
replica reports the same peer lag; the replica and its federation role are labelled."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from gateway.jetstream_metrics import RegionMetrics
from gateway.jetstream_roster import owner_of
from gateway.store import NewEvent
from tests.support.jetstream_fixtures import JetStreamCluster, two_stores
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.xdist_group("jetstream")


async def test_peer_lag_is_read_from_the_cluster_by_every_replica(
    jetstream_cluster: JetStreamCluster,
) -> None:
    async with two_stores(jetstream_cluster, "m", split=False) as (a, b):
        await a.append("t", [NewEvent("/s", str(i), "t", b"x") for i in range(5)], a.layout.region)
        await a.set_cursor("peer:us", a.last_seq - 3)  # the peer holds all but 3 events
        registries = [CollectorRegistry(), CollectorRegistry()]
        metrics = [RegionMetrics(s, r) for s, r in zip((a, b), registries, strict=True)]
        metrics[0].federation_member(True)

        async def b_caught_up() -> bool:  # b appended nothing: it follows the cluster's heads
            return b.last_seq == a.last_seq

        await async_wait_for(b_caught_up, timeout=10, what="b to see a's appends")
        for m in metrics:
            await m.refresh()
        lag_a = registries[0].get_sample_value("meshgate_region_peer_lag_events", {"peer": "us"})
        assert lag_a == 3
        lag_b = registries[1].get_sample_value("meshgate_region_peer_lag_events", {"peer": "us"})
        assert lag_b == 3
        member = {"replica": a.replica}
        assert registries[0].get_sample_value("meshgate_region_federation_member", member) == 1
        info = {"replica": b.replica, "backend": "jetstream"}
        assert registries[1].get_sample_value("meshgate_replica_info", info) == 1


async def test_each_replica_counts_the_rows_it_forwarded_answered_and_wrote_itself(
    jetstream_cluster: JetStreamCluster,
) -> None:
    async with two_stores(jetstream_cluster, "m", split=False) as (a, b):
        fa, fb = a.forwarder, b.forwarder
        assert fa is not None and fb is not None

        async def agreed() -> bool:
            return len(fa.roster.live) == len(fb.roster.live) == 2

        await async_wait_for(agreed, timeout=10, what="one roster of two")
        topic = next(
            t for t in (f"t{i}" for i in range(100)) if owner_of(t, fa.roster.live) == a.replica
        )
        fb.contended(frozenset({topic}))  # as a race with a would have: b routes it to a
        await b.append(topic, [NewEvent("/s", str(i), "t", b"x") for i in range(4)], "m")
        registries = [CollectorRegistry(), CollectorRegistry()]
        for store, registry in zip((a, b), registries, strict=True):
            RegionMetrics(store, registry)

        def rows(i: int, way: str) -> float | None:
            return registries[i].get_sample_value(
                "meshgate_region_forwarded_rows_total", {"way": way}
            )

        assert (rows(1, "sent"), rows(0, "answered")) == (4, 4)
        assert (rows(0, "sent"), rows(1, "answered"), rows(1, "written_here")) == (0, 0, 0)
