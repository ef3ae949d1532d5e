"""The pure parts of gateway/jetstream_groups.py: consumer names and configuration."""

from __future__ import annotations

import pytest

from gateway.jetstream_groups import (
    LOSING_AFTER,
    LOSING_FIRST,
    LOSING_MAX,
    SETTLE_FIRST,
    SETTLE_TRIES,
    PullPacing,
    consumer_config,
    consumer_name,
    redelivery_backoff,
)

S = 1_000_000_000  # ns


def test_redelivery_backs_off_like_sqlite_groups_up_to_the_cap() -> None:
    assert redelivery_backoff(30, 300) == [30 * S, 60 * S, 120 * S, 240 * S, 300 * S]
    assert redelivery_backoff(30, 10) == [30 * S]  # a cap below the timeout: no backoff
    assert len(redelivery_backoff(0.001, 300)) == 20  # bounded list; the server repeats the last


def test_consumer_names_are_fixed_size_valid_and_unambiguous() -> None:
    names = {consumer_name("a.b", "c"), consumer_name("a", "b.c"), consumer_name("a b>*", "")}
    assert len(names) == 3
    assert all(len(n) == 42 and n.replace("_", "").isalnum() for n in names)


def test_config_starts_at_the_sequence_and_waits_ack_timeout_first() -> None:
    config = consumer_config("mg.eu.e.t.*", 0, 4.0, 50, 20.0)
    assert config["opt_start_seq"] == 1 and config["ack_wait"] == 4 * S
    assert config["backoff"] == [4 * S, 8 * S, 16 * S, 20 * S]
    assert (config["ack_policy"], config["max_ack_pending"]) == ("explicit", 50)


def test_an_empty_pull_after_an_append_is_looked_at_again_soon_doubling_then_the_tick() -> None:
    """The consumer's leader may apply a commit after the writer got its ack: a pull right
    after the append finds nothing, and the members must look again before the 15 s tick."""
    pacing = PullPacing(tick=15.0)
    assert pacing.wait() == 15.0  # nothing appended: only the tick (redeliveries)
    pacing.appended()
    waits = []
    for _ in range(SETTLE_TRIES + 2):
        pacing.pulled(0)
        waits.append(pacing.wait())
    assert waits[:SETTLE_TRIES] == [SETTLE_FIRST * 2**i for i in range(SETTLE_TRIES)]
    assert sum(waits[:SETTLE_TRIES]) == pytest.approx(1.27)
    assert waits[SETTLE_TRIES:] == [15.0, 15.0]  # the looks are spent: the tick alone


def test_a_pull_that_brings_messages_ends_the_looks_and_an_append_starts_them_again() -> None:
    pacing = PullPacing(tick=15.0)
    pacing.appended()
    pacing.pulled(0)
    assert pacing.wait() == SETTLE_FIRST
    pacing.pulled(40)
    assert pacing.wait() == 15.0
    pacing.pulled(0)  # the looks left still count for this append
    assert pacing.wait() == SETTLE_FIRST * 2
    pacing.appended()
    pacing.pulled(0)
    assert pacing.wait() == SETTLE_FIRST


def test_a_replica_whose_pulls_keep_coming_back_empty_waits_before_pulling_on_an_append() -> None:
    """Members on another replica take each append's events first: this replica's wakes wait,
    doubling up to a bound, until one pull brings messages again."""
    pacing = PullPacing(tick=15.0)
    for _ in range(LOSING_AFTER):
        assert pacing.appended() == 0.0  # not losing yet: at once
        pacing.pulled(0)
    delays = []
    for _ in range(8):
        delays.append(pacing.appended())
        pacing.pulled(0)
    assert delays[:3] == [LOSING_FIRST, LOSING_FIRST * 2, LOSING_FIRST * 4]
    assert max(delays) == delays[-1] == LOSING_MAX
    pacing.pulled(25)  # it got some: at once again
    assert pacing.appended() == 0.0


def test_a_losing_replica_still_looks_again_after_an_append() -> None:
    """However long it has lost, an append leaves at least one look before the tick: events
    nobody took (the winner pulled too early) are still pulled."""
    pacing = PullPacing(tick=15.0)
    pacing.appended()
    for _ in range(SETTLE_TRIES + 1):
        pacing.pulled(0)
    assert pacing.wait() == 15.0  # the looks are spent
    assert pacing.appended() == LOSING_MAX
    pacing.pulled(0)  # the deferred wake's pull
    assert pacing.wait() < 15.0


def test_the_looks_never_wait_longer_than_the_tick() -> None:
    pacing = PullPacing(tick=0.02)
    pacing.appended()
    for _ in range(SETTLE_TRIES):
        pacing.pulled(0)
        assert pacing.wait() <= 0.02
