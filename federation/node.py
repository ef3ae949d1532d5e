"""FederationNode: one gateway's membership, routing and links, over its host's ports.

Owns: the mTLS peer server, one dial loop per known peer address, the registered links (one per
peer region), the routing table, the member table (CA-verified certificates and signing keys),
and an interest poller. `async with FederationNode(...)` starts it; `aclose()` drains links, then
stops dialing and the server. Idempotent.

Of two gossiped members, only the lexicographically smaller region dials the other (one link per
pair). Duplicates that remain (seeds dialing each other at once) are resolved the same way on
both sides: the link dialed by the smaller region wins. A seed address whose region is unknown is
dialed once without a TLS name check to learn it ("probe"), then redialed as that region.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc

from federation.certs import Identity, verify_member_certificate
from federation.config import PeerConfig
from federation.errors import CertificateError, FederationError, OriginNotYetKnown
from federation.identity_tls import dial_channel
from federation.link import AcceptedTransport, DialedTransport, PeerLink
from federation.messages import EventBatch, Interest, Member, ReplicatedEvent
from federation.metrics import FederationMetrics
from federation.ports import CursorStore, InterestSource, LogRecord, ReplicationLog
from federation.protocol import CloseReason, LinkProtocol, LinkSettings, LinkState
from federation.replication import inbound_events, outbound_events
from federation.routing import RoutingTable
from federation.server import start_peer_server
from federation.signing import SignatureVerifier
from proto import federation_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerInfo:
    """One row of the peer table (what `ListPeers` reports)."""

    region: str
    address: str
    up: bool
    lag_events: int
    lag_seconds: float
    last_seen: float  # unix time, 0 if never
    distance: int  # 0 if no route
    topics: tuple[str, ...] = ()  # what that region wants, as routed from here


class FederationNode:
    def __init__(
        self,
        *,
        config: PeerConfig,
        identity: Identity,
        log_port: ReplicationLog,
        cursors: CursorStore,
        interest: InterestSource,
        metrics: FederationMetrics | None = None,
    ) -> None:
        if identity.region != config.region:
            raise CertificateError(
                f"certificate is for region {identity.region!r}, config says {config.region!r}"
            )
        self.config = config
        self.identity = identity
        self.region = config.region
        self.metrics = metrics or FederationMetrics()
        self._log = log_port
        self._cursors = cursors
        self._interest = interest
        self.routing = RoutingTable(self.region)
        self._verifier = SignatureVerifier()
        self._keys: dict[str, bytes] = {self.region: identity.verify_key}
        self._members: dict[str, Member] = {}
        self._addresses: dict[str, str | None] = {s: None for s in config.seeds}
        self._links: dict[str, PeerLink] = {}
        self._last_seen: dict[str, float] = {}
        self._saved_cursors: dict[str, int] = {}
        self._versions = itertools.count(int(time.time() * 1000))
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._link_tasks: set[asyncio.Task[CloseReason]] = set()
        self._server: grpc.aio.Server | None = None
        self._changed = asyncio.Event()
        self._closing = False
        self._closed = False
        self.port = 0

    # ---- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> FederationNode:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        self._server, self.port = await start_peer_server(
            self, self.identity, self.config.listen_host, self.config.listen_port
        )
        self.address = self.config.advertise_address or f"{self.config.listen_host}:{self.port}"
        self._members[self.region] = Member(self.region, self.address, self.identity.cert_pem)
        self.routing.set_local(self._interest.local_interest())
        self._spawn(self._poll_interest())
        self._spawn(self._update_gauges())
        for address in list(self._addresses):
            self._ensure_dialer(address)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        for link in list(self._links.values()):
            link.drain()
        if self._link_tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.drain_timeout + 1):
                    await asyncio.gather(*self._link_tasks, return_exceptions=True)
        for task in [*self._dialers.values(), *self._tasks, *self._link_tasks]:
            task.cancel()
        await asyncio.gather(
            *self._dialers.values(), *self._tasks, *self._link_tasks, return_exceptions=True
        )
        if self._server is not None:
            await self._server.stop(grace=0.5)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- queries --------------------------------------------------------------------------------

    def links(self) -> dict[str, PeerLink]:
        return dict(self._links)

    def members(self) -> tuple[Member, ...]:
        return tuple(self._members[r] for r in sorted(self._members))

    async def wait_linked(self, regions: Sequence[str], timeout: float = 30.0) -> None:
        """Wait until links to all `regions` stream (and their interest arrived)."""
        async with asyncio.timeout(timeout):
            while not all(r in self._links for r in regions):
                self._changed.clear()
                await self._changed.wait()

    async def wait_route(self, region: str, topic: str, timeout: float = 30.0) -> None:
        """Wait until `region` is routed and wants `topic` (any filter)."""
        async with asyncio.timeout(timeout):
            while True:
                route = self.routing.route(region)
                if route is not None and any(t.topic == topic for t in route.topics):
                    return
                self._changed.clear()
                await self._changed.wait()

    def peers(self) -> list[PeerInfo]:
        routes = self.routing.routes()
        last = self._log.last_seq()
        now = time.time()
        out = []
        for region in sorted(set(self._members) | set(routes) | set(self._links)):
            if region == self.region:
                continue
            link = self._links.get(region)
            route = routes.get(region)
            member = self._members.get(region)
            lag = max(0, last - link.protocol.acked_seq) if link else 0
            out.append(
                PeerInfo(
                    region=region,
                    address=member.peer_address if member else "",
                    up=link is not None,
                    lag_events=lag,
                    lag_seconds=(now - link.caught_up_at) if link and lag else 0.0,
                    last_seen=link.last_seen if link else self._last_seen.get(region, 0.0),
                    distance=route.distance if route and not route.stale else 0,
                    topics=tuple(sorted({t.topic for t in route.topics})) if route else (),
                )
            )
        return out

    # ---- accepting and dialing ------------------------------------------------------------------

    async def accept(self, context: grpc.aio.ServicerContext, peer_region: str) -> None:
        """Serve an inbound Link stream from a peer whose certificate names `peer_region`."""
        if self._closing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "shutting down")
        link = await self._new_link(AcceptedTransport(context), peer_region, dialed=False)
        task = asyncio.ensure_future(link.run())
        self._link_tasks.add(task)
        try:
            self.metrics.link_closes.labels((await task).value).inc()
        finally:
            self._link_tasks.discard(task)

    async def _new_link(
        self,
        transport: AcceptedTransport | DialedTransport,
        region: str | None,
        *,
        dialed: bool,
        address: str = "",
    ) -> PeerLink:
        cursor = await self._cursors.load(region) if region else 0
        c = self.config
        protocol = LinkProtocol(
            local_region=self.region,
            expected_region=region,
            members=self.members(),
            cursor=cursor,
            settings=LinkSettings(
                window=c.window,
                ping_interval=c.ping_interval,
                stale_after=c.stale_after,
                handshake_timeout=c.handshake_timeout,
                drain_timeout=c.drain_timeout,
            ),
            now=asyncio.get_running_loop().time(),
        )
        return PeerLink(
            host=self, transport=transport, protocol=protocol, dialed=dialed, address=address
        )

    def _ensure_dialer(self, address: str) -> None:
        if (
            address in self._dialers
            or self._closing
            or address == self._members[self.region].peer_address
        ):
            return
        self._dialers[address] = asyncio.ensure_future(self._dial_loop(address))

    async def _dial_loop(self, address: str) -> None:
        """Keep one link to the region at `address`; exponential backoff with jitter."""
        c = self.config
        delay = c.reconnect_initial
        while not self._closing:
            region = self._addresses.get(address)
            if region is not None and region in self._links:
                self._changed.clear()
                await self._changed.wait()
                continue
            reason = await self._dial_once(address, region)
            if reason is CloseReason.PROBED:
                continue
            if reason in (CloseReason.SHUTDOWN, CloseReason.PEER_CLOSED) and region is not None:
                delay = c.reconnect_initial
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(c.reconnect_max, delay * 2)

    async def _dial_once(self, address: str, region: str | None) -> CloseReason:
        channel = dial_channel(self.identity, address, region)
        try:
            stub = federation_pb2_grpc.FederationStub(channel)
            call = stub.Link()
            link = await self._new_link(DialedTransport(call), region, dialed=True, address=address)
            task = asyncio.ensure_future(link.run())
            self._link_tasks.add(task)
            try:
                reason = await task
            finally:
                self._link_tasks.discard(task)
                call.cancel()
            self.metrics.link_closes.labels(reason.value).inc()
            return reason
        except (grpc.aio.AioRpcError, FederationError) as exc:
            log.debug("dial %s failed: %s", address, exc)
            return CloseReason.PEER_CLOSED
        finally:
            await channel.close()

    # ---- LinkHost -------------------------------------------------------------------------------

    def link_up(self, link: PeerLink, members: tuple[Member, ...]) -> bool:
        region = link.peer_region
        assert region is not None
        self._learn_members(members)
        if link.dialed and link.protocol.expected_region is None:
            # a probed seed: we now know who listens there; redial with a TLS name check
            self._addresses[link.address] = region
            link.close(CloseReason.PROBED)
            return True
        if link.dialed:
            self._addresses[link.address] = region
        existing = self._links.get(region)
        if existing is not None and existing.state is not LinkState.CLOSED:
            preferred_dialed = self.region < region
            if existing.dialed == preferred_dialed or link.dialed != preferred_dialed:
                return False
            existing.close(CloseReason.DUPLICATE)
        self._links[region] = link
        self.routing.peer_up(region)
        self.metrics.peer_up.labels(region).set(1)
        link.send(link.protocol.send_interest(self._advertisement(region)))
        self._changed.set()
        log.info(
            "%s linked to %s (%s)", self.region, region, "dialed" if link.dialed else "accepted"
        )
        return True

    def link_interest(self, link: PeerLink, interest: Interest) -> None:
        region = link.peer_region
        if region is None or self._links.get(region) is not link:
            return
        if self.routing.peer_advertised(region, interest):
            self._readvertise()
        self._changed.set()

    def link_members(self, link: PeerLink, members: tuple[Member, ...]) -> None:
        self._learn_members(members)

    def link_down(self, link: PeerLink) -> None:
        region = link.peer_region
        if region is None or self._links.get(region) is not link:
            return
        del self._links[region]
        self._last_seen[region] = link.last_seen
        self.metrics.peer_up.labels(region).set(0)
        if self.routing.peer_down(region):
            self._readvertise()
        self._changed.set()

    async def store_batch(self, link: PeerLink, batch: EventBatch) -> None:
        """Verify, then persist atomically (before the protocol acks it).

        Raises OriginNotYetKnown, storing nothing, when an event's origin is not a known member
        yet: the link closes unacknowledged and the peer resends from its cursor.
        """
        peer = link.peer_region or "?"
        accepted, rejected = inbound_events(
            batch.events,
            local_region=self.region,
            verifier=self._verifier,
            origin_key=self._keys.get,
        )
        unknown = [r.event.origin_region for r in rejected if r.reason == "unknown_origin"]
        if unknown:
            self.metrics.rejected.labels("unknown_origin").inc(len(unknown))
            unknown = sorted(set(unknown))
            raise OriginNotYetKnown(f"batch from {peer} carries events of unknown {unknown}")
        for r in rejected:
            self.metrics.rejected.labels(r.reason).inc()
            log.warning(
                "rejected event %s/%s from %s: %s",
                r.event.origin_region,
                r.event.origin_offset,
                peer,
                r.reason,
            )
        if accepted:
            new = await self._log.append_replicated(accepted)
            fresh = sum(1 for n in new if n)
            self.metrics.stored.labels(peer).inc(fresh)
            self.metrics.duplicates.labels(peer).inc(len(new) - fresh)

    async def read_log(self, seq: int) -> Sequence[LogRecord]:
        return await self._log.read_since(seq, self.config.batch_size)

    async def wait_log(self, seq: int, timeout: float) -> bool:
        return await self._log.wait_beyond(seq, timeout)

    def outbound(self, link: PeerLink, records: Sequence[LogRecord]) -> tuple[ReplicatedEvent, ...]:
        assert link.peer_region is not None
        events = outbound_events(
            records,
            peer=link.peer_region,
            routing=self.routing,
            hop_limit=self.config.hop_limit,
            signing_seed=self.identity.signing_seed,
        )
        self.metrics.sent.labels(link.peer_region).inc(len(events))
        return events

    async def save_cursor(self, link: PeerLink, seq: int) -> None:
        """Persist a peer's cursor; never backwards (a replaced duplicate link may lag)."""
        peer = link.peer_region
        if peer is None or seq <= self._saved_cursors.get(peer, -1):
            return
        self._saved_cursors[peer] = seq
        await self._cursors.save(peer, seq)

    # ---- internals ------------------------------------------------------------------------------

    def _learn_members(self, members: Sequence[Member]) -> None:
        learnt = False
        for m in members:
            if m.region == self.region:
                continue
            try:
                ident = verify_member_certificate(m.certificate_pem, self.identity.ca_pem)
            except CertificateError as exc:
                log.warning("ignoring member %s: %s", m.region, exc)
                continue
            if ident.region != m.region:
                log.warning("ignoring member %s: certificate names %s", m.region, ident.region)
                continue
            known = self._members.get(m.region)
            self._keys[m.region] = ident.verify_key
            if known != m:
                self._members[m.region] = m
                learnt = True
            if m.peer_address and self._addresses.get(m.peer_address) is None:
                self._addresses[m.peer_address] = m.region
                if m.peer_address in self.config.seeds or (
                    self.config.mesh and self.region < m.region
                ):
                    self._ensure_dialer(m.peer_address)
        if learnt:
            for link in list(self._links.values()):
                link.send(link.protocol.send_members(self.members()))

    def _advertisement(self, peer: str) -> Interest:
        return Interest(next(self._versions), self.routing.advertisement_for(peer))

    def _readvertise(self) -> None:
        for region, link in list(self._links.items()):
            link.send(link.protocol.send_interest(self._advertisement(region)))

    async def _poll_interest(self) -> None:
        while True:
            await asyncio.sleep(self.config.interest_poll)
            if self.routing.set_local(self._interest.local_interest()):
                self._readvertise()

    async def _update_gauges(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for p in self.peers():
                if p.up:
                    self.metrics.lag_events.labels(p.region).set(p.lag_events)
                    self.metrics.lag_seconds.labels(p.region).set(p.lag_seconds)
