"""A standby's peer port (gateway/jetstream_relay.py): bytes pass to the holder's port both ways,
nothing passes without a holder or to our own port, and LeasedFederation opens the port only
while standby (closed before its node binds the same port)."""

from __future__ import annotations

import asyncio
from typing import cast

from federation.node import FederationNode
from gateway.jetstream_federation import LeasedFederation
from gateway.jetstream_lease import JetStreamLease
from gateway.jetstream_relay import PeerRelay, relay_target, split_address
from tests.support.waiting import free_port
from tests.unit.gateway.test_jetstream_federation import FakeLease, FakeNode, until


def test_relay_target_is_the_holder_never_ourselves() -> None:
    assert relay_target("10.0.0.2:7100", "10.0.0.1:7100") == "10.0.0.2:7100"
    assert relay_target("10.0.0.1:7100", "10.0.0.1:7100") is None  # a stale record: our port
    assert relay_target(None, "10.0.0.1:7100") is None and relay_target("", "x:1") is None
    assert split_address("[::1]:7100") == ("::1", 7100)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(b"holder:" + data)
        await writer.drain()
    writer.close()


async def test_bytes_pass_to_the_holder_and_back() -> None:
    holder = await asyncio.start_server(_echo, "127.0.0.1", 0)
    target = f"127.0.0.1:{holder.sockets[0].getsockname()[1]}"

    async def where() -> str | None:
        return target

    relay = PeerRelay("127.0.0.1", free_port(), where)
    await relay.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        writer.write(b"hello")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(12), 5) == b"holder:hello"
        writer.close()
    finally:
        await relay.aclose()
        holder.close()
        await holder.wait_closed()


async def test_without_a_holder_the_connection_is_closed() -> None:
    async def nobody() -> str | None:
        return None

    relay = PeerRelay("127.0.0.1", free_port(), nobody)
    await relay.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        assert await asyncio.wait_for(reader.read(10), 5) == b""  # closed: the peer redials
        writer.close()
    finally:
        await relay.aclose()


class FakePort:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def start(self) -> None:
        self.events.append("port open")

    async def aclose(self) -> None:
        self.events.append("port closed")


async def test_the_standby_port_is_open_exactly_while_not_holding() -> None:
    lease, events = FakeLease(False, True, True, False), []

    def build() -> FederationNode:
        events.append("node")
        return cast(FederationNode, FakeNode())

    async def announce(node: FederationNode) -> None:
        events.append("announced")

    service = LeasedFederation(
        lambda: cast(JetStreamLease, lease),
        build,
        standby_port=lambda: FakePort(events),
        announce=announce,
    )
    task = asyncio.create_task(service.run())
    try:
        await until(lambda: events.count("port open") == 2, "the port reopened after the loss")
        assert events == ["port open", "port closed", "node", "announced", "port open"]
    finally:
        await service.aclose()
        await asyncio.wait_for(task, 5)
    assert events[-1] == "port closed"  # shutdown closes it too
