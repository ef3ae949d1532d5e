"""meshgate as a `Target`: the meshgate.v1 gRPC API, spoken directly from the harness.

The bench speaks the wire contract (proto/gateway.proto) rather than a convenience client so
that it controls batching, credits and acks exactly as the NATS side does: one Publish RPC per
call of `publish` (its events all durable when it answers), and one Subscribe stream that
grants `window` credits up front and returns credit and acks after every delivered batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import grpc

from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc

_topics = itertools.count(1)
_CHANNEL_OPTIONS = [
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


@dataclass
class MeshgateTarget:
    """Publishes to `publish_addr`, subscribes at `subscribe_addr` (another region, or the same)."""

    publish_addr: str
    subscribe_addr: str
    topic: str
    window: int
    publish_credentials: Callable[[], gateway_pb2.Credentials | None] = lambda: None
    subscribe_credentials: Callable[[], gateway_pb2.Credentials | None] = lambda: None
    _channels: list[grpc.aio.Channel] = field(default_factory=list)

    def _channel(self, addr: str) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(addr, options=_CHANNEL_OPTIONS)
        self._channels.append(channel)
        return channel

    def __post_init__(self) -> None:
        self._publisher = gateway_pb2_grpc.GatewayStub(self._channel(self.publish_addr))

    async def publish(self, payloads: Sequence[bytes]) -> None:
        request = gateway_pb2.PublishRequest(
            topic=self.topic,
            batch=cloudevents_pb2.CloudEventBatch(events=[cloud_event(p) for p in payloads]),
        )
        creds = self.publish_credentials()
        if creds is not None:
            request.credentials.CopyFrom(creds)
        await self._publisher.Publish(request, timeout=60)

    @asynccontextmanager
    async def _subscription(self, on_payload: Callable[[bytes], None]) -> AsyncIterator[None]:
        stub = gateway_pb2_grpc.GatewayStub(self._channel(self.subscribe_addr))
        outbox: asyncio.Queue[gateway_pb2.SubscribeRequest | None] = asyncio.Queue()
        opening = gateway_pb2.SubscriptionOpen(
            topic=self.topic,
            start=gateway_pb2.StartPosition(kind=gateway_pb2.StartPosition.EARLIEST),
            credits=self.window,
        )
        creds = self.subscribe_credentials()
        if creds is not None:
            opening.credentials.CopyFrom(creds)
        await outbox.put(gateway_pb2.SubscribeRequest(open=opening))

        async def requests() -> AsyncIterator[gateway_pb2.SubscribeRequest]:
            while (item := await outbox.get()) is not None:
                yield item

        call = stub.Subscribe(requests())
        first = await asyncio.wait_for(call.read(), timeout=30)
        if first is grpc.aio.EOF or first.WhichOneof("kind") != "subscribed":
            raise RuntimeError(f"Subscribe did not answer with subscribed: {first!r}")

        async def pump() -> None:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    return
                deliveries = response.batch.deliveries
                for delivery in deliveries:
                    on_payload(delivery.event.binary_data)
                offsets = [d.offset for d in deliveries]
                await outbox.put(gateway_pb2.SubscribeRequest(ack=gateway_pb2.Ack(offsets=offsets)))
                await outbox.put(
                    gateway_pb2.SubscribeRequest(credit=gateway_pb2.Credit(credits=len(deliveries)))
                )

        reader = asyncio.create_task(pump())
        try:
            yield
        finally:
            await outbox.put(None)
            call.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                async with asyncio.timeout(10):
                    await reader

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
    publish_credentials: Callable[[], gateway_pb2.Credentials | None] = lambda: None,
    subscribe_credentials: Callable[[], gateway_pb2.Credentials | None] = lambda: None,
    topic: str | None = None,
) -> AsyncIterator[MeshgateTarget]:
    target = MeshgateTarget(
        publish_addr=publish_addr,
        subscribe_addr=subscribe_addr,
        topic=topic or new_topic(),
        window=window,
        publish_credentials=publish_credentials,
        subscribe_credentials=subscribe_credentials,
    )
    try:
        yield target
    finally:
        await target.aclose()
