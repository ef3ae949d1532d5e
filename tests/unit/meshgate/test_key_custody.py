"""The owner's key decisions (meshgate/key_custody.py): who gets a key, which epochs."""

from __future__ import annotations

import pytest

from ledger.registry import GrantInfo, TopicInfo
from meshgate.errors import KeyCustodyError
from meshgate.key_custody import (
    Recipients,
    choose_recipients,
    epochs_to_give,
    holders_per_epoch,
    members_of,
    merged_recipients,
    reissue_epochs,
)
from policy.key_sets import KeySetDocument

OWNER = "0x" + "0a" * 20
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
CAROL = "0x" + "c0" * 20
PUB = "0x" + "e0" * 20
NOW = 1_000_000


def key(n: int) -> bytes:
    return bytes([n]) * 32


def info(*grants: tuple[str, int], publishers: tuple[str, ...] = ()) -> TopicInfo:
    return TopicInfo(
        name="orders",
        owner=OWNER.upper().replace("0X", "0x"),  # the chain's checksummed spelling differs
        version=1,
        grants=tuple(GrantInfo(reader=r, expires_at=e, granted_at=0) for r, e in grants),
        publishers=publishers,
        encrypted=True,
        key_epoch=1,
    )


def test_the_owner_unexpired_grantees_and_publishers_with_keys_get_the_key() -> None:
    topic = info((ALICE, 0), (BOB, NOW + 1), publishers=(PUB,))
    got = choose_recipients(topic, {OWNER: key(1), ALICE: key(2), BOB: key(3), PUB: key(4)}, NOW)
    assert got.keys == {OWNER: key(1), ALICE: key(2), BOB: key(3), PUB: key(4)}
    assert got.roles == {OWNER: "owner", ALICE: "reader", BOB: "reader", PUB: "publisher"}
    assert got.skipped == ()


def test_an_expired_grant_and_a_member_without_a_key_are_skipped_with_why() -> None:
    topic = info((ALICE, NOW), (BOB, 0), publishers=(PUB,))
    got = choose_recipients(topic, {OWNER: key(1), ALICE: key(2), BOB: None}, NOW)
    assert set(got.keys) == {OWNER}
    reasons = {(s.address, s.role): s.reason for s in got.skipped}
    assert reasons == {
        (ALICE, "reader"): f"grant expired at {NOW}",  # expiry is exclusive, as on chain
        (BOB, "reader"): "no X25519 key announced on chain",
        (PUB, "publisher"): "no X25519 key announced on chain",
    }


def test_a_reader_who_also_publishes_gets_one_entry_and_the_owner_is_never_a_grantee() -> None:
    topic = info((ALICE, 0), (OWNER, 0), publishers=(ALICE, OWNER))
    got = choose_recipients(topic, {OWNER: key(1), ALICE: key(2)}, NOW)
    assert got.roles == {OWNER: "owner", ALICE: "reader"}
    assert members_of(topic) == [topic.owner, ALICE, OWNER]


def test_an_owner_without_an_announced_key_is_an_error() -> None:
    with pytest.raises(KeyCustodyError, match="keys announce"):
        choose_recipients(info((ALICE, 0)), {ALICE: key(2)}, NOW)


def test_a_reissue_covers_the_current_epoch_or_with_history_all() -> None:
    assert reissue_epochs(3, history=False) == [3]
    assert reissue_epochs(3, history=True) == [1, 2, 3]
    with pytest.raises(KeyCustodyError, match="no key epoch"):
        reissue_epochs(0, history=True)


def test_an_earlier_epoch_adds_only_the_new_grantee_to_its_holders() -> None:
    today = Recipients(keys={OWNER: key(1), BOB: key(3), CAROL: key(4)}, roles={})
    # Bob was granted without history: Carol's --history grant gives Bob no earlier epoch.
    assert merged_recipients([OWNER, ALICE.upper().replace("0X", "0x")], CAROL, today) == {
        OWNER,
        ALICE,
        CAROL,
    }
    # A grantee without a key (or whose grant does not hold) is not added.
    assert merged_recipients([OWNER], PUB, today) == {OWNER}


def test_holders_per_epoch_unites_every_document_of_an_epoch() -> None:
    def doc(epoch: int, *who: str) -> KeySetDocument:
        return KeySetDocument(
            topic="orders",
            epoch=epoch,
            chain_id=1337,
            registry=OWNER,
            owner=OWNER,
            issued_at=0,
            sealed={a: b"x" for a in who},
        )

    docs = [doc(1, OWNER, ALICE), doc(1, OWNER, BOB), doc(2, OWNER)]
    assert holders_per_epoch(docs) == {1: sorted([OWNER, ALICE, BOB]), 2: [OWNER]}


def test_only_epochs_the_grantee_does_not_hold_are_given() -> None:
    holders = {1: [OWNER, ALICE], 2: [OWNER], 3: [OWNER, ALICE.upper().replace("0X", "0x")]}
    assert epochs_to_give(ALICE, [1, 2, 3], holders) == [2]
    assert epochs_to_give(BOB, [3], holders) == [3]
    assert epochs_to_give(BOB, [4], holders) == [4]  # no set held for it: give it
