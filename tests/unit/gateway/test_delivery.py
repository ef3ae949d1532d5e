"""DeliveryState: leases, acks, redelivery and the committed prefix (pure, no event loop)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.delivery import DeliveryState


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
