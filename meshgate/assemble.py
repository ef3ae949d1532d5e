"""The composition root: one gateway process, built top down in one place.

Start-up order (`serve_process`), each step only after the one before it succeeded:

1. access: `RegistryService.open` (probe the chain, open the audit log, start the follower,
   wait for the initial sync) or `OpenAccess` when the settings say `--open`;
2. the parts the gateway shares with federation: store (not yet opened), metrics, interest;
3. the federation node over the gateway's ports (`gateway.federation_port`), when configured
   (a region on JetStream: `LeasedFederation` runs it on the one replica holding the lease);
4. the `Gateway` with all of them; entering it opens the store and starts gRPC (and the HTTP
   edge when `settings.http` is set);
5. `on_ready(gateway)` (the CLI prints the readiness line), then `gateway.serve()` runs every
   service in one TaskGroup until `request_stop()`.

Teardown is the reverse, under one AsyncExitStack: the gateway (stop accepting, end streams,
drain publishes, close federation, close the store), then the registry (follower, audit log).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path

from eventmodel.provenance import Binding
from federation.certs import load_identity
from federation.metrics import FederationMetrics
from federation.node import FederationNode
from federation.ports import InterestSource, KeySetSource
from gateway.access import AccessControl, OpenAccess
from gateway.app import Gateway, Service
from gateway.encrypted_topics import EncryptedTopicRules
from gateway.federation_port import federation_ports, peer_view
from gateway.http import schemas as http_schemas
from gateway.http import subscriptions as http_subscriptions
from gateway.interest import InterestRegistry
from gateway.interest_file import FILE_NAME as INTEREST_PROOFS
from gateway.interest_file import ProofFile
from gateway.interest_proofs import ProofJudge, access_reader
from gateway.jetstream_federation import DEFAULT_TTL as DEFAULT_LEASE_TTL
from gateway.jetstream_federation import LEASE_NAME, LeasedFederation
from gateway.jetstream_interest import RegionInterest
from gateway.jetstream_lease import JetStreamLease
from gateway.jetstream_metrics import RegionMetrics
from gateway.jetstream_relay import WILDCARD_HOSTS, HolderAddress, PeerRelay
from gateway.jetstream_store import JetStreamEventStore
from gateway.key_set_store import KeySetStore
from gateway.key_sets import GatewayKeySets
from gateway.metrics import GatewayMetrics
from gateway.publishers import PublisherRights
from gateway.schema_checks import SchemaRules
from gateway.service import PeerView
from gateway.sqlite_store import SqliteEventStore
from gateway.store import EventStore
from meshgate.registry_service import RegistryService
from meshgate.settings import FederationSettings, GatewaySettings
from meshgate.tracing import setup as setup_tracing


class ClosedAfterStore:
    """Runs a part inside the gateway's TaskGroup, but leaves closing it to the exit stack, so
    the ledger closes after the store (the gateway closes its services before its store)."""

    def __init__(self, part: Service) -> None:
        self.part = part

    async def run(self) -> None:
        await self.part.run()

    async def aclose(self) -> None:
        return None


def chain_view_age(registry: RegistryService) -> Callable[[], float]:
    """The chain view's age for `meshgate_chain_view_age_seconds` (+inf before it first syncs)."""
    view = registry.access.policy.view

    def age() -> float:
        fresh = view.freshness
        return math.inf if fresh is None else fresh.age(time.time())

    return age


def publisher_rights(registry: RegistryService, grace: float) -> PublisherRights:
    """What every door that stores an event checks on a registry gateway (issue 11), then
    each topic's rules: encrypted topics take sealed events only (issue 12)."""
    policy = registry.access.policy
    address = registry.settings.ledger.registry or ""
    binding = Binding.of(policy.config.signin.chain_id, address)
    catch_up = registry.access.catch_up
    rules = [SchemaRules(lambda: policy.view, catch_up)]  # issue 16
    encrypted = EncryptedTopicRules(policy.view, catch_up=catch_up, grace=grace)  # issue 12
    return PublisherRights(
        binding=binding, policy=policy, catch_up=catch_up, rules=[encrypted, *rules]
    )


def registry_key_sets(
    registry: RegistryService, publishers: PublisherRights, data_dir: Path
) -> GatewayKeySets:
    """Encrypted topics' key sets (issue 12): held in the data directory (each replica of a
    JetStream region its own copy), taken only when this gateway's view of the chain backs them."""
    store = KeySetStore(data_dir)
    store.load()
    view = registry.access.policy.view
    return GatewayKeySets(store, view, publishers.binding, registry.access.catch_up)


def build_federation(
    settings: FederationSettings,
    store: EventStore,
    interest: InterestRegistry,
    metrics: GatewayMetrics,
    publishers: PublisherRights | None = None,
    judge: ProofJudge | None = None,
    federation_metrics: FederationMetrics | None = None,  # one per process (a rebuilt node)
    key_sets: KeySetSource | None = None,  # flooded through the mesh (issue 12)
    interest_source: InterestSource | None = None,  # default: this gateway's own readers
) -> FederationNode:
    log_port, cursors, interest_port = federation_ports(store, interest, publishers)
    return FederationNode(
        config=settings.peer,
        identity=load_identity(settings.tls_dir),
        log_port=log_port,
        cursors=cursors,
        interest=interest_source or interest_port,
        metrics=federation_metrics or FederationMetrics(metrics.registry),
        judge=judge,  # None (open gateway): route on any interest
        key_sets=key_sets,  # None (open gateway): no key sets to flood
    )


