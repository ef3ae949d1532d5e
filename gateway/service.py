"""The meshgate.v1.Gateway servicer: a thin gRPC shell over store, hub and access control.

Every handler is wrapped by gateway/status.py, which alone turns errors into status codes.

Register with `add_to_server`, not the generated `add_GatewayServicer_to_server`: the generated
handlers decode requests with `FromString` inside grpc, where a DecodeError becomes UNKNOWN (or
INTERNAL on a stream) before any of our code runs. Ours take the raw bytes and decode them in
the handler (`decode_request`), so malformed protobuf answers INVALID_ARGUMENT naming the
message. Message sizes are bounded by the server's options (GatewayConfig.max_message_bytes).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from eventmodel import event_spans, filter_codec
from gateway import key_sets_rpc, schemas_rpc, wire
from gateway.access import AccessControl, Identity, enforce
from gateway.config import GatewayConfig
from gateway.delivery_wire import delivery_batch_response
from gateway.errors import InvalidRequest, TopicNotFound
from gateway.hub import SubscriptionHub
from gateway.key_sets import GatewayKeySets
from gateway.metrics import GatewayMetrics
from gateway.publish_door import PublishDoor
from gateway.publish_stream import PublishStreamSession
from gateway.publishers import PublisherRights
from gateway.session import SubscriptionSession
from gateway.status import streaming, unary
from gateway.store import EventStore, TopicStats
from gateway.store_backend import backend_name
from gateway.topics import check_topic_name
from proto import gateway_pb2, gateway_pb2_grpc

log = logging.getLogger(__name__)

DEFAULT_CREDITS = 0  # a stream that grants nothing receives nothing until it sends Credit
SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"]
M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class PeerView:
    """What ListPeers answers; federation provides it (empty when running alone)."""

    peers: tuple[gateway_pb2.PeerStatus, ...] = ()


class GatewayService(gateway_pb2_grpc.GatewayServicer):
    def __init__(
        self,
        config: GatewayConfig,
        store: EventStore,
        hub: SubscriptionHub,
        access: AccessControl,
        metrics: GatewayMetrics,
        peers: Callable[[], PeerView] = PeerView,
        publishers: PublisherRights | None = None,
        key_sets: GatewayKeySets | None = None,
    ) -> None:
        self.config = config
        self.key_sets = key_sets  # registry gateways: encrypted topics' key sets (issue 12)
        self.publishers = publishers  # registry gateways: events must be publisher-signed
        self.store = store
        self.hub = hub
        self.access = access
        self.metrics = metrics
        self.peers = peers
        self.accepting = True
        self.door = PublishDoor(config, access, metrics, publishers)

    async def _identity(self, pb: gateway_pb2.Credentials, present: bool) -> Identity:
        return await self.access.authenticate(wire.credentials_from_pb(pb, present))

    # -- publish ------------------------------------------------------------------

    @unary
    async def Publish(
        self, request: gateway_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.PublishResponse:
        started = time.perf_counter()
        topic, staged = await self.door.admit(  # the checks, as PublishStream's
            request.topic,
            request.batch.events,
            lambda: self._identity(request.credentials, request.HasField("credentials")),
        )
        results = await self.store.append(topic, staged, self.config.region)
        self.door.count(topic, results, started)
        if event_spans.ON:  # issue 16
            event_spans.published(topic, staged, results, started)
        return gateway_pb2.PublishResponse(
            results=[
                gateway_pb2.PublishResult(offset=r.offset, duplicate=r.duplicate) for r in results
            ],
            writer=self.store.writer_of(topic) or "",  # a region of replicas (proto: writer)
        )

    @unary  # a coroutine: the reader/writer form of a bidirectional stream (context.write)
    async def PublishStream(  # type: ignore[override]  # the stub declares the generator form
        self,
        requests: AsyncIterator[gateway_pb2.PublishStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        session = PublishStreamSession(self.door, self.store, self.config.region, self.hub.closing)
        await session.run(requests, context)

    # -- subscribe --------------------------------------------------------------------

    @streaming
    async def Subscribe(  # type: ignore[override]  # batches go out as framed bytes
        self,
        request_iterator: AsyncIterator[gateway_pb2.SubscribeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[gateway_pb2.SubscribeResponse | bytes]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("kind") != "open":
            raise InvalidRequest("a Subscribe stream must start with open")
        req = first.open
        topic = check_topic_name(req.topic)
        flts = filter_codec.filters_from_pb(req.filters)
        start = wire.start_from_pb(req.start)
        group = req.group or None
        if group is not None:
            check_topic_name(group)  # same character rules keep group names printable
        identity = await self._identity(req.credentials, req.HasField("credentials"))
        # Pause opens the stream with deliveries held: check_delivery fails closed.
        await self.access.wait_current(identity, topic, publish=False)
        enforce(self.access.check_subscribe(identity, topic), "subscribe to", topic, hold=True)
        dispatcher = await self.hub.open(topic, group, flts, start, identity)
        session = SubscriptionSession(
            self.hub,
            self.access,
            identity,
            dispatcher,
            flts,
            req.credits or DEFAULT_CREDITS,
            on_sent=lambda t, n: self.metrics.events_out.labels(t).inc(n),
        )
        reader = asyncio.create_task(self._read_requests(request_iterator, session))
        try:
            yield gateway_pb2.SubscribeResponse(
                subscribed=gateway_pb2.Subscribed(
                    topic=topic,
                    group=group or "",
                    start_offset=dispatcher.state.committed,
                    address=identity.address or "",
                )
            )
            async for batch in session.deliveries():
                if reader.done() and reader.exception() is not None:
                    raise reader.exception()  # type: ignore[misc]
                # the stored bytes framed as a SubscribeResponse: no decode, no re-encode
                yield delivery_batch_response(batch)
            if reader.done() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]
        finally:
            reader.cancel()
            await asyncio.wait({reader})  # never raises the reader's error or cancellation
            async with asyncio.timeout(5):
                await session.close()

    async def _read_requests(
        self,
        request_iterator: AsyncIterator[gateway_pb2.SubscribeRequest],
        session: SubscriptionSession,
    ) -> None:
        try:
            async for req in request_iterator:
                kind = req.WhichOneof("kind")
                if kind == "ack":
                    await session.ack(list(req.ack.offsets))
                elif kind == "credit":
                    session.grant(req.credit.credits)
                else:
                    raise InvalidRequest("open may only be sent once per stream")
        finally:
            session.end()

    # -- topics ---------------------------------------------------------------------------

    def _topic_info(self, stats: TopicStats) -> gateway_pb2.TopicInfo:
        retention = self.config.retention_for(stats.name)
        info = gateway_pb2.TopicInfo(
            name=stats.name,
            first_offset=stats.first_offset,
            next_offset=stats.next_offset,
            event_count=stats.event_count,
            stored_bytes=stats.stored_bytes,
            backend=backend_name(self.store),
            retention=gateway_pb2.RetentionPolicy(
                max_age_seconds=int(retention.max_age_seconds), max_bytes=retention.max_bytes
            ),
        )
        if self.key_sets is not None:  # the chain's word, as this gateway's view has it
            info.encrypted, info.key_epoch = self.key_sets.encryption_of(stats.name)
        for (topic, name), dispatcher in sorted(self.hub.groups().items()):
            if topic == stats.name:
                committed = dispatcher.state.committed
                info.groups.append(
                    gateway_pb2.GroupInfo(
                        name=name,
                        committed_offset=committed,
                        lag=max(0, stats.next_offset - max(committed, stats.first_offset)),
                    )
                )
        return info

    async def _stored_groups_info(self, info: gateway_pb2.TopicInfo) -> None:
        """Groups persisted but not open since this start still show their lag."""
        live = {g.name for g in info.groups}
        for record in await self.store.list_groups():
            if record.topic == info.name and record.group not in live:
                committed = max(record.committed_offset, info.first_offset)
                info.groups.append(
                    gateway_pb2.GroupInfo(
                        name=record.group,
                        committed_offset=record.committed_offset,
                        lag=max(0, info.next_offset - committed),
                    )
                )

    @unary
    async def ListTopics(
        self, request: gateway_pb2.ListTopicsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListTopicsResponse:
        infos = [self._topic_info(s) for s in await self.store.topic_stats()]
        for info in infos:
            await self._stored_groups_info(info)
        return gateway_pb2.ListTopicsResponse(topics=infos)

    @unary
    async def GetTopic(
        self, request: gateway_pb2.GetTopicRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.TopicInfo:
        stats = await self.store.topic_stats(check_topic_name(request.name))
        if not stats:
            raise TopicNotFound(f"no topic {request.name!r}")
        info = self._topic_info(stats[0])
        await self._stored_groups_info(info)
        return info

    # -- key sets of encrypted topics (gateway/key_sets_rpc.py) ------------------------------

    @unary
    async def GetKeySets(
        self, request: gateway_pb2.GetKeySetsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.GetKeySetsResponse:
        return key_sets_rpc.get_key_sets(self.key_sets, request)

    @unary
    async def PutKeySet(
        self, request: gateway_pb2.PutKeySetRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.PutKeySetResponse:
        return await key_sets_rpc.put_key_set(self.key_sets, request)

    # -- schemas (gateway/schemas_rpc.py; issue 16) -------------------------------------------

    @unary
    async def ListSchemas(
        self, request: gateway_pb2.ListSchemasRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListSchemasResponse:
        return schemas_rpc.list_schemas(self.publishers, request)

    # -- identity -----------------------------------------------------------------------------

    @unary
    async def GetNonce(
        self, request: gateway_pb2.GetNonceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.GetNonceResponse:
        challenge = await self.access.get_nonce()
        out = gateway_pb2.GetNonceResponse(
            nonce=challenge.nonce,
            domain=challenge.domain,
            uri=challenge.uri,
            chain_id=challenge.chain_id,
            registry=self.publishers.binding.registry_hex if self.publishers else "",
        )
        out.expires_at.FromDatetime(challenge.expires_at)
        return out

    @unary
    async def SignIn(
        self, request: gateway_pb2.SignInRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.SignInResponse:
        session = await self.access.sign_in(request.proof.message, request.proof.signature)
        out = gateway_pb2.SignInResponse(session_token=session.token, address=session.address)
        out.expires_at.FromDatetime(session.expires_at)
        return out

    @unary
    async def ListPeers(
        self, request: gateway_pb2.ListPeersRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListPeersResponse:
        return gateway_pb2.ListPeersResponse(region=self.config.region, peers=self.peers().peers)


def decode_request(cls: type[M], raw: bytes) -> M:
    """Parse one request message; malformed bytes raise InvalidRequest naming the message."""
    try:
        return cls.FromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise InvalidRequest(f"malformed {cls.DESCRIPTOR.name}: {exc}") from exc


async def _decoded(cls: type[M], raw: AsyncIterator[bytes]) -> AsyncIterator[M]:
    async for item in raw:
        yield decode_request(cls, item)


def _unary_behavior(
    method: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]], cls: type[Message]
) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[Any]]:
    async def behavior(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        try:
            request = decode_request(cls, raw)
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return await method(request, context)

    return behavior


def _stream_behavior(
    method: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]], cls: type[Message]
) -> Callable[[AsyncIterator[bytes], grpc.aio.ServicerContext], AsyncIterator[Any]]:
    async def behavior(
        raw: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        # The handler is wrapped by status.streaming: a malformed message, first or later,
        # raises InvalidRequest inside it and ends the stream with INVALID_ARGUMENT.
        async for response in method(_decoded(cls, raw), context):
            yield response

    return behavior


def _writer_behavior(
    method: Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]], cls: type[Message]
) -> Callable[[AsyncIterator[bytes], grpc.aio.ServicerContext], Awaitable[None]]:
    """A stream handler that answers with `context.write` (so it may run a TaskGroup)."""

    async def behavior(raw: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
        await method(_decoded(cls, raw), context)

    return behavior


def _serialized(response: Message | bytes) -> bytes:
    """A response message's bytes; bytes pass as they are (an answer framed around stored
    events, gateway/delivery_wire.py)."""
    return response if isinstance(response, bytes) else response.SerializeToString()


def add_to_server(service: GatewayService, server: grpc.aio.Server) -> None:
    """Register every Gateway RPC with handlers whose request deserializer cannot fail."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in SERVICE.methods:
        cls = getattr(gateway_pb2, method.input_type.name)
        impl = getattr(service, method.name)
        if method.client_streaming and method.server_streaming:
            shape = _writer_behavior if inspect.iscoroutinefunction(impl) else _stream_behavior
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                shape(impl, cls), response_serializer=_serialized
            )
        elif not method.client_streaming and not method.server_streaming:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary_behavior(impl, cls), response_serializer=_serialized
            )
        else:  # the API has none; refuse to start rather than serve it wrong
            raise TypeError(f"no handler shape for {method.full_name}")
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
