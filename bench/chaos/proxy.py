"""A TCP proxy on 127.0.0.1 that can partition a link: modes pass, reset and blackhole.

Placed in front of a gateway's peer listener (the address the gateway advertises), so every
peer connection to that region crosses it. TLS is end to end through it: peers check the
region name in the certificate (`grpc.ssl_target_name_override`), not the address dialed.

- `pass`: bytes flow both ways.
- `reset`: every open connection is aborted with a TCP RST (SO_LINGER 0) and new ones are
  reset on accept: the peer sees "connection reset" at once.
- `blackhole`: nothing moves. Open connections stop being read (bytes stay in the kernel
  buffers, as with dropped packets that TCP retransmits later), new connections are accepted
  but never answered. On heal, held connections resume; connections opened during the
  blackhole are reset (their dialer has long timed out).

Resource handling: `async with Proxy(...)`: leaving it closes the listener and every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

Mode = Literal["pass", "reset", "blackhole"]
HOST = "127.0.0.1"
CHUNK = 64 * 1024


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    bytes_forwarded: int = 0


def _rst(writer: asyncio.StreamWriter) -> None:
    """Abort with RST, not FIN: SO_LINGER on, timeout 0."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Proxy:
    def __init__(self, upstream_port: int, *, name: str = "") -> None:
        self.upstream_port = upstream_port
        self.name = name
        self.mode: Mode = "pass"
        self.stats = ProxyStats()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._held: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        self._reset_all()
        for held in list(self._held):
            _rst(held)
        self._held.clear()
        self._flowing.set()

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "pass":
            for held in list(self._held):  # dialed into the blackhole: timed out long ago
                _rst(held)
                self.stats.resets += 1
            self._held.clear()
            self._flowing.set()
        elif mode == "reset":
            self._flowing.set()
            self._reset_all()
        else:
            self._flowing.clear()

    def _reset_all(self) -> None:
        for a, b in list(self._pairs):
            _rst(a)
            _rst(b)
            self.stats.resets += 1
        self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self.mode == "reset":
            _rst(writer)
            self.stats.resets += 1
            return
        if self.mode == "blackhole":
            self._held.add(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            _rst(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pump(reader, up_writer))
                tg.create_task(self._pump(up_reader, writer))
        except* (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._pairs.discard(pair)
            for w in pair:
                w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await self._flowing.wait()
            data = await reader.read(CHUNK)
            if not data:
                writer.transport.abort()
                return
            await self._flowing.wait()  # read just before a blackhole: hold it, never drop it
            if writer.transport.is_closing():
                return
            writer.write(data)
            await writer.drain()
            self.stats.bytes_forwarded += len(data)
