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

Publishing: `publish`, `publish_batch` and `publish_pb` each answer once their events are
durable, all or nothing per call, idempotent by (source, id). Concurrent calls share one
PublishStream (issue 13; meshgate/client/publish_stream.py), opened at the first call: the
gateway coalesces them into shared appends, and each call still gets its own answer, or the
error the unary Publish would have raised. When the stream fails (a gateway restart, the
network) the calls waiting on it fail with that error and the next call opens a new stream;
an unanswered publish may have been stored, so calling again is safe. A gateway without
PublishStream (UNIMPLEMENTED) is published to with one Publish call each, as is every call
with `publish_stream=False`.

Errors: RPC failures raise `grpc.aio.AioRpcError` (status code + one-line details).

An event the client cannot decode (not a valid CloudEvent, e.g. stored before the gateway
validated at the door) never raises out of the iterator: the subscription acknowledges it (so
a durable group is never wedged on it), skips it, and reports it as an `Undecodable` (offset,
one-line reason, the raw protobuf bytes) to `on_undecodable=` (default: one WARNING log line).

Publisher provenance (issue 11): with a `signer` on a registry gateway every publish call is
signed (one signature per call, for the chain id and registry GetNonce names). Subscriptions
verify by default (`verify=True`; rules in meshgate/client/provenance.py, `chain=` adds the
on-chain right): an event that fails is acked, skipped and reported to `on_undecodable=` like
an undecodable one; `Received.publisher` names the verified signer.

Encrypted topics (issue 12; meshgate/client/encryption.py): with a `chain`, a publish to an
encrypted topic is sealed under the chain's current epoch key before it is signed, and a
subscription opens its events transparently; key sets come from the gateway (GetKeySets) and
are each checked against the chain; the client's key is derived from its signer's Ethereum
key. Without a chain, a publish to an encrypted topic raises `EncryptionUnavailable` and sends
nothing. An event that does not open (no key for its epoch after one refetch, tampered, wrong
epoch, plaintext) is acked, skipped and reported to `on_undecodable=`.

Schemas (issue 16; meshgate/client/schemas.py): an event whose type has accepted schema
versions on the topic gets `dataschema` (the newest accepted version) when it has none and is
validated before it is sealed and signed; a mismatch raises DataInvalid and sends nothing.

Imports: only `eventmodel`, `proto`, when signing in `policy` (the sign-in library), and
with a `chain` `ledger` (meshgate/client/provenance.py); `policy` and `ledger` also once a
topic is encrypted.

Sign-in: pass `signer=` (an eth-account LocalAccount) and the client signs in with
Sign-In with Ethereum (GetNonce + SignIn) before its first call, then sends the session
token, signing in again shortly before the session expires. The proof's scope (EIP-4361
resources) is explicit: it lists `signin_topics` plus every topic this client has published
to or subscribed to; a call on a topic outside the current session signs in again with the
topic added. `signin_topics=[ALL_TOPICS]` (`policy.signin.ALL_TOPICS`, "*") asks for a
session valid on every topic. The sign-in also names the gateway's region (learnt once from
ListPeers) as `meshgate://region/<r>`: it is then the reader's interest proof, which the
gateway forwards so other regions route the topic here only for a reader they see granted;
signing in again renews it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

import grpc
from cloudevents.core.v1.event import CloudEvent

from eventmodel import event_spans, filter_codec, provenance, sdk
from eventmodel.filters import Filter
from meshgate.client.encryption import TopicEncryption
from meshgate.client.positions import StartSpec, start_position
from meshgate.client.provenance import Chain, EventCheck
from meshgate.client.publish_stream import (
    PublishStreams,
    StreamUnsupported,
    WriterHints,
    note_writer,
)
from meshgate.client.results import PublishResult, Undecodable, log_undecodable
from meshgate.client.schemas import ClientSchemas
from meshgate.client.subscription import Credentials, Subscription, credentials_pb
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc

log = logging.getLogger(__name__)

