"""The follower core, without a chain: ranges, ordering, resume, checkpoints, rewinds."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.changes import AccessGranted, BlockHeader, Change, Position, Rewound, Synced
from ledger.follow_state import FetchHeader, FetchLogs, FollowState, Idle

READER = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"


def grant(block: int, index: int, version: int = 2, block_hash: str = "") -> Change:
    return AccessGranted(
        position=Position(block, index),
        topic="t",
        topic_key="0x00",
        version=version,
        tx_hash=f"0x{block:04x}{index:04x}",
        block_hash=block_hash,
        reader=READER,
        expires_at=0,
    )


def header(block: int, fork: str = "a", timestamp: int | None = None) -> BlockHeader:
    """Block `block` of fork `fork` (forks share nothing: tests pick where they join)."""
    return BlockHeader(
        number=block,
        hash=f"0x{fork}{block}",
        parent_hash=f"0x{fork}{block - 1}",
        timestamp=block * 10 if timestamp is None else timestamp,
    )


def fetched(
    state: FollowState, first: int, last: int, changes: list[Change], fork: str = "a"
) -> list[object]:
    return list(
        state.logs_fetched(
            FetchLogs(first, last),
            changes,
            first=header(first, fork),
            last=header(last, fork),
            observed_at=0.0,
        )
    )


def test_fetches_up_to_head_then_reports_synced() -> None:
    state = FollowState(from_block=5)
    assert state.step(head=9, observed_at=1.0) == FetchLogs(5, 9)
    items = state.logs_fetched(
        FetchLogs(5, 9),
        [grant(7, 1), grant(6, 0)],
        first=header(5),
        last=header(9, timestamp=1000),
        observed_at=1.0,
    )
    assert [i.position for i in items] == [Position(6, 0), Position(7, 1), Position.end_of(9)]
    assert items[-1] == Synced(block_number=9, block_timestamp=1000, observed_at=1.0)
    assert state.caught_up(9)
    # nothing new: the applied block's hash is checked, then a checkpoint with the new time
    assert state.step(head=9, observed_at=2.0) == FetchHeader(9)
    assert state.header_fetched(header(9, timestamp=1000), 2.0) == [
        Synced(block_number=9, block_timestamp=1000, observed_at=2.0)
    ]


def test_confirmations_hold_back_recent_blocks() -> None:
    state = FollowState(confirmations=3)
    assert state.step(head=2, observed_at=0.0) == Idle()
    assert state.step(head=10, observed_at=0.0) == FetchLogs(0, 7)
    fetched(state, 0, 7, [])
    assert state.step(head=10, observed_at=0.0) == FetchHeader(7)
    assert state.header_fetched(header(7), 0.0) == [
        Synced(block_number=7, block_timestamp=70, observed_at=0.0)
    ]
    assert state.step(head=11, observed_at=0.0) == FetchLogs(8, 8)


def test_confirmations_hold_back_changes_until_buried() -> None:
    state = FollowState(confirmations=2)
    assert state.step(head=5, observed_at=0.0) == FetchLogs(0, 3)
    assert [i.position for i in fetched(state, 0, 3, [])] == [Position.end_of(3)]
    # a grant mined at 4, head 5: one confirmation only, not handed out yet
    assert state.step(head=5, observed_at=0.0) == FetchHeader(3)
    assert state.step(head=6, observed_at=0.0) == FetchLogs(4, 4)
    items = fetched(state, 4, 4, [grant(4, 0)])
    assert [i.position for i in items] == [Position(4, 0), Position.end_of(4)]  # type: ignore[attr-defined]


def test_long_backlog_is_read_in_bounded_ranges() -> None:
    state = FollowState(max_range=100)
    assert state.step(head=250, observed_at=0.0) == FetchLogs(0, 99)
    fetched(state, 0, 99, [])
    assert not state.caught_up(250)
    assert state.step(head=250, observed_at=0.0) == FetchLogs(100, 199)


def test_resume_rereads_the_block_and_skips_what_was_handed_out() -> None:
    state = FollowState(from_block=0, resume_after=Position(7, 1))
    assert state.step(head=8, observed_at=0.0) == FetchLogs(7, 8)
    items = fetched(state, 7, 8, [grant(7, 0), grant(7, 1), grant(7, 2), grant(8, 0)])
    assert [i.position for i in items] == [Position(7, 2), Position(8, 0), Position.end_of(8)]  # type: ignore[attr-defined]
    assert state.handed_out == 2


def test_resume_after_a_synced_position_starts_at_the_next_block() -> None:
    checkpoint = Synced(block_number=7, block_timestamp=1, observed_at=0.0)
    state = FollowState(resume_after=checkpoint.position)
    assert state.step(head=8, observed_at=0.0) == FetchLogs(7, 8)
    items = fetched(state, 7, 8, [grant(7, 3), grant(8, 0)])
    assert [i.position for i in items] == [Position(8, 0), Position.end_of(8)]  # type: ignore[attr-defined]


def test_unknown_timestamp_is_fetched_before_reporting() -> None:
    state = FollowState(from_block=10)
    step = state.step(head=4, observed_at=3.0)  # node behind from_block: nothing applied yet
    assert step == FetchHeader(4)
    assert state.header_fetched(header(4, timestamp=44), 3.0) == [
        Synced(block_number=4, block_timestamp=44, observed_at=3.0)
    ]
    assert state.step(head=4, observed_at=4.0) == FetchHeader(4)  # 4 is not the synced block
    with pytest.raises(ValueError):
        state.header_fetched(header(10), 0.0)


def test_ranges_must_be_contiguous_and_changes_inside() -> None:
    state = FollowState()
    with pytest.raises(ValueError):
        fetched(state, 1, 2, [])
    with pytest.raises(ValueError):
        fetched(state, 0, 2, [grant(3, 0)])


# ---- rewinds ---------------------------------------------------------------------------------


def applied_one_by_one(state: FollowState, last: int, fork: str = "a") -> None:
    """Apply blocks 0..last one range each (as a live follower does), a grant in each."""
    for block in range(last + 1):
        assert state.step(head=block, observed_at=0.0) == FetchLogs(block, block)
        fetched(state, block, block, [grant(block, 0, block_hash=f"0x{fork}{block}")], fork)


def locate(state: FollowState, head: int, chain: dict[int, BlockHeader]) -> list[object]:
    """Answer the core's probes from `chain` until it settles; return the items it gave."""
    out: list[object] = []
    for _ in range(64):
        step = state.step(head=head, observed_at=0.0)
        if isinstance(step, Rewound):
            return [*out, step]
        if not isinstance(step, FetchHeader):
            return out
        items = state.header_fetched(chain[step.block], 0.0)
        out.extend(items)
        if items and not state.searching:
            return out
    raise AssertionError("the search did not end")