def leased_federation(
    store: JetStreamEventStore,
    region_metrics: RegionMetrics,
    settings: FederationSettings,
    interest: InterestRegistry,
    metrics: GatewayMetrics,
    publishers: PublisherRights | None,
    judge: ProofJudge | None,
    key_sets: KeySetSource | None,
) -> LeasedFederation:
    """A region on JetStream: the node runs only on the replica holding the region's lease."""
    federation_metrics = FederationMetrics(metrics.registry)
    # the holder advertises every replica's readers (gateway/jetstream_interest.py)
    region = RegionInterest(lambda: store.client, store.layout, store.replica, interest)

    def build() -> FederationNode:
        return build_federation(
            settings,
            store,
            interest,
            metrics,
            publishers,
            judge,
            federation_metrics,
            key_sets,
            interest_source=region,
        )

    def lease() -> JetStreamLease:  # once the store is open
        return store.lease(LEASE_NAME, holder=store.replica, ttl=DEFAULT_LEASE_TTL)

    # a standby relays peers' connections to the holder (gateway/jetstream_relay.py)
    holder = HolderAddress(lambda: store.client, store.layout)
    host, port = settings.peer.listen_host, settings.peer.listen_port

    async def announce(node: FederationNode) -> None:
        await holder.publish(store.replica, f"{host}:{node.port}")

    relayed = port != 0 and host not in WILDCARD_HOSTS  # others must reach what we publish
    return LeasedFederation(
        lease,
        build,
        on_role=region_metrics.federation_member,
        interest=region,
        standby_port=(lambda: PeerRelay(host, port, holder.read)) if relayed else None,
        announce=announce if relayed else None,
    )


async def serve_process(
    settings: GatewaySettings, *, on_ready: Callable[[Gateway], None] = lambda gateway: None
) -> None:
    """Build the gateway process from `settings` and serve it until SIGTERM/SIGINT."""
    config = settings.gateway
    if settings.federation is not None:
        load_identity(settings.federation.tls_dir)  # fail fast, before the chain or the store
    tracing = setup_tracing(service="meshgate-gateway", region=config.region)  # OTEL_* (16)
    async with contextlib.AsyncExitStack() as stack:
        if tracing is not None:
            stack.callback(tracing.shutdown)  # last: flushes the spans of the whole teardown
        access: AccessControl
        services: list[Service] = []
        publishers: PublisherRights | None = None
        key_sets: GatewayKeySets | None = None
        if settings.registry is not None:
            registry = await RegistryService.open(settings.registry, config.data_dir)
            stack.push_async_callback(registry.aclose)
            access = registry.access
            publishers = publisher_rights(registry, config.encryption_grace)
            key_sets = registry_key_sets(registry, publishers, config.data_dir)
            services.append(ClosedAfterStore(registry))
        else:
            access = OpenAccess()
        store: EventStore = SqliteEventStore(config.data_dir)
        if settings.store is not None:  # the region's events on a JetStream cluster
            store = JetStreamEventStore(
                settings.store.servers, config.region, replicas=settings.store.replicas
            )
        metrics = GatewayMetrics()
        if isinstance(store, JetStreamEventStore):  # this replica, and the region's lag (14)
            region_metrics = RegionMetrics(store, metrics.registry)
            services.append(region_metrics)
        if settings.registry is not None:
            audit = registry.audit
            metrics.audit_tampered.set_function(lambda: 1.0 if audit.tampered else 0.0)
            metrics.chain_view_age.set_function(chain_view_age(registry))
        proofs = ProofFile(config.data_dir / INTEREST_PROOFS)  # durable groups' reader proofs
        interest = InterestRegistry(may_read=access.may_read, durable_proofs=proofs)
        peers: Callable[[], PeerView] = PeerView
        if settings.federation is not None:
            judge = None
            if settings.registry is not None:  # route only on readers' proofs (issue 11)
                chain_id = registry.access.policy.config.signin.chain_id
                judge = ProofJudge(chain_id=chain_id, may_read=access_reader(access.may_read))
            if isinstance(store, JetStreamEventStore):  # replicas: one member per region (14)
                leased = leased_federation(
                    store,
                    region_metrics,
                    settings.federation,
                    interest,
                    metrics,
                    publishers,
                    judge,
                    key_sets,
                )
                services.append(leased)
                peers = peer_view(leased.peers)
            else:
                node = build_federation(
                    settings.federation,
                    store,
                    interest,
                    metrics,
                    publishers,
                    judge,
                    key_sets=key_sets,
                )
                services.append(node)  # FederationNode.run() / aclose(): a gateway service
                peers = peer_view(node.peers)
        gateway = Gateway(
            config,
            access=access,
            store=store,
            interest=interest,
            metrics=metrics,
            services=services,
            peers=peers,
            http=settings.http,
            http_routes=[http_subscriptions.add_routes, http_schemas.add_routes],
            publishers=publishers,
            key_sets=key_sets,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, gateway.request_stop)
        await stack.enter_async_context(gateway)
        on_ready(gateway)
        await gateway.serve()
