"""DeliveryState: leases, acks, redelivery and the committed prefix (pure, no event loop)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.delivery import DeliveryState, ack_wait


def test_contiguous_prefix_commits() -> None:
    s = DeliveryState(0, ack_timeout=10)
    for o in range(5):
        assert s.lease_new(0, o, now=0) == 1
    assert not s.ack([1, 2])
    assert s.committed == 0
    assert s.ack([0])
    assert s.committed == 3
    s.ack([4])
    assert s.committed == 3
    s.ack([3])
    assert s.committed == 5


def test_expired_lease_is_redelivered_with_next_attempt() -> None:
    s = DeliveryState(0, ack_timeout=5)
    s.lease_new(0, 0, now=0)
    s.lease_new(0, 1, now=0)
    assert s.take_pending(1, 10, now=1) == []
    assert s.next_deadline() == 5
    assert s.expire(now=5)
    assert s.take_pending(1, 1, now=6) == [(0, 2)]
    assert s.leases[0].member == 1
    assert s.take_pending(1, 10, now=6) == [(1, 2)]
    s.ack([0, 1])
    assert s.committed == 2


def test_release_hands_leases_to_others() -> None:
    s = DeliveryState(0, ack_timeout=100)
    s.lease_new(0, 0, now=0)
    s.lease_new(1, 1, now=0)
    assert s.release(0)
    assert s.take_pending(1, 5, now=0) == [(0, 2)]
    assert s.outstanding(1) == 2


def test_skip_and_gaps_count_as_done() -> None:
    s = DeliveryState(0, ack_timeout=1)
    s.skip(0)
    assert s.committed == 1
    s.lease_new(0, 5, now=0)  # 1..4 were removed by retention
    assert s.committed == 5
    s.ack([5])
    assert s.committed == 6
    s.skip_to(10)
    assert s.committed == 10


def test_late_ack_of_pending_offset_completes_it() -> None:
    s = DeliveryState(0, ack_timeout=1)
    s.lease_new(0, 0, now=0)
    s.expire(now=2)
    assert s.ack([0])
    assert s.take_pending(0, 5, now=3) == []


def test_forget_drops_unreadable_offsets() -> None:
    s = DeliveryState(0, ack_timeout=1)
    s.lease_new(0, 0, now=0)
    s.expire(now=2)
    s.forget(0)
    assert s.committed == 1


def test_lease_twice_is_a_bug() -> None:
    s = DeliveryState(3, ack_timeout=1)
    s.lease_new(0, 3, now=0)
    with pytest.raises(ValueError):
        s.lease_new(0, 3, now=0)


@given(st.lists(st.tuples(st.sampled_from(["lease", "ack", "expire", "take"]), st.integers(0, 9))))
def test_each_offset_has_one_owner_and_committed_is_monotonic(ops: list[tuple[str, int]]) -> None:
    s = DeliveryState(0, ack_timeout=3)
    now = 0.0
    last_committed = 0
    for op, n in ops:
        now += 1
        if op == "lease":
            s.lease_new(n % 2, s.read_pos, now)
        elif op == "ack":
            s.ack([n])
        elif op == "expire":
            s.expire(now)
        else:
            s.take_pending(n % 2, n, now)
        assert s.committed >= last_committed
        last_committed = s.committed
        for offset in range(s.committed, s.read_pos):
            leased = offset in s.leases
            pending = offset in s._pending_set
            assert not (leased and pending)
        assert all(s.committed <= o < s.read_pos for o in s.leases)


def test_ack_wait_doubles_per_attempt_up_to_the_cap() -> None:
    assert [ack_wait(n, 30, 300) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert ack_wait(1, 30, 10) == 30  # the cap never shortens the first ack timeout
    assert ack_wait(10_000, 1, 5) == 5  # no overflow on very many attempts


def test_max_ack_pending_bounds_new_leases_not_redeliveries() -> None:
    s = DeliveryState(0, ack_timeout=1, max_ack_pending=3)
    for o in range(3):
        s.lease_new(0, o, now=0)
    assert s.room() == 0 and s.unacked == 3
    with pytest.raises(ValueError, match="max_ack_pending"):
        s.lease_new(0, 3, now=0)
    assert s.expire(now=1)  # pending still counts against the bound
    assert s.room() == 0
    assert s.take_pending(1, 10, now=1) == [(0, 2), (1, 2), (2, 2)]
    assert s.room() == 0
    s.ack([1])  # acking frees room, committed stays (0 is unacked)
    assert s.room() == 1 and s.committed == 0
    s.lease_new(0, 3, now=1)
    assert s.room() == 0


def test_a_never_acked_offset_is_redelivered_ever_more_rarely() -> None:
    s = DeliveryState(0, ack_timeout=10, max_redelivery_delay=35)
    now = 0.0
    s.lease_new(0, 0, now)
    times = [now]
    for _ in range(4):
        deadline = s.next_deadline()
        assert deadline is not None
        assert not s.expire(deadline - 0.001)  # not before its own deadline
        now = deadline
        assert s.expire(now)
        [(offset, attempt)] = s.take_pending(0, 1, now)
        assert offset == 0 and attempt == s.attempts(0)
        times.append(now)
    assert [b - a for a, b in itertools.pairwise(times)] == [10, 20, 35, 35]
    assert s.attempts(0) == 5
    s.ack([0])
    assert s.attempts(0) == 0 and s.committed == 1


@given(
    st.integers(1, 5),
    st.lists(
        st.tuples(st.sampled_from(["lease", "ack", "expire", "take", "release"]), st.integers(0, 9))
    ),
)
def test_unacked_never_exceeds_max_ack_pending(bound: int, ops: list[tuple[str, int]]) -> None:
    s = DeliveryState(0, ack_timeout=2, max_ack_pending=bound)
    now = 0.0
    for op, n in ops:
        now += 1
        if op == "lease" and s.room() > 0:
            s.lease_new(n % 2, s.read_pos, now)
        elif op == "ack":
            s.ack([n])
        elif op == "expire":
            s.expire(now)
        elif op == "take":
            s.take_pending(n % 2, n, now)
        elif op == "release":
            s.release(n % 2)
        assert s.unacked <= bound
        assert s.unacked == len(s.leases) + s.pending_count


def test_unsend_returns_a_lease_without_counting_an_attempt() -> None:
    s = DeliveryState(0, ack_timeout=1)
    s.lease_new(0, 0, now=0)
    s.lease_new(0, 1, now=0)
    s.unsend([1])
    assert 1 not in s.leases and s.pending_count == 1 and s.attempts(1) == 0
    assert s.take_pending(0, 5, now=0) == [(1, 1)]  # still its first delivery
    s.expire(now=5)
    assert s.take_pending(0, 5, now=5) == [(0, 2), (1, 2)]
    s.unsend([0, 7])  # 7 is not leased: ignored
    assert s.attempts(0) == 1
