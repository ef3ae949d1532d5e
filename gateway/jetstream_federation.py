"""One federation member per region among its replicas: the node runs where the lease is.

A region on a JetStream cluster may run several gateway replicas, but the federation must see
ONE member per region (one address in gossip, one link per peer, one sender per peer cursor).
So the replicas contend for the region's lease `federation` (gateway/jetstream_lease.py) and
only the holder runs a FederationNode (sends to every peer and receives from them); the
others are warm standbys that serve clients and keep contending. A standby's peer port is not
closed: it passes every connection to the holder's (gateway/jetstream_relay.py, which says why a
standby ends no link itself), so a peer that dials any replica reaches the region's member.

Theory of operation (`LeasedFederation.run`):

- every `ttl / 3` the replica acquires or renews the lease (bounded by `ttl / 3`); on winning
  it closes its standby port, builds a fresh node (`build()`), starts it and publishes where it
  listens (`announce`); on losing, or when a renewal fails or times out, it closes its node at
  once, well before the lease it held expires, and opens its standby port (`standby_port()`;
  retried each period while the port is not free);
- the new holder's node reads each peer's cursor from the cluster (the store's cursors), so a
  failover resends at most what the dead holder sent past its last saved cursor; the
  receiver stores an event once by (topic, source, id), so a failover neither loses nor
  duplicates what crosses regions (what it costs: up to one window of batches sent again);
- the dead holder's lease expires after `ttl` (its clock), then a standby takes over: the
  region is out of the federation for at most ttl + ttl/3 + a dial.

Interest: only the holder advertises, but it advertises the whole region's. Every replica runs
a `RegionInterest` (gateway/jetstream_interest.py) beside this loop, writing its readers'
interest to the cluster; the holder's node takes it as its InterestSource, the merge of its
own and every live replica's entries. A standby's entry keeps counting for up to its ttl
after the standby dies (clean stops say farewell at once).

Clocks: as for the lease, the replicas' clocks must agree to well within `ttl`. Two holders
for a moment (a holder cut off from the cluster notices at its next renewal) cost duplicates
on the wire only, never in a peer's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from federation.node import FederationNode
from federation.peer_table import PeerInfo
from gateway.errors import StoreError
from gateway.jetstream_interest import RegionInterest
from gateway.jetstream_lease import JetStreamLease

log = logging.getLogger(__name__)

LEASE_NAME = "federation"


class StandbyPort(Protocol):
    """What serves the peer port while this replica is not the member (a PeerRelay)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


DEFAULT_TTL = 6.0  # s: a dead holder's region is back in the federation within ~8 s
CLOSE_TIMEOUT = 10.0  # s for the node to drain and the lease to be released at shutdown


class LeasedFederation:
    """A gateway service: `run()` holds the lease and the node, `aclose()` gives both up.

    `lease()` is called once `run()` starts (the store is open by then)."""

    def __init__(
        self,
        lease: Callable[[], JetStreamLease],
        build: Callable[[], FederationNode],
        *,
        on_role: Callable[[bool], None] = lambda holder: None,
        interest: RegionInterest | None = None,  # this replica's readers, for the region
        standby_port: Callable[[], StandbyPort] | None = None,  # the peer port while standby
        announce: Callable[[FederationNode], Awaitable[None]] | None = None,  # holder's address
    ) -> None:
        self._interest = interest
        self._new_standby_port = standby_port
        self._standby_port: StandbyPort | None = None
        self._announce = announce
        self._announced = False
        self._new_lease = lease
        self._lease: JetStreamLease | None = None
        self._build = build
        self._on_role = on_role
        self.node: FederationNode | None = None
        self._stop = asyncio.Event()

    @property
    def holder(self) -> bool:
        return self.node is not None

    def peers(self) -> Sequence[PeerInfo]:
        """The node's peer table while this replica is the region's member, else empty."""
        return self.node.peers() if self.node is not None else []

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                shares = tg.create_task(self._interest.run()) if self._interest else None
                try:
                    await self._hold()
                finally:
                    if shares is not None:
                        shares.cancel()
        finally:
            if self._interest is not None:
                with contextlib.suppress(StoreError, TimeoutError):
                    async with asyncio.timeout(CLOSE_TIMEOUT / 5):
                        await self._interest.farewell()

    async def _hold(self) -> None:
        lease = self._lease = self._new_lease()
        period = lease.ttl / 3
        task = asyncio.current_task()
        try:
            while not self._stop.is_set():
                if task is not None and task.cancelling():  # a cancel nats-py swallowed
                    raise asyncio.CancelledError  # (gateway/jetstream_interest.py says how)
                held = await self._renew(period)
                if held and self.node is None:
                    await self._close_standby_port()  # the node binds the same port
                    node = self._build()
                    await node.start()
                    self.node, self._announced = node, False
                    self._on_role(True)
                    log.info("%s: this replica is the region's federation member", node.region)
                elif not held and self.node is not None:
                    await self._stop_node("lost the federation lease")
                if self.node is not None and not self._announced:
                    await self._announce_node(self.node, period)
                if self.node is None and self._standby_port is None:
                    await self._open_standby_port()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(period):
                        await self._stop.wait()
        finally:  # bounded: the node drains for at most its drain_timeout + 1 s
            with contextlib.suppress(StoreError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._close_standby_port()
                    if self.node is not None:
                        await self._stop_node("shutting down")
                    await lease.release()  # a standby need not wait for ttl

    async def _renew(self, period: float) -> bool:
        assert self._lease is not None
        try:
            async with asyncio.timeout(period):
                return await self._lease.acquire()
        except (StoreError, TimeoutError) as exc:
            if self.node is not None:
                log.warning("federation lease not renewed: %s", exc)
            return False

    async def _announce_node(self, node: FederationNode, period: float) -> None:
        """Tell the standbys where to relay peers' connections; retried next period."""
        if self._announce is None:
            return
        try:
            async with asyncio.timeout(period):
                await self._announce(node)
            self._announced = True
        except (StoreError, TimeoutError) as exc:
            log.warning("federation member's address not published: %s", exc)

    async def _open_standby_port(self) -> None:
        """A standby passes peers' connections to the holder (gateway/jetstream_relay.py)."""
        if self._new_standby_port is None:
            return
        port = self._new_standby_port()
        try:
            await port.start()
        except OSError as exc:  # e.g. the port not yet free after our node stopped: next period
            log.warning("standby peer port not open: %s", exc)
            return
        self._standby_port = port

    async def _close_standby_port(self) -> None:
        port, self._standby_port = self._standby_port, None
        if port is not None:
            await port.aclose()

    async def _stop_node(self, why: str) -> None:
        node, self.node = self.node, None
        self._on_role(False)
        if node is not None:
            log.info("%s: federation node stops: %s", node.region, why)
            await node.aclose()

    async def aclose(self) -> None:
        """Stop the node and release the lease (idempotent)."""
        self._stop.set()
