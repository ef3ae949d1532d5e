"""The clients of a chaos run: a recording publisher, recording durable consumers, probes.

- `Publisher` sends batches at a fixed rate with ids 0, 1, ... under one source, for the
  whole fault and a tail after it (traffic crosses every phase). A batch
  counts as acknowledged only when Publish answered; a failed call is retried with the same
  (source, id) for at most `retry_for` seconds, so nothing acknowledged is ever re-sent as new.
- `consume` reads one durable group, acking each delivery after recording it, reconnecting
  after any stream failure (gateway killed, partition, stale chain) until cancelled; a revoked
  reader stops at the first PERMISSION_DENIED once the revoke was sent.
- `warm_up` publishes probes (another source, never judged) until every witness received one:
  interest-only routing sends nothing to a region before its interest arrived.

Sessions: a restarted gateway forgets session tokens, so UNAUTHENTICATED drops the client's
token and the next call signs in again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
from cloudevents.core.v1.event import CloudEvent

from bench.chaos.history import History
from meshgate.client import GatewayClient

SOURCE = "/chaos/publisher"
WARM_SOURCE = "/chaos/warmup"
RETRY_PAUSE = 0.1  # s between attempts of a failed call (a retry, not a wait on a condition)
CALL_TIMEOUT = 5.0
MAX_FACTOR = 20  # a publisher stops after 20 x `events` even if the fault never ends


def client_for(address: str, signer: Any, topic: str) -> GatewayClient:
    return GatewayClient(address, signer=signer, signin_topics=[topic], timeout=CALL_TIMEOUT)


def _code(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code().name
    return type(exc).__name__


def _forget_session(client: GatewayClient, exc: BaseException) -> None:
    if isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.UNAUTHENTICATED:
        client.credentials = None


class Publisher:
    def __init__(
        self, client: GatewayClient, topic: str, history: History, *, events: int, batch: int,
        rate: float, pad: int = 0, retry_for: float = 90.0,
    ) -> None:  # fmt: skip
        self.client = client
        self.topic = topic
        self.history = history
        self.events = events
        self.batch = batch
        self.interval = batch / rate
        self.pad = "x" * pad
        self.retry_for = retry_for
        self.done = asyncio.Event()

    def _batch(self, first: int) -> list[CloudEvent]:
        last = first + self.batch
        return [
            CloudEvent({"type": "chaos.event", "source": SOURCE, "id": str(n)},
                       {"n": n, "pad": self.pad})
            for n in range(first, last)
        ]  # fmt: skip

    async def run(self, fault_done: asyncio.Event) -> None:
        """At least `events`, and on until `events // 5` more after the fault is undone.

        Bounded: never more than `MAX_FACTOR * events`, whatever the fault does.
        """
        try:
            next_at = time.monotonic()
            first = 0
            tail_end: int | None = None
            while first < MAX_FACTOR * self.events:
                if fault_done.is_set() and tail_end is None:
                    tail_end = first + self.events // 5
                if first >= self.events and tail_end is not None and first >= tail_end:
                    break
                await self._publish(first)
                first += self.batch
                next_at += self.interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            self.done.set()

    async def _publish(self, first: int) -> None:
        batch = self._batch(first)
        give_up = time.monotonic() + self.retry_for
        while True:
            try:
                await self.client.publish_batch(self.topic, batch)
            except (grpc.aio.AioRpcError, OSError, TimeoutError) as exc:
                self.history.publish_errors[_code(exc)] += 1
                _forget_session(self.client, exc)
                if time.monotonic() >= give_up:
                    self.history.unacked += len(batch)
                    return
                await asyncio.sleep(RETRY_PAUSE)
                continue
            now = time.monotonic()
            for ev in batch:
                self.history.ack((SOURCE, ev.get_id()), now)
            return


async def consume(
    client: GatewayClient, topic: str, group: str, name: str, history: History, *,
    denied_is_final: Callable[[], bool] = lambda: False, credits: int = 256,
) -> None:  # fmt: skip
    """Record every delivery of `group` as consumer `name`, acking each after recording.

    `auto_ack`: the client acks a delivery when the loop asks for the next one, i.e. after
    this loop recorded it, and sends acks in batches (one Ack message per event would make
    the consumer, not the fault, the bottleneck).
    """
    while True:
        sub = client.subscribe(topic, group=group, start="earliest", credits=credits)
        try:
            await sub.start()
            async for offset, event in sub:
                history.deliver(
                    (str(event.get_source()), str(event.get_id())), name, offset,
                    sub.last_attempt, time.monotonic(),
                )  # fmt: skip
            history.stream_ends[f"{name}: ended"] += 1
        except (grpc.aio.AioRpcError, ConnectionError, OSError) as exc:
            history.stream_ends[f"{name}: {_code(exc)}"] += 1
            _forget_session(client, exc)
            denied = (
                isinstance(exc, grpc.aio.AioRpcError)
                and exc.code() == grpc.StatusCode.PERMISSION_DENIED
            )
            if denied and denied_is_final():
                return
        finally:
            try:
                async with asyncio.timeout(2):
                    await sub.aclose()
            except (TimeoutError, grpc.aio.AioRpcError):
                pass
        await asyncio.sleep(RETRY_PAUSE)


async def warm_up(
    client: GatewayClient, topic: str, history: History, witnesses: list[str], timeout: float
) -> None:
    """Probe events until each witness has one (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    n = 0
    while not all(any(k[0] == WARM_SOURCE for k in history.seen.get(w, ())) for w in witnesses):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no warm-up probe reached {witnesses} in {timeout:.0f}s")
        try:
            await client.publish(
                topic, CloudEvent({"type": "chaos.warmup", "source": WARM_SOURCE, "id": str(n)})
            )
        except grpc.aio.AioRpcError as exc:  # the grant may not be seen yet
            history.publish_errors[f"warm-up {_code(exc)}"] += 1
            _forget_session(client, exc)
        n += 1
        await asyncio.sleep(0.2)


async def wait_refused(client: GatewayClient, topic: str, timeout: float) -> float:
    """Open throwaway subscriptions until the gateway refuses the reader; when it first did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sub = client.subscribe(topic, start="latest", credits=1)
        try:
            await sub.start()
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                return time.monotonic()
            _forget_session(client, exc)
        finally:
            try:
                async with asyncio.timeout(2):
                    await sub.aclose()
            except (TimeoutError, grpc.aio.AioRpcError):
                pass
        await asyncio.sleep(0.02)
    raise TimeoutError(f"the gateway still admitted the revoked reader after {timeout:.0f}s")
