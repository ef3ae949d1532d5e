"""Metrics of one replica of a region on a JetStream cluster, and the region's lag from it.

Each replica serves its own /metrics (its own registry, gateway/metrics.py): counters such as
`meshgate_events_in` are this replica's, and a dashboard sums them over the replicas (the
scrape target tells them apart; `meshgate_replica_info{replica}` names the process). The
gauges below are read from the cluster, so every replica reports the same region-wide values:

- `meshgate_region_federation_member{replica}`: 1 on the replica holding the federation
  lease (gateway/jetstream_federation.py), 0 on standbys;
- `meshgate_region_peer_lag_events{peer}`: events of the region's log past the cursor the
  cluster holds for that peer (what a failover would resend from);
- `meshgate_region_events`: the region's last seq (all topics).

And this replica's share of the one-writer-per-topic routing (gateway/jetstream_forward.py), read
at scrape time: `meshgate_region_forwarded_rows_total{way}`, `way` = `sent` (rows this replica
forwarded to their topic's owner), `answered` (rows it wrote for the others) or `written_here`
(rows whose owner could not be reached, written by this replica instead: a steady rate means a
replica is dead or unreachable from this one).

Durable groups' `meshgate_consumer_lag` is already region-wide on this store (gateway/app.py
reads the group records the cluster holds; gateway/jetstream_groups.py keeps them current).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gateway.errors import StoreError
from gateway.jetstream_store import JetStreamEventStore

log = logging.getLogger(__name__)

REFRESH = 2.0  # s between reads of the cluster (a few direct gets each)
PEER_CURSOR = "peer:"  # gateway/federation_port.py names a peer's cursor peer:<region>


class RegionMetrics:
    """A gateway service refreshing the region gauges on `registry` from `store`'s cluster."""

    def __init__(self, store: JetStreamEventStore, registry: CollectorRegistry) -> None:
        self._store = store
        info = Gauge(
            "meshgate_replica_info",
            "1, labelled with this gateway process's name among the region's replicas",
            ["replica", "backend"],
            registry=registry,
        )
        info.labels(store.replica, "jetstream").set(1)
        self._member = Gauge(
            "meshgate_region_federation_member",
            "1 on the replica that is the region's federation member (holds the lease)",
            ["replica"],
            registry=registry,
        )
        self._member.labels(store.replica).set(0)
        self._peer_lag = Gauge(
            "meshgate_region_peer_lag_events",
            "Events of the region past the cursor the cluster holds for a peer region",
            ["peer"],
            registry=registry,
        )
        self._events = Gauge(
            "meshgate_region_events", "The region's last event seq (all topics)", registry=registry
        )
        registry.register(_ForwardedRows(store))

    def federation_member(self, holder: bool) -> None:
        self._member.labels(self._store.replica).set(1 if holder else 0)

    async def refresh(self) -> None:
        cursors = await self._store.cursors()
        last = self._store.last_seq
        self._events.set(last)
        for name, seq in cursors.items():
            if name.startswith(PEER_CURSOR):
                self._peer_lag.labels(name.removeprefix(PEER_CURSOR)).set(max(0, last - seq))

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except StoreError as exc:  # the cluster is electing a leader: next time
                log.debug("region metrics not refreshed: %s", exc)
            await asyncio.sleep(REFRESH)

    async def aclose(self) -> None:
        return None


class _ForwardedRows(Collector):
    """`meshgate_region_forwarded_rows_total{way}`, from the store's Forwarder when scraped."""

    def __init__(self, store: JetStreamEventStore) -> None:
        self._store = store

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "meshgate_region_forwarded_rows",
            "Rows routed for one-writer-per-topic: sent to their owner, answered for another "
            "replica, or written here because the owner could not be reached",
            labels=["way"],
        )
        forwarder = self._store.forwarder
        if forwarder is not None:
            family.add_metric(["sent"], forwarder.forwarded)
            family.add_metric(["answered"], forwarder.answered)
            family.add_metric(["written_here"], forwarder.fallbacks)
        yield family
