"""The chaos checker's verdicts on hand-built histories (pure, no processes)."""

from __future__ import annotations

from bench.chaos.checker import after_revoke, catch_up, duplicates, judge, redeliveries, resumed
from bench.chaos.history import Delivered, History

A, B, C = ("/s", "1"), ("/s", "2"), ("/s", "3")


def history(*deliveries: tuple[tuple[str, str], int, float], acked: tuple = (A, B)) -> History:
    h = History(witnesses=["bb/w"])
    for key in acked:
        h.ack(key, 1.0)
    for key, offset, at in deliveries:
        h.deliver(key, "bb/w", offset, 1, at)
    return h


def test_everything_delivered_once_is_clean() -> None:
    v = judge(history((A, 0, 2.0), (B, 1, 2.5)))
    assert (v.acknowledged, v.delivered, v.lost, v.dup, v.redelivered) == (2, 2, 0, 0, 0)
    assert v.ok


def test_an_acknowledged_event_never_delivered_is_lost() -> None:
    v = judge(history((A, 0, 2.0)))
    assert v.lost == 1 and v.lost_sample == (B,) and not v.ok


def test_a_delivered_event_nobody_acknowledged_is_not_a_loss() -> None:
    assert judge(history((A, 0, 2.0), (B, 1, 2.0), (C, 2, 2.0))).lost == 0


def test_two_stored_copies_are_a_dup_but_a_redelivered_copy_is_not() -> None:
    twice_stored = [Delivered(A, "bb/w", 0, 1, 2.0), Delivered(A, "bb/w", 7, 1, 3.0)]
    redelivered = [Delivered(A, "bb/w", 0, 1, 2.0), Delivered(A, "bb/w", 0, 2, 3.0)]
    assert duplicates(twice_stored) == 1 and redeliveries(twice_stored) == 0
    assert duplicates(redelivered) == 0 and redeliveries(redelivered) == 1
    assert not judge(history((A, 0, 2.0), (A, 7, 3.0), (B, 1, 2.0))).ok


def test_copies_in_two_regions_are_not_dups() -> None:
    assert duplicates([Delivered(A, "aa/w", 0, 1, 2.0), Delivered(A, "bb/w", 5, 1, 2.0)]) == 0


def test_only_deliveries_after_the_revoke_was_applied_count() -> None:
    got = [Delivered(A, "bb/r", 0, 1, 2.0), Delivered(B, "bb/r", 1, 1, 4.0)]
    assert after_revoke(got, {"bb/r": 3.0}) == 1
    assert after_revoke(got, {}) == 0


def test_catch_up_is_the_last_arrival_of_what_was_acknowledged_before_the_heal() -> None:
    h = history((A, 0, 0.5), (B, 1, 7.5))
    h.heals.append(5.0)
    assert catch_up(h.acked, h.delivered, h.witnesses, h.heals) == 2.5
    assert judge(history((A, 0, 0.5))).catch_up_s == 0.0  # no heal: nothing to catch up
    lost = history((A, 0, 0.5))
    lost.heals.append(5.0)
    assert judge(lost).catch_up_s is None


def test_resumed_is_the_first_delivery_after_each_heal() -> None:
    h = history((A, 0, 0.5), (B, 1, 6.0))
    h.heals += [1.0, 5.0]
    assert resumed(h.delivered, h.heals) == 5.0  # 1.0 -> 6.0 is the longer wait
    h.heals.append(9.0)
    assert resumed(h.delivered, h.heals) is None


def test_a_recorded_failure_fails_the_verdict_with_nothing_lost() -> None:
    h = history((A, 0, 2.0), (B, 1, 2.0))
    h.failures.append("publishes did not recover")
    v = judge(h)
    assert v.lost == 0 and v.failures == ("publishes did not recover",) and not v.ok
