"""A chain that rewinds must not reopen what was closed (issue 10): a real gateway process on a
real Ganache, whose chain is reverted to a snapshot or restarted without its database; and
`--confirmations`, which keeps the newest blocks out of the view."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account
from eth_account.signers.local import LocalAccount

from meshgate.client import GatewayClient
from meshgate.devchain import DevChain, rpc_call
from tests.support.chain_fixtures import DeployedRegistry, deploy
from tests.support.gateway_process import GatewayProcess
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.timeout(300)]

WAIT = 45.0  # s; generous: the machine is shared
# Far above every wait below: what the tests see is the rewind, never the staleness timer.
STALENESS = "120s"


def event(n: int) -> CloudEvent:
    return CloudEvent({"type": "t.rewind", "source": "/rewind-test", "id": f"r{n}"}, {"n": n})


async def publish_outcome(client: GatewayClient, topic: str, n: int = 0) -> grpc.StatusCode:
    try:
        await client.publish(topic, event(n))
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def subscribe_outcome(client: GatewayClient, topic: str) -> grpc.StatusCode:
    """OK when the stream opens (deliveries may still be held), else the refusal's code."""
    sub = client.subscribe(topic)
    try:
        await sub.start()
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        await sub.aclose()
    return grpc.StatusCode.OK


async def first_delivery(client: GatewayClient, topic: str) -> bool:
    """Does a new subscriber get the topic's first event (within a few seconds)?"""
    try:
        async with asyncio.timeout(5.0), client.subscribe(topic) as sub:
            async for _ in sub:
                return True
    except (TimeoutError, grpc.aio.AioRpcError):
        return False
    return False


def gateway(
    tmp_path: Path, chain: DevChain, registry: DeployedRegistry, *extra: str
) -> GatewayProcess:
    return GatewayProcess(
        tmp_path / "gw",
        metrics=False,
        extra_args=[
            "--rpc", chain.url, "--registry", registry.address,
            "--chain-id", str(chain.chain_id), "--staleness", STALENESS, *extra,
        ],
        ready_timeout=40,  # below the gateway's own initial-sync bound (60 s)
    )  # fmt: skip


async def wait_code(
    check: Callable[[], Awaitable[grpc.StatusCode]], code: grpc.StatusCode, what: str
) -> None:
    async def matches() -> bool:
        return await check() == code

    await async_wait_for(matches, timeout=WAIT, interval=0.2, what=what)


async def test_a_reverted_grant_is_no_longer_served(
    chain_factory: Callable[[], DevChain], tmp_path: Path
) -> None:
    """evm_snapshot, grant + allow-publisher, evm_revert, three new blocks: the reader is
    denied and the publisher refused, as the chain says."""
    chain = chain_factory()
    deployed = deploy(chain)
    owner = deployed.client(Account.from_key(chain.accounts[1].private_key))
    reader, publisher = Account.create(), Account.create()
    topic = f"rw-{uuid.uuid4().hex[:12]}"
    owner.register(topic)
    gw = gateway(tmp_path, chain, deployed)
    try:
        gw.start()
        async with (
            GatewayClient(gw.listen, signer=owner.signer, timeout=20) as by_owner,
            GatewayClient(gw.listen, signer=reader, timeout=20) as by_reader,
            GatewayClient(gw.listen, signer=publisher, timeout=20) as by_publisher,
        ):
            await wait_code(lambda: publish_outcome(by_owner, topic), grpc.StatusCode.OK, "owner")
            snapshot = rpc_call(chain.url, "evm_snapshot")
            owner.grant(topic, reader.address)
            owner.allow_publisher(topic, publisher.address)
            await wait_code(
                lambda: publish_outcome(by_publisher, topic, 1),
                grpc.StatusCode.OK,
                "publisher accepted before the revert",
            )
            assert await first_delivery(by_reader, topic)

            assert rpc_call(chain.url, "evm_revert", [snapshot]) is True
            for _ in range(3):
                chain.mine()
            await wait_code(
                lambda: publish_outcome(by_publisher, topic, 2),
                grpc.StatusCode.PERMISSION_DENIED,
                "publisher refused after the revert",
            )
            assert await subscribe_outcome(by_reader, topic) == grpc.StatusCode.PERMISSION_DENIED
            assert await publish_outcome(by_owner, topic, 3) == grpc.StatusCode.OK  # still owner
    finally:
        gw.stop()
    assert "chain rewound" in gw.stderr_path.read_text()


