import time
from collections.abc import AsyncIterator, Iterable

from gateway.grant_feed import GrantFeed, to_policy
from gateway.registry_access import RegistryAccess
from ledger import changes as ledger
from policy import grant_view as view
from policy.access_policy import AccessPolicy, AccessPolicyConfig
from policy.decision import DecisionConfig
from policy.grant_view import GrantView
from policy.identity import SignInConfig
from policy.sessions import new_secret

OWNER = "0x" + "Ab" * 20
READER = "0x" + "cD" * 20
KEY = "0x" + "00" * 32


def change(cls: type[ledger.Change], block: int, **fields: object) -> ledger.Change:
    return cls(
        position=ledger.Position(block, 0),
        topic="t",
        topic_key=KEY,
        version=block,
        tx_hash="0x" + "11" * 32,
        **fields,  # type: ignore[arg-type]
    )


def synced(block: int, observed_at: float) -> ledger.Synced:
    return ledger.Synced(block_number=block, block_timestamp=1000 + block, observed_at=observed_at)


def test_every_follower_item_maps_to_a_policy_value() -> None:
    assert to_policy(change(ledger.TopicRegistered, 1, owner=OWNER)) == view.TopicRegistered(
        topic="t", owner=OWNER, block=1
    )
    assert to_policy(
        change(ledger.OwnershipTransferred, 2, owner=READER, previous_owner=OWNER)
    ) == view.OwnerChanged(topic="t", owner=READER, block=2)
    assert to_policy(change(ledger.AccessGranted, 3, reader=READER, expires_at=0)) == (
        view.GrantSet(topic="t", grantee=READER, expires_at=None, block=3)
    )
    assert to_policy(change(ledger.AccessGranted, 3, reader=READER, expires_at=99)) == (
        view.GrantSet(topic="t", grantee=READER, expires_at=99, block=3)
    )
    assert to_policy(change(ledger.AccessRevoked, 4, reader=READER)) == view.GrantRevoked(
        topic="t", grantee=READER, block=4
    )
    assert to_policy(change(ledger.PublisherAllowed, 5, publisher=READER)) == (
        view.PublisherAdded(topic="t", publisher=READER, block=5)
    )
    assert to_policy(change(ledger.PublisherDenied, 6, publisher=READER)) == (
        view.PublisherRemoved(topic="t", publisher=READER, block=6)
    )
    assert to_policy(synced(7, 5.0)) == view.Checkpoint(
        block=7, block_timestamp=1007, observed_at=5.0
    )


async def items(values: Iterable[ledger.FollowItem]) -> AsyncIterator[ledger.FollowItem]:
    for value in values:
        yield value


def access(bound: float = 30.0) -> RegistryAccess:
    config = AccessPolicyConfig(
        signin=SignInConfig(domain="gw", uri="meshgate://gw", chain_id=1337),
        decision=DecisionConfig(staleness_bound=bound),
    )
    return RegistryAccess(AccessPolicy(config, view=GrantView(), session_secret=new_secret()))


async def test_changes_signal_streams_once_per_checkpoint_and_on_turning_fresh() -> None:
    acc = access(bound=5.0)
    wakes: list[int] = []
    acc.view.subscribe(lambda: wakes.append(1))
    now = time.time()
    feed = GrantFeed(
        acc,
        items(
            [
                change(ledger.TopicRegistered, 1, owner=OWNER),
                change(ledger.AccessGranted, 1, reader=READER, expires_at=0),
                synced(1, now),  # first sync: changes + turned fresh -> one wake
                synced(2, now),  # nothing new -> no wake
                change(ledger.AccessRevoked, 3, reader=READER),
                synced(3, now),  # a revoke -> wake
            ]
        ),
    )
    await feed.run()
    assert len(wakes) == 2
    grant = acc.policy.view.grant("t", READER)
    assert grant is not None and grant.revoked
    assert feed.synced_block == 3
    await feed.wait_synced(3)


async def test_view_turning_fresh_again_wakes_paused_streams() -> None:
    acc = access(bound=5.0)
    wakes: list[int] = []
    acc.view.subscribe(lambda: wakes.append(1))
    now = time.time()
    stale = GrantFeed(acc, items([synced(1, now - 60)]))
    await stale.run()
    assert wakes == []  # still stale: nothing to resume
    fresh = GrantFeed(acc, items([synced(2, now)]))
    await fresh.run()
    assert wakes == [1]


async def test_a_rewind_drops_later_grants_and_pauses_until_resynced() -> None:
    acc = access(bound=5.0)
    wakes: list[int] = []
    acc.view.subscribe(lambda: wakes.append(1))
    now = time.time()
    reader = "0x" + "ee" * 20
    feed = GrantFeed(
        acc,
        items(
            [
                change(ledger.TopicRegistered, 1, owner=OWNER),
                synced(1, now),
                change(ledger.AccessGranted, 2, reader=reader, expires_at=0),
                synced(2, now),
                ledger.Rewound(block_number=1, reason="chain head 1 is behind applied block 2"),
            ]
        ),
    )
    await feed.run()
    grants = acc.policy.view
    assert grants.grant("t", reader) is None  # the rolled-back grant is gone
    assert grants.owner("t") == OWNER.lower()  # what the chain still holds stays
    assert grants.is_stale(now, 5.0)  # and access pauses until the next checkpoint
    assert feed.synced_block == 1
    assert len(wakes) == 3  # first sync, the grant, the rewind
    await GrantFeed(acc, items([synced(3, now)])).run()
    assert not grants.is_stale(now, 5.0)
