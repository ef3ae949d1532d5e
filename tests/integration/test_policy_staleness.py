"""Fail closed: with the chain node gone beyond the staleness bound, access pauses; it resumes
when the node returns (same Ganache database, so the same registry and grants)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account

from meshgate.client import GatewayClient, Received
from meshgate.devchain import DevChain
from policy.audit import audit_path, read_entries, verify_file
from tests.support.chain_fixtures import deploy
from tests.support.gateway_process import GatewayProcess
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.timeout(300)]


def event(n: int) -> CloudEvent:
    return CloudEvent({"type": "t.stale", "source": "/stale-test", "id": f"s{n}"}, {"n": n})


async def publish_outcome(client: GatewayClient, topic: str, n: int) -> grpc.StatusCode:
    try:
        await client.publish(topic, event(n))
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def read_into(sub: AsyncIterable[Received], sink: list[Received]) -> None:
    async for item in sub:
        sink.append(item)


async def test_chain_outage_pauses_access_and_it_resumes(
    chain_factory: Callable[[], DevChain], tmp_path: Path
) -> None:
    chain = chain_factory()
    deployed = deploy(chain)
    owner = deployed.client(Account.from_key(chain.accounts[1].private_key))
    reader = Account.create()
    topic = f"s-{uuid.uuid4().hex[:12]}"
    owner.register(topic)
    owner.grant(topic, reader.address)
    gw = GatewayProcess(
        tmp_path / "gw",
        metrics=False,
        extra_args=[
            "--rpc", chain.url, "--registry", deployed.address,
            "--chain-id", str(chain.chain_id), "--staleness", "2s",
        ],
        ready_timeout=60,
    )  # fmt: skip
    tasks: list[asyncio.Task[None]] = []
    try:
        gw.start()
        async with (
            GatewayClient(gw.listen, signer=owner.signer, timeout=20) as pub,
            GatewayClient(gw.listen, signer=reader, timeout=20) as sub_client,
        ):

            async def publish_ok(n: int) -> bool:
                return await publish_outcome(pub, topic, n) == grpc.StatusCode.OK

            await async_wait_for(lambda: publish_ok(0), timeout=45, what="first publish")
            live: list[Received] = []
            tasks.append(asyncio.create_task(read_into(sub_client.subscribe(topic), live)))
            await async_wait_for(_has(live, 1), timeout=45, what="first delivery")

            await asyncio.to_thread(chain.stop)

            async def paused() -> bool:
                return await publish_outcome(pub, topic, 1) == grpc.StatusCode.UNAVAILABLE

            await async_wait_for(paused, timeout=30, interval=0.3, what="publish paused")
            held: list[Received] = []
            late = sub_client.subscribe(topic)
            await late.start()  # the stream opens, but deliveries are held
            tasks.append(asyncio.create_task(read_into(late, held)))
            await asyncio.sleep(1.0)  # a window in which a delivery would have arrived
            assert held == []

            await asyncio.to_thread(chain.restart)
            await async_wait_for(_has(held, 1), timeout=30, what="held delivery after resume")
            await async_wait_for(lambda: publish_ok(2), timeout=30, what="publish resumed")

            async def live_got_new_event() -> bool:
                return any(item.event.get_data() == {"n": 2} for item in live)

            await async_wait_for(live_got_new_event, timeout=45, what="live stream resumed")
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        gw.stop()
    entries = list(read_entries(audit_path(gw.data_dir), address=reader.address))
    decisions = [(e.action, e.decision) for e in entries]
    assert ("stream", "pause") in decisions and ("stream", "resume") in decisions
    assert ("subscribe", "pause") in decisions
    assert all("stale view" in e.reason for e in entries if e.decision == "pause")
    assert verify_file(audit_path(gw.data_dir)).ok


def _has(sink: list[Received], n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(sink) >= n

    return check


async def test_gateway_started_while_chain_is_down_fails_closed_then_syncs(
    chain_factory: Callable[[], DevChain], tmp_path: Path
) -> None:
    chain = chain_factory()
    deployed = deploy(chain)
    owner = deployed.client(Account.from_key(chain.accounts[1].private_key))
    topic = f"s-{uuid.uuid4().hex[:12]}"
    owner.register(topic)
    await asyncio.to_thread(chain.stop)
    gw = GatewayProcess(
        tmp_path / "gw",
        metrics=False,
        extra_args=[
            "--rpc", chain.url, "--registry", deployed.address,
            "--chain-id", str(chain.chain_id), "--staleness", "2s",
        ],
        ready_timeout=60,
    )  # fmt: skip
    try:
        gw.start()
        async with GatewayClient(gw.listen, signer=owner.signer, timeout=20) as pub:
            assert await publish_outcome(pub, topic, 0) == grpc.StatusCode.UNAVAILABLE
            await asyncio.to_thread(chain.restart)

            async def accepted() -> bool:
                return await publish_outcome(pub, topic, 1) == grpc.StatusCode.OK

            await async_wait_for(accepted, timeout=45, interval=0.3, what="publish after sync")
    finally:
        gw.stop()
    assert "access paused" in gw.stderr_tail(200)
