"""Dialing over real mutual-TLS gRPC: a dial the TLS name check refuses backs off like any other.

A counting TCP relay stands in front of the address a region advertises, so the test counts the
connections the dialer opens, whatever happens inside gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from federation.certs import Identity
from federation.config import PeerConfig
from federation.node import FederationNode
from tests.support.federation_fakes import MemoryCursors, MemoryInterest, MemoryLog
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")


class CountingRelay:
    """127.0.0.1:port -> 127.0.0.1:backend, counting accepted connections."""

    def __init__(self) -> None:
        self.backend = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(pipe(reader, up_writer))
            tg.create_task(pipe(up_reader, writer))

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()


def node(region: str, identity: Identity, **config: object) -> FederationNode:
    return FederationNode(
        config=PeerConfig(region=region, **config),  # type: ignore[arg-type]
        identity=identity,
        log_port=MemoryLog(),
        cursors=MemoryCursors(),
        interest=MemoryInterest(),
    )


def failed_dials(n: FederationNode) -> float:
    value = n.metrics.registry.get_sample_value(
        "meshgate_federation_dials_total", {"outcome": "failed"}
    )
    return value or 0.0


async def test_a_dial_refused_by_the_tls_name_check_backs_off(
    region_identity: Callable[[str], Identity],
) -> None:
    relay = CountingRelay()
    await relay.start()
    bb = node("bb", region_identity("bb"), advertise_address=relay.address)
    cc = node("cc", region_identity("cc"))
    aa = node(
        "aa",
        region_identity("aa"),
        seeds=(relay.address,),
        reconnect_initial=0.2,
        reconnect_max=5.0,
    )
    try:
        await bb.start()
        relay.backend = bb.port
        await aa.start()
        await aa.wait_linked(["bb"], timeout=20)
        # bb goes away and cc takes its address: aa still dials it as bb, and TLS refuses cc's
        # certificate for bb's name, on every dial.
        await bb.aclose()
        await cc.start()
        relay.backend = cc.port

        switched = relay.connections

        async def refused_thrice() -> bool:
            return "bb" not in aa.links() and relay.connections >= switched + 3

        await async_wait_for(refused_thrice, timeout=20, what="three refused dials")
        before, failed_before = relay.connections, failed_dials(aa)
        await asyncio.sleep(4.0)  # the measurement window itself, not a wait for a condition
        connections, dials = relay.connections - before, failed_dials(aa) - failed_before
        # The delay has grown past 0.4 s: with bounded exponential backoff at most 5 dials fit
        # in 4 s (gRPC may open two connections per dial). Resetting the delay on every failure
        # made ~17 dials (24 connections) in such a window.
        assert 1 <= dials <= 5, dials
        assert connections <= 12, connections
        assert "bb" not in aa.links() and "cc" not in aa.links()
    finally:
        for n in (aa, bb, cc):
            await n.aclose()
        await relay.aclose()
