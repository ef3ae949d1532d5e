"""Fresh gRPC channels that are connected before a test's first call on them.

A call on a channel that has not connected yet fails at once with UNAVAILABLE ("Socket
closed", "failed to connect") when the first connect attempt fails, which it can under load
right after a gateway started (a fresh-clone CI run did, see d9f83e7). A test that means to
talk to a running gateway waits for the connection first, bounded; a test that expects
UNAVAILABLE (a gateway that is down) must not use these.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

CONNECT_TIMEOUT = 30.0  # s


async def connected(channel: grpc.aio.Channel, timeout: float = CONNECT_TIMEOUT) -> None:
    """Wait until `channel` is READY (TimeoutError after `timeout`)."""
    await asyncio.wait_for(channel.channel_ready(), timeout)


@contextlib.asynccontextmanager
async def ready_channel(
    target: str, timeout: float = CONNECT_TIMEOUT
) -> AsyncIterator[grpc.aio.Channel]:
    """`grpc.aio.insecure_channel(target)`, connected before it is handed out; closed after."""
    async with grpc.aio.insecure_channel(target) as channel:
        await connected(channel, timeout)
        yield channel


def wait_serving(target: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Block until a fresh channel to `target` connects (for sync fixtures that start a
    gateway: its first caller then does not race its listener)."""
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)
