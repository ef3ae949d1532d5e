"""The follower core, without a chain: ranges, ordering, resume, checkpoints."""

from __future__ import annotations

import pytest

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
