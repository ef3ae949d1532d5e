"""`OwnTask`: a service's `run()` as its own task, for hosts without a TaskGroup of their own.

A gateway runs its services inside one TaskGroup (`Gateway.serve()`); tests and tools that
have none use `start()`/`aclose()` or `async with` instead, which run `run()` as one task.

Contract for the subclass: `run()` serves until `_stop` is set (or it is cancelled), sets
`_ready` once it serves and `_done` when it ends, however it ends.

Resource handling: `start()` returns once `_ready` is set, or raises why `run()` ended
first; `aclose()` is idempotent, waits for `run()` to end and re-raises its failure.
"""

from __future__ import annotations

import abc
import asyncio
from typing import Self


class OwnTask(abc.ABC):
    def __init__(self, name: str) -> None:
        self._task_name = name
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._done = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def run(self) -> None: ...

    async def start(self) -> None:
        """Run `run()` as this service's one task until `aclose()`; returns once it serves."""
        if self._runner is not None:
            return
        self._runner = asyncio.create_task(self.run(), name=self._task_name)
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({self._runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._runner.done():
            self._runner.result()  # raises why it could not start

    async def aclose(self) -> None:
        """Stop (idempotent); re-raises what made `run()` fail, if it did."""
        self._stop.set()
        if self._runner is not None:
            await self._runner
        elif self._ready.is_set():
            await self._done.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
