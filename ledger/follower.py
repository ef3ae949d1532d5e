"""Follow the registry: every change in chain order, plus `Synced` checkpoints.

    async with RegistryFollower(config, resume_after=saved_position) as follower:
        async for item in follower:         # Change subclasses and Synced, in position order
            apply(item); save(item.position)

The decisions live in `ledger.follow_state.FollowState` (pure); this shell owns the
connection (`ledger.follow_source`) and one background task that feeds a bounded queue.

Guarantees: changes come out in (block, log_index) order, each exactly once per follower
and chain, after `config.confirmations` blocks; a `Synced` follows every fetched range and is
repeated at least once per `poll_interval` while the node answers, so a consumer can bound how
stale its view is (no `Synced` for a while = the chain is unreachable). A new follower started
with `resume_after=<last position processed>` continues without repeating or skipping a change.
When the chain no longer holds what was handed out (a reorg, a node restarted without its
database, no registry code at the address), a `Rewound(block)` says so: the consumer drops
every change after `block` and the changes of the new chain follow (see `follow_state`).
The registry's code is checked on every (re)connect and after every rewind; while it is
missing the follower hands out nothing (no `Synced`: the consumer's view stays stale).

Error handling: a dropped or unreachable node, or a registry address without code
(`ChainUnavailable`), is retried forever with exponential backoff (`statistics()` shows
it); the core keeps its place, so the reconnect neither misses nor repeats a change. Any
other error (`WrongChainId`, an undecodable log) ends the iteration by raising it from
`__anext__`.

Resource handling: `aclose()` (or leaving the `async with`) cancels the task and closes the
connection; it is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from ledger.changes import FollowItem, Position, Rewound, Synced
from ledger.config import LedgerConfig
from ledger.errors import ChainUnavailable, LedgerError
from ledger.follow_source import ChainSource, open_source
from ledger.follow_state import FetchHeader, FetchLogs, FollowState

log = logging.getLogger(__name__)

QUEUE_SIZE = 1024
BACKOFF_INITIAL = 0.1  # s
BACKOFF_MAX = 2.0  # s; a restarted Ganache answers within ~1.5 s
CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True)
class FollowerStatistics:
    mode: str  # "websocket", "polling" or "disconnected"
    synced_block: int
    handed_out: int
    rewinds: int
    reconnects: int
    last_error: str | None


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class RegistryFollower:
    """Yields registry changes and checkpoints; see the module docstring."""

    def __init__(
        self,
        config: LedgerConfig,
        *,
        from_block: int = 0,
        resume_after: Position | None = None,
        live: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.registry is None:
            raise LedgerError("no registry address configured")
        self.config = config
        self.live = live
        self._clock = clock
        self._state = FollowState(
            from_block=from_block, resume_after=resume_after, confirmations=config.confirmations
        )
        self._queue: asyncio.Queue[FollowItem | _Failed] = asyncio.Queue(QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None
        self._mode = "disconnected"
        self._reconnects = 0
        self._last_error: str | None = None
        self._closed = False

    # ---- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> RegistryFollower:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name="ledger-follower")

    async def aclose(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await task

    def statistics(self) -> FollowerStatistics:
        return FollowerStatistics(
            mode=self._mode,
            synced_block=self._state.synced_block,
            handed_out=self._state.handed_out,
            rewinds=self._state.rewinds,
            reconnects=self._reconnects,
            last_error=self._last_error,
        )

    # ---- iteration -----------------------------------------------------------------------

    def __aiter__(self) -> RegistryFollower:
        return self

    async def __anext__(self) -> FollowItem:
        if self._task is None and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, _Failed):
            raise item.error
        return item

    # ---- the task ------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = BACKOFF_INITIAL
        try:
            while True:
                try:
                    async with open_source(self.config, live=self.live) as source:
                        self._mode = source.mode
                        await self._check_registry(source)
                        backoff = BACKOFF_INITIAL  # only once the registry is there
                        await self._follow(source)
                except ChainUnavailable as exc:
                    self._mode = "disconnected"
                    self._last_error = str(exc)
                    self._reconnects += 1
                    log.warning("registry follower: %s; retrying in %.1fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
        except Exception as exc:  # WrongChainId, a malformed log, a bug: the consumer must hear it
            self._mode = "disconnected"
            self._last_error = str(exc)
            await self._queue.put(_Failed(exc))

    async def _follow(self, source: ChainSource) -> None:
        while True:
            head = await source.head()
            observed_at = self._clock()
            step = self._state.step(head, observed_at)
            items: list[FollowItem]
            if isinstance(step, FetchLogs):
                # the headers BEFORE the logs: a chain that changes after them shows up as a
                # changed hash at the next check (see follow_state)
                last = await source.header(step.last)
                first = last if step.first == step.last else await source.header(step.first)
                changes = await source.changes(step.first, step.last)
                items = self._state.logs_fetched(
                    step, changes, first=first, last=last, observed_at=observed_at
                )
            elif isinstance(step, FetchHeader):
                items = self._state.header_fetched(await source.header(step.block), observed_at)
            elif isinstance(step, Synced | Rewound):
                items = [step]
            else:
                items = []  # Idle
            for item in items:
                await self._queue.put(item)
            rewinds = [item for item in items if isinstance(item, Rewound)]
            for rewound in rewinds:
                log.warning(
                    "registry follower: %s: rewound to block %d",
                    rewound.reason,
                    rewound.block_number,
                )
            if rewinds:
                await self._check_registry(source)  # e.g. reverted to before the deployment
                continue
            if self._state.searching:
                continue  # locating a rewind: a few header reads, bounded by the window
            if isinstance(step, FetchLogs) and items and not self._state.caught_up(head):
                continue  # a long backlog: keep reading ranges without waiting
            await source.wait_for_head(self.config.poll_interval)

    async def _check_registry(self, source: ChainSource) -> None:
        """No code at the registry address: void what was handed out, retry later."""
        if await source.registry_deployed():
            return
        reason = f"no contract at registry {self.config.registry} on this chain"
        rewound = self._state.registry_missing(reason)
        if rewound is not None:
            log.warning("registry follower: %s: rewound to block %d", reason, rewound.block_number)
            await self._queue.put(rewound)
        raise ChainUnavailable(reason)
