"""Federation metrics (prometheus-client), registered on the registry the gateway passes in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from federation.peer_table import PeerInfo


class FederationMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.registry = reg
        self.peer_up = Gauge(
            "meshgate_federation_peer_up",
            "1 while a link to the peer is streaming",
            ["peer"],
            registry=reg,
        )
        self.lag_events = Gauge(
            "meshgate_federation_replication_lag_events",
            "events of our log not yet acknowledged by the peer",
            ["peer"],
            registry=reg,
        )
        self.lag_seconds = Gauge(
            "meshgate_federation_replication_lag_seconds",
            "seconds since the peer last caught up with our log",
            ["peer"],
            registry=reg,
        )
        self.rejected = Counter(
            "meshgate_federation_rejected_events",
            "received events refused before storing, by reason",
            ["reason"],
            registry=reg,
        )
        self.refused_members = Counter(
            "meshgate_federation_refused_members",
            "gossiped members refused, by reason (certificate, address_signature, stale_address)",
            ["reason"],
            registry=reg,
        )
        self.refused_interest = Counter(
            "meshgate_federation_refused_interest",
            "topic interests a peer advertised that no valid reader proof backs, by peer",
            ["peer"],
            registry=reg,
        )
        self.key_sets = Counter(
            "meshgate_federation_key_sets",
            "key sets received from peers, by outcome (accepted, or the host's refusal reason)",
            ["outcome"],
            registry=reg,
        )
        self.link_closes = Counter(
            "meshgate_federation_link_closes",
            "links closed, by CloseReason",
            ["reason"],
            registry=reg,
        )
        self.dials = Counter(
            "meshgate_federation_dials",
            "dials ended, by outcome (streamed, probed, failed: backed off)",
            ["outcome"],
            registry=reg,
        )
        self.transit_deleted = Counter(
            "meshgate_federation_transit_deleted_events",
            "relayed events deleted here once every next hop acknowledged them",
            registry=reg,
        )
        self.sent = Counter(
            "meshgate_federation_events_sent", "events sent to the peer", ["peer"], registry=reg
        )
        self.stored = Counter(
            "meshgate_federation_events_stored",
            "received events stored (new, not duplicates)",
            ["peer"],
            registry=reg,
        )
        self.duplicates = Counter(
            "meshgate_federation_events_duplicate",
            "received events already stored",
            ["peer"],
            registry=reg,
        )

    async def follow_lag(self, peers: Callable[[], Sequence[PeerInfo]]) -> None:
        """Every second, set each linked peer's lag gauges (a task of the node's TaskGroup)."""
        while True:
            await asyncio.sleep(1.0)
            for p in peers():
                if p.up:
                    self.lag_events.labels(p.region).set(p.lag_events)
                    self.lag_seconds.labels(p.region).set(p.lag_seconds)
