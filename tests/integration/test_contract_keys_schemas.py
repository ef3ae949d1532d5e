"""The registry's encryption and schema rules (issues 12, 16) against a real Ganache: every new
function, its rejections, the events the follower decodes, and who may call what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from ledger import changes, errors
from ledger.names import topic_key
from ledger.registry import RegistryClient, TxResult
from tests.support.chain_fixtures import DeployedRegistry

pytestmark = pytest.mark.chain

HASH_1 = bytes(range(32))
HASH_2 = bytes(range(1, 33))
JSON_DOC = b'{"type": "object"}'


def decoded(client: RegistryClient, tx: TxResult) -> list[changes.Change]:
    """The changes the ledger follower would decode from this transaction's raw logs."""
    receipt = client.w3.eth.get_transaction_receipt(tx.tx_hash)  # type: ignore[arg-type]
    out = []
    for log in receipt["logs"]:
        raw: dict[str, Any] = {
            "topics": [bytes(t) for t in log["topics"]],
            "data": bytes(log["data"]),
            "blockNumber": log["blockNumber"],
            "logIndex": log["logIndex"],
            "transactionHash": bytes(log["transactionHash"]),
            "blockHash": bytes(log["blockHash"]),
        }
        change = changes.decode_change(raw)
        if change is not None:
            out.append(change)
    return out


def test_register_encrypted_is_on_chain_and_in_the_follower(
    owner: RegistryClient, topic_name: str
) -> None:
    tx = owner.register(topic_name, encrypted=True)
    assert owner.is_encrypted(topic_name)
    assert owner.key_epoch_of(topic_name) == 0
    [registered] = decoded(owner, tx)
    assert isinstance(registered, changes.TopicRegistered)
    assert registered.encrypted and registered.version == 1
    plain = topic_name + "-plain"
    owner.register(plain)
    assert not owner.is_encrypted(plain)
    info = owner.topic_info(topic_name)
    assert info is not None and info.encrypted and info.key_epoch == 0


def test_key_sets_rotate_and_reissue_by_epoch(owner: RegistryClient, topic_name: str) -> None:
    owner.register(topic_name, encrypted=True)
    with pytest.raises(errors.BadEpoch):
        owner.publish_key_set(topic_name, 2, HASH_1)  # epoch 1 comes first
    with pytest.raises(errors.BadEpoch):
        owner.publish_key_set(topic_name, 0, HASH_1)
    tx = owner.publish_key_set(topic_name, 1, HASH_1)
    assert owner.key_epoch_of(topic_name) == 1
    [published] = decoded(owner, tx)
    assert isinstance(published, changes.KeySetPublished)
    assert (published.epoch, published.key_set_hash) == (1, "0x" + HASH_1.hex())
    assert published.version == 2
    owner.publish_key_set(topic_name, 1, HASH_2)  # the same epoch sealed to more readers
    assert owner.key_epoch_of(topic_name) == 1
    assert owner.key_set_epoch_of(topic_name, HASH_2) == 1
    assert owner.key_set_epoch_of(topic_name, bytes(32 * [7])) == 0
    owner.publish_key_set(topic_name, 2, bytes(32 * [9]))
    assert owner.key_epoch_of(topic_name) == 2
    with pytest.raises(errors.ZeroKey):
        owner.publish_key_set(topic_name, 2, bytes(32))


def test_key_sets_need_an_encrypted_topic_and_its_owner(
    owner: RegistryClient,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
) -> None:
    owner.register(topic_name)
    with pytest.raises(errors.NotEncrypted):
        owner.publish_key_set(topic_name, 1, HASH_1)
    secret = topic_name + "-enc"
    owner.register(secret, encrypted=True)
    outsider = registry.client(funded_account())
    with pytest.raises(errors.NotOwner):
        outsider.publish_key_set(secret, 1, HASH_1)
    with pytest.raises(errors.NotOwner):
        outsider.add_schema(secret, "t", 1, JSON_DOC)
    with pytest.raises(errors.NotOwner):
        outsider.set_schema_compatibility(secret, 0)
    with pytest.raises(errors.UnknownTopic):
        owner.publish_key_set(secret + "-nobody", 1, HASH_1)


def test_announce_key_binds_the_sending_account(
    owner: RegistryClient, registry: DeployedRegistry, funded_account: Callable[[], LocalAccount]
) -> None:
    account = funded_account()
    client = registry.client(account)
    assert client.encryption_key_of(account.address) is None
    client.announce_key(HASH_1)
    assert owner.encryption_key_of(account.address) == HASH_1
    client.announce_key(HASH_2)  # a new key replaces the old one
    assert owner.encryption_key_of(account.address) == HASH_2
    with pytest.raises(errors.ZeroKey):
        client.announce_key(bytes(32))
    with pytest.raises(errors.LedgerError):
        client.announce_key(b"short")


def test_schemas_are_versioned_per_type_and_decoded(owner: RegistryClient, topic_name: str) -> None:
    owner.register(topic_name)
    assert owner.schema_compatibility_of(topic_name) == 1  # BACKWARD by default
    assert owner.schema_count(topic_name, "order.created") == 0
    tx = owner.add_schema(topic_name, "order.created", 1, JSON_DOC)
    owner.add_schema(topic_name, "order.created", 2, b'{"type": "record"}')
    owner.add_schema(topic_name, "order.paid", 1, JSON_DOC)
    assert owner.schema_count(topic_name, "order.created") == 2
    assert owner.schema_at(topic_name, "order.created", 2) == (2, b'{"type": "record"}')
    [added] = decoded(owner, tx)
    assert isinstance(added, changes.SchemaAdded)
    assert (added.event_type, added.schema_version, added.format, added.document) == (
        "order.created",
        1,
        1,
        JSON_DOC,
    )
    assert added.topic_key == "0x" + topic_key(topic_name).hex()
    with pytest.raises(errors.UnknownFormat):
        owner.add_schema(topic_name, "order.created", 4, JSON_DOC)
    with pytest.raises(errors.EmptyDocument):
        owner.add_schema(topic_name, "order.created", 1, b"")
    tx = owner.set_schema_compatibility(topic_name, 6)
    assert owner.schema_compatibility_of(topic_name) == 6
    [mode] = decoded(owner, tx)
    assert isinstance(mode, changes.SchemaCompatibilitySet) and mode.mode == 6
    with pytest.raises(errors.UnknownMode):
        owner.set_schema_compatibility(topic_name, 7)


def test_key_announcements_are_not_topic_changes(
    registry: DeployedRegistry, funded_account: Callable[[], LocalAccount]
) -> None:
    client = registry.client(funded_account())
    tx = client.announce_key(HASH_1)
    receipt = client.w3.eth.get_transaction_receipt(tx.tx_hash)  # type: ignore[arg-type]
    [log] = client.contract.events["EncryptionKeyAnnounced"]().process_receipt(
        receipt, errors=DISCARD
    )
    assert bytes(log["args"]["publicKey"]) == HASH_1
    assert decoded(client, tx) == []
