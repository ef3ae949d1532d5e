"""meshgate as a `Target`, spoken through the client SDK (`meshgate.client.GatewayClient`).

What the bench takes from the client, and where it keeps control to measure fairly against
NATS (bench/nats_workloads.py):

- Sign-in: `GatewayClient(signer=..., signin_topics=[topic])`, signed in before the run starts
  (`sign_in()`), so no measured call pays for EIP-4361; every call then sends the session token.
- Publish: `GatewayClient.publish_pb` (the events already built as protobuf, as the NATS side
  hands nats-py bytes), answered once its events are durable: concurrent calls share the
  client's PublishStream (issue 13) when the gateway serves it, else one Publish RPC each;
  each run records which (`publish_stream` 1/0 in the per-run table). Chosen over the raw
  stub (when the client was unary) by measuring both: `bench.run --only publish_single
  --runs 1`, twice each, gave 592 and 449 events/s through the client, 963 and 1,068 on the
  stub, but JetStream in the same runs swung from 4,635 to 10,665 (the shared machine's load);
  alternating 3 s rounds in one process (32 calls in flight, 5 rounds each) gave 807 (client)
  and 844 (stub) events/s on average, with rounds from 667 to 1,041 either way. The client
  adds a credentials check and a result list per call, no cost the noise lets us see.
- Subscribe: `client.subscribe(credits=window)` from the earliest offset, iterated with
  `Subscription.deliveries()`: the raw `Delivery` messages, because making a CloudEvent of each
  (~70 us an event) is work the NATS side, handed raw bytes, does not do. The client returns
  credit every window/2 events and acks each event as the next is read (sent every 128 or
  before it waits on the network). The bench gateways allow `max_ack_pending` = the window
  (bench/meshgate_system.py writes it to their config file), as the NATS consumers do, so the
  ack bound never shrinks the credit window.

With access control on, a grant mined a moment ago may not have reached a gateway yet: the
first publish and the subscription open retry PERMISSION_DENIED / UNAVAILABLE until
`GRANT_VISIBLE_TIMEOUT`. Publish is all-or-nothing, so a refused attempt stored nothing.
After the first success, any error is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from bench.harness import STAMP
from meshgate.client import GatewayClient, Subscription
from proto import cloudevents_pb2

GRANT_VISIBLE_TIMEOUT = 30.0
RPC_TIMEOUT = 60.0
PROBE = b"probe"  # shorter than a stamp: receivers skip it
_RETRYABLE = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE)
_topics = itertools.count(1)


def new_topic(prefix: str = "bench") -> str:
    """A fresh topic per run, unique across bench invocations sharing a data dir."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}-{next(_topics)}"


def cloud_event(payload: bytes) -> cloudevents_pb2.CloudEvent:
    return cloudevents_pb2.CloudEvent(
        id=uuid.uuid4().hex,
        source="/bench/harness",
        spec_version="1.0",
        type="dev.meshgate.bench",
        binary_data=payload,
    )


async def signed_in_client(addr: str, account: Any, topic: str) -> GatewayClient:
    """A client at `addr`; with `account`, already signed in (EIP-4361) for `topic` only."""
    client = GatewayClient(
        addr,
        timeout=RPC_TIMEOUT,
        signer=account,
        signin_topics=[topic] if account is not None else (),
    )
    if account is not None:
        try:
            await client.sign_in()
        except BaseException:
            await client.aclose()
            raise
    return client


async def open_subscription(client: GatewayClient, topic: str, *, window: int) -> Subscription:
    """An open Subscribe stream from the earliest offset; retry while the grant is not visible."""
    deadline = time.monotonic() + GRANT_VISIBLE_TIMEOUT
    while True:
        sub = client.subscribe(topic, start="earliest", credits=window)
        try:
            async with asyncio.timeout(RPC_TIMEOUT):
                await sub.start()
        except grpc.aio.AioRpcError as exc:
            await sub.aclose()
            if exc.code() not in _RETRYABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        except BaseException:
            await sub.aclose()
            raise
        return sub


@dataclass
class MeshgateTarget:
    """Publishes through `publisher`, subscribes through `subscriber` (another region, or the
    same gateway): one client, so one channel, each."""

    publisher: GatewayClient
    subscriber: GatewayClient
    topic: str
    window: int
    probe: bool = False  # before yielding a subscription, wait until a probe event arrives
    _warm: bool = False

    async def publish(self, payloads: Sequence[bytes]) -> None:
        events = [cloud_event(p) for p in payloads]
        deadline = time.monotonic() + GRANT_VISIBLE_TIMEOUT
        while True:
            try:
                await self.publisher.publish_pb(self.topic, events)
            except grpc.aio.AioRpcError as exc:
                if self._warm or exc.code() not in _RETRYABLE or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            self._warm = True
            return

    @asynccontextmanager
    async def _subscription(self, on_payload: Callable[[bytes], None]) -> AsyncIterator[None]:
        sub = await open_subscription(self.subscriber, self.topic, window=self.window)
        probed = asyncio.Event()

        async def pump() -> None:
            async for delivery in sub.deliveries():
                payload = delivery.event.binary_data
                if len(payload) < STAMP.size:
                    probed.set()
                else:
                    on_payload(payload)

        reader = asyncio.create_task(pump())
        try:
            if self.probe:
                await self._wait_probed(probed, reader)
            yield
        finally:
            reader.cancel()  # cancels the call it reads; aclose then has nothing to drain
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                async with asyncio.timeout(10):
                    await reader
            await sub.aclose()

    async def _wait_probed(self, probed: asyncio.Event, reader: asyncio.Task[None]) -> None:
        """Interest reaches other regions asynchronously: probe until the subscriber hears us."""
        async with asyncio.timeout(GRANT_VISIBLE_TIMEOUT):
            while not probed.is_set():
                if reader.done():
                    reader.result()
                    raise RuntimeError("the subscription ended while probing")
                await self.publish([PROBE])
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await probed.wait()

    def subscribe(self, on_payload: Callable[[bytes], None]) -> AbstractAsyncContextManager[None]:
        return self._subscription(on_payload)

    def uses_publish_stream(self) -> float | None:
        """1.0 when the client still publishes over PublishStream (it drops to unary Publish
        on UNIMPLEMENTED), 0.0 when unary, None when the client does not say (diagnostic)."""
        if not hasattr(self.publisher, "_streams"):
            return None
        return 0.0 if self.publisher._streams is None else 1.0


@asynccontextmanager
async def meshgate_target(
    publish_addr: str,
    subscribe_addr: str,
    *,
    window: int,
    topic: str | None = None,
    publisher: Any = None,
    reader: Any = None,
    probe: bool = False,
) -> AsyncIterator[MeshgateTarget]:
    """A target on a fresh topic; with `publisher`/`reader` accounts, both sides sign in."""
    topic = topic or new_topic()
    async with contextlib.AsyncExitStack() as stack:
        pub = await signed_in_client(publish_addr, publisher, topic)
        stack.push_async_callback(pub.aclose)
        sub = await signed_in_client(subscribe_addr, reader, topic)
        stack.push_async_callback(sub.aclose)
        yield MeshgateTarget(pub, sub, topic, window, probe=probe)
