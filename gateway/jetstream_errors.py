"""How the JetStream store names what can go wrong: nats-py errors never leave the store.

No connection, no responders, a timeout, a JetStream 503 (no quorum, a leader being elected)
or too few servers up to place the stream -> StoreUnavailable (UNAVAILABLE to clients); a wrong
expected sequence -> `Conflict` (the writer re-plans); any other API error -> StoreError.
Reads ride through a leader election (`patiently`); writes are answered at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats.errors

from gateway.errors import StoreError, StoreUnavailable

T = TypeVar("T")
WRONG_LAST_SEQUENCE = 10071
READ_PATIENCE = 8.0  # s a read retries while the cluster is unavailable (leader election)


class Conflict(StoreError):
    """A batch's expected subject sequence did not hold: someone wrote first. Re-plan."""


_TRANSIENT = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    asyncio.TimeoutError,
    OSError,
)


def is_transient(exc: BaseException) -> bool:
    """Is `exc` the connection or the cluster being away (worth another try elsewhere)?"""
    return isinstance(exc, _TRANSIENT)


def store_error(exc: BaseException, what: str) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    if is_transient(exc):
        return StoreUnavailable(f"store {what} failed: NATS: {type(exc).__name__} {exc}".strip())
    return StoreError(f"store {what} failed: {exc}")


def api_error(reply: dict[str, Any], what: str) -> StoreError | None:
    err = reply.get("error")
    if not err:
        return None
    text = f"store {what} failed: JetStream {err.get('code')} {err.get('description')}"
    # 10071 names the sequence; a clustered batch may answer with another code, same words
    wrong = str(err.get("description", "")).startswith("wrong last sequence")
    if err.get("err_code") == WRONG_LAST_SEQUENCE or wrong:
        return Conflict(text)
    offline = "no suitable peers" in str(err.get("description", ""))  # a replica is down
    if err.get("code") in (503, 408) or err.get("err_code") == 10008 or offline:
        return StoreUnavailable(text)
    return StoreError(text)


async def patiently(read: Callable[[], Awaitable[T]], patience: float = READ_PATIENCE) -> T:
    """Run a read again while the cluster is unavailable, for up to `patience` seconds.

    Reads have no effect, so a retry is safe; it lets readers (subscriptions) ride through a
    leader election (a few seconds) instead of failing. Writes are not retried here: their
    caller gets UNAVAILABLE at once (a retry of a publish is idempotent, see jetstream_writer)."""
    deadline = asyncio.get_running_loop().time() + patience
    pause = 0.05
    while True:
        try:
            return await read()
        except StoreUnavailable:
            if asyncio.get_running_loop().time() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)
