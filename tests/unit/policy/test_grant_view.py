from policy.grant_view import (
    Checkpoint,
    GrantRevoked,
    GrantSet,
    GrantView,
    OwnerChanged,
    PublisherAdded,
    PublisherRemoved,
    TopicRegistered,
)

OWNER = "0x" + "Aa" * 20
READER = "0x" + "bB" * 20


def registered() -> GrantView:
    view = GrantView()
    view.apply(TopicRegistered(topic="t", owner=OWNER, block=1))
    return view


def test_registration_sets_owner_lowercase_and_version() -> None:
    view = registered()
    record = view.topic("t")
    assert record is not None
    assert record.owner == OWNER.lower()
    assert record.version == 1
    assert view.topics() == ["t"]


def test_grant_then_revoke_keeps_revoked_mark_and_expiry() -> None:
    view = registered()
    view.apply(GrantSet(topic="t", grantee=READER, expires_at=100, block=2))
    assert view.grant("t", READER.lower()) is not None
    view.apply(GrantRevoked(topic="t", grantee=READER.upper().replace("0X", "0x"), block=3))
    grant = view.grant("t", READER)
    assert grant is not None and grant.revoked and grant.expires_at == 100 and grant.block == 3
    view.apply(GrantSet(topic="t", grantee=READER, expires_at=None, block=4))
    grant = view.grant("t", READER)
    assert grant is not None and not grant.revoked and grant.expires_at is None
    record = view.topic("t")
    assert record is not None and record.version == 4


def test_publishers_and_owner_change() -> None:
    view = registered()
    view.apply(PublisherAdded(topic="t", publisher=READER, block=2))
    assert view.is_publisher("t", READER)
    view.apply(PublisherRemoved(topic="t", publisher=READER, block=3))
    assert not view.is_publisher("t", READER)
    view.apply(OwnerChanged(topic="t", owner=READER, block=4))
    assert view.owner("t") == READER.lower()


def test_changes_for_unregistered_topics_are_ignored_and_counted() -> None:
    view = GrantView()
    assert view.apply(GrantSet(topic="nope", grantee=READER, expires_at=None, block=1)) is None
    assert view.topic("nope") is None
    stats = view.statistics()
    assert stats.changes_ignored == 1 and stats.changes_applied == 0 and stats.topics == 0


def test_returned_records_are_snapshots() -> None:
    view = registered()
    before = view.topic("t")
    view.apply(GrantSet(topic="t", grantee=READER, expires_at=None, block=2))
    assert before is not None and READER.lower() not in before.grants


def test_freshness_never_moves_backwards() -> None:
    view = GrantView()
    assert view.freshness is None and view.is_stale(now=0.0, bound=30)
    view.checkpoint(Checkpoint(block=10, block_timestamp=1000, observed_at=50.0))
    view.checkpoint(Checkpoint(block=5, block_timestamp=900, observed_at=60.0))
    fresh = view.freshness
    assert fresh is not None
    assert (fresh.synced_block, fresh.block_timestamp, fresh.observed_at) == (10, 1000, 60.0)
    view.checkpoint(Checkpoint(block=11, block_timestamp=1001, observed_at=40.0))
    fresh = view.freshness
    assert fresh is not None and fresh.synced_block == 11 and fresh.observed_at == 60.0
    assert not view.is_stale(now=90.0, bound=30)
    assert view.is_stale(now=90.1, bound=30)


def test_rewind_forgets_later_changes_and_the_freshness() -> None:
    view = registered()
    view.apply(GrantSet(topic="t", grantee=READER, expires_at=None, block=2))
    view.checkpoint(Checkpoint(block=2, block_timestamp=20, observed_at=1.0))
    view.apply(GrantRevoked(topic="t", grantee=READER, block=3))
    view.apply(TopicRegistered(topic="u", owner=OWNER, block=3))
    view.checkpoint(Checkpoint(block=3, block_timestamp=30, observed_at=2.0))

    assert view.rewind(2) == {"t", "u"}
    grant = view.grant("t", READER)
    assert grant is not None and not grant.revoked  # the revoke is gone, the grant is back
    assert view.topics() == ["t"] and view.topic("t").version == 2  # type: ignore[union-attr]
    assert view.freshness is None and view.is_stale(2.0, 30.0)  # stale until re-synced
    view.checkpoint(Checkpoint(block=2, block_timestamp=20, observed_at=3.0))
    assert not view.is_stale(3.0, 30.0)

    assert view.rewind(-1) == {"t"}  # a full re-sync: nothing left
    assert view.topics() == [] and view.statistics().changes_applied == 0
