"""`InterestWatcher`: the task that keeps what a node advertises and routes current.

It re-reads local interest and re-judges received interest (`RoutingTable.rejudge`) whenever the
InterestSource wakes it (a local change, or an access-view change the host reports through it)
and when the earliest accepted interest proof expires; `schedule()` moves that deadline when an
advertisement brings new proofs. It calls `on_change` when either changed a route or our
advertisement. Resource handling: `run()` is the node's one task for this, cancelled with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from federation.ports import InterestSource
from federation.routing import RoutingTable


class InterestWatcher:
    def __init__(
        self, routing: RoutingTable, interest: InterestSource, on_change: Callable[[], None]
    ) -> None:
        self._routing = routing
        self._interest = interest
        self._on_change = on_change
        self._timer: asyncio.Timeout | None = None

    async def run(self) -> None:
        version = -1
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None) as self._timer:
                    self.schedule()
                    version = await self._interest.wait_changed(version)
            self._timer = None
            local = self._routing.set_local(self._interest.local_interest())
            if self._routing.rejudge() or local:
                self._on_change()

    def schedule(self) -> None:
        """Wake `run()` when the earliest accepted proof expires (call after routes change)."""
        timer, expiry = self._timer, self._routing.next_expiry()
        if timer is not None and not timer.expired() and expiry is not None:
            loop = asyncio.get_running_loop()
            timer.reschedule(loop.time() + max(0.0, expiry - time.time()))
