"""The owner's key flows (meshgate/key_custody.py) against a real Ganache; the key sets go to
an in-memory `KeySetPort` (the gateway's side is tested in test_encryption_*.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from meshgate.errors import KeyCustodyError
from meshgate.key_custody import KeyCustody
from policy import key_sets
from policy.encryption_keys import announced_public_key, derive_x25519
from tests.support.chain_fixtures import DeployedRegistry

pytestmark = [pytest.mark.chain, pytest.mark.timeout(120)]


class HeldKeySets:
    """A KeySetPort that keeps what it is given, in order (what a gateway would hold)."""

    target = "memory"

    def __init__(self) -> None:
        self.held: list[tuple[bytes, bytes]] = []

    def put(self, topic: str, document: bytes, signature: bytes) -> int:
        self.held.append((document, signature))
        return key_sets.decode(document).epoch

    def get(self, topic: str, from_epoch: int = 0) -> list[tuple[bytes, bytes]]:
        return [
            (d, s)
            for d, s in self.held
            if key_sets.decode(d).topic == topic and key_sets.decode(d).epoch >= from_epoch
        ]

    def newest(self, epoch: int) -> key_sets.KeySetDocument:
        docs = [key_sets.decode(d) for d, _ in self.held]
        return [d for d in docs if d.epoch == epoch][-1]


def opens(doc: key_sets.KeySetDocument, who: LocalAccount) -> bytes:
    return key_sets.unseal(doc, who.address, derive_x25519(bytes(who.key)))


def test_register_grant_revoke_and_history_seal_keys_to_the_right_accounts(
    registry: DeployedRegistry, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    owner_key, alice, carol = funded_account(), funded_account(), funded_account()
    bob: LocalAccount = Account.create()  # never announces a key
    for who in (alice, carol):
        registry.client(who).announce_key(announced_public_key(bytes(who.key)))
    owner = registry.client(owner_key)
    port = HeldKeySets()
    custody = KeyCustody(owner, owner_key, port)

    done = custody.register_encrypted(topic_name)
    assert done.announce_tx is not None and done.first.epoch == 1
    assert set(done.first.recipients) == {owner_key.address.lower()}
    assert custody.announce_if_missing() is None  # the same key is on chain already
    epoch1 = custody.recover(topic_name)[1]

    owner.grant(topic_name, alice.address)
    owner.grant(topic_name, bob.address)
    (again,) = custody.reissue(topic_name, alice.address).issued
    assert again.epoch == 1 and alice.address.lower() in again.recipients
    assert [(s.address, s.reason) for s in again.skipped] == [
        (bob.address, "no X25519 key announced on chain")
    ]
    nothing = custody.reissue(topic_name, bob.address)
    assert nothing.issued == () and nothing.skipped is not None
    assert nothing.skipped.reason == "no X25519 key announced on chain"
    assert custody.reissue(topic_name, alice.address).already == (1,)  # holds it: no new set
    assert opens(port.newest(1), alice) == epoch1  # the same key, re-issued

    owner.revoke(topic_name, alice.address)
    rotated = custody.rotate(topic_name)
    assert rotated.epoch == 2 and set(rotated.recipients) == {owner_key.address.lower()}
    assert owner.key_epoch_of(topic_name) == 2
    epoch2 = custody.recover(topic_name)[2]
    assert epoch2 != epoch1  # fresh, never derived
    with pytest.raises(key_sets.KeySetError, match="no entry"):
        opens(port.newest(2), alice)

    owner.grant(topic_name, carol.address)
    issued = custody.reissue(topic_name, carol.address, history=True).issued
    assert [i.epoch for i in issued] == [1, 2]
    assert opens(port.newest(1), carol) == epoch1 and opens(port.newest(2), carol) == epoch2
    assert opens(port.newest(1), alice) == epoch1  # an earlier holder keeps its entry
    for doc, sig in port.held:
        recorded = owner.key_set_epoch_of(topic_name, key_sets.key_set_hash(doc))
        assert recorded == key_sets.decode(doc).epoch  # every delivered set is on chain
        key_sets.verify(
            doc, sig, topic=topic_name, owner=owner_key.address, recorded_epoch=recorded
        )


def test_flows_refuse_a_plaintext_topic_and_a_caller_who_is_not_the_owner(
    registry: DeployedRegistry, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    owner_key, stranger = funded_account(), funded_account()
    owner = registry.client(owner_key)
    owner.register(topic_name)
    with pytest.raises(KeyCustodyError, match="is not encrypted"):
        KeyCustody(owner, owner_key, HeldKeySets()).rotate(topic_name)
    encrypted = topic_name + "-e"
    KeyCustody(owner, owner_key, HeldKeySets()).register_encrypted(encrypted)
    not_owner = KeyCustody(registry.client(stranger), stranger, HeldKeySets())
    with pytest.raises(KeyCustodyError, match="is not the owner"):
        not_owner.rotate(encrypted)


def test_a_gateway_handing_back_a_forged_key_set_is_refused_on_recovery(
    registry: DeployedRegistry, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    owner_key = funded_account()
    port = HeldKeySets()
    custody = KeyCustody(registry.client(owner_key), owner_key, port)
    custody.register_encrypted(topic_name)
    doc, _sig = port.held[0]
    port.held.append((doc, key_sets.sign(doc, Account.create())))  # not the owner's signature
    with pytest.raises(KeyCustodyError, match="does not verify"):
        custody.recover(topic_name)


def test_after_a_transfer_the_new_owner_rotates_and_re_issues_past_the_old_owners_sets(
    registry: DeployedRegistry, funded_account: Callable[[], LocalAccount], topic_name: str
) -> None:
    old_key, new_key, reader = funded_account(), funded_account(), funded_account()
    registry.client(reader).announce_key(announced_public_key(bytes(reader.key)))
    port = HeldKeySets()  # one gateway's holdings, both owners' sets in it
    KeyCustody(registry.client(old_key), old_key, port).register_encrypted(topic_name)
    registry.client(old_key).transfer(topic_name, new_key.address)
    heir = KeyCustody(registry.client(new_key), new_key, port)
    heir.announce_if_missing()
    assert heir.rotate(topic_name).epoch == 2
    registry.client(new_key).grant(topic_name, reader.address)
    (given,) = heir.reissue(topic_name, reader.address).issued
    assert given.epoch == 2 and opens(port.newest(2), reader) == heir.recover(topic_name)[2]
    assert set(heir.recover(topic_name)) == {2}  # epoch 1 was never the heir's
