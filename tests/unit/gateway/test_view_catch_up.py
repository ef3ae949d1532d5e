"""Before a denial the adapter catches its grant view up to the chain head (issue 10).

A real `GrantFeed` and `RegistryAccess` over a hand-fed follower stream: the grant is
"mined" (the head moves) before the subscribe, but reaches the view only later, the way a
polling follower delivers it. The race is reproduced deterministically: the subscribe
arrives while the view is one block behind, every time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from eth_account import Account

from gateway.access import Allow, Credentials, Decision, Deny
from gateway.grant_feed import GrantFeed
from gateway.registry_access import RegistryAccess, SignedInIdentity
from gateway.view_catch_up import ViewCatchUp
from ledger import changes as ledger
from ledger.errors import ChainUnavailable
from policy.access_policy import AccessPolicy, AccessPolicyConfig
from policy.audit import AuditLog, audit_path
from policy.decision import DecisionConfig
from policy.grant_view import GrantView
from policy.identity import Challenge, SignInConfig
from policy.sessions import new_secret
from policy.signin import sign_in

OWNER = Account.from_key("0x" + "0c" * 32)
READER = Account.from_key("0x" + "0d" * 32)
TOPIC = "t"


class Chain:
    """The chain as the catch-up sees it (`head`) and as the follower reports it (`items`)."""

    def __init__(self) -> None:
        self.head_block = 1
        self.head_reads = 0
        self.down = False
        self.queue: asyncio.Queue[ledger.FollowItem] = asyncio.Queue()
        self._version = 0
        self.feed(ledger.TopicRegistered, 1, owner=OWNER.address)
        self.synced(1)

    async def head(self) -> int:
        self.head_reads += 1
        if self.down:
            raise ChainUnavailable("chain unreachable: ConnectionError")
        return self.head_block

    async def items(self) -> AsyncIterator[ledger.FollowItem]:
        while True:
            yield await self.queue.get()

    def feed(self, kind: type[ledger.Change], block: int, **fields: object) -> None:
        self._version += 1
        self.queue.put_nowait(
            kind(  # type: ignore[call-arg]
                position=ledger.Position(block, 0),
                topic=TOPIC,
                topic_key="0x" + "00" * 32,
                version=self._version,
                tx_hash="0x" + "11" * 32,
                **fields,
            )
        )

    def synced(self, block: int) -> None:
        self.queue.put_nowait(
            ledger.Synced(block_number=block, block_timestamp=0, observed_at=time.time())
        )


class Gateway:
    """A RegistryAccess fed by a real GrantFeed over the hand-fed chain; catch-up on."""

    def __init__(self, tmp_path: Path, chain: Chain, *, timeout: float = 5.0) -> None:
        config = AccessPolicyConfig(
            signin=SignInConfig(domain="gw:1", uri="meshgate://gw:1", chain_id=1337),
            decision=DecisionConfig(staleness_bound=30.0),
        )
        policy = AccessPolicy(
            config,
            view=GrantView(),
            session_secret=new_secret(),
            audit=AuditLog.open(audit_path(tmp_path)),
        )
        self.access = RegistryAccess(policy)
        self.feed = GrantFeed(self.access, chain.items())
        self.access.catch_up = ViewCatchUp(chain.head, self.feed.wait_synced, timeout=timeout)

    @property
    def catch_up(self) -> ViewCatchUp:
        assert self.access.catch_up is not None
        return self.access.catch_up


@pytest.fixture
async def gateways() -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    tasks: list[asyncio.Task[None]] = []

    async def start(tmp_path: Path, chain: Chain, *, timeout: float = 5.0) -> Gateway:
        gw = Gateway(tmp_path, chain, timeout=timeout)
        tasks.append(asyncio.create_task(gw.feed.run()))
        async with asyncio.timeout(10):
            await gw.feed.wait_synced(1)
        return gw

    yield start
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


async def signed_in(access: RegistryAccess, account: object) -> SignedInIdentity:
    n = await access.get_nonce()
    challenge = Challenge(n.nonce, n.domain, n.uri, n.chain_id, n.expires_at.timestamp())
    proof = sign_in(account, challenge, [TOPIC], time.time())
    session = await access.sign_in(proof.message, proof.signature)
    identity = await access.authenticate(Credentials(session_token=session.token))
    assert isinstance(identity, SignedInIdentity)
    return identity


async def subscribe(access: RegistryAccess, identity: SignedInIdentity) -> Decision:
    await access.wait_current(identity, TOPIC, publish=False)
    return access.check_subscribe(identity, TOPIC)


async def test_a_grant_mined_before_the_subscribe_is_never_denied(
    tmp_path: Path, gateways: Callable[..., Awaitable[Gateway]]
) -> None:
    chain = Chain()
    gw = await gateways(tmp_path, chain)
    access = gw.access
    for n in range(20):
        reader = await signed_in(access, Account.create())
        block = 2 + n
        chain.head_block = block  # the grant tx is mined: the head moved...
        opening = asyncio.create_task(subscribe(access, reader))
        await asyncio.sleep(0)  # ...the reader subscribes before the follower reports it
        assert not opening.done()
        chain.feed(ledger.AccessGranted, block, reader=reader.address, expires_at=0)
        chain.synced(block)
        async with asyncio.timeout(5):
            assert await opening == Allow(), f"attempt {n}"
    assert gw.catch_up.stats.timeouts == 0


async def test_a_publisher_allowed_before_the_publish_is_never_denied(
    tmp_path: Path, gateways: Callable[..., Awaitable[Gateway]]
) -> None:
    chain = Chain()
    gw = await gateways(tmp_path, chain)
    access = gw.access
    publisher = await signed_in(access, READER)
    chain.head_block = 2
    publishing = asyncio.create_task(access.wait_current(publisher, TOPIC, publish=True))
    await asyncio.sleep(0)
    chain.feed(ledger.PublisherAllowed, 2, publisher=READER.address)
    chain.synced(2)
    async with asyncio.timeout(5):
        await publishing
    assert access.check_publish(publisher, TOPIC) == Allow()


async def test_a_denial_waits_for_the_head_and_names_the_views_block(
    tmp_path: Path, gateways: Callable[..., Awaitable[Gateway]]
) -> None:
    chain = Chain()
    gw = await gateways(tmp_path, chain)
    access = gw.access
    stranger = await signed_in(access, Account.create())
    chain.head_block = 3
    opening = asyncio.create_task(subscribe(access, stranger))
    await asyncio.sleep(0)
    chain.synced(2)
    async with asyncio.timeout(5):
        await gw.feed.wait_synced(2)
    await asyncio.sleep(0)
    assert not opening.done()  # the view is at 2, the head at 3: still catching up
    chain.synced(3)
    async with asyncio.timeout(5):
        decision = await opening
    assert isinstance(decision, Deny)
    assert "no grant" in decision.reason and "at block 3" in decision.reason
    assert gw.catch_up.stats.timeouts == 0


async def test_allowed_calls_never_ask_the_chain(
    tmp_path: Path, gateways: Callable[..., Awaitable[Gateway]]
) -> None:
    chain = Chain()
    gw = await gateways(tmp_path, chain)
    access = gw.access
    owner = await signed_in(access, OWNER)
    reads = chain.head_reads
    for _ in range(5):
        assert await subscribe(access, owner) == Allow()
    assert chain.head_reads == reads


async def test_the_wait_is_bounded_and_a_dead_node_does_not_hold_a_denial(
    tmp_path: Path, gateways: Callable[..., Awaitable[Gateway]]
) -> None:
    chain = Chain()
    gw = await gateways(tmp_path, chain, timeout=0.2)
    access = gw.access
    stranger = await signed_in(access, Account.create())
    chain.head_block = 9  # the follower never reports block 9
    async with asyncio.timeout(5):
        decision = await subscribe(access, stranger)
    assert isinstance(decision, Deny) and "at block 1" in decision.reason
    chain.down = True
    async with asyncio.timeout(5):
        decision = await subscribe(access, stranger)
    assert isinstance(decision, Deny)
    assert gw.catch_up.stats.timeouts == 2
