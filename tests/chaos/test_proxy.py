"""The partition proxy on a real loopback echo server: pass, reset, blackhole and heal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bench.chaos.proxy import Proxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Proxy(port) as p:
            yield p
    finally:
        server.close()
        await server.wait_closed()


async def _roundtrip(p: Proxy, payload: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
    try:
        writer.write(payload)
        async with asyncio.timeout(5):
            return await reader.readexactly(len(payload))
    finally:
        writer.close()


async def test_pass_forwards_both_ways(proxy: Proxy) -> None:
    assert await _roundtrip(proxy) == b"ping"
    assert proxy.stats.connections == 1 and proxy.stats.bytes_forwarded >= 8


async def test_reset_aborts_open_connections_and_refuses_new_ones(proxy: Proxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"a")
    async with asyncio.timeout(5):
        assert await reader.readexactly(1) == b"a"
    proxy.set_mode("reset")
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        async with asyncio.timeout(5):
            await reader.readexactly(1)
    writer.close()
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await _roundtrip(proxy)
    proxy.set_mode("pass")
    assert await _roundtrip(proxy) == b"ping"


async def test_blackhole_holds_bytes_and_heal_delivers_them(proxy: Proxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"a")
    async with asyncio.timeout(5):
        assert await reader.readexactly(1) == b"a"
    proxy.set_mode("blackhole")
    writer.write(b"held")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):  # nothing may come back while blackholed
            await reader.readexactly(4)
    proxy.set_mode("pass")
    async with asyncio.timeout(5):
        assert await reader.readexactly(4) == b"held"  # delayed, never dropped
    writer.close()
