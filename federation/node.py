"""FederationNode: the asyncio shell that runs one gateway's federation over its host's ports.

Decisions live in pure cores (`Membership`, `RoutingTable`, `LinkProtocol`, `replication`,
`Transit`); this shell carries out their actions.

Resource handling: `run()` owns the mTLS peer server and one TaskGroup holding every background
task: the dialer, each dial, each accepted link, the interest watcher and the gauges. On
cancellation or `aclose()` it drains the links (at most `drain_timeout` + 1 s), cancels
the rest and stops the server. `start()`/`aclose()` (and `async with`) run `run()` as one task
for hosts without a TaskGroup of their own (federation/own_task.py); `aclose()` is idempotent
and re-raises its failure. Key sets of encrypted topics are flooded by `key_sets`
(federation/key_set_relay.py) over the host's KeySetSource port.
Error handling: a link that fails closes with its CloseReason (INTERNAL_ERROR for a bug, logged
with its traceback) and is redialed with backoff; a dial that raises is logged and counts as a
failed dial. A failure of the dialer, the interest watcher or the gauges ends `run()` with that
error (the gateway stops loudly instead of running without federation).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Sequence

import grpc

from federation import raw_wire
from federation.certs import Identity, verified_members
from federation.config import PeerConfig
from federation.datapath import DataPath
from federation.errors import CertificateError
from federation.identity_tls import dial_channel
from federation.interest_watch import InterestWatcher
from federation.key_set_relay import KeySetRelay
from federation.link import AcceptedTransport, DialedTransport, PeerLink, Transport
from federation.membership import Close, Dial, DialOutcome, Membership, Register
from federation.messages import EventBatch, Interest, Member, ReplicatedEvent, TopicKeySet
from federation.metrics import FederationMetrics
from federation.own_task import OwnTask
from federation.peer_table import PeerInfo, peer_table
from federation.ports import CursorStore, InterestSource, KeySetSource, LogRecord, ReplicationLog
from federation.protocol import CloseReason, LinkProtocol, LinkState
from federation.routing import Judge, RoutingTable
from federation.server import start_peer_server

log = logging.getLogger(__name__)


class _Stopped(Exception):
    pass


class FederationNode(OwnTask):
    def __init__(
        self,
        *,
        config: PeerConfig,
        identity: Identity,
        log_port: ReplicationLog,
        cursors: CursorStore,
        interest: InterestSource,
        metrics: FederationMetrics | None = None,
        judge: Judge | None = None,  # None: route on any interest (an open gateway)
        key_sets: KeySetSource | None = None,  # None: no key sets to flood (an open gateway)
    ) -> None:
        if identity.region != config.region:
            raise CertificateError(
                f"certificate is for region {identity.region!r}, config says {config.region!r}"
            )
        super().__init__(f"{config.region}-federation")  # start()/aclose() (federation/own_task.py)
        self.config = config
        self.identity = identity
        self.region = config.region
        self.metrics = metrics or FederationMetrics()
        self._cursors = cursors
        self._interest = interest
        self.routing = RoutingTable(self.region, judge)
        self._watcher = InterestWatcher(self.routing, interest, self._readvertise)
        self.membership: Membership[PeerLink] = Membership(
            local_region=self.region,
            seeds=config.seeds,
            mesh=config.mesh,
            reconnect_initial=config.reconnect_initial,
            reconnect_max=config.reconnect_max,
        )
        self.data = DataPath(
            config=config,
            log_port=log_port,
            cursors=cursors,
            routing=self.routing,
            metrics=self.metrics,
            signing_seed=identity.signing_seed,
            keys={self.region: identity.verify_key},
        )
        self.key_sets = KeySetRelay(key_sets, self.metrics)  # the flood (issue 12)
        self._last_seen: dict[str, float] = {}
        self._versions = itertools.count(int(time.time() * 1000))
        self._tg: asyncio.TaskGroup | None = None
        self._link_tasks: set[asyncio.Task[CloseReason]] = set()
        self._changed = asyncio.Event()  # links or routes changed (wait_linked, wait_route)
        self._wake_dialer = asyncio.Event()
        self._closing = False
        self.port = 0
        self.address = ""

    # ---- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the federation until cancelled or `aclose()` (see the module docstring)."""
        server: grpc.aio.Server | None = None
        try:
            c = self.config
            server, self.port = await start_peer_server(
                self, self.identity, c.listen_host, c.listen_port
            )
            self.address = c.advertise_address or f"{c.listen_host}:{self.port}"
            me = Member(self.region, self.address, self.identity.cert_pem)
            self.membership.listening(me, self.identity.signing_seed, next(self._versions))
            self.routing.set_local(self._interest.local_interest())
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._dialer(), name=f"{self.region}-dialer")
                tg.create_task(self._watcher.run(), name=f"{self.region}-interest")
                tg.create_task(self.metrics.follow_lag(self.peers), name=f"{self.region}-gauges")
                tg.create_task(self.key_sets.run(), name=f"{self.region}-key-sets")
                self._ready.set()
                try:
                    await self._stop.wait()
                finally:
                    await self._drain_links()
                raise _Stopped
        except* _Stopped:
            pass
        finally:
            self._closing, self._tg = True, None
            try:
                if server is not None:
                    async with asyncio.timeout(2.0):
                        await server.stop(grace=0.5)
            finally:
                self._done.set()

    async def _drain_links(self) -> None:
        """Stop dialing; let every link finish its in-flight batches (bounded)."""
        self._closing = True
        self._wake_dialer.set()
        for link in list(self.membership.linked().values()):
            link.drain()
        if self._link_tasks:
            await asyncio.wait(list(self._link_tasks), timeout=self.config.drain_timeout + 1)

    # ---- queries --------------------------------------------------------------------------------

    def links(self) -> dict[str, PeerLink]:
        return dict(self.membership.linked())

    def members(self) -> tuple[Member, ...]:
        return self.membership.members()

    async def wait_linked(self, regions: Sequence[str], timeout: float = 30.0) -> None:
        """Wait until links to all `regions` stream."""
        await self._wait(lambda: all(r in self.membership.linked() for r in regions), timeout)

    async def wait_route(self, region: str, topic: str, timeout: float = 30.0) -> None:
        """Wait until `region` is routed and wants `topic` (any filter)."""
        route = self.routing.route
        await self._wait(
            lambda: any(t.topic == topic for t in getattr(route(region), "topics", ())), timeout
        )

    async def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    def peers(self) -> list[PeerInfo]:
        return peer_table(
            local_region=self.region,
            members=self.members(),
            routes=self.routing.routes(),
            links=self.membership.linked(),
            last_seq=self.data.log.last_seq(),
            last_seen=self._last_seen,
            now=time.time(),
        )

    # ---- accepting and dialing ------------------------------------------------------------------

    async def accept(self, context: grpc.aio.ServicerContext, peer_region: str) -> None:
        """Serve an inbound Link stream from a peer whose certificate names `peer_region`."""
        tg = self._tg
        if tg is None or self._closing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "shutting down")
            return
        link = await self._new_link(AcceptedTransport(context), peer_region, dialed=False)
        await tg.create_task(self._run_link(link))  # the RPC lasts as long as the link

    async def _run_link(self, link: PeerLink) -> CloseReason:
        task = asyncio.current_task()
        assert task is not None
        self._link_tasks.add(task)
        try:
            reason = await link.run()
        finally:
            self._link_tasks.discard(task)
        self.metrics.link_closes.labels(reason.value).inc()
        return reason

    async def _new_link(
        self, transport: Transport, region: str | None, *, dialed: bool, address: str = ""
    ) -> PeerLink:
        protocol = LinkProtocol(
            local_region=self.region,
            expected_region=region,
            members=self.members(),
            cursor=await self._cursors.load(region) if region else 0,
            settings=self.config.link_settings,
            now=asyncio.get_running_loop().time(),
        )
        return PeerLink(
            host=self, transport=transport, protocol=protocol, dialed=dialed, address=address
        )

    async def _dialer(self) -> None:
        """Start the dials Membership says are due; sleep until the next one or a change."""
        loop = asyncio.get_running_loop()
        while not self._closing:
            self._wake_dialer.clear()
            for dial in self.membership.due(loop.time()):
                assert self._tg is not None
                self._tg.create_task(self._dial(dial), name=f"{self.region}-dial-{dial.address}")
            delay = self.membership.next_due(loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # None: until woken
                    await self._wake_dialer.wait()

    async def _dial(self, dial: Dial) -> None:
        outcome = DialOutcome.FAILED
        try:
            outcome = await self._dial_once(dial.address, dial.region)
        except Exception:  # a bug on our dial path: say so, back off, dial again
            log.exception("dial %s failed", dial.address)
        finally:
            self.metrics.dials.labels(outcome.value).inc()
            self.membership.dial_ended(dial.address, outcome, asyncio.get_running_loop().time())
            self._wake_dialer.set()

    async def _dial_once(self, address: str, region: str | None) -> DialOutcome:
        """One link over a fresh channel. Any dial that never streamed (the TLS name check
        refused it, the peer is down, its Hello named another region) is FAILED: backed off."""
        channel = dial_channel(self.identity, address, region)
        try:
            call = raw_wire.link_call(channel)  # events stay bytes both ways
            link = await self._new_link(DialedTransport(call), region, dialed=True, address=address)
            try:
                reason = await self._run_link(link)
            finally:
                call.cancel()
        finally:
            async with asyncio.timeout(2.0):
                await channel.close()
        if reason is CloseReason.PROBED:
            return DialOutcome.PROBED
        return DialOutcome.STREAMED if link.peer_region is not None else DialOutcome.FAILED

    # ---- LinkHost -------------------------------------------------------------------------------

    def link_up(self, link: PeerLink, members: tuple[Member, ...]) -> bool:
        """The link's handshake completed; False: it lost (duplicate, probe) and is closed."""
        region = link.peer_region
        assert region is not None
        self._learn_members(members)
        existing = self.membership.linked().get(region)
        if existing is not None and existing.state is LinkState.CLOSED:
            self.link_down(existing)  # closed, not yet reported: it never blocks a new link
        registered = False
        for action in self.membership.link_up(
            link,
            region=region,
            dialed=link.dialed,
            address=link.address,
            probe=link.dialed and link.protocol.expected_region is None,
        ):
            match action:
                case Register():
                    registered = True
                case Close(loser, reason):
                    loser.close(reason)
        if not registered:
            return False
        self.routing.peer_up(region)
        self.metrics.peer_up.labels(region).set(1)
        link.send(link.protocol.send_interest(self._advertisement(region)))
        self.key_sets.link_up(region, link)
        self._changed.set()
        log.info(
            "%s linked to %s (%s)", self.region, region, "dialed" if link.dialed else "accepted"
        )
        return True

    def link_interest(self, link: PeerLink, interest: Interest) -> None:
        region = link.peer_region
        if region is None or self.membership.linked().get(region) is not link:
            return
        if self.routing.peer_advertised(region, interest):
            self._readvertise()
        self.metrics.refused_interest.labels(region).inc(self.routing.refused(region))
        self._watcher.schedule()
        self._changed.set()

    def link_members(self, link: PeerLink, members: tuple[Member, ...]) -> None:
        self._learn_members(members)

    def link_down(self, link: PeerLink) -> None:
        self.data.link_gone(link)
        region = self.membership.link_down(link)
        if region is None:
            return
        self._last_seen[region] = link.last_seen
        self.key_sets.link_down(region)
        self.metrics.peer_up.labels(region).set(0)
        if self.routing.peer_down(region):
            self._readvertise()
        self._changed.set()
        self._wake_dialer.set()

    def link_key_sets(self, link: PeerLink, sets: tuple[TopicKeySet, ...]) -> None:
        if link.peer_region is not None and self.membership.linked().get(link.peer_region) is link:
            self.key_sets.received(link.peer_region, sets)

    async def store_batches(self, link: PeerLink, batches: Sequence[EventBatch]) -> None:
        await self.data.store_batches(link.peer_region or "?", batches)

    async def read_log(self, seq: int) -> Sequence[LogRecord]:
        return await self.data.read_log(seq)

    async def wait_log(self, seq: int, timeout: float) -> bool:
        return await self.data.wait_log(seq, timeout)

    def outbound(self, link: PeerLink, records: Sequence[LogRecord]) -> tuple[ReplicatedEvent, ...]:
        assert link.peer_region is not None
        return self.data.outbound(link.peer_region, records, link)

    async def save_cursor(self, link: PeerLink, seq: int) -> None:
        if link.peer_region is not None:
            await self.data.save_cursor(link.peer_region, seq, link)

    # ---- internals ------------------------------------------------------------------------------

    def _learn_members(self, members: Sequence[Member]) -> None:
        """Verify gossiped members against our CA; Membership decides what follows."""
        ca = self.identity.ca_pem
        verified, refused = verified_members(members, ca_pem=ca, local=self.region)
        vetted, bad = self.membership.vet_all(verified)
        for reason, line in [("certificate", line) for line in refused] + bad:
            self.metrics.refused_members.labels(reason).inc()
            log.warning("%s", line)
        self.data.keys.update((m.region, key) for m, key in vetted)
        if self.membership.learn([m for m, _ in vetted]):
            for link in list(self.membership.linked().values()):
                link.send(link.protocol.send_members(self.members()))
        self._wake_dialer.set()

    def _advertisement(self, peer: str) -> Interest:
        return Interest(next(self._versions), self.routing.advertisement_for(peer))

    def _readvertise(self) -> None:
        for region, link in list(self.membership.linked().items()):
            link.send(link.protocol.send_interest(self._advertisement(region)))
        self._changed.set()  # routes changed too (wait_route)
