"""`GatewayClient`: the Python client API over a grpc.aio channel (CLI, bench and demo use it).

    async with GatewayClient("127.0.0.1:7000") as gw:
        result = await gw.publish("orders", CloudEvent({"type": "t", "source": "/s"}, {"n": 1}))
        async with gw.subscribe("orders", group="billing", credits=100) as sub:
            async for offset, event in sub:
                ...  # acked when you ask for the next one (auto_ack=True)

Flow control: the client grants `credits` up front and tops the window up as the caller
consumes, so the server never holds more than `credits` unconsumed events for this stream.
Acks are batched and sent before the client waits on the network. With `auto_ack=False` call
`await sub.ack(offset)`; unacked events are redelivered after the gateway's ack timeout.
`sub.deliveries()` iterates the raw `Delivery` messages instead (same credits and acks, no
CloudEvent decoding) for callers that only pass bytes on.

Errors: RPC failures raise `grpc.aio.AioRpcError` (status code + one-line details).

An event the client cannot decode (not a valid CloudEvent, e.g. stored before the gateway
validated at the door) never raises out of the iterator: the subscription acknowledges it (so
a durable group is never wedged on it), skips it, and reports it as an `Undecodable` (offset,
one-line reason, the raw protobuf bytes) to `on_undecodable=` (default: one WARNING log line).

Imports: only `eventmodel`, `proto` and, when signing in, `policy` (the sign-in library).

Sign-in: pass `signer=` (an eth-account LocalAccount) and the client signs in with
Sign-In with Ethereum (GetNonce + SignIn) before its first call, then sends the session
token, signing in again shortly before the session expires. The proof's scope (EIP-4361
resources) is explicit: it lists `signin_topics` plus every topic this client has published
to or subscribed to; a call on a topic outside the current session signs in again with the
topic added. `signin_topics=[ALL_TOPICS]` (`policy.signin.ALL_TOPICS`, "*") asks for a
session valid on every topic.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Protocol

import grpc
from cloudevents.core.v1.event import CloudEvent

from eventmodel import filter_codec, sdk
from eventmodel.errors import UndecodableEvent
from eventmodel.filters import Filter
from meshgate.client.positions import StartSpec, start_position
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc

log = logging.getLogger(__name__)

ACK_BATCH = 128
SESSION_RENEW_MARGIN = 30.0  # s before a session's expiry, sign in again


@dataclass(frozen=True, slots=True)
class PublishResult:
    offset: int
    duplicate: bool


class Received(NamedTuple):
    offset: int
    event: CloudEvent


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A delivered event no CloudEvent could be made of; it was acked and skipped."""

    offset: int
    reason: str
    raw: bytes


def log_undecodable(bad: Undecodable) -> None:
    log.warning("skipped undecodable event at offset %d: %s", bad.offset, bad.reason)


class CredentialsLike(Protocol):
    """What a caller may pass as `credentials=` (e.g. gateway.access.Credentials)."""

    @property
    def message(self) -> str | None: ...
    @property
    def signature(self) -> bytes | None: ...
    @property
    def session_token(self) -> str | None: ...


Credentials = gateway_pb2.Credentials | CredentialsLike


def _credentials_pb(creds: Credentials | None) -> gateway_pb2.Credentials | None:
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
    ) -> None:
        self._stub = stub
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
            creds = _credentials_pb(await self._credentials())
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
            try:
                event = sdk.from_pb(delivery.event)
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