def test_head_behind_the_applied_block_rewinds_to_the_common_block() -> None:
    state = FollowState()
    applied_one_by_one(state, 9)
    # evm_revert to block 6: blocks 0..6 are the same, 7..9 are gone
    chain = {b: header(b) for b in range(7)}
    items = locate(state, 6, chain)
    assert items[0] == Rewound(block_number=6, reason="chain head 6 is behind applied block 9")
    assert state.synced_block == 6 and state.rewinds == 1
    # the new blocks 7.. (another fork) are read again
    assert state.step(head=8, observed_at=0.0) == FetchLogs(7, 8)


def test_a_changed_hash_at_an_applied_height_rewinds_to_the_common_ancestor() -> None:
    state = FollowState()
    applied_one_by_one(state, 9)
    # a same-height fork from block 5 on: 0..4 are shared, 5..9 differ
    chain = {b: header(b) if b <= 4 else replace(header(b, "b"), parent_hash=(
        "0xa4" if b == 5 else f"0xb{b - 1}")) for b in range(10)}  # fmt: skip
    assert state.step(head=9, observed_at=0.0) == FetchHeader(9)
    items = locate(state, 9, chain)
    assert items[-1] == Rewound(block_number=4, reason="block 9 changed hash")
    assert state.step(head=9, observed_at=0.0) == FetchLogs(5, 9)
    again = state.logs_fetched(
        FetchLogs(5, 9),
        [grant(7, 0, block_hash="0xb7")],
        first=chain[5],
        last=chain[9],
        observed_at=0.0,
    )
    assert [i.position for i in again] == [Position(7, 0), Position.end_of(9)]


