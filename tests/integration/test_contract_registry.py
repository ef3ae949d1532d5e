"""The registry's rules, against a real Ganache: every function, rejection and event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from ledger import errors
from ledger.config import LedgerConfig
from ledger.names import topic_key
from ledger.registry import ChainHead, RegistryClient, TxResult
from tests.support.chain_fixtures import DeployedRegistry

pytestmark = pytest.mark.chain

EVENT_NAMES = (
    "TopicRegistered",
    "OwnershipTransferred",
    "AccessGranted",
    "AccessRevoked",
    "PublisherAllowed",
    "PublisherDenied",
)


def events_of(client: RegistryClient, tx: TxResult) -> list[tuple[str, dict[str, Any]]]:
    receipt = client.w3.eth.get_transaction_receipt(tx.tx_hash)  # type: ignore[arg-type]
    found = []
    for name in EVENT_NAMES:
        for log in client.contract.events[name]().process_receipt(receipt, errors=DISCARD):
            found.append((name, dict(log["args"])))
    return found


def test_register_makes_caller_owner_at_version_1(owner: RegistryClient, topic_name: str) -> None:
    assert owner.owner_of(topic_name) is None
    assert owner.version_of(topic_name) == 0
    tx = owner.register(topic_name)
    assert owner.owner_of(topic_name) == owner.signer.address  # type: ignore[union-attr]
    assert owner.version_of(topic_name) == 1
    assert events_of(owner, tx) == [
        (
            "TopicRegistered",
            {
                "topic": topic_key(topic_name),
                "owner": owner.signer.address,  # type: ignore[union-attr]
                "name": topic_name,
                "encrypted": False,
                "version": 1,
            },
        )
    ]


def test_register_twice_is_rejected(
    owner: RegistryClient,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    owner.register(topic_name)
    with pytest.raises(errors.AlreadyRegistered, match="already registered"):
        owner.register(topic_name)
    with pytest.raises(errors.AlreadyRegistered):
        registry.client(funded_account()).register(topic_name)


def test_empty_name_rejected_on_chain(owner: RegistryClient) -> None:
    # The Python client refuses bad names before sending; call the contract directly.
    with pytest.raises(errors.EmptyName):
        owner._transact("", "register", "")


def test_bad_name_rejected_off_chain(owner: RegistryClient) -> None:
    with pytest.raises(errors.BadTopicName):
        owner.register("-starts-with-dash")
    with pytest.raises(errors.BadTopicName):
        owner.register("x" * 129)


def test_grant_read_revoke_and_events(
    owner: RegistryClient, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    reader = funded_account().address
    owner.register(topic_name)
    assert not owner.can_read(topic_name, reader)
    assert owner.grant_of(topic_name, reader) is None

    tx = owner.grant(topic_name, reader)
    assert owner.can_read(topic_name, reader)
    info = owner.grant_of(topic_name, reader)
    assert info is not None and info.expires_at == 0 and info.granted_at > 0
    assert owner.readers_of(topic_name) == [reader]
    assert events_of(owner, tx) == [
        (
            "AccessGranted",
            {
                "topic": topic_key(topic_name),
                "reader": reader,
                "name": topic_name,
                "expiresAt": 0,
                "version": 2,
            },
        )
    ]

    far = owner.chain_time() + 3600
    tx = owner.grant(topic_name, reader, far)  # granting again updates
    assert owner.grant_of(topic_name, reader).expires_at == far  # type: ignore[union-attr]
    assert owner.readers_of(topic_name) == [reader]
    assert events_of(owner, tx)[0][1]["expiresAt"] == far
    assert owner.version_of(topic_name) == 3

    tx = owner.revoke(topic_name, reader)
    assert not owner.can_read(topic_name, reader)
    assert owner.grant_of(topic_name, reader) is None
    assert owner.readers_of(topic_name) == []
    assert events_of(owner, tx) == [
        (
            "AccessRevoked",
            {"topic": topic_key(topic_name), "reader": reader, "name": topic_name, "version": 4},
        )
    ]


def test_revoke_keeps_other_readers(
    owner: RegistryClient, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    readers = [funded_account().address for _ in range(3)]
    owner.register(topic_name)
    for r in readers:
        owner.grant(topic_name, r)
    owner.revoke(topic_name, readers[0])
    assert sorted(owner.readers_of(topic_name)) == sorted(readers[1:])
    assert [owner.can_read(topic_name, r) for r in readers] == [False, True, True]
    owner.revoke(topic_name, readers[2])
    assert owner.readers_of(topic_name) == [readers[1]]


def test_grant_expires_with_chain_time(
    owner: RegistryClient,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    reader = funded_account().address
    owner.register(topic_name)
    expiry = owner.chain_time() + 120
    owner.grant(topic_name, reader, expiry)
    assert owner.can_read(topic_name, reader)
    registry.chain.mine(seconds_forward=300)
    assert owner.chain_time() >= expiry
    assert not owner.can_read(topic_name, reader)
    assert owner.grant_of(topic_name, reader) is not None  # listed until revoked


def test_expiry_in_the_past_rejected(
    owner: RegistryClient, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    owner.register(topic_name)
    with pytest.raises(errors.ExpiryInPast, match="expiry in the past"):
        owner.grant(topic_name, funded_account().address, owner.chain_time() - 10)


def test_publishers(
    owner: RegistryClient, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    pub = funded_account().address
    owner.register(topic_name)
    assert not owner.can_publish(topic_name, pub)
    tx = owner.allow_publisher(topic_name, pub)
    assert owner.can_publish(topic_name, pub)
    assert owner.publishers_of(topic_name) == [pub]
    assert events_of(owner, tx) == [
        (
            "PublisherAllowed",
            {"topic": topic_key(topic_name), "publisher": pub, "name": topic_name, "version": 2},
        )
    ]
    with pytest.raises(errors.AlreadyPublisher):
        owner.allow_publisher(topic_name, pub)
    tx = owner.deny_publisher(topic_name, pub)
    assert not owner.can_publish(topic_name, pub)
    assert owner.publishers_of(topic_name) == []
    assert events_of(owner, tx)[0] == (
        "PublisherDenied",
        {"topic": topic_key(topic_name), "publisher": pub, "name": topic_name, "version": 3},
    )
    with pytest.raises(errors.NotPublisher):
        owner.deny_publisher(topic_name, pub)


def test_transfer_moves_every_right(
    owner: RegistryClient,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    first = owner.signer.address  # type: ignore[union-attr]
    new_owner = registry.client(funded_account())
    owner.register(topic_name)
    tx = owner.transfer(topic_name, new_owner.signer.address)  # type: ignore[union-attr]
    assert owner.owner_of(topic_name) == new_owner.signer.address  # type: ignore[union-attr]
    assert events_of(owner, tx) == [
        (
            "OwnershipTransferred",
            {
                "topic": topic_key(topic_name),
                "newOwner": new_owner.signer.address,  # type: ignore[union-attr]
                "previousOwner": first,
                "name": topic_name,
                "version": 2,
            },
        )
    ]
    with pytest.raises(errors.NotOwner):
        owner.grant(topic_name, first)
    new = new_owner.signer.address  # type: ignore[union-attr]
    assert new_owner.can_read(topic_name, new) and new_owner.can_publish(topic_name, new)
    assert not new_owner.can_read(topic_name, first)  # the old owner keeps no right
    assert not new_owner.can_publish(topic_name, first)
    new_owner.grant(topic_name, first)
    assert new_owner.can_read(topic_name, first)


def test_the_owner_reads_and_publishes_its_own_topic_without_a_grant(
    owner: RegistryClient, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    """One rule in the contract and the gateways (policy/decision.py): ownership is access."""
    me = owner.signer.address  # type: ignore[union-attr]
    assert not owner.can_read(topic_name, me) and not owner.can_publish(topic_name, me)
    owner.register(topic_name)
    assert owner.can_read(topic_name, me) and owner.can_publish(topic_name, me)
    assert owner.grant_of(topic_name, me) is None  # not a grant: no entry in readersOf
    assert owner.readers_of(topic_name) == [] and owner.publishers_of(topic_name) == []
    other = funded_account().address
    assert not owner.can_read(topic_name, other) and not owner.can_publish(topic_name, other)


def test_only_the_owner_changes_a_topic_not_even_the_deployer(
    owner: RegistryClient,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    someone = funded_account().address
    owner.register(topic_name)
    owner.grant(topic_name, someone)
    owner.allow_publisher(topic_name, someone)
    for outsider in (registry.client(registry.deployer), registry.client(funded_account())):
        calls: list[tuple[Callable[..., object], tuple[object, ...]]] = [
            (outsider.transfer, (topic_name, someone)),
            (outsider.grant, (topic_name, someone)),
            (outsider.revoke, (topic_name, someone)),
            (outsider.allow_publisher, (topic_name, outsider.signer.address)),  # type: ignore[union-attr]
            (outsider.deny_publisher, (topic_name, someone)),
        ]
        for method, args in calls:
            with pytest.raises(errors.NotOwner) as caught:
                method(*args)
            assert caught.value.args_ == (repr(topic_name), outsider.signer.address)  # type: ignore[union-attr]
    assert owner.version_of(topic_name) == 3


def test_unknown_topic_rejected_for_every_change(
    owner: RegistryClient, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    someone = funded_account().address
    for attempt in (
        lambda: owner.transfer(topic_name, someone),
        lambda: owner.grant(topic_name, someone),
        lambda: owner.revoke(topic_name, someone),
        lambda: owner.allow_publisher(topic_name, someone),
        lambda: owner.deny_publisher(topic_name, someone),
    ):
        with pytest.raises(errors.UnknownTopic, match="unknown topic"):
            attempt()


def test_revoke_without_grant_and_zero_address(owner: RegistryClient, topic_name: str) -> None:
    owner.register(topic_name)
    zero = "0x" + "00" * 20
    with pytest.raises(errors.NotGranted):
        owner.revoke(topic_name, owner.signer.address)  # type: ignore[union-attr]
    for attempt in (
        lambda: owner.grant(topic_name, zero),
        lambda: owner.allow_publisher(topic_name, zero),
        lambda: owner.transfer(topic_name, zero),
    ):
        with pytest.raises(errors.ZeroAddress):
            attempt()
    assert owner.version_of(topic_name) == 1


def test_topic_info_lists_grants_and_publishers(
    owner: RegistryClient, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    a, b = funded_account().address, funded_account().address
    owner.register(topic_name)
    owner.grant(topic_name, a)
    owner.grant(topic_name, b, owner.chain_time() + 999)
    owner.allow_publisher(topic_name, a)
    info = owner.topic_info(topic_name)
    assert info is not None
    assert info.owner == owner.signer.address  # type: ignore[union-attr]
    assert info.version == 4
    assert {g.reader: g.expires_at != 0 for g in info.grants} == {a: False, b: True}
    assert info.publishers == (a,)
    assert owner.topic_info(topic_name + "-none") is None


def test_insufficient_funds(registry: DeployedRegistry, topic_name: str) -> None:
    from eth_account import Account

    broke = registry.client(Account.create())
    with pytest.raises(errors.InsufficientFunds):
        broke.register(topic_name)


def test_wrong_chain_id_and_unreachable_node(registry: DeployedRegistry) -> None:
    from dataclasses import replace

    from ledger.config import LedgerConfig

    with pytest.raises(errors.WrongChainId, match="expected 1"):
        RegistryClient(replace(registry.config, chain_id=1))
    with pytest.raises(errors.ChainUnavailable):
        RegistryClient(LedgerConfig(rpc_url="http://127.0.0.1:9", registry=registry.address))


async def test_chain_head_reads_the_head_and_shares_one_request(
    owner: RegistryClient, topic_name: str
) -> None:
    head = ChainHead(owner.config)
    mined = owner.register(topic_name).block_number
    assert await head.block_number() >= mined
    answers = await asyncio.gather(*(head.block_number() for _ in range(5)))
    assert len(set(answers)) == 1


async def test_chain_head_of_a_dead_node_is_chain_unavailable() -> None:
    head = ChainHead(LedgerConfig(rpc_url="http://127.0.0.1:9"), timeout=1.0)
    with pytest.raises(errors.ChainUnavailable, match="chain unreachable"):
        await head.block_number()
