"""A standby's peer port: every connection is passed, as bytes, to the lease holder's port.

Issue 14's "any replica can receive". Why a relay and not a receive-only federation node on the
standby: a link carries both directions, and a peer keeps ONE link per region
(federation/membership.py: of two, the link the smaller region dialed wins). A standby that ended
links itself would take that one slot: for a peer whose name sorts before the region's, the link
it dialed to the standby beats the holder's, the holder's is closed as a duplicate on every
redial and the region never sends to that peer again; for one whose name sorts after, the
holder never learns the peer (the standby has no link to the holder to gossip it) and nothing
flows from the region to it. The standby's Hello would also gossip a second address for the
one member. So the standby ends nothing: TLS (end to end: the peer sees the holder's
certificate, the holder the peer's), Hello, interest, verification and admission of inbound
batches, the store and the acks all happen on the holder, exactly as for one gateway, and the
region stays one member with one address (the holder's own, or `--peer-advertise`).

Where the holder is: the holder writes its peer address (its listen address: never
`--peer-advertise`, which may name a balancer in front of this very port) to
`mg.<region>.a.federation` each time it wins the lease; a standby reads it on each connection
(one get from the cluster). No holder yet, or one whose address is our own: the connection is
closed (the peer redials, as when nothing listened).

Resource handling: `start()` binds the port, `aclose()` stops accepting and closes every relayed
connection (at failover the new holder's node binds the same port right after).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from gateway.errors import StoreError
from gateway.jetstream_client import JetStreamClient
from gateway.jetstream_layout import Layout

log = logging.getLogger(__name__)

DIAL_TIMEOUT = 3.0  # s to read the holder's address and connect to it
CHUNK = 64 * 1024
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})  # not an address another host dials


def holder_subject(layout: Layout) -> str:
    return f"{layout.root}.a.federation"


def relay_target(published: str | None, own: str) -> str | None:
    """Where a standby passes a connection: the holder's address, never its own port."""
    if not published or published == own:
        return None
    return published


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class HolderAddress:
    """The region's record of where its federation member listens."""

    def __init__(self, client: Callable[[], JetStreamClient], layout: Layout) -> None:
        self._client = client
        self._subject = holder_subject(layout)

    async def publish(self, replica: str, address: str) -> None:
        body = json.dumps({"replica": replica, "address": address}).encode()
        await self._client().put(self._subject, body)

    async def read(self) -> str | None:
        record = await self._client().get_last(self._subject)
        if record is None:
            return None
        return str(json.loads(record.data).get("address") or "") or None


class PeerRelay:
    """A standby's listener on its peer port; `target()` names the holder's address or None."""

    def __init__(self, host: str, port: int, target: Callable[[], Awaitable[str | None]]) -> None:
        self.host = host
        self.port = port
        self.own = f"{host}:{port}"
        self._target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True
        )

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            upstream = await self._connect()
            if upstream is None:
                return
            up_reader, up_writer = upstream
            self._writers.add(up_writer)
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(_pipe(reader, up_writer))
                    tg.create_task(_pipe(up_reader, writer))
            finally:
                self._writers.discard(up_writer)
                up_writer.close()
        except* (OSError, ConnectionError):
            pass  # either side went away: the peer redials
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                target = relay_target(await self._target(), self.own)
                if target is None:
                    return None
                host, port = split_address(target)
                return await asyncio.open_connection(host, port)
        except (StoreError, TimeoutError, OSError, ValueError) as exc:
            log.info("peer connection not relayed to the federation member: %s", exc)
            return None


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until `source` ends, then half-close `sink` (TLS close_notify passes as bytes)."""
    while chunk := await source.read(CHUNK):
        sink.write(chunk)
        await sink.drain()
    if sink.can_write_eof():
        with contextlib.suppress(OSError):
            sink.write_eof()