SESSION_RENEW_MARGIN = 30.0  # s before a session's expiry, sign in again


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
        chain: Chain | None = None,
        publisher: Any | None = None,
        publish_stream: bool = True,
    ) -> None:
        self.target = target
        self.chain = chain
        self.publisher = publisher  # signs published events (default: signer)
        self.binding: provenance.Binding | None = None  # what we sign for (from GetNonce)
        self._check = EventCheck(chain)  # shared by this client's subscriptions (caches)
        self._encryption = TopicEncryption(  # encrypted topics (meshgate/client/encryption.py)
            chain=chain, fetch=self._held_key_sets, gateway_says_encrypted=self._says_encrypted
        )
        self._schemas = ClientSchemas(self.schemas)  # dataschema + validation (issue 16)
        self.credentials = credentials
        self.timeout = timeout
        self.signer = signer
        self.signin_topics = tuple(signin_topics)
        self.session_expires_at: float | None = None
        self.region: str | None = None  # the gateway's region, learnt at the first sign-in
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
        # topic -> the replica that writes it, as this gateway's last answer for it said (a
        # region of replicas; meshgate/client/region_client.py follows them)
        self.writer_hints: WriterHints = {}
        self._streams = PublishStreams(self.stub, self.writer_hints) if publish_stream else None

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
        if self._streams is not None:
            await self._streams.aclose()
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
        if nonce.registry:
            self.binding = provenance.Binding.of(nonce.chain_id, nonce.registry)
        scope = frozenset(self._scope)
        if self.region is None:  # the sign-in names it: the gateway forwards it as our
            peers = await self.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=self.timeout)
            self.region = peers.region  # interest proof to other regions (issue 11)
        regions = [self.region] if self.region else []
        proof = sign_in(self.signer, challenge, scope, time.time(), regions=regions)
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

    async def _binding(self) -> provenance.Binding | None:
        """What to sign for: set at sign-in, else asked once (None: an open gateway)."""
        if self.binding is None and self.signer is None:
            try:
                nonce = await self.stub.GetNonce(
                    gateway_pb2.GetNonceRequest(), timeout=self.timeout
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:  # open: nothing to sign
                    raise
                return None
            if nonce.registry:
                self.binding = provenance.Binding.of(nonce.chain_id, nonce.registry)
        return self.binding

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
        """Publish protobuf events (copied, never changed); see the module docstring."""
        creds = credentials_pb(await self._current_credentials(topic))
        batch = await self._outgoing(topic, pbs)
        if self._streams is not None:
            try:
                return await self._streams.publish(topic, batch, creds, self.timeout)
            except StreamUnsupported:
                self._streams = None  # a gateway from before PublishStream: unary from now on
        request = gateway_pb2.PublishRequest(topic=topic, batch=batch)
        if creds is not None:
            request.credentials.CopyFrom(creds)
        response = await self.stub.Publish(request, timeout=self.timeout)
        note_writer(self.writer_hints, topic, response.writer)
        return [PublishResult(r.offset, r.duplicate) for r in response.results]

    async def _outgoing(
        self, topic: str, pbs: Sequence[cloudevents_pb2.CloudEvent]
    ) -> cloudevents_pb2.CloudEventBatch:
        """The one place a call's events are finalised, exactly as they will be sent: every
        change to an event (sealing, attributes set by the client) goes before the signature,
        which covers every attribute and the data. Signed per call, whichever RPC sends it."""
        pbs = await self._schemas.prepare(topic, pbs)  # issue 16: before sealing and signing
        pbs = await self._encryption.seal(topic, pbs, self.publisher or self.signer)  # issue 12
        batch = cloudevents_pb2.CloudEventBatch(events=pbs)  # copies: the caller's stay as given
        if event_spans.ON:  # issue 16: the trace context goes in before the signature
            event_spans.create(topic, batch.events)
        key = self.publisher or self.signer
        if key is not None and pbs and await self._binding() is not None:
            assert self.binding is not None
            provenance.sign_events(batch.events, topic=topic, binding=self.binding, signer=key)
        return batch

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
        verify: bool = True,
    ) -> Subscription:
        """A Subscription (iterate it, or `async with` it to open the stream eagerly).

        `verify`: check publisher signatures (and, with the client's `chain`, rights): see the
        module docstring; failures go to `on_undecodable`.

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
            check=self._check if verify else None,
            opener=functools.partial(self._encryption.open, topic=topic, account=self.signer),
        )

    async def topics(self) -> list[gateway_pb2.TopicInfo]:
        response = await self.stub.ListTopics(gateway_pb2.ListTopicsRequest(), timeout=self.timeout)
        return list(response.topics)

    async def topic(self, name: str) -> gateway_pb2.TopicInfo:
        request = gateway_pb2.GetTopicRequest(name=name)
        return await self.stub.GetTopic(request, timeout=self.timeout)

    async def schemas(self, topic: str, event_type: str = "") -> gateway_pb2.ListSchemasResponse:
        """The topic's schema versions as the gateway's chain view has them (issue 16)."""
        request = gateway_pb2.ListSchemasRequest(topic=topic, type=event_type)
        return await self.stub.ListSchemas(request, timeout=self.timeout)

    async def key_sets(self, topic: str, from_epoch: int = 0) -> gateway_pb2.GetKeySetsResponse:
        """The key sets the gateway holds for `topic` from `from_epoch` on, as it holds them:
        unverified (check each against the chain: policy/key_sets.py `verify`)."""
        request = gateway_pb2.GetKeySetsRequest(topic=topic, from_epoch=from_epoch)
        return await self.stub.GetKeySets(request, timeout=self.timeout)

    async def _held_key_sets(self, topic: str, from_epoch: int) -> list[gateway_pb2.KeySet]:
        return list((await self.key_sets(topic, from_epoch)).key_sets)

    async def _says_encrypted(self, topic: str) -> bool:
        """Without a chain, only to refuse early: does the gateway know a key epoch of `topic`?
        A gateway that cannot say (an old or open one, an unknown topic) says no."""
        try:
            return (await self.key_sets(topic, 1 << 62)).current_epoch > 0
        except grpc.aio.AioRpcError as exc:
            transient = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            if exc.code() in transient:
                raise
            return False
