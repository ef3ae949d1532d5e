"""`Gateway`: one region's gateway (store, client API, delivery), from GatewayConfig and parts.

The process is assembled top down by `meshgate.assemble`, which builds the parts first and
hands them in; the gateway never builds another layer's parts:

- `access`: an AccessControl (gateway/access.py); default OpenAccess (logs loudly).
- `store`, `interest`, `metrics`: built by the caller when another part shares them (the
  federation node reads the store and the interest); defaults for a stand-alone gateway.
- `services`: objects with `async run()` (runs until cancelled, inside serve()'s TaskGroup)
  and `async aclose()` (closed before the store, in reverse order).
- `servicers`: callables `(grpc.aio.Server) -> None` that add servicers to the client port.
- `http`, `http_routes`: the HTTP edge (gateway/http/): served when `http` is given, with its
  core routes plus each `(app, parts) -> None` route adder (gateway/http/app.py).
- `peers`: a callable returning the PeerView for ListPeers.
- `key_sets`: a registry gateway's key sets of encrypted topics (gateway/key_sets.py), served
  by GetKeySets/PutKeySet; None on an open gateway.

Resource handling: `async with Gateway(...) as gw:` opens the store, starts gRPC (and the
metrics HTTP server) and services; `await gw.serve()` runs background work until
`request_stop()`; `aclose()` is idempotent and shuts down in order: stop accepting + end
subscription streams, grpc server stop(grace) and the HTTP edge's close (both drain in-flight
publishes), services, store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.access import AccessControl, OpenAccess
from gateway.config import MESSAGE_OVERHEAD, GatewayConfig, join_host_port
from gateway.http.config import HttpConfig
from gateway.http.parts import HttpParts, RouteAdder
from gateway.http.server import HttpServer
from gateway.hub import SubscriptionHub
from gateway.interest import InterestRegistry
from gateway.key_sets import GatewayKeySets
from gateway.metrics import REFRESH, GatewayMetrics
from gateway.publishers import PublisherRights
from gateway.service import GatewayService, PeerView
from gateway.service import add_to_server as add_gateway_service
from gateway.sqlite_store import SqliteEventStore
from gateway.store import EventStore
from proto import gateway_pb2

log = logging.getLogger(__name__)

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name
# Health-checked only while the gateway runs without access control: monitoring can alert on
# an open gateway with one standard health query (NOT_FOUND means access control is on).
OPEN_ACCESS_HEALTH = "meshgate.access.open"
DURABILITY_OS_HEALTH = "meshgate.durability.os"  # SERVING when writes are acked before fsync


class Service(Protocol):
    """A background part of the process: runs inside serve()'s TaskGroup, closed before the
    store."""

    async def run(self) -> None: ...

    async def aclose(self) -> None: ...


ServicerAdder = Callable[[grpc.aio.Server], None]


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        access: AccessControl | None = None,
        services: Sequence[Service] = (),
        servicers: Sequence[ServicerAdder] = (),
        peers: Callable[[], PeerView] = PeerView,
        store: EventStore | None = None,
        interest: InterestRegistry | None = None,
        metrics: GatewayMetrics | None = None,
        http: HttpConfig | None = None,
        http_routes: Sequence[RouteAdder] = (),
        publishers: PublisherRights | None = None,
        key_sets: GatewayKeySets | None = None,
    ) -> None:
        self.config = config
        self.access: AccessControl = access if access is not None else OpenAccess()
        self.store: EventStore = (
            store
            if store is not None
            else SqliteEventStore(config.data_dir, durability=config.durability)
        )
        # Grant-aware interest: durable groups count only while a reader may still read, and
        # are re-judged whenever the access view changes (a revoke, an expiry, staleness).
        self.interest = (
            interest if interest is not None else InterestRegistry(may_read=self.access.may_read)
        )
        self._unsubscribe_interest = self.access.view.subscribe(self.interest.reevaluate)
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self.hub = SubscriptionHub(
            self.store,
            self.interest,
            config.ack_timeout,
            max_ack_pending=config.max_ack_pending,
            max_redelivery_delay=config.max_redelivery_delay,
            max_batch_bytes=config.max_message_bytes - MESSAGE_OVERHEAD,
        )
        self.services: tuple[Service, ...] = tuple(services)
        self._servicer_adders = tuple(servicers)
        self._http_config = http
        self._http_routes = tuple(http_routes)
        self.http: HttpServer | None = None
        self._peers = peers
        self.publishers = publishers  # None: an open gateway accepts unsigned events
        self.key_sets = key_sets  # None: no encrypted topics (an open gateway)
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.metrics_port: int | None = None
        self._stop = asyncio.Event()
        self._closed = False
        self._health = health.HealthServicer()

    @property
    def open_access(self) -> bool:
        """True when anyone may publish and read (no registry: the operator chose --open)."""
        return isinstance(self.access, OpenAccess)

    @property
    def listen(self) -> str:
        return join_host_port(self.config.host, self.port)

    async def __aenter__(self) -> Gateway:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        self.access.view.bind(asyncio.get_running_loop())
        await self.store.open()
        await self.hub.load_durable_interest()
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self.config.max_message_bytes),
                ("grpc.max_send_message_length", self.config.max_message_bytes),
            ]
        )
        self.service = GatewayService(
            self.config,
            self.store,
            self.hub,
            self.access,
            self.metrics,
            self._peers,
            publishers=self.publishers,
            key_sets=self.key_sets,
        )
        add_gateway_service(self.service, server)  # malformed requests: INVALID_ARGUMENT
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for add in self._servicer_adders:
            add(server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        self.port = server.add_insecure_port(self.config.listen)
        if not self.port:
            raise OSError(f"cannot listen on {self.config.listen}")
        await server.start()
        self.server = server
        if address := self.config.client_address(self.port):
            await self.store.advertise(address)  # writer hints name us (a region of replicas)
        self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        if self.open_access:
            self._health.set(OPEN_ACCESS_HEALTH, health_pb2.HealthCheckResponse.SERVING)
        if self.config.durability == "os":
            self._health.set(DURABILITY_OS_HEALTH, health_pb2.HealthCheckResponse.SERVING)
        self.metrics.access_open.set(1 if self.open_access else 0)
        if self.config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.config.host, self.config.metrics_port)
        if self._http_config is not None:
            parts = HttpParts(
                gateway=self.config,
                http=self._http_config,
                store=self.store,
                hub=self.hub,
                access=self.access,
                metrics=self.metrics,
                publishers=self.publishers,
            )
            self.http = HttpServer(
                self._http_config,
                parts,
                self._http_routes,
                shutdown_grace=self.config.shutdown_grace,
            )
            await self.http.start()
        log.info("gateway %s serving on %s", self.config.region, self.listen)

    def request_stop(self) -> None:
        """Ask serve() to return (signal handlers call this)."""
        self._stop.set()

    async def serve(self) -> None:
        """Run background work (retention, metrics, services) until request_stop()."""
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._retention_loop()),
                *(tg.create_task(s.run()) for s in self.services),
            ]
            if self.metrics_port is not None:
                # The gauges are only read over /metrics, and refreshing them costs requests
                # per topic each second (SQLite: COUNT and SUM): no endpoint, no refresh.
                tasks.append(tg.create_task(self._metrics_loop()))
            await self._stop.wait()
            for task in tasks:
                task.cancel()
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        try:
            async with asyncio.timeout(self.config.shutdown_grace + 10):
                self._health.enter_graceful_shutdown()
                self.hub.shutdown()
                # Both listeners stop accepting and drain in-flight publishes together.
                stops = [] if self.http is None else [self.http.aclose()]
                if self.server is not None:
                    stops.append(self.server.stop(self.config.shutdown_grace))
                await asyncio.gather(*stops)
                for service in reversed(self.services):
                    try:
                        await service.aclose()
                    except Exception:
                        log.exception("service failed to close")
        finally:
            await self.store.aclose()
            self.metrics.stop()
            log.info("gateway %s stopped", self.config.region)

    # -- background work -------------------------------------------------------------

    async def apply_retention(self) -> int:
        """One retention pass over every topic; returns events deleted."""
        deleted = 0
        now = time.time()
        if self.config.retention.unbounded and all(
            r.unbounded for r in self.config.topic_retention.values()
        ):
            return 0  # nothing to cut: skip topic_stats, which scans every stored event
        for stats in await self.store.topic_stats():
            policy = self.config.retention_for(stats.name)
            if policy.unbounded:
                continue
            deleted += await self.store.apply_retention(
                stats.name,
                older_than=now - policy.max_age_seconds if policy.max_age_seconds else None,
                max_bytes=policy.max_bytes or None,
            )
        return deleted

    async def _retention_loop(self) -> None:
        while True:
            try:
                deleted = await self.apply_retention()
                if deleted:
                    log.info("retention deleted %d events", deleted)
            except Exception:
                log.exception("retention pass failed")
            await asyncio.sleep(self.config.retention_interval)

    async def refresh_metrics(self) -> None:
        stats = {s.name: s for s in await self.store.gauge_stats()}
        for s in stats.values():
            self.metrics.stored_bytes.labels(s.name).set(s.stored_bytes)
            self.metrics.stored_events.labels(s.name).set(s.event_count)
        for record in await self.store.list_groups():
            topic = stats.get(record.topic)
            if topic is None:
                continue
            live = self.hub.groups().get((record.topic, record.group))
            committed = live.state.committed if live is not None else record.committed_offset
            lag = max(0, topic.next_offset - max(committed, topic.first_offset))
            self.metrics.consumer_lag.labels(record.topic, record.group).set(lag)
            unacked = live.state.unacked if live is not None else 0
            self.metrics.unacked_events.labels(record.topic, record.group).set(unacked)

    async def _metrics_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.refresh_metrics()
            await asyncio.sleep(REFRESH)
