"""Where the follower reads the chain: HTTP polling or a WebSocket with a newHeads wake-up.

Both sources answer the same five questions (head, logs in a range, a block's header, is
the registry deployed, wait for a new head). The WebSocket source subscribes to `newHeads`
only as a wake-up call: logs are always read with `eth_getLogs` over a block range, so a
missed notification can delay a change by one poll interval but never lose or repeat it. If
the node refuses the subscription, the WebSocket source degrades to polling.

Error handling: every failure that a reconnect may cure (socket closed, refused, timed out,
node error) is raised as `ChainUnavailable`; a wrong chain id as `WrongChainId`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
import websockets
from eth_utils import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3, WebSocketProvider
from web3.exceptions import Web3Exception

from ledger.changes import BlockHeader, Change, decode_change
from ledger.config import LedgerConfig
from ledger.errors import ChainUnavailable, LedgerError, WrongChainId

RECOVERABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    aiohttp.ClientError,
    websockets.exceptions.WebSocketException,
    Web3Exception,
)


class ChainSource(Protocol):
    mode: str  # "websocket" or "polling"

    async def head(self) -> int: ...
    async def changes(self, first: int, last: int) -> list[Change]: ...
    async def header(self, block: int) -> BlockHeader: ...
    async def registry_deployed(self) -> bool: ...
    async def wait_for_head(self, timeout: float) -> None: ...


class _Web3Source:
    """Shared reads over any AsyncWeb3; each call bounded by the RPC timeout."""

    mode = "polling"

    def __init__(self, w3: AsyncWeb3[Any], config: LedgerConfig) -> None:
        self.w3 = w3
        self.config = config
        self.registry = config.registry

    async def _bounded(self, awaitable: Any) -> Any:
        try:
            async with asyncio.timeout(self.config.rpc_timeout):
                return await awaitable
        except LedgerError:
            raise
        except RECOVERABLE as exc:
            raise ChainUnavailable(f"chain unreachable: {type(exc).__name__}: {exc}") from exc

    async def check_chain_id(self) -> None:
        actual = int(await self._bounded(self.w3.eth.chain_id))
        if self.config.chain_id is not None and actual != self.config.chain_id:
            raise WrongChainId(self.config.chain_id, actual)

    async def head(self) -> int:
        return int(await self._bounded(self.w3.eth.block_number))

    async def changes(self, first: int, last: int) -> list[Change]:
        params: Any = {"address": self.registry, "fromBlock": first, "toBlock": last}
        logs = await self._bounded(self.w3.eth.get_logs(params))
        return [c for c in (decode_change(log) for log in logs) if c is not None]

    async def header(self, block: int) -> BlockHeader:
        raw = await self._bounded(self.w3.eth.get_block(block))
        if raw is None or raw.get("hash") is None:
            raise ChainUnavailable(f"node has no block {block} (yet)")
        return BlockHeader(
            number=int(raw["number"]),
            hash=_hex(raw["hash"]),
            parent_hash=_hex(raw["parentHash"]),
            timestamp=int(raw["timestamp"]),
        )

    async def registry_deployed(self) -> bool:
        """Is there code at the registry address on the node's current chain?"""
        if self.registry is None:
            return False
        code = await self._bounded(self.w3.eth.get_code(to_checksum_address(self.registry)))
        return len(bytes(code)) > 0

    async def wait_for_head(self, timeout: float) -> None:
        await asyncio.sleep(timeout)


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


class _WebSocketSource(_Web3Source):
    mode = "websocket"

    def __init__(self, w3: AsyncWeb3[Any], config: LedgerConfig) -> None:
        super().__init__(w3, config)
        self._new_head = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def _on_head(self, _context: Any) -> None:
        self._new_head.set()

    async def subscribe(self) -> None:
        try:
            await self._bounded(self.w3.eth.subscribe("newHeads", handler=self._on_head))
        except ChainUnavailable:
            self.mode = "polling"  # node without subscriptions: poll over the same socket
            return
        self._listener = asyncio.create_task(
            self.w3.subscription_manager.handle_subscriptions(), name="ledger-newheads"
        )

    async def wait_for_head(self, timeout: float) -> None:
        if self._listener is None:
            await asyncio.sleep(timeout)
            return
        waiter = asyncio.create_task(self._new_head.wait())
        try:
            await asyncio.wait(
                {waiter, self._listener}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        self._new_head.clear()
        if self._listener.done():
            exc = None if self._listener.cancelled() else self._listener.exception()
            raise ChainUnavailable(f"newHeads subscription ended: {exc!r}")

    async def stop_listener(self) -> None:
        if self._listener is not None and not self._listener.done():
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *RECOVERABLE):
                await self._listener


@contextlib.asynccontextmanager
async def open_source(config: LedgerConfig, *, live: bool = True) -> AsyncIterator[ChainSource]:
    """Connect (WebSocket if `live`, else HTTP), check the chain id, and close on exit.

    Raises ChainUnavailable (retry later) or WrongChainId (configuration error).
    """
    if live:
        provider = WebSocketProvider(
            config.ws_url,
            request_timeout=config.rpc_timeout,
            max_connection_retries=1,
            silence_listener_task_exceptions=True,
        )
        try:
            async with asyncio.timeout(config.rpc_timeout):
                w3: AsyncWeb3[Any] = await AsyncWeb3(provider)
        except RECOVERABLE as exc:
            raise ChainUnavailable(f"chain unreachable: {type(exc).__name__}: {exc}") from exc
        ws = _WebSocketSource(w3, config)
        try:
            await ws.check_chain_id()
            await ws.subscribe()
            yield ws
        finally:
            await ws.stop_listener()
            with contextlib.suppress(*RECOVERABLE):
                async with asyncio.timeout(2.0):
                    await provider.disconnect()
        return
    http_provider = AsyncHTTPProvider(
        config.http_url, request_kwargs={"timeout": aiohttp.ClientTimeout(total=config.rpc_timeout)}
    )
    source = _Web3Source(AsyncWeb3(http_provider), config)
    try:
        await source.check_chain_id()
        yield source
    finally:
        with contextlib.suppress(*RECOVERABLE):
            async with asyncio.timeout(2.0):
                await http_provider.disconnect()
