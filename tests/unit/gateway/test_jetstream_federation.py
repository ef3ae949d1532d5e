"""LeasedFederation: the node runs only while this replica holds the lease (fakes for both)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from federation.node import FederationNode
from gateway.errors import StoreUnavailable
from gateway.jetstream_federation import LeasedFederation
from gateway.jetstream_lease import JetStreamLease
from tests.support.waiting import async_wait_for


class FakeLease:
    """acquire() answers from `answers` (the last one repeats); an exception is raised."""

    def __init__(self, *answers: bool | Exception) -> None:
        self.ttl = 0.15
        self.answers = list(answers)
        self.calls = 0
        self.released = 0

    async def acquire(self) -> bool:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def release(self) -> None:
        self.released += 1


class FakeNode:
    region = "eu"

    def __init__(self) -> None:
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def aclose(self) -> None:
        self.closed = True

    def peers(self) -> list[str]:
        return ["us"]


def leased(lease: FakeLease, nodes: list[FakeNode], roles: list[bool]) -> LeasedFederation:
    def build() -> FederationNode:
        nodes.append(FakeNode())
        return cast(FederationNode, nodes[-1])

    return LeasedFederation(lambda: cast(JetStreamLease, lease), build, on_role=roles.append)


async def until(predicate: Any, what: str) -> None:
    async def check() -> bool:
        return bool(predicate())

    await async_wait_for(check, timeout=5, what=what)


async def test_the_node_runs_while_held_and_stops_when_the_lease_is_lost() -> None:
    lease, nodes, roles = FakeLease(False, True, True, False), [], []
    service = leased(lease, nodes, roles)
    task = asyncio.create_task(service.run())
    try:
        assert service.peers() == []  # a standby reports no peers
        await until(lambda: service.holder, "the lease to be won")
        assert nodes[0].started and service.peers() == ["us"]
        await until(lambda: not service.holder, "the lease to be lost")
        assert nodes[0].closed and roles == [True, False] and len(nodes) == 1
    finally:
        await service.aclose()
        await asyncio.wait_for(task, 5)
    assert lease.released == 1  # given up at shutdown, so a standby need not wait for ttl


async def test_a_renewal_that_fails_stops_the_node_at_once_then_a_new_one_when_won_again() -> None:
    lease = FakeLease(True, StoreUnavailable("no quorum"), True)
    nodes: list[FakeNode] = []
    roles: list[bool] = []
    service = leased(lease, nodes, roles)
    task = asyncio.create_task(service.run())
    try:
        await until(lambda: len(nodes) == 2 and service.holder, "a fresh node after the outage")
        assert nodes[0].closed and not nodes[1].closed
        assert roles == [True, False, True]
    finally:
        await service.aclose()
        await asyncio.wait_for(task, 5)
    assert nodes[1].closed  # shutdown closes the node it holds
