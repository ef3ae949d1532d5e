"""The meshgate.v1.Gateway servicer: a thin gRPC shell over store, hub and access control.

Every handler is wrapped by gateway/status.py, which alone turns errors into status codes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from eventmodel import filter_codec
from gateway import events, wire
from gateway.access import AccessControl, Decision, Deny, Identity, Pause
from gateway.config import GatewayConfig
from gateway.errors import AccessDenied, AccessPaused, InvalidRequest, TopicNotFound
from gateway.hub import SubscriptionHub
from gateway.metrics import GatewayMetrics
from gateway.session import SubscriptionSession
from gateway.status import streaming, unary
from gateway.store import EventStore, NewEvent, TopicStats
from gateway.topics import check_topic_name
from proto import gateway_pb2, gateway_pb2_grpc

log = logging.getLogger(__name__)

DEFAULT_CREDITS = 0  # a stream that grants nothing receives nothing until it sends Credit


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
    ) -> None:
        self.config = config
        self.store = store
        self.hub = hub
        self.access = access
        self.metrics = metrics
        self.peers = peers
        self.accepting = True

    async def _identity(self, pb: gateway_pb2.Credentials, present: bool) -> Identity:
        return await self.access.authenticate(wire.credentials_from_pb(pb, present))

    # -- publish ------------------------------------------------------------------

    @unary
    async def Publish(
        self, request: gateway_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.PublishResponse:
        started = time.perf_counter()
        topic = check_topic_name(request.topic)
        if not request.batch.events:
            raise InvalidRequest("publish carries no events")
        identity = await self._identity(request.credentials, request.HasField("credentials"))
        await self.access.wait_current(identity, topic, publish=True)
        _enforce(self.access.check_publish(identity, topic), "publish to", topic)
        staged = []
        for pb in request.batch.events:
            events.validate(pb, self.config.max_event_bytes)
            staged.append(
                NewEvent(pb.source, pb.id, pb.type, pb.SerializeToString(deterministic=True))
            )
        results = await self.store.append(topic, staged, self.config.region)
        fresh = sum(1 for r in results if not r.duplicate)
        self.metrics.events_in.labels(topic).inc(fresh)
        if fresh != len(results):
            self.metrics.duplicates.labels(topic).inc(len(results) - fresh)
        self.metrics.publish_latency.observe(time.perf_counter() - started)
        return gateway_pb2.PublishResponse(
            results=[
                gateway_pb2.PublishResult(offset=r.offset, duplicate=r.duplicate) for r in results
            ]
        )

    # -- subscribe --------------------------------------------------------------------

    @streaming
    async def Subscribe(
        self,
        request_iterator: AsyncIterator[gateway_pb2.SubscribeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[gateway_pb2.SubscribeResponse]:
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
        _enforce(self.access.check_subscribe(identity, topic), "subscribe to", topic, hold=True)
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
                yield gateway_pb2.SubscribeResponse(
                    batch=gateway_pb2.DeliveryBatch(
                        deliveries=[
                            gateway_pb2.Delivery(
                                offset=o.offset,
                                attempt=o.attempt,
                                event=events.PbEvent.FromString(o.payload),
                            )
                            for o in batch
                        ]
                    )
                )
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
            retention=gateway_pb2.RetentionPolicy(
                max_age_seconds=int(retention.max_age_seconds), max_bytes=retention.max_bytes
            ),
        )
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


def _enforce(decision: Decision, action: str, topic: str, *, hold: bool = False) -> None:
    """Deny raises; Pause raises too unless the caller can hold (subscribe)."""
    if isinstance(decision, Deny):
        raise AccessDenied(f"may not {action} topic {topic!r}: {decision.reason}")
    if isinstance(decision, Pause) and not hold:
        raise AccessPaused(f"cannot {action} topic {topic!r} right now: {decision.reason}")
