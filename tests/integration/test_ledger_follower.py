"""The registry follower against a real Ganache: order, expiry, resume, node restart, rewinds."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import changes as ch
from ledger.errors import WrongChainId
from ledger.follower import RegistryFollower
from ledger.registry import RegistryClient
from meshgate.devchain import DevChain, rpc_call
from tests.support.chain_fixtures import DeployedRegistry, deploy

pytestmark = pytest.mark.chain

WAIT = 30.0  # s; generous: the machine is shared


async def collect(
    follower: RegistryFollower,
    topic: str,
    count: int,
    synced_after: int | None = None,
) -> tuple[list[ch.Change], list[ch.Synced]]:
    """Read until `count` changes of `topic` arrived (and a Synced past `synced_after`)."""
    found: list[ch.Change] = []
    synced: list[ch.Synced] = []
    async with asyncio.timeout(WAIT):
        async for item in follower:
            if isinstance(item, ch.Synced):
                synced.append(item)
                done_sync = synced_after is None or item.block_number >= synced_after
                if len(found) >= count and done_sync:
                    return found, synced
            elif item.topic == topic:
                found.append(item)
    raise AssertionError("follower ended")


def describe(c: ch.Change) -> tuple[object, ...]:
    kind = type(c).__name__
    who = getattr(c, "reader", None) or getattr(c, "publisher", None) or getattr(c, "owner", None)
    return (kind, who, getattr(c, "expires_at", None), c.version)


@pytest.mark.parametrize("live", [True, False], ids=["websocket", "polling"])
async def test_follower_sees_every_change_in_order(
    live: bool,
    registry: DeployedRegistry,
    owner: RegistryClient,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    reader, pub, heir = (funded_account().address for _ in range(3))
    start = owner.block_number() + 1
    expiry = owner.chain_time() + 3600

    def changes_on_chain() -> int:
        owner.register(topic_name)
        owner.grant(topic_name, reader)
        owner.grant(topic_name, reader, expiry)  # re-grant updates the expiry
        owner.allow_publisher(topic_name, pub)
        owner.revoke(topic_name, reader)
        owner.deny_publisher(topic_name, pub)
        return owner.transfer(topic_name, heir).block_number

    async with RegistryFollower(registry.config, from_block=start, live=live) as follower:
        last_block = await asyncio.to_thread(changes_on_chain)
        found, synced = await collect(follower, topic_name, 7, synced_after=last_block)
        assert follower.statistics().mode == ("websocket" if live else "polling")

    me = owner.signer.address  # type: ignore[union-attr]
    assert [describe(c) for c in found] == [
        ("TopicRegistered", me, None, 1),
        ("AccessGranted", reader, 0, 2),
        ("AccessGranted", reader, expiry, 3),
        ("PublisherAllowed", pub, None, 4),
        ("AccessRevoked", reader, None, 5),
        ("PublisherDenied", pub, None, 6),
        ("OwnershipTransferred", heir, None, 7),
    ]
    assert isinstance(found[-1], ch.OwnershipTransferred) and found[-1].previous_owner == me
    positions = [c.position for c in found]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert all(c.topic_key == "0x" + bytes.fromhex(c.topic_key[2:]).hex() for c in found)
    assert synced[-1].block_number >= last_block


async def test_quiet_chain_still_yields_checkpoints(registry: DeployedRegistry) -> None:
    async with RegistryFollower(registry.config, live=False) as follower:
        seen: list[ch.Synced] = []
        async with asyncio.timeout(WAIT):
            async for item in follower:
                if isinstance(item, ch.Synced):
                    seen.append(item)
                    if len(seen) == 4:
                        break
    assert [s.observed_at for s in seen] == sorted(seen_at.observed_at for seen_at in seen)
    assert seen[-1].observed_at > seen[0].observed_at
    assert seen[-1].block_timestamp > 0


async def test_expiry_is_visible_through_synced_chain_time(
    registry: DeployedRegistry,
    owner: RegistryClient,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    """Expiry emits no event; a consumer compares `expires_at` with `Synced.block_timestamp`."""
    reader = funded_account().address
    start = owner.block_number() + 1
    owner.register(topic_name)
    expiry = owner.chain_time() + 120
    granted = owner.grant(topic_name, reader, expiry).block_number
    async with RegistryFollower(registry.config, from_block=start) as follower:
        found, synced = await collect(follower, topic_name, 2, synced_after=granted)
        assert isinstance(found[1], ch.AccessGranted) and found[1].expires_at == expiry
        assert synced[-1].block_timestamp < expiry  # still valid at the synced block
        registry.chain.mine(seconds_forward=300)
        after = owner.block_number()
        _, later = await collect(follower, topic_name, 0, synced_after=after)
        assert later[-1].block_timestamp >= expiry
    assert not owner.can_read(topic_name, reader)  # the contract agrees


async def test_resume_after_own_restart_neither_misses_nor_repeats(
    registry: DeployedRegistry,
    owner: RegistryClient,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    readers = [funded_account().address for _ in range(4)]
    start = owner.block_number() + 1
    owner.register(topic_name)
    owner.grant(topic_name, readers[0])
    async with RegistryFollower(registry.config, from_block=start) as first:
        seen, _ = await collect(first, topic_name, 2)
    saved = seen[-1].position  # what a consumer would persist

    for r in readers[1:]:
        owner.grant(topic_name, r)
    owner.revoke(topic_name, readers[0])
    end = owner.block_number()
    async with RegistryFollower(registry.config, resume_after=saved) as second:
        rest, _ = await collect(second, topic_name, 4, synced_after=end)
    assert [c.version for c in seen + rest] == [1, 2, 3, 4, 5, 6]
    assert all(c.position > saved for c in rest)


async def test_survives_a_restart_of_the_chain_node(
    chain_factory: Callable[[], DevChain], topic_name: str
) -> None:
    chain = chain_factory()
    deployed = deploy(chain)
    signer: LocalAccount = Account.from_key(chain.accounts[1].private_key)
    client = deployed.client(signer)
    readers = [Account.create().address for _ in range(4)]
    client.register(topic_name)
    client.grant(topic_name, readers[0])

    async with RegistryFollower(deployed.config) as follower:
        before, _ = await collect(follower, topic_name, 2)
        chain.stop()
        await asyncio.to_thread(chain.restart)
        client = deployed.client(signer)  # a fresh HTTP session to the restarted node
        for r in readers[1:]:
            client.grant(topic_name, r)
        client.revoke(topic_name, readers[0])
        end = client.block_number()
        after, _ = await collect(follower, topic_name, 4, synced_after=end)
        stats = follower.statistics()
    assert stats.reconnects >= 1 and stats.mode == "websocket"
    assert stats.rewinds == 0  # the same chain (same database): nothing is taken back
    versions = [c.version for c in before + after]
    assert versions == [1, 2, 3, 4, 5, 6]
    assert [c.position for c in before + after] == sorted({c.position for c in before + after})


async def test_wrong_chain_id_ends_the_iteration(registry: DeployedRegistry) -> None:
    config = replace(registry.config, chain_id=1)
    async with RegistryFollower(config) as follower:
        with pytest.raises(WrongChainId):
            async with asyncio.timeout(WAIT):
                await anext(follower)


async def test_websocket_new_heads_wake_the_follower_between_polls(
    registry: DeployedRegistry, owner: RegistryClient, topic_name: str
) -> None:
    """With a poll interval far beyond the wait, only the newHeads wake-up can deliver."""
    config = replace(registry.config, poll_interval=600.0)
    start = owner.block_number() + 1
    async with RegistryFollower(config, from_block=start) as follower:
        await anext(follower)  # the first Synced: the follower is now waiting for a head
        owner.register(topic_name)
        found, _ = await collect(follower, topic_name, 1)
    assert isinstance(found[0], ch.TopicRegistered)


async def test_resume_in_the_middle_of_a_block(
    registry: DeployedRegistry,
    owner: RegistryClient,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    """Several changes mined in one block: resuming after the 2nd yields exactly the rest."""
    readers = [funded_account().address for _ in range(4)]
    owner.register(topic_name)
    start = owner.block_number()
    signer = owner.signer
    assert signer is not None
    w3 = owner.w3
    nonce = w3.eth.get_transaction_count(signer.address)
    rpc_call(registry.chain.url, "miner_stop")
    try:
        for i, reader in enumerate(readers):
            params: Any = {"from": signer.address, "nonce": nonce + i, "gas": 300_000}
            tx: Any = owner.contract.functions.grant(topic_name, reader, 0).build_transaction(
                params
            )
            w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction)
        registry.chain.mine()
    finally:
        rpc_call(registry.chain.url, "miner_start")
    block = owner.block_number()

    async with RegistryFollower(registry.config, from_block=start) as first:
        all_changes, _ = await collect(first, topic_name, 5, synced_after=block)
    grants = all_changes[1:]
    assert len({c.position.block for c in grants}) == 1  # all four in one block
    assert [getattr(c, "reader", None) for c in grants] == readers

    async with RegistryFollower(registry.config, resume_after=grants[1].position) as second:
        rest, _ = await collect(second, topic_name, 2, synced_after=block)
    assert rest == grants[2:]


async def follow_until(
    follower: RegistryFollower, done: Callable[[list[ch.FollowItem]], bool]
) -> list[ch.FollowItem]:
    """Every item (changes, checkpoints, rewinds) until `done(items so far)`."""
    seen: list[ch.FollowItem] = []
    async with asyncio.timeout(WAIT):
        async for item in follower:
            seen.append(item)
            if done(seen):
                return seen
    raise AssertionError("follower ended")


def synced_past(block: int) -> Callable[[list[ch.FollowItem]], bool]:
    return lambda seen: isinstance(seen[-1], ch.Synced) and seen[-1].block_number >= block


async def test_a_reverted_grant_is_rewound_and_the_new_chain_followed(
    chain_factory: Callable[[], DevChain], topic_name: str
) -> None:
    """evm_snapshot, grant, evm_revert, three new blocks: the grant is taken back."""
    chain = chain_factory()
    deployed = deploy(chain)
    client = deployed.client(Account.from_key(chain.accounts[1].private_key))
    reader = Account.create().address
    registered = client.register(topic_name).block_number
    async with RegistryFollower(deployed.config) as follower:
        await follow_until(follower, synced_past(registered))
        snapshot = rpc_call(chain.url, "evm_snapshot")
        granted = client.grant(topic_name, reader).block_number
        before = await follow_until(follower, synced_past(granted))
        assert any(isinstance(i, ch.AccessGranted) for i in before)

        assert rpc_call(chain.url, "evm_revert", [snapshot]) is True
        for _ in range(3):
            chain.mine()
        head = client.block_number()
        assert head == granted + 2  # the grant's block number now holds an empty block
        after = await follow_until(
            follower,
            lambda seen: any(isinstance(i, ch.Rewound) for i in seen) and synced_past(head)(seen),
        )
        stats = follower.statistics()
    rewinds = [i for i in after if isinstance(i, ch.Rewound)]
    assert rewinds[0].block_number == registered  # the common block: before the grant
    assert not any(isinstance(i, ch.AccessGranted) for i in after)  # never handed out again
    assert stats.rewinds >= 1


async def test_a_chain_restarted_without_its_database_voids_the_registry(
    chain_factory: Callable[[], DevChain], topic_name: str
) -> None:
    """Ganache back empty (no code at the registry address): everything is rewound and no
    checkpoint comes until a registry is deployed there again; then the new one is read."""
    chain = chain_factory()
    deployed = deploy(chain)
    signer: LocalAccount = Account.from_key(chain.accounts[1].private_key)
    registered = deployed.client(signer).register(topic_name).block_number
    async with RegistryFollower(deployed.config) as follower:
        await follow_until(follower, synced_past(registered))
        chain.stop()
        assert chain.db_path is not None
        shutil.rmtree(chain.db_path)
        await asyncio.to_thread(chain.restart)
        rewound = await follow_until(follower, lambda seen: isinstance(seen[-1], ch.Rewound))
        assert rewound[-1].block_number == -1 and "no contract" in rewound[-1].reason
        assert not any(isinstance(i, ch.Synced) for i in rewound)  # nothing "fresh" in between

        again = deploy(chain)  # the same deployer's first transaction: the same address
        assert again.address == deployed.address
        other = Account.create().address
        client = again.client(signer)
        client.register(topic_name)
        last = client.grant(topic_name, other).block_number
        after = await follow_until(follower, synced_past(last))
    changes = [i for i in after if isinstance(i, ch.Change) and i.topic == topic_name]
    assert [type(c).__name__ for c in changes] == ["TopicRegistered", "AccessGranted"]
    assert follower.statistics().rewinds >= 1


async def test_confirmations_hold_a_change_back_until_buried(
    registry: DeployedRegistry, owner: RegistryClient, topic_name: str
) -> None:
    """`confirmations = 2`: a registration is handed out only once two blocks are on top."""
    registered = owner.register(topic_name).block_number
    config = replace(registry.config, confirmations=2)

    def mine(seen: list[ch.FollowItem]) -> list[ch.Change]:
        return [i for i in seen if isinstance(i, ch.Change) and i.topic == topic_name]

    async with RegistryFollower(config, from_block=registered - 3) as follower:
        assert mine(await follow_until(follower, synced_past(registered - 2))) == []
        registry.chain.mine()  # one block on top
        assert mine(await follow_until(follower, synced_past(registered - 1))) == []
        registry.chain.mine()  # two blocks on top
        buried = mine(await follow_until(follower, synced_past(registered)))
    assert [type(c).__name__ for c in buried] == ["TopicRegistered"]