async def test_a_chain_restarted_empty_fails_closed_until_the_registry_is_back(
    chain_factory: Callable[[], DevChain], tmp_path: Path
) -> None:
    """Ganache restarted without its database: no contract at the registry address. The
    gateway pauses access at once (not after the staleness bound) instead of serving the old
    grants; once a registry is deployed there again it serves what the new chain says."""
    chain = chain_factory()
    deployed = deploy(chain)
    signer: LocalAccount = Account.from_key(chain.accounts[1].private_key)
    owner = deployed.client(signer)
    reader, publisher = Account.create(), Account.create()
    topic = f"rw-{uuid.uuid4().hex[:12]}"
    owner.register(topic)
    owner.grant(topic, reader.address)
    owner.allow_publisher(topic, publisher.address)
    gw = gateway(tmp_path, chain, deployed)
    try:
        gw.start()
        async with (
            GatewayClient(gw.listen, signer=reader, timeout=20) as by_reader,
            GatewayClient(gw.listen, signer=publisher, timeout=20) as by_publisher,
        ):
            await wait_code(
                lambda: publish_outcome(by_publisher, topic), grpc.StatusCode.OK, "publisher"
            )
            assert await first_delivery(by_reader, topic)

            await asyncio.to_thread(chain.stop)
            assert chain.db_path is not None
            shutil.rmtree(chain.db_path)
            await asyncio.to_thread(chain.restart)  # same port, empty chain, no registry
            await wait_code(
                lambda: publish_outcome(by_publisher, topic, 1),
                grpc.StatusCode.UNAVAILABLE,
                "publish paused on the empty chain",
            )
            assert not await first_delivery(by_reader, topic)  # the stream opens, holds

            again = deploy(chain)  # the deployer's first transaction again: the same address
            assert again.address == deployed.address
            client = again.client(signer)
            client.register(topic)
            client.allow_publisher(topic, publisher.address)  # the reader is not granted again
            await wait_code(
                lambda: publish_outcome(by_publisher, topic, 2),
                grpc.StatusCode.OK,
                "publish accepted once the registry is back",
            )
            assert await subscribe_outcome(by_reader, topic) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        gw.stop()
    log = gw.stderr_path.read_text()
    assert "no contract at registry" in log and "chain rewound" in log


async def test_confirmations_hold_a_change_back_at_the_gateway(
    chain_factory: Callable[[], DevChain], tmp_path: Path
) -> None:
    """`--confirmations 2`: the gateway starts (its readiness waits for `head - 2`, not the
    head) and a publisher allowed at block b may publish once block b + 2 exists."""
    chain = chain_factory()
    deployed = deploy(chain)
    owner = deployed.client(Account.from_key(chain.accounts[1].private_key))
    publisher = Account.create()
    topic = f"cf-{uuid.uuid4().hex[:12]}"
    owner.register(topic)
    for _ in range(2):
        chain.mine()  # the registration is buried
    gw = gateway(tmp_path, chain, deployed, "--confirmations", "2")
    try:
        gw.start()
        async with GatewayClient(gw.listen, signer=publisher, timeout=20) as by_publisher:
            owner.allow_publisher(topic, publisher.address)
            denied = grpc.StatusCode.PERMISSION_DENIED
            assert await publish_outcome(by_publisher, topic) == denied  # 0 blocks on top
            chain.mine()
            assert await publish_outcome(by_publisher, topic) == denied  # 1 block on top
            chain.mine()
            await wait_code(
                lambda: publish_outcome(by_publisher, topic),
                grpc.StatusCode.OK,
                "publish accepted under 2 blocks",
            )
    finally:
        gw.stop()
