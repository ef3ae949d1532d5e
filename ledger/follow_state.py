"""The follower's sans-I/O core: which blocks to read next, what to hand out, what to take back.

Theory of operation: the shell reports the node's head (`step`); the core answers with one
action. `FetchLogs(first, last)` asks for the registry's logs in a block range (only blocks
with at least `confirmations` blocks on top); the shell reads the headers of `last` and
`first`, then the logs, and returns them (`logs_fetched`). The core returns the changes to
hand out, in (block, log_index) order, followed by a `Synced` checkpoint for `last`.
When there is nothing new the core asks for the header of the last processed block
(`FetchHeader`) and answers `Synced` once its hash is still the one it read, so a consumer
hears at least once per poll even on a quiet chain.

Reorgs: the core remembers the hashes of the blocks it applied (the last `window` of them),
as read BEFORE their logs: so when a remembered hash still matches the chain, the logs read
after it came from that same chain (short of a fork that flips away and back within one
read), and so did everything applied below it (each range's first block must name the
previous range's last as its parent). The chain moved under it when
- the head is below the last applied block (a node restarted without its database, an
  `evm_revert`, a shorter fork),
- a remembered block's hash changed (checked at each quiet poll for the last applied block,
  and for the parent of each new range's first block), or
- one range read disagrees with itself (the chain changed between the reads).
It then binary-searches the remembered blocks for the newest one the chain still holds (each
probe a `FetchHeader`; a block's hash covers all its ancestors, so the matches are a prefix)
and hands out `Rewound(ancestor)`: the consumer drops everything after it, and the core reads
again from `ancestor + 1`. No remembered block left (a fork deeper than the window, or the
registry gone: `registry_missing`) rewinds to `from_block - 1`: a full re-sync.

Invariants:
- between two `Rewound`, `next_block` only grows; a range is handed out at most once, whole;
- a change at or before `resume_after` is never handed out (resuming after a restart
  re-reads the resume block and drops what the consumer already has), unless a rewind took
  the chain back behind `resume_after` (then the consumer dropped it and gets it again);
- changes inside one range come out sorted by position, whatever order the node gave;
- after the chain settles, what was handed out minus what was rewound equals the changes
  of the final chain up to the synced block, which is at least `head - confirmations`
  (a block that lost confirmations to a shorter fork but is still on the chain stays);
  the fork property test in tests/unit/ledger/test_follow_state.py checks this.

Transitions (head h, confirmations c, safe = h - c, applied = the consumer holds changes):
    searching                     -> FetchHeader(next probe; probes above h count as changed)
    applied and h < synced block  -> search the remembered blocks <= h (Rewound if none)
    safe >= next_block            -> FetchLogs(next_block, min(safe, next_block + max_range - 1))
    applied, safe < next_block    -> FetchHeader(synced block): its hash is checked
    not applied, 0 <= safe < next -> FetchHeader(min(safe, synced block)), or Synced(synced
                                     block) when its timestamp is already known
    not applied, safe < 0         -> Idle
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.changes import BlockHeader, Change, FollowItem, Position, Rewound, Synced

DEFAULT_MAX_RANGE = 2000  # blocks per eth_getLogs; public nodes often cap ranges near this
# Block hashes remembered for reorg detection. Ethereum finalizes after 2 epochs (64 blocks);
# a reorg deeper than the window still rewinds, by a full re-sync.
DEFAULT_WINDOW = 128


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


Step = FetchLogs | FetchHeader | Idle | Synced | Rewound


@dataclass
class _Search:
    """Binary search for the newest remembered block the chain still holds."""

    candidates: list[int]  # remembered block numbers, ascending
    reason: str
    lo: int = -1  # index of the newest candidate known to match (-1: none yet)
    hi: int = -1  # index of the oldest candidate known to differ

    def __post_init__(self) -> None:
        self.hi = len(self.candidates)

    @property
    def probe(self) -> int:
        return self.candidates[(self.lo + self.hi) // 2]

    @property
    def done(self) -> bool:
        return self.hi - self.lo <= 1

    def cap(self, head: int) -> None:
        """Blocks above the head are gone: count them as changed."""
        self.hi = min(self.hi, bisect.bisect_right(self.candidates, head))
        if self.lo >= self.hi:  # a block that matched is gone too: search again below
            self.lo = -1


class FollowState:
    """Where the follower stands; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        from_block: int = 0,
        resume_after: Position | None = None,
        confirmations: int = 0,
        max_range: int = DEFAULT_MAX_RANGE,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if from_block < 0 or confirmations < 0 or max_range < 1 or window < 1:
            raise ValueError("from_block, confirmations >= 0 and max_range, window >= 1 required")
        self.from_block = from_block
        self.resume_after = resume_after
        self.confirmations = confirmations
        self.max_range = max_range
        self.window = window
        self.next_block = (
            from_block if resume_after is None else max(from_block, resume_after.block)
        )
        self._last_timestamp: int | None = None  # of block next_block - 1
        self._hashes: dict[int, str] = {}  # applied block -> hash, ascending insertion
        self._search: _Search | None = None
        self.handed_out = 0
        self.rewinds = 0

    @property
    def synced_block(self) -> int:
        """The last block whose changes were all handed out (-1 before any)."""
        return self.next_block - 1

    @property
    def searching(self) -> bool:
        """A rewind is being located: the shell should step again without waiting."""
        return self._search is not None

    @property
    def _holds_changes(self) -> bool:
        """Might the consumer hold changes a rewind would void?"""
        return bool(self._hashes) or self.resume_after is not None

    def caught_up(self, head: int) -> bool:
        return head - self.confirmations < self.next_block

    def step(self, head: int, observed_at: float) -> Step:
        if self._search is not None:
            self._search.cap(head)  # the chain may have shrunk again meanwhile
            if not self._search.done:
                return FetchHeader(self._search.probe)
            rewound = self._conclude()
            if rewound is not None:
                return rewound
        holds = self._holds_changes
        if holds and head < self.synced_block:
            located = self._start_search(
                head, f"chain head {head} is behind applied block {self.synced_block}"
            )
            if located is not None:
                return located
        safe = head - self.confirmations
        if safe >= self.next_block:
            return FetchLogs(self.next_block, min(safe, self.next_block + self.max_range - 1))
        if holds and self.synced_block >= 0:
            reported = self.synced_block  # it is still on the chain: check its hash
        elif holds or safe < 0:
            return Idle()
        else:
            reported = min(safe, self.synced_block)  # the node is behind from_block
        if (
            reported != self.synced_block
            or self._last_timestamp is None
            or reported in self._hashes
        ):
            return FetchHeader(reported)
        return Synced(
            block_number=reported, block_timestamp=self._last_timestamp, observed_at=observed_at
        )

    def header_fetched(self, header: BlockHeader, observed_at: float) -> list[FollowItem]:
        """The answer to FetchHeader: a `Synced`, a `Rewound`, or nothing (search goes on)."""
        if self._search is not None:
            return self._probed(header)
        if header.number > self.synced_block:
            raise ValueError(f"block {header.number} is past the synced block {self.synced_block}")
        known = self._hashes.get(header.number)
        if known is not None and known != header.hash:
            return self._found(
                self._start_search(header.number - 1, f"block {header.number} changed hash")
            )
        if header.number == self.synced_block:
            self._last_timestamp = header.timestamp
        return [
            Synced(
                block_number=header.number,
                block_timestamp=header.timestamp,
                observed_at=observed_at,
            )
        ]

    def logs_fetched(
        self,
        fetch: FetchLogs,
        changes: Iterable[Change],
        *,
        first: BlockHeader,
        last: BlockHeader,
        observed_at: float,
    ) -> list[FollowItem]:
        """Accept the changes of `fetch`'s whole range; return what to hand out, in order.

        `first`/`last` are the headers of the range's ends (the same header when they are one
        block). A range that does not extend the applied chain, or disagrees with itself,
        hands out nothing and starts locating the rewind instead.
        """
        if fetch.first != self.next_block or fetch.last < fetch.first or self._search:
            raise ValueError(f"unexpected range {fetch}, next block is {self.next_block}")
        if first.number != fetch.first or last.number != fetch.last:
            raise ValueError(f"headers {first.number}, {last.number} do not bound {fetch}")
        ordered = sorted(changes, key=lambda c: c.position)
        for change in ordered:
            if not fetch.first <= change.position.block <= fetch.last:
                raise ValueError(f"change at {change.position} outside {fetch}")
        parent = self._hashes.get(fetch.first - 1)
        if parent is not None and parent != first.parent_hash:
            return self._found(
                self._start_search(fetch.first - 2, f"block {fetch.first - 1} changed hash")
            )
        if not _consistent(ordered, first, last):
            return self._found(
                self._start_search(self.synced_block, "the chain changed while a range was read")
            )
        items: list[FollowItem] = []
        self._remember(first.number, first.hash)
        for change in ordered:
            if self.resume_after is not None and change.position <= self.resume_after:
                continue
            items.append(change)
        self._remember(last.number, last.hash)
        self.next_block = fetch.last + 1
        self._last_timestamp = last.timestamp
        self.handed_out += len(items)
        items.append(
            Synced(block_number=fetch.last, block_timestamp=last.timestamp, observed_at=observed_at)
        )
        return items

    def registry_missing(self, reason: str) -> Rewound | None:
        """The registry has no code on this chain: void everything (None if nothing held)."""
        self._search = None
        if not self._holds_changes:
            return None
        return self._rewind(self.from_block - 1, reason)

    # ---- rewinding -----------------------------------------------------------------------

    def _start_search(self, limit: int, reason: str) -> FetchHeader | Rewound | None:
        """Locate the rewind among the remembered blocks up to `limit` (None: nothing held)."""
        candidates = [block for block in self._hashes if block <= limit]
        if not candidates:
            if not self._holds_changes:
                return None
            return self._rewind(self.from_block - 1, f"{reason}; no common block remembered")
        self._search = _Search(candidates, reason)
        return FetchHeader(self._search.probe)

    def _probed(self, header: BlockHeader) -> list[FollowItem]:
        search = self._search
        assert search is not None
        if header.number != search.probe:
            raise ValueError(f"header {header.number} is not the probed block {search.probe}")
        middle = (search.lo + search.hi) // 2
        if self._hashes.get(header.number) == header.hash:
            search.lo = middle
        else:
            search.hi = middle
        return self._found(self._conclude() if search.done else None)

    def _conclude(self) -> Rewound | None:
        search = self._search
        assert search is not None and search.done
        self._search = None
        if search.lo < 0:
            return self._rewind(self.from_block - 1, f"{search.reason}; no common block")
        ancestor = search.candidates[search.lo]
        if ancestor >= self.synced_block:
            return None  # the applied chain still stands (a read raced a short-lived change)
        return self._rewind(ancestor, search.reason)

    def _found(self, step: FetchHeader | Rewound | None) -> list[FollowItem]:
        return [step] if isinstance(step, Rewound) else []

    def _rewind(self, ancestor: int, reason: str) -> Rewound:
        self._hashes = {b: h for b, h in self._hashes.items() if b <= ancestor}
        self.next_block = ancestor + 1
        self._last_timestamp = None
        if self.resume_after is not None and self.resume_after > Position.end_of(ancestor):
            self.resume_after = None  # the consumer drops those changes: hand them out again
        self.rewinds += 1
        return Rewound(block_number=ancestor, reason=reason)

    def _remember(self, block: int, block_hash: str) -> None:
        self._hashes[block] = block_hash
        while len(self._hashes) > self.window:
            del self._hashes[next(iter(self._hashes))]


def _consistent(changes: list[Change], first: BlockHeader, last: BlockHeader) -> bool:
    """Do the logs and both headers of one range read come from one chain?"""
    if last.number == first.number and last.hash != first.hash:
        return False
    if last.number == first.number + 1 and last.parent_hash != first.hash:
        return False
    seen: dict[int, str] = {first.number: first.hash, last.number: last.hash}
    for change in changes:
        if change.block_hash and seen.setdefault(change.position.block, change.block_hash) != (
            change.block_hash
        ):
            return False
    return True
