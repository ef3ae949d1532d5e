"""meshgate as a `Target`: the meshgate.v1 gRPC API, spoken directly from the harness.

The bench speaks the wire contract (proto/gateway.proto) rather than a convenience client so
that it controls batching, credits and acks exactly as the NATS side does: one Publish RPC per
call of `publish` (its events all durable when it answers), and one Subscribe stream that
grants `window` credits up front and returns credit and acks after every delivered batch.

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
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.harness import STAMP
from policy.identity import Challenge
from policy.signin import sign_in
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc

GRANT_VISIBLE_TIMEOUT = 30.0
PROBE = b"probe"  # shorter than a stamp: receivers skip it
_RETRYABLE = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE)
_topics = itertools.count(1)
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


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


async def session_credentials(
    stub: gateway_pb2_grpc.GatewayStub, account: Any, topic: str
) -> gateway_pb2.Credentials:
    """Sign in `account` (EIP-4361) at the gateway behind `stub`, for `topic` only."""
    nonce = await stub.GetNonce(gateway_pb2.GetNonceRequest(), timeout=30)
    challenge = Challenge(
        nonce=nonce.nonce,
        domain=nonce.domain,
        uri=nonce.uri,
        chain_id=nonce.chain_id,
        expires_at=nonce.expires_at.ToSeconds(),
    )
    proof = sign_in(account, challenge, [topic], time.time())
    answer = await stub.SignIn(
        gateway_pb2.SignInRequest(
            proof=gateway_pb2.SignInProof(message=proof.message, signature=proof.signature)
        ),
        timeout=30,
    )
    return gateway_pb2.Credentials(session_token=answer.session_token)


class SubscriptionStream:
    """One open Subscribe call: read batches, then `settle` them (ack + credit back)."""

    def __init__(self, call: Any, outbox: asyncio.Queue[gateway_pb2.SubscribeRequest | None]):
        self.call = call
        self.outbox = outbox

    async def read(self) -> Sequence[gateway_pb2.Delivery] | None:
        """The next batch, or None at the end of the stream (raises AioRpcError on error)."""
        while True:
            response = await self.call.read()
            if response is grpc.aio.EOF:
                return None
            if response.WhichOneof("kind") == "batch":
                return list(response.batch.deliveries)

    async def settle(self, deliveries: Sequence[gateway_pb2.Delivery]) -> None:
        offsets = [d.offset for d in deliveries]
        await self.outbox.put(gateway_pb2.SubscribeRequest(ack=gateway_pb2.Ack(offsets=offsets)))
        await self.outbox.put(
            gateway_pb2.SubscribeRequest(credit=gateway_pb2.Credit(credits=len(deliveries)))
        )

    async def close(self) -> None:
        await self.outbox.put(None)
        self.call.cancel()


async def open_subscription(
    stub: gateway_pb2_grpc.GatewayStub,
    topic: str,
    *,
    window: int,
    credentials: gateway_pb2.Credentials | None,
) -> SubscriptionStream:
    """Open a Subscribe stream from the earliest offset; retry while the grant is not visible."""
    deadline = time.monotonic() + GRANT_VISIBLE_TIMEOUT
    while True:
        opening = gateway_pb2.SubscriptionOpen(
            topic=topic,
            start=gateway_pb2.StartPosition(kind=gateway_pb2.StartPosition.EARLIEST),
            credits=window,
        )
        if credentials is not None:
            opening.credentials.CopyFrom(credentials)
        outbox: asyncio.Queue[gateway_pb2.SubscribeRequest | None] = asyncio.Queue()
        outbox.put_nowait(gateway_pb2.SubscribeRequest(open=opening))

        async def requests(
            box: asyncio.Queue[gateway_pb2.SubscribeRequest | None],
        ) -> AsyncIterator[gateway_pb2.SubscribeRequest]:
            while (item := await box.get()) is not None:
                yield item

        call = stub.Subscribe(requests(outbox))
        try:
            async with asyncio.timeout(30):
                first = await call.read()
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _RETRYABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        if first is grpc.aio.EOF or first.WhichOneof("kind") != "subscribed":
            call.cancel()
            raise RuntimeError(f"Subscribe did not answer with subscribed: {first!r}")
        return SubscriptionStream(call, outbox)


@dataclass
class MeshgateTarget:
    """Publishes to `publish_addr`, subscribes at `subscribe_addr` (another region, or the same)."""

    publish_addr: str
    subscribe_addr: str
    topic: str
    window: int
    publish_credentials: gateway_pb2.Credentials | None = None
    subscribe_credentials: gateway_pb2.Credentials | None = None
    probe: bool = False  # before yielding a subscription, wait until a probe event arrives
    _channels: list[grpc.aio.Channel] = field(default_factory=list)
    _warm: bool = False

    def channel(self, addr: str) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(addr, options=CHANNEL_OPTIONS)
        self._channels.append(channel)
        return channel

    def __post_init__(self) -> None:
        self._publisher = gateway_pb2_grpc.GatewayStub(self.channel(self.publish_addr))

    async def publish(self, payloads: Sequence[bytes]) -> None:
        request = gateway_pb2.PublishRequest(
            topic=self.topic,
            batch=cloudevents_pb2.CloudEventBatch(events=[cloud_event(p) for p in payloads]),
        )
        if self.publish_credentials is not None:
            request.credentials.CopyFrom(self.publish_credentials)
        deadline = time.monotonic() + GRANT_VISIBLE_TIMEOUT
        while True:
            try:
                await self._publisher.Publish(request, timeout=60)
            except grpc.aio.AioRpcError as exc:
                if self._warm or exc.code() not in _RETRYABLE or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            self._warm = True
            return

    @asynccontextmanager
    async def _subscription(self, on_payload: Callable[[bytes], None]) -> AsyncIterator[None]:
        stub = gateway_pb2_grpc.GatewayStub(self.channel(self.subscribe_addr))
        stream = await open_subscription(
            stub, self.topic, window=self.window, credentials=self.subscribe_credentials
        )

        probed = asyncio.Event()

        async def pump() -> None:
            while (deliveries := await stream.read()) is not None:
                for delivery in deliveries:
                    payload = delivery.event.binary_data
                    if len(payload) < STAMP.size:
                        probed.set()
                    else:
                        on_payload(payload)
                await stream.settle(deliveries)

        reader = asyncio.create_task(pump())
        try:
            if self.probe:
                await self._wait_probed(probed, reader)
            yield
        finally:
            await stream.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                async with asyncio.timeout(10):
                    await reader

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

    async def aclose(self) -> None:
        async with asyncio.timeout(10):
            for channel in self._channels:
                await channel.close()
        self._channels.clear()


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
    target = MeshgateTarget(
        publish_addr=publish_addr,
        subscribe_addr=subscribe_addr,
        topic=topic or new_topic(),
        window=window,
        probe=probe,
    )
    try:
        if publisher is not None:
            stub = gateway_pb2_grpc.GatewayStub(target.channel(publish_addr))
            target.publish_credentials = await session_credentials(stub, publisher, target.topic)
        if reader is not None:
            stub = gateway_pb2_grpc.GatewayStub(target.channel(subscribe_addr))
            target.subscribe_credentials = await session_credentials(stub, reader, target.topic)
        yield target
    finally:
        await target.aclose()
