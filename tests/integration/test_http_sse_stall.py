"""An SSE client that stops reading is dropped once the gateway's writes stall for
[http] body_timeout: its session closes and its group member leaves (in process, real
sockets, a real Gateway with the memory store)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.http.config import HttpConfig
from gateway.memory_store import MemoryEventStore
from gateway.store import NewEvent
from proto import cloudevents_pb2
from tests.support.waiting import async_wait_for


def big_event(i: int) -> NewEvent:
    pb = cloudevents_pb2.CloudEvent(
        id=str(i), source="/stall", spec_version="1.0", type="t", binary_data=bytes(64 * 1024)
    )
    return NewEvent(pb.source, pb.id, pb.type, pb.SerializeToString(deterministic=True))


async def test_a_client_that_stops_reading_is_dropped(tmp_path: Path) -> None:
    config = GatewayConfig(region="eu", data_dir=tmp_path)
    http = HttpConfig(body_timeout=1, heartbeat=0.2)
    async with Gateway(config, http=http, store=MemoryEventStore()) as gw:
        assert gw.http is not None
        for start in range(0, 400, 50):  # 25 MiB of events as JSON, far over any socket buffer
            await gw.store.append("stall", [big_event(i) for i in range(start, start + 50)], "eu")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", gw.http.port))
        request = b"GET /topics/stall/events?group=g HTTP/1.1\r\nHost: x\r\n\r\n"
        await loop.sock_sendall(sock, request)
        try:

            async def joined() -> bool:
                group = gw.hub.groups().get(("stall", "g"))
                return group is not None and group.members == 1

            await async_wait_for(joined, timeout=10, what="the SSE client to join the group")

            async def dropped() -> bool:
                return gw.hub.groups()[("stall", "g")].members == 0

            await async_wait_for(dropped, timeout=20, what="the stalled client to be dropped")
            committed = gw.hub.groups()[("stall", "g")].state.committed
            assert committed < 400  # it never read them all: the rest stay for the group
        finally:
            sock.close()
