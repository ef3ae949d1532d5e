"""`Subscription`: one Subscribe stream (credits, batched acks, decoding, publisher checks).

Made by `GatewayClient.subscribe` (meshgate/client/gateway_client.py, whose docstring describes
flow control, acks, undecodable events and publisher checks); not constructed by applications.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Protocol

import grpc

from eventmodel import sdk
from eventmodel.attributes import PbEvent
from eventmodel.errors import DecryptionError, UndecodableEvent
from meshgate.client.provenance import EventCheck
from meshgate.client.results import Received, Undecodable, log_undecodable
from proto import gateway_pb2, gateway_pb2_grpc

ACK_BATCH = 128


class CredentialsLike(Protocol):
    """What a caller may pass as `credentials=` (e.g. gateway.access.Credentials)."""

    @property
    def message(self) -> str | None: ...
    @property
    def signature(self) -> bytes | None: ...
    @property
    def session_token(self) -> str | None: ...


Credentials = gateway_pb2.Credentials | CredentialsLike


def credentials_pb(creds: Credentials | None) -> gateway_pb2.Credentials | None:
    if creds is None or isinstance(creds, gateway_pb2.Credentials):
        return creds
    if creds.session_token is not None:
        return gateway_pb2.Credentials(session_token=creds.session_token)
    return gateway_pb2.Credentials(
        proof=gateway_pb2.SignInProof(message=creds.message or "", signature=creds.signature or b"")
    )


class Subscription:
    """One Subscribe stream. Async iterator of `Received`; async context manager."""

    def __init__(
        self,
        stub: gateway_pb2_grpc.GatewayStub,
        open_pb: gateway_pb2.SubscriptionOpen,
        *,
        auto_ack: bool,
        credentials: Callable[[], Awaitable[Credentials | None]] | None = None,
        on_undecodable: Callable[[Undecodable], None] = log_undecodable,
        check: EventCheck | None = None,
        opener: Callable[[PbEvent], Awaitable[PbEvent]] | None = None,
    ) -> None:
        self._stub = stub
        self._check = check
        self._opener = opener  # opens an encrypted topic's events (meshgate/client/encryption.py)
        self._on_undecodable = on_undecodable
        self._open = open_pb
        self._credentials = credentials
        self._window = max(1, open_pb.credits)
        self._auto_ack = auto_ack
        self._requests: asyncio.Queue[gateway_pb2.SubscribeRequest | None] = asyncio.Queue()
        self._call: grpc.aio.StreamStreamCall | None = None
        self._buffer: collections.deque[gateway_pb2.Delivery] = collections.deque()
        self._acks: list[int] = []
        self._consumed = 0
        self._last: int | None = None
        self._closed = False
        self.subscribed: gateway_pb2.Subscribed | None = None
        self.last_attempt = 0

    async def _request_stream(self) -> AsyncIterator[gateway_pb2.SubscribeRequest]:
        while True:
            req = await self._requests.get()
            if req is None:
                return
            yield req

    async def start(self) -> gateway_pb2.Subscribed:
        """Open the stream and wait for the server's Subscribed answer."""
        if self.subscribed is not None:
            return self.subscribed
        if self._credentials is not None:
            creds = credentials_pb(await self._credentials())
            if creds is not None:
                self._open.credentials.CopyFrom(creds)
        self._call = self._stub.Subscribe(self._request_stream())
        self._requests.put_nowait(gateway_pb2.SubscribeRequest(open=self._open))
        first = await self._call.read()
        if first is grpc.aio.EOF or first.WhichOneof("kind") != "subscribed":
            await self._call.wait_for_connection()
            raise ConnectionError("subscribe stream ended before it was confirmed")
        self.subscribed = first.subscribed
        return first.subscribed

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Subscription:
        return self

    async def _next_delivery(self) -> gateway_pb2.Delivery | None:
        """The next delivery as received (None at the end of the stream).

        Acks the previous one (auto_ack), flushes acks before waiting on the network or once
        ACK_BATCH are pending, and returns credit once half the window was consumed."""
        await self.start()
        assert self._call is not None
        if self._auto_ack and self._last is not None:
            self._acks.append(self._last)
            self._last = None
        while not self._buffer:
            self._flush_acks()
            resp = await self._call.read()
            if resp is grpc.aio.EOF:
                return None
            if resp.WhichOneof("kind") == "batch":
                self._buffer.extend(resp.batch.deliveries)
        if len(self._acks) >= ACK_BATCH:
            self._flush_acks()
        delivery = self._buffer.popleft()
        self._consumed += 1
        if self._consumed >= max(1, self._window // 2):
            self._requests.put_nowait(
                gateway_pb2.SubscribeRequest(credit=gateway_pb2.Credit(credits=self._consumed))
            )
            self._consumed = 0
        self.last_attempt = delivery.attempt
        return delivery

    async def deliveries(self) -> AsyncIterator[gateway_pb2.Delivery]:
        """The deliveries as the wire carries them, without making CloudEvents of them.

        For callers that need only the protobuf (a relay, the bench: decoding costs tens of
        microseconds an event). Credits and acks work as when iterating the subscription
        (auto_ack acks each delivery when the next is asked for); nothing is validated."""
        while (delivery := await self._next_delivery()) is not None:
            self._last = delivery.offset
            yield delivery

    async def __anext__(self) -> Received:
        while True:
            delivery = await self._next_delivery()
            if delivery is None:
                raise StopAsyncIteration
            why = (
                None
                if self._check is None
                else await self._check.failure(delivery.event, self._open.topic)
            )
            if why is not None:  # acked (never wedges), reported, never delivered as valid
                self._acks.append(delivery.offset)
                raw = delivery.event.SerializeToString()
                self._on_undecodable(Undecodable(delivery.offset, why, raw))
                continue
            pb = delivery.event
            if self._opener is not None:  # after the publisher check: it covers the sealed form
                try:
                    pb = await self._opener(pb)
                except DecryptionError as exc:  # acked, reported, never delivered (never wedges)
                    self._acks.append(delivery.offset)
                    raw = delivery.event.SerializeToString()
                    self._on_undecodable(
                        Undecodable(delivery.offset, f"cannot decrypt: {exc}", raw)
                    )
                    continue
            try:
                event = sdk.from_pb(pb)
            except UndecodableEvent as exc:
                self._acks.append(delivery.offset)  # nobody can ever read it: never wedge
                raw = delivery.event.SerializeToString()
                self._on_undecodable(Undecodable(delivery.offset, str(exc), raw))
                continue
            self._last = delivery.offset
            return Received(delivery.offset, event)

    async def ack(self, *offsets: int) -> None:
        """Acknowledge explicitly (auto_ack=False); sent with the next network wait."""
        self._acks.extend(offsets)
        self._flush_acks()

    def _flush_acks(self) -> None:
        if self._acks:
            self._requests.put_nowait(
                gateway_pb2.SubscribeRequest(ack=gateway_pb2.Ack(offsets=self._acks))
            )
            self._acks = []

    async def aclose(self) -> None:
        """Ack what was consumed (auto_ack), half-close, and wait for the server to finish."""
        if self._closed:
            return
        self._closed = True
        if self._auto_ack and self._last is not None:
            self._acks.append(self._last)
            self._last = None
        self._flush_acks()
        self._requests.put_nowait(None)
        call = self._call
        if call is None or call.done():
            return  # never opened, or already finished / cancelled by a cancelled reader
        try:
            async with asyncio.timeout(10):
                while await call.read() is not grpc.aio.EOF:
                    pass  # drain deliveries the server sent before it saw our close
        except (TimeoutError, grpc.aio.AioRpcError):
            call.cancel()