class GatewayClient:
    """Async context manager over one channel to a gateway's client API."""

    def __init__(
        self,
        target: str,
        *,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        signer: Any | None = None,
        signin_topics: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.credentials = credentials
        self.timeout = timeout
        self.signer = signer
        self.signin_topics = tuple(signin_topics)
        self.session_expires_at: float | None = None
        self._scope: set[str] = set(signin_topics)  # what the next sign-in lists
        self._session_scope: frozenset[str] = frozenset()  # what the current session lists
        self._channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        self.stub = gateway_pb2_grpc.GatewayStub(self._channel)

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._channel.close()

    async def sign_in(self) -> Credentials:
        """Sign in as `signer` (GetNonce + SignIn); later calls send the session token."""
        if self.signer is None:
            raise ValueError("sign_in needs a signer")
        from policy.identity import Challenge  # the sign-in library only when signing in
        from policy.signin import sign_in

        nonce = await self.stub.GetNonce(gateway_pb2.GetNonceRequest(), timeout=self.timeout)
        challenge = Challenge(
            nonce.nonce,
            nonce.domain,
            nonce.uri,
            nonce.chain_id,
            nonce.expires_at.seconds + nonce.expires_at.nanos / 1e9,
        )
        scope = frozenset(self._scope)
        proof = sign_in(self.signer, challenge, scope, time.time())
        request = gateway_pb2.SignInRequest(
            proof=gateway_pb2.SignInProof(message=proof.message, signature=proof.signature)
        )
        response = await self.stub.SignIn(request, timeout=self.timeout)
        self.credentials = gateway_pb2.Credentials(session_token=response.session_token)
        self.session_expires_at = response.expires_at.seconds + response.expires_at.nanos / 1e9
        self._session_scope = scope
        return self.credentials

    async def _current_credentials(self, topic: str | None = None) -> Credentials | None:
        """Credentials for a call on `topic`: signs in (again) when the session is missing,
        near its expiry, or does not list `topic`."""
        if self.signer is None:
            return self.credentials
        from policy.signin import ALL_TOPICS

        if topic is not None:
            self._scope.add(topic)
        covered = ALL_TOPICS in self._session_scope or topic in self._session_scope
        if (
            self.credentials is None
            or self.session_expires_at is None
            or time.time() > self.session_expires_at - SESSION_RENEW_MARGIN
            or (topic is not None and not covered)
        ):
            return await self.sign_in()  # this call's own token, even if another signs in too
        return self.credentials

    async def wait_ready(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await self._channel.channel_ready()

    async def publish(self, topic: str, event: CloudEvent) -> PublishResult:
        return (await self.publish_batch(topic, [event]))[0]

    async def publish_batch(self, topic: str, batch: Iterable[CloudEvent]) -> list[PublishResult]:
        """Publish all-or-nothing; answers once every event is durable."""
        return await self.publish_pb(topic, [sdk.to_pb(e) for e in batch])

    async def publish_pb(
        self, topic: str, pbs: Sequence[cloudevents_pb2.CloudEvent]
    ) -> list[PublishResult]:
        request = gateway_pb2.PublishRequest(
            topic=topic, batch=cloudevents_pb2.CloudEventBatch(events=pbs)
        )
        creds = _credentials_pb(await self._current_credentials(topic))
        if creds is not None:
            request.credentials.CopyFrom(creds)
        response = await self.stub.Publish(request, timeout=self.timeout)
        return [PublishResult(r.offset, r.duplicate) for r in response.results]

    def subscribe(
        self,
        topic: str,
        *,
        group: str | None = None,
        start: StartSpec = "earliest",
        filters: Sequence[Filter] = (),
        credits: int = 256,
        auto_ack: bool = True,
        on_undecodable: Callable[[Undecodable], None] = log_undecodable,
    ) -> Subscription:
        """A Subscription (iterate it, or `async with` it to open the stream eagerly).

        `start`: see meshgate/client/positions.py (ValueError for an unknown form)."""
        open_pb = gateway_pb2.SubscriptionOpen(
            topic=topic,
            start=start_position(start),
            filters=filter_codec.filters_to_pb(filters),
            group=group or "",
            credits=credits,
        )
        return Subscription(
            self.stub,
            open_pb,
            auto_ack=auto_ack,
            credentials=functools.partial(self._current_credentials, topic),
            on_undecodable=on_undecodable,
        )

    async def topics(self) -> list[gateway_pb2.TopicInfo]:
        response = await self.stub.ListTopics(gateway_pb2.ListTopicsRequest(), timeout=self.timeout)
        return list(response.topics)

    async def topic(self, name: str) -> gateway_pb2.TopicInfo:
        request = gateway_pb2.GetTopicRequest(name=name)
        return await self.stub.GetTopic(request, timeout=self.timeout)
