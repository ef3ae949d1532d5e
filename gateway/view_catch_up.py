"""`ViewCatchUp`: before a gateway denies, bring its grant view up to the chain head.

Why: the grant view follows the chain a poll (or a `newHeads` wake-up) behind. A reader
whose grant was just mined, and who subscribes at once, would be told "no grant" by a
view one block behind. So before any Deny, the adapter asks this module to wait:

1. read the chain head once (`eth_blockNumber`, through ledger's `ChainHead`); the view
   can only ever reach `head - confirmations`, so that is the target block;
2. wait until the grant feed has the view synced at or past the target
   (`GrantFeed.wait_synced`);
3. the caller decides again (pure, in policy) on the view as it is then.

Bounded: the whole wait is capped by `timeout` (a few seconds, below the staleness bound);
a node that does not answer or a follower that does not catch up in time means the
decision is taken on the view as it is, and the Deny names the view's block. Allows never
wait (no chain call on the hot path); concurrent catch-ups share one head read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ledger.errors import LedgerError

log = logging.getLogger(__name__)

DEFAULT_CATCH_UP_TIMEOUT = 5.0  # s; a follower polls every 0.5 s, a WebSocket wakes sooner


@dataclass(slots=True)
class CatchUpStatistics:
    waits: int = 0  # catch-ups started (each one before a would-be Deny)
    timeouts: int = 0  # view not at the head within the bound (or head unknown)


class ViewCatchUp:
    def __init__(
        self,
        head: Callable[[], Awaitable[int]],
        wait_synced: Callable[[int], Awaitable[None]],
        *,
        confirmations: int = 0,
        timeout: float = DEFAULT_CATCH_UP_TIMEOUT,
    ) -> None:
        if confirmations < 0 or timeout <= 0:
            raise ValueError("confirmations must be >= 0 and timeout > 0")
        self._head = head
        self._wait_synced = wait_synced
        self._confirmations = confirmations
        self._timeout = timeout
        self.stats = CatchUpStatistics()

    @property
    def timeout(self) -> float:
        return self._timeout

    async def wait(self) -> None:
        """Return once the view covers the chain head seen now, or the bound passes.
        Never raises for the chain: the caller decides on the view either way."""
        self.stats.waits += 1
        try:
            async with asyncio.timeout(self._timeout):
                target = await self._head() - self._confirmations
                await self._wait_synced(target)
        except TimeoutError:
            self.stats.timeouts += 1
            log.info("grant view not at the chain head within %.1fs: deciding on it", self._timeout)
        except LedgerError as exc:
            self.stats.timeouts += 1
            log.info("chain head unknown (%s): deciding on the grant view as it is", exc)