def test_a_new_range_that_does_not_extend_the_applied_chain_rewinds() -> None:
    state = FollowState()
    applied_one_by_one(state, 5)
    # the node moved to a fork from block 3 on while the follower slept; head 8
    chain = {b: header(b) if b <= 2 else replace(header(b, "b"), parent_hash=(
        "0xa2" if b == 3 else f"0xb{b - 1}")) for b in range(9)}  # fmt: skip
    assert state.step(head=8, observed_at=0.0) == FetchLogs(6, 8)
    items = state.logs_fetched(
        FetchLogs(6, 8), [grant(7, 0, block_hash="0xb7")], first=chain[6], last=chain[8],
        observed_at=0.0,
    )  # fmt: skip
    assert items == []  # nothing of the foreign range is handed out
    assert locate(state, 8, chain)[-1] == Rewound(block_number=2, reason="block 5 changed hash")
    assert state.step(head=8, observed_at=0.0) == FetchLogs(3, 8)


def test_a_range_read_across_a_reorg_is_not_handed_out() -> None:
    state = FollowState()
    applied_one_by_one(state, 3)
    # logs of block 5 come from another fork than the header read for block 5
    items = state.logs_fetched(
        FetchLogs(4, 5),
        [grant(5, 0, block_hash="0xb5")],
        first=header(4),
        last=header(5),
        observed_at=0.0,
    )
    assert items == []
    assert state.searching
    # the applied chain still stands: no rewind, the range is read again
    assert locate(state, 5, {b: header(b) for b in range(6)}) == []
    assert state.step(head=5, observed_at=0.0) == FetchLogs(4, 5)


def test_a_rewind_deeper_than_the_window_resyncs_from_the_start() -> None:
    state = FollowState(from_block=2, window=4)
    for block in range(2, 12):
        assert state.step(head=block, observed_at=0.0) == FetchLogs(block, block)
        fetched(state, block, block, [])
    # a node restarted empty: a new genesis, nothing in common; head 3
    chain = {b: header(b, "z") for b in range(4)}
    items = locate(state, 3, chain)
    assert items == [
        Rewound(
            block_number=1,
            reason="chain head 3 is behind applied block 11; no common block remembered",
        )
    ]
    assert state.step(head=3, observed_at=0.0) == FetchLogs(2, 3)


def test_a_rewind_behind_the_resume_position_hands_those_changes_out_again() -> None:
    state = FollowState(resume_after=Position(5, 0))
    # nothing remembered (fresh start): the head behind the resume block rewinds fully
    assert state.step(head=3, observed_at=0.0) == Rewound(
        block_number=-1, reason="chain head 3 is behind applied block 4; no common block remembered"
    )
    assert state.resume_after is None
    assert state.step(head=6, observed_at=0.0) == FetchLogs(0, 6)
    items = fetched(state, 0, 6, [grant(5, 0)])
    assert [i.position for i in items] == [Position(5, 0), Position.end_of(6)]  # type: ignore[attr-defined]


def test_a_registry_without_code_voids_what_was_handed_out() -> None:
    state = FollowState(from_block=3)
    assert state.registry_missing("no contract") is None  # nothing handed out yet
    state.step(head=5, observed_at=0.0)
    fetched(state, 3, 5, [grant(4, 0)])
    assert state.registry_missing("no contract") == Rewound(block_number=2, reason="no contract")
    assert state.step(head=5, observed_at=0.0) == FetchLogs(3, 5)


# ---- properties ------------------------------------------------------------------------------


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
    """One chain that only grows, seen through lagging nodes (heads going up and down, never
    below the applied block): no loss, no repeat, in order, across a restart."""
    chain = [grant(b, i) for b, i in logs]  # deliberately unsorted: nodes owe no order
    final_head = 35 + confirmations
    handed: list[Change] = []

    def drive(state: FollowState, seen_heads: list[int], limit: int | None) -> None:
        for seen in [*seen_heads, final_head]:
            head = max(seen, state.synced_block)
            while isinstance(step := state.step(head, 0.0), FetchLogs):
                in_range = [c for c in chain if step.first <= c.position.block <= step.last]
                for item in fetched(state, step.first, step.last, in_range):
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


