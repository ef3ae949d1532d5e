import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.decision import (
    Allow,
    DecisionConfig,
    Deny,
    DenyReason,
    Pause,
    PauseReason,
    decide_publish,
    decide_read,
)
from policy.grant_view import (
    Checkpoint,
    GrantRevoked,
    GrantSet,
    GrantView,
    PublisherAdded,
    TopicRegistered,
)

OWNER = "0x" + "11" * 20
READER = "0x" + "22" * 20
OTHER = "0x" + "33" * 20
NOW = 1_000_000.0
CONFIG = DecisionConfig(staleness_bound=30.0)


def view_at(observed_at: float = NOW) -> GrantView:
    view = GrantView()
    view.apply(TopicRegistered(topic="t", owner=OWNER, block=1))
    view.checkpoint(Checkpoint(block=1, block_timestamp=0, observed_at=observed_at))
    return view


def test_owner_reads_and_publishes_without_grant() -> None:
    view = view_at()
    assert decide_read(view, OWNER, "t", NOW, CONFIG) == Allow(until=None, recheck_at=NOW + 30)
    assert isinstance(decide_publish(view, OWNER.upper().replace("0X", "0x"), "t", NOW), Allow)


def test_reader_without_grant_is_denied_no_grant() -> None:
    decision = decide_read(view_at(), READER, "t", NOW)
    assert isinstance(decision, Deny) and decision.reason is DenyReason.NO_GRANT


def test_unknown_topic_is_denied() -> None:
    decision = decide_read(view_at(), OWNER, "elsewhere", NOW)
    assert isinstance(decision, Deny) and decision.reason is DenyReason.UNKNOWN_TOPIC
    assert "not registered" in decision.detail


def test_granted_reader_allowed_until_expiry_then_expired() -> None:
    view = view_at()
    view.apply(GrantSet(topic="t", grantee=READER, expires_at=int(NOW) + 5, block=2))
    assert decide_read(view, READER, "t", NOW, CONFIG) == Allow(until=NOW + 5, recheck_at=NOW + 5)
    decision = decide_read(view, READER, "t", NOW + 5, CONFIG)
    assert isinstance(decision, Deny) and decision.reason is DenyReason.EXPIRED


def test_revoked_reason_says_revoked() -> None:
    view = view_at()
    view.apply(GrantSet(topic="t", grantee=READER, expires_at=None, block=2))
    view.apply(GrantRevoked(topic="t", grantee=READER, block=3))
    decision = decide_read(view, READER, "t", NOW)
    assert isinstance(decision, Deny) and decision.reason is DenyReason.REVOKED
    assert "revoked" in str(decision.reason)


def test_stale_view_pauses_even_the_owner() -> None:
    view = view_at(observed_at=NOW - 31)
    decision = decide_read(view, OWNER, "t", NOW, CONFIG)
    assert isinstance(decision, Pause) and decision.reason is PauseReason.STALE_VIEW
    assert isinstance(decide_publish(view, OWNER, "t", NOW, CONFIG), Pause)


def test_unsynced_view_pauses() -> None:
    decision = decide_read(GrantView(), OWNER, "t", NOW)
    assert isinstance(decision, Pause)


def test_staleness_bound_is_configurable() -> None:
    view = view_at(observed_at=NOW - 3)
    assert isinstance(decide_read(view, OWNER, "t", NOW, DecisionConfig(staleness_bound=2)), Pause)
    assert isinstance(decide_read(view, OWNER, "t", NOW, DecisionConfig(staleness_bound=5)), Allow)
    with pytest.raises(ValueError):
        DecisionConfig(staleness_bound=0)


def test_publish_needs_publisher_role_not_read_grant() -> None:
    view = view_at()
    view.apply(GrantSet(topic="t", grantee=READER, expires_at=None, block=2))
    decision = decide_publish(view, READER, "t", NOW)
    assert isinstance(decision, Deny) and decision.reason is DenyReason.NOT_PUBLISHER
    view.apply(PublisherAdded(topic="t", publisher=READER, block=3))
    assert isinstance(decide_publish(view, READER, "t", NOW), Allow)


addresses = st.sampled_from([OWNER, READER, OTHER])
expiries = st.one_of(st.none(), st.integers(min_value=0, max_value=2_000_000))
changes = st.lists(
    st.one_of(
        st.builds(lambda a, e: ("grant", a, e), addresses, expiries),
        st.builds(lambda a: ("revoke", a, None), addresses),
        st.builds(lambda a: ("publisher", a, None), addresses),
    ),
    max_size=12,
)


def build(history: list[tuple[str, str, int | None]], observed_at: float) -> GrantView:
    view = view_at(observed_at)
    for block, (kind, address, expiry) in enumerate(history, start=2):
        if kind == "grant":
            view.apply(GrantSet(topic="t", grantee=address, expires_at=expiry, block=block))
        elif kind == "revoke":
            view.apply(GrantRevoked(topic="t", grantee=address, block=block))
        else:
            view.apply(PublisherAdded(topic="t", publisher=address, block=block))
    return view


@given(
    history=changes,
    address=addresses,
    age=st.floats(min_value=30.001, max_value=1e6),
    bound=st.just(30.0),
)
def test_never_allow_when_stale(
    history: list[tuple[str, str, int | None]], address: str, age: float, bound: float
) -> None:
    view = build(history, observed_at=NOW - age)
    config = DecisionConfig(staleness_bound=bound)
    assert isinstance(decide_read(view, address, "t", NOW, config), Pause)
    assert isinstance(decide_publish(view, address, "t", NOW, config), Pause)


@given(history=changes, address=addresses, offset=st.floats(min_value=0, max_value=1e6))
def test_never_allow_a_reader_after_its_expiry(
    history: list[tuple[str, str, int | None]], address: str, offset: float
) -> None:
    view = build(history, observed_at=NOW)
    grant = view.grant("t", address)
    if address == OWNER or grant is None or grant.expires_at is None:
        return
    now = grant.expires_at + offset
    view.checkpoint(Checkpoint(block=99, block_timestamp=0, observed_at=now))
    decision = decide_read(view, address, "t", now)
    assert not isinstance(decision, Allow)


@given(history=changes, address=addresses)
def test_allow_recheck_never_later_than_expiry_or_staleness(
    history: list[tuple[str, str, int | None]], address: str
) -> None:
    view = build(history, observed_at=NOW)
    decision = decide_read(view, address, "t", NOW, CONFIG)
    if isinstance(decision, Allow):
        assert decision.recheck_at <= NOW + CONFIG.staleness_bound
        if decision.until is not None:
            assert decision.recheck_at <= decision.until
            assert decision.until > NOW


@given(history=changes, address=addresses.filter(lambda a: a != OWNER))
def test_a_reader_whose_last_change_is_a_revoke_is_never_allowed(
    history: list[tuple[str, str, int | None]], address: str
) -> None:
    view = build([*history, ("revoke", address, None)], observed_at=NOW)
    decision = decide_read(view, address, "t", NOW)
    assert isinstance(decision, Deny) and decision.reason is DenyReason.REVOKED


@given(history=changes, address=addresses, topic=st.text(min_size=1, max_size=8))
def test_unregistered_topics_are_never_allowed(
    history: list[tuple[str, str, int | None]], address: str, topic: str
) -> None:
    view = build(history, observed_at=NOW)
    if topic == "t":
        return
    assert isinstance(decide_read(view, address, topic, NOW), Deny)
    assert isinstance(decide_publish(view, address, topic, NOW), Deny)
