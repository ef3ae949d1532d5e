"""The follower's sans-I/O core: which blocks to read next, and what to hand out.

Theory of operation: the shell reports the node's head (`step`); the core answers with one
action. `FetchLogs(first, last)` asks for the registry's logs in a block range (only blocks
with at least `confirmations` blocks on top); the shell returns them with the timestamp of
`last` (`logs_fetched`), and the core returns the changes to hand out, in (block, log_index)
order, followed by a `Synced` checkpoint for `last`. When there is nothing new the core answers
`Synced` for the last processed block directly (or `FetchHeader` if it does not know that
block's timestamp yet), so a consumer hears at least once per poll even on a quiet chain.

Invariants:
- `next_block` only grows; a range is handed out at most once, and only whole;
- a change at or before `resume_after` is never handed out (resuming after a restart
  re-reads the resume block and drops what the consumer already has);
- changes inside one range come out sorted by position, whatever order the node gave;
- a head lower than what was processed (node restarted from an older snapshot) fetches
  nothing: the core waits for the chain to catch up instead of repeating changes.

Transitions (head h, confirmations c, safe = h - c):
    safe >= next_block            -> FetchLogs(next_block, min(safe, next_block + max_range - 1))
    0 <= safe < next_block        -> Synced(min(safe, next_block - 1)), or FetchHeader(that
                                     block) when its timestamp is not known yet
    safe < 0                      -> Idle
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.changes import Change, FollowItem, Position, Synced

DEFAULT_MAX_RANGE = 2000  # blocks per eth_getLogs; public nodes often cap ranges near this


@dataclass(frozen=True)
class FetchLogs:
    first: int
    last: int


@dataclass(frozen=True)
class FetchHeader:
    block: int


@dataclass(frozen=True)
class Idle:
    """Nothing is confirmed yet (the chain is shorter than `confirmations`)."""


Step = FetchLogs | FetchHeader | Idle | Synced


class FollowState:
    """Where the follower stands; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        from_block: int = 0,
        resume_after: Position | None = None,
        confirmations: int = 0,
        max_range: int = DEFAULT_MAX_RANGE,
    ) -> None:
        if from_block < 0 or confirmations < 0 or max_range < 1:
            raise ValueError("from_block, confirmations >= 0 and max_range >= 1 required")
        self.resume_after = resume_after
        self.confirmations = confirmations
        self.max_range = max_range
        self.next_block = (
            from_block if resume_after is None else max(from_block, resume_after.block)
        )
        self._last_timestamp: int | None = None  # of block next_block - 1
        self.handed_out = 0

    @property
    def synced_block(self) -> int:
        """The last block whose changes were all handed out (-1 before any)."""
        return self.next_block - 1

    def caught_up(self, head: int) -> bool:
        return head - self.confirmations < self.next_block

    def step(self, head: int, observed_at: float) -> Step:
        safe = head - self.confirmations
        if safe >= self.next_block:
            return FetchLogs(self.next_block, min(safe, self.next_block + self.max_range - 1))
        if safe < 0:
            return Idle()
        reported = min(safe, self.synced_block)  # below from_block or after a node rollback
        if reported != self.synced_block or self._last_timestamp is None:
            return FetchHeader(reported)
        return Synced(
            block_number=reported, block_timestamp=self._last_timestamp, observed_at=observed_at
        )

    def header_fetched(self, block: int, timestamp: int, observed_at: float) -> Synced:
        """The answer to FetchHeader: every change up to `block` has been handed out."""
        if block > self.synced_block:
            raise ValueError(f"block {block} is past the synced block {self.synced_block}")
        if block == self.synced_block:
            self._last_timestamp = timestamp
        return Synced(block_number=block, block_timestamp=timestamp, observed_at=observed_at)

    def logs_fetched(
        self,
        fetch: FetchLogs,
        changes: Iterable[Change],
        last_timestamp: int,
        observed_at: float,
    ) -> list[FollowItem]:
        """Accept the changes of `fetch`'s whole range; return what to hand out, in order."""
        if fetch.first != self.next_block or fetch.last < fetch.first:
            raise ValueError(f"unexpected range {fetch}, next block is {self.next_block}")
        items: list[FollowItem] = []
        for change in sorted(changes, key=lambda c: c.position):
            if not fetch.first <= change.position.block <= fetch.last:
                raise ValueError(f"change at {change.position} outside {fetch}")
            if self.resume_after is not None and change.position <= self.resume_after:
                continue
            items.append(change)
        self.next_block = fetch.last + 1
        self._last_timestamp = last_timestamp
        self.handed_out += len(items)
        items.append(
            Synced(block_number=fetch.last, block_timestamp=last_timestamp, observed_at=observed_at)
        )
        return items
