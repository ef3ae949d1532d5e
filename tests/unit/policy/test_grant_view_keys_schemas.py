"""GrantView's encryption and schema facts (issues 12, 16): key epochs, key-set hashes, schema
versions and the compatibility mode, including after a rewind."""

from policy.grant_view import (
    Checkpoint,
    CompatibilitySet,
    GrantView,
    KeyEpoch,
    KeySetRecorded,
    SchemaVersion,
    SchemaVersionAdded,
    TopicRegistered,
)

OWNER = "0x" + "Aa" * 20
H1 = "0x" + "AB" * 32
H2 = "0x" + "cd" * 32


def encrypted() -> GrantView:
    view = GrantView()
    view.apply(TopicRegistered(topic="t", owner=OWNER, block=1, encrypted=True))
    return view


def test_an_encrypted_topic_has_no_epoch_until_its_first_key_set() -> None:
    view = encrypted()
    record = view.topic("t")
    assert record is not None and record.encrypted and record.key_epoch is None
    view.apply(TopicRegistered(topic="plain", owner=OWNER, block=1))
    plain = view.topic("plain")
    assert plain is not None and not plain.encrypted


def test_key_sets_move_the_epoch_forward_only_and_keep_every_hash() -> None:
    view = encrypted()
    view.apply(KeySetRecorded(topic="t", epoch=1, key_set_hash=H1, block=2, seen_at=10.0))
    view.apply(KeySetRecorded(topic="t", epoch=2, key_set_hash=H2, block=3, seen_at=20.0))
    reissued = "0x" + "ee" * 32
    view.apply(KeySetRecorded(topic="t", epoch=1, key_set_hash=reissued, block=4, seen_at=30.0))
    record = view.topic("t")
    assert record is not None
    assert record.key_epoch == KeyEpoch(2, 20.0)  # a re-issue of epoch 1 does not go back
    assert dict(record.key_sets) == {H1.lower(): 1, H2: 2, reissued: 1}
    assert record.version == 4


def test_schemas_per_type_in_order_and_the_mode() -> None:
    view = encrypted()
    view.apply(
        SchemaVersionAdded(topic="t", event_type="a", version=1, format=1, document=b"1", block=2)
    )
    view.apply(
        SchemaVersionAdded(topic="t", event_type="a", version=2, format=1, document=b"2", block=3)
    )
    view.apply(
        SchemaVersionAdded(topic="t", event_type="b", version=1, format=2, document=b"x", block=3)
    )
    assert view.schemas("t", "a") == (SchemaVersion(1, 1, b"1"), SchemaVersion(2, 1, b"2"))
    assert view.schema_types("t") == ["a", "b"]
    assert view.schemas("t", "missing") == () and view.schemas("nope", "a") == ()
    record = view.topic("t")
    assert record is not None and record.compatibility == 1
    view.apply(CompatibilitySet(topic="t", mode=5, block=4))
    record = view.topic("t")
    assert record is not None and record.compatibility == 5


def test_rewind_forgets_a_rotation_and_a_schema_after_the_block() -> None:
    view = encrypted()
    view.apply(KeySetRecorded(topic="t", epoch=1, key_set_hash=H1, block=2, seen_at=1.0))
    view.apply(
        SchemaVersionAdded(topic="t", event_type="a", version=1, format=1, document=b"1", block=2)
    )
    view.checkpoint(Checkpoint(block=2, block_timestamp=100, observed_at=1.0))
    view.apply(KeySetRecorded(topic="t", epoch=2, key_set_hash=H2, block=3, seen_at=2.0))
    view.apply(
        SchemaVersionAdded(topic="t", event_type="a", version=2, format=1, document=b"2", block=3)
    )
    assert view.rewind(2) == {"t"}
    record = view.topic("t")
    assert record is not None and record.key_epoch == KeyEpoch(1, 1.0)
    assert dict(record.key_sets) == {H1.lower(): 1}
    assert view.schemas("t", "a") == (SchemaVersion(1, 1, b"1"),)


def test_changes_for_unknown_topics_are_ignored() -> None:
    view = GrantView()
    assert view.apply(KeySetRecorded(topic="x", epoch=1, key_set_hash=H1, block=1)) is None
    assert view.apply(CompatibilitySet(topic="x", mode=0, block=1)) is None
    assert view.statistics().changes_ignored == 2