@dataclass
class SimChain:
    """A chain that forks: block n is (hash, changes); hashes are unique per block ever made."""

    blocks: list[tuple[str, list[Change]]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def head(self) -> int:
        return len(self.blocks) - 1

    def append(self, logs: int) -> None:
        number, block_hash = len(self.blocks), f"0x{next(self._ids):x}"
        changes = [
            replace(grant(number, i, block_hash=block_hash), tx_hash=f"{block_hash}-{i}")
            for i in range(logs)
        ]
        self.blocks.append((block_hash, changes))

    def fork(self, depth: int, new_logs: list[int]) -> None:
        """Replace the newest `depth` blocks (all of them, genesis too, if depth is large)."""
        del self.blocks[max(0, len(self.blocks) - depth) :]
        for logs in new_logs or ([0] if not self.blocks else []):
            self.append(logs)

    def header(self, number: int) -> BlockHeader | None:
        if not 0 <= number < len(self.blocks):
            return None  # the node has no such block (the shell's read fails: retry)
        parent = self.blocks[number - 1][0] if number else "0x"
        return BlockHeader(
            number=number, hash=self.blocks[number][0], parent_hash=parent, timestamp=number
        )

    def logs(self, first: int, last: int) -> list[Change]:
        return [c for _, changes in self.blocks[first : last + 1] for c in changes]


mutation = st.one_of(
    st.none(),
    st.tuples(st.just("mine"), st.integers(0, 2)),
    st.tuples(
        st.just("fork"), st.integers(1, 12), st.lists(st.integers(0, 2), min_size=0, max_size=6)
    ),
)


@settings(max_examples=300, deadline=None)
@example(  # the whole chain replaced between the headers and the logs of one range
    initial=[0, 0, 0],
    mutations=[None, None, ("fork", 3, [1, 0, 0])],
    confirmations=0,
    max_range=3,
    window=2,
)
@example(  # the chain shrinks again while the core probes for the common block
    initial=[0, 0],
    mutations=[None, None, ("mine", 0), ("mine", 0), *[("fork", 1, [])] * 3],
    confirmations=0,
    max_range=2,
    window=2,
)
@given(
    initial=st.lists(st.integers(0, 2), min_size=1, max_size=8),
    mutations=st.lists(mutation, max_size=40),
    confirmations=st.integers(0, 3),
    max_range=st.integers(1, 5),
    window=st.integers(1, 6),
)
def test_after_the_chain_settles_the_applied_changes_are_the_final_chains(
    initial: list[int],
    mutations: list[object],
    confirmations: int,
    max_range: int,
    window: int,
) -> None:
    """Random chains with forks of any depth (deeper than the window, new genesis), the chain
    changing between any two reads of the shell: once it stops changing, what the consumer
    holds (changes handed out, minus those rewound) is exactly the final chain's changes up to
    the synced block, which is at least `head - confirmations`, in order."""
    chain = SimChain()
    for logs in initial:
        chain.append(logs)
    pending = list(mutations)

    def read() -> None:  # between any two RPCs the chain may move
        change = pending.pop(0) if pending else None
        if isinstance(change, tuple) and change[0] == "mine":
            chain.append(int(change[1]))
        elif isinstance(change, tuple):
            chain.fork(int(change[1]), list(change[2]))

    state = FollowState(confirmations=confirmations, max_range=max_range, window=window)
    held: list[Change] = []
    settled = 0
    for _ in range(2000):
        if not pending:
            # the chain has stopped: settled once a quiet poll confirms the expected block
            settled += 1
            if settled > 3 * (window + 2) + len(chain.blocks):
                break
        head = chain.head()
        read()
        step = state.step(head, 0.0)
        items: list[object]
        if isinstance(step, FetchLogs):  # in the shell's order: both headers, then the logs
            last = chain.header(step.last)
            read()
            first = last if step.first == step.last else chain.header(step.first)
            read()
            logs = chain.logs(step.first, step.last)
            if first is None or last is None:
                continue
            items = list(state.logs_fetched(step, logs, first=first, last=last, observed_at=0.0))
        elif isinstance(step, FetchHeader):
            found = chain.header(step.block)
            if found is None:
                continue
            items = list(state.header_fetched(found, 0.0))
        elif isinstance(step, Idle):
            items = []
        else:
            items = [step]
        for item in items:
            if isinstance(item, Rewound):
                held = [c for c in held if c.position.block <= item.block_number]
            elif isinstance(item, Change):
                assert not held or item.position > held[-1].position
                held.append(item)
    # caught up: every block with `confirmations` on top; a block that lost confirmations to
    # a shorter fork but is still on the chain stays applied (nothing to take back)
    synced = state.synced_block
    assert chain.head() - confirmations <= synced <= chain.head()
    assert [c.tx_hash for c in held] == [c.tx_hash for c in chain.logs(0, synced)]
