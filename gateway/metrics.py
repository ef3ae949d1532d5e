"""Prometheus metrics of one gateway, in its own registry (several gateways may share a process).

`meshgate_consumer_lag{topic,group}` (events not yet acknowledged by a durable group) is the
autoscaling signal; it and the stored-bytes gauges are refreshed from the store by
`Gateway._refresh_metrics` every REFRESH seconds and after topic reads.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REFRESH = 1.0


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_in = Counter(
            "meshgate_events_in", "Events stored from publishes", ["topic"], registry=self.registry
        )
        self.duplicates = Counter(
            "meshgate_duplicates",
            "Publishes answered as duplicates",
            ["topic"],
            registry=self.registry,
        )
        self.events_out = Counter(
            "meshgate_events_out", "Events sent to subscribers", ["topic"], registry=self.registry
        )
        self.publish_latency = Histogram(
            "meshgate_publish_latency_seconds",
            "Publish RPC time until durable",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.audit_tampered = Gauge(
            "meshgate_audit_tampered",
            "1 once the audit log was edited under the running gateway (access fails closed)",
            registry=self.registry,
        )
        self.access_open = Gauge(
            "meshgate_access_open",
            "1 when the gateway runs without access control (--open), else 0",
            registry=self.registry,
        )
        self.chain_view_age = Gauge(
            "meshgate_chain_view_age_seconds",
            "Seconds since this gateway's view of the registry last heard from the chain node"
            " (access pauses, fails closed, past the staleness bound); absent on open gateways",
            registry=self.registry,
        )
        self.stored_bytes = Gauge(
            "meshgate_stored_bytes", "Bytes of events stored", ["topic"], registry=self.registry
        )
        self.stored_events = Gauge(
            "meshgate_stored_events", "Events stored", ["topic"], registry=self.registry
        )
        self.consumer_lag = Gauge(
            "meshgate_consumer_lag",
            "Events a durable group has not acknowledged",
            ["topic", "group"],
            registry=self.registry,
        )
        self.unacked_events = Gauge(
            "meshgate_unacked_events",
            "Events handed to a durable group's members and not yet acknowledged "
            "(at most max_ack_pending)",
            ["topic", "group"],
            registry=self.registry,
        )

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server (daemon thread); return the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server: Any = server
        return int(server.server_address[1])

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
