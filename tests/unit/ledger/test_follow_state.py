"""The follower core, without a chain: ranges, ordering, resume, checkpoints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.changes import AccessGranted, Change, Position, Synced
from ledger.follow_state import FetchHeader, FetchLogs, FollowState, Idle

READER = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"


def grant(block: int, index: int, version: int = 2) -> Change:
    return AccessGranted(
        position=Position(block, index),
        topic="t",
        topic_key="0x00",
        version=version,
        tx_hash="0x",
        reader=READER,
        expires_at=0,
    )


def test_fetches_up_to_head_then_reports_synced() -> None:
    state = FollowState(from_block=5)
    assert state.step(head=9, observed_at=1.0) == FetchLogs(5, 9)
    items = state.logs_fetched(FetchLogs(5, 9), [grant(7, 1), grant(6, 0)], 1000, 1.0)
    assert [i.position for i in items] == [Position(6, 0), Position(7, 1), Position.end_of(9)]
    assert items[-1] == Synced(block_number=9, block_timestamp=1000, observed_at=1.0)
    assert state.caught_up(9)
    # nothing new: a checkpoint straight away, with the new observation time
    assert state.step(head=9, observed_at=2.0) == Synced(
        block_number=9, block_timestamp=1000, observed_at=2.0
    )


def test_confirmations_hold_back_recent_blocks() -> None:
    state = FollowState(confirmations=3)
    assert state.step(head=2, observed_at=0.0) == Idle()
    assert state.step(head=10, observed_at=0.0) == FetchLogs(0, 7)
    state.logs_fetched(FetchLogs(0, 7), [], 70, 0.0)
    assert state.step(head=10, observed_at=0.0) == Synced(
        block_number=7, block_timestamp=70, observed_at=0.0
    )
    assert state.step(head=11, observed_at=0.0) == FetchLogs(8, 8)


def test_long_backlog_is_read_in_bounded_ranges() -> None:
    state = FollowState(max_range=100)
    assert state.step(head=250, observed_at=0.0) == FetchLogs(0, 99)
    state.logs_fetched(FetchLogs(0, 99), [], 1, 0.0)
    assert not state.caught_up(250)
    assert state.step(head=250, observed_at=0.0) == FetchLogs(100, 199)


def test_resume_rereads_the_block_and_skips_what_was_handed_out() -> None:
    state = FollowState(from_block=0, resume_after=Position(7, 1))
    assert state.step(head=8, observed_at=0.0) == FetchLogs(7, 8)
    items = state.logs_fetched(
        FetchLogs(7, 8), [grant(7, 0), grant(7, 1), grant(7, 2), grant(8, 0)], 5, 0.0
    )
    assert [i.position for i in items] == [Position(7, 2), Position(8, 0), Position.end_of(8)]
    assert state.handed_out == 2


def test_resume_after_a_synced_position_starts_at_the_next_block() -> None:
    checkpoint = Synced(block_number=7, block_timestamp=1, observed_at=0.0)
    state = FollowState(resume_after=checkpoint.position)
    assert state.step(head=8, observed_at=0.0) == FetchLogs(7, 8)
    items = state.logs_fetched(FetchLogs(7, 8), [grant(7, 3), grant(8, 0)], 5, 0.0)
    assert [i.position for i in items] == [Position(8, 0), Position.end_of(8)]


def test_unknown_timestamp_is_fetched_before_reporting() -> None:
    state = FollowState(from_block=10)
    step = state.step(head=4, observed_at=3.0)  # node behind from_block (or rolled back)
    assert step == FetchHeader(4)
    assert state.header_fetched(4, 44, 3.0) == Synced(
        block_number=4, block_timestamp=44, observed_at=3.0
    )
    assert state.step(head=4, observed_at=4.0) == FetchHeader(4)  # 4 is not the synced block
    with pytest.raises(ValueError):
        state.header_fetched(10, 1, 0.0)


def test_node_rollback_does_not_repeat_changes() -> None:
    state = FollowState()
    state.logs_fetched(FetchLogs(0, 9), [grant(3, 0)], 90, 0.0)
    assert state.step(head=6, observed_at=0.0) == FetchHeader(6)
    assert state.step(head=10, observed_at=0.0) == FetchLogs(10, 10)


def test_ranges_must_be_contiguous_and_changes_inside() -> None:
    state = FollowState()
    with pytest.raises(ValueError):
        state.logs_fetched(FetchLogs(1, 2), [], 0, 0.0)
    with pytest.raises(ValueError):
        state.logs_fetched(FetchLogs(0, 2), [grant(3, 0)], 0, 0.0)


@given(
    logs=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3)), unique=True, max_size=40),
    heads=st.lists(st.integers(0, 35), min_size=1, max_size=12),
    restart_after=st.integers(0, 40),
    confirmations=st.integers(0, 3),
    max_range=st.integers(1, 8),
)
def test_every_change_exactly_once_in_order_across_a_restart(
    logs: list[tuple[int, int]],
    heads: list[int],
    restart_after: int,
    confirmations: int,
    max_range: int,
) -> None:
    """Whatever the heads seen, range sizes and restart point: no loss, no repeat, in order."""
    chain = [grant(b, i) for b, i in logs]  # deliberately unsorted: nodes owe no order
    final_head = 35 + confirmations
    handed: list[Change] = []

    def drive(state: FollowState, seen_heads: list[int], limit: int | None) -> None:
        for head in [*seen_heads, final_head]:  # heads may go back (node rollback)
            while isinstance(step := state.step(head, 0.0), FetchLogs):
                in_range = [c for c in chain if step.first <= c.position.block <= step.last]
                for item in state.logs_fetched(step, in_range, 0, 0.0):
                    if isinstance(item, Change):
                        handed.append(item)
                        if limit is not None and len(handed) >= limit:
                            return

    first = FollowState(confirmations=confirmations, max_range=max_range)
    drive(first, heads, restart_after)
    resume = handed[-1].position if handed else None
    second = FollowState(resume_after=resume, confirmations=confirmations, max_range=max_range)
    drive(second, heads, None)
    expected = sorted(chain, key=lambda c: c.position)
    assert [c.position for c in handed] == [c.position for c in expected]
