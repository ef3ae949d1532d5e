"""PublishStream: many publishes on one bidirectional stream, coalesced into store appends.

A client's concurrent one-event publishes cost one gRPC unary call each (~300 us of CPU) and
one store job each; on a stream they cost one message each and share appends (issue 13).

Theory of operation (one `PublishStreamSession` per stream, its tasks in one TaskGroup):

- The reader takes one request at a time, and only while fewer than `max_in_flight` requests
  are read but not yet answered on the wire: a full window stops reading, so the client's
  writes block on gRPC flow control (backpressure). Each request passes the same checks as
  a unary Publish (gateway/publish_door.py), in arrival order. Credentials: a request that
  carries them replaces the stream's (the first request must, on a registry gateway; a
  session still expires, and every request is checked against it); a request without them
  is judged as the stream's latest credentials, or as a call with none before any arrived.
- Each request then joins its topic's lane: refused ones carry their error, admitted ones
  their staged events. A lane runs one append at a time: it takes the leading requests (at
  least one, then while `take_group`'s bounds hold) and appends their events in ONE
  `store.append`. There is no linger: the first request of an idle lane is appended at once,
  and the requests that arrive during an append form the next group (group commit).
- Rule (persist before ack): a request is answered only after the append holding its events
  returned, i.e. once durable; then, in lane order, every request of the group is answered
  (results, or the status code and message the unary call gives, from gateway/status.py).
  A failed merged append stored nothing (appends are all or nothing), so its requests are
  appended again one by one: each gets exactly the answer it would have got alone.
- Answers per topic follow request order, and so do offsets; across topics there is no order.

Ending: the client half-closes -> every open request is answered, then OK. A request the
stream cannot answer (malformed message, an id already open) -> the open requests are
answered, then the stream ends with that error (INVALID_ARGUMENT). The gateway shuts down
(`closing`) -> reading stops, the open requests are answered, then UNAVAILABLE. The client
cancels -> everything stops; an append already handed to the store may still commit, unanswered
(publishes are idempotent by (source, id): retrying is safe), and nothing not durable was
ever answered.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import grpc

from eventmodel import event_spans
from gateway import wire
from gateway.access import Identity
from gateway.errors import GatewayClosing, InvalidRequest
from gateway.publish_door import PublishDoor
from gateway.status import answer_for
from gateway.store import AppendResult, EventStore, NewEvent
from proto import gateway_pb2

# Requests read and not yet answered, per stream. The client library keeps fewer in flight
# unless its caller asks for more; 256 one-KiB publishes is a quarter MiB held per stream.
MAX_IN_FLIGHT = 256
# One coalesced append: bounds how long one commit holds the store's writer.
MAX_GROUP_EVENTS = 1024
MAX_GROUP_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class Pending:
    """One request between its read and its answer."""

    id: int
    started: float  # time.perf_counter() when read (the publish latency metric)
    staged: list[NewEvent] | None = None  # None: refused before the store
    error: BaseException | None = None
    results: list[AppendResult] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(e.payload) for e in self.staged or ())


def take_group(
    lane: collections.deque[Pending],
    *,
    max_events: int = MAX_GROUP_EVENTS,
    max_bytes: int = MAX_GROUP_BYTES,
) -> list[Pending]:
    """Pop the requests of the lane's next append: the first always, then each next one
    while the group's events and bytes stay within the bounds (refused ones cost nothing)."""
    group = [lane.popleft()]
    events = len(group[0].staged or ())
    size = group[0].size
    while lane:
        nxt = lane[0]
        more, extra = len(nxt.staged or ()), nxt.size
        if events + more > max_events or size + extra > max_bytes:
            break
        group.append(lane.popleft())
        events, size = events + more, size + extra
    return group


def answer(pending: Pending, writer: str | None = None) -> gateway_pb2.PublishStreamResponse:
    """The response for one settled request (results and the topic's writer hint, or its
    error's status)."""
    if pending.error is not None:
        code, message = answer_for(pending.error)
        return gateway_pb2.PublishStreamResponse(id=pending.id, code=code.value[0], message=message)
    return gateway_pb2.PublishStreamResponse(
        id=pending.id,
        results=[
            gateway_pb2.PublishResult(offset=r.offset, duplicate=r.duplicate)
            for r in pending.results
        ],
        writer=writer or "",
    )


class PublishStreamSession:
    """One PublishStream call (see the module docstring). `run` returns when the stream is
    done, or raises the error it ends with."""

    def __init__(
        self,
        door: PublishDoor,
        store: EventStore,
        region: str,
        closing: asyncio.Event,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._door = door
        self._store = store
        self._region = region
        self._closing = closing
        self._slots = asyncio.Semaphore(max_in_flight)
        self._lanes: dict[str, collections.deque[Pending]] = {}
        self._open: set[int] = set()  # ids queued in a lane, not yet answered
        self._answers: asyncio.Queue[gateway_pb2.PublishStreamResponse | None] = asyncio.Queue()
        self._identity: Identity | None = None
        self._auth_error: Exception | None = None
        self._reading = True
        self._failure: Exception | None = None

    async def run(
        self,
        requests: AsyncIterator[gateway_pb2.PublishStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        # Headers first: the client writes once it has them (meshgate/client/publish_stream.py)
        await context.send_initial_metadata(())
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(self._read(requests, tg))
            watcher = tg.create_task(self._stop_reading_on_close(reader))
            try:
                while (response := await self._answers.get()) is not None:
                    await context.write(response)
                    self._slots.release()
            finally:
                watcher.cancel()
                reader.cancel()
        if self._failure is not None:
            raise self._failure

    # -- reading --------------------------------------------------------------------------

    async def _stop_reading_on_close(self, reader: asyncio.Task[None]) -> None:
        await self._closing.wait()
        if not reader.done():
            self._failure = GatewayClosing("gateway is shutting down; publish again elsewhere")
            reader.cancel()

    async def _read(
        self,
        requests: AsyncIterator[gateway_pb2.PublishStreamRequest],
        tg: asyncio.TaskGroup,
    ) -> None:
        try:
            stream = aiter(requests)
            while True:
                await self._slots.acquire()  # a full window stops reading: backpressure
                request = await anext(stream, None)
                if request is None:
                    return
                if request.id in self._open:
                    raise InvalidRequest(f"request id {request.id} is already open")
                pending = await self._admit(request)
                self._enqueue(request.topic, pending, tg)
        except Exception as exc:  # the stream's end (malformed message, reused id)
            self._failure = exc
        finally:
            self._reading = False
            self._end_if_done()

    async def _admit(self, request: gateway_pb2.PublishStreamRequest) -> Pending:
        pending = Pending(request.id, time.perf_counter())
        if request.HasField("credentials"):
            await self._authenticate(request.credentials)
        try:
            _topic, pending.staged = await self._door.admit(
                request.topic, request.batch.events, self._caller
            )
        except Exception as exc:
            pending.error = exc
        return pending

    async def _authenticate(self, pb: gateway_pb2.Credentials) -> None:
        """New credentials replace the stream's; if they fail, requests are refused with
        that error (after the checks before it, as a unary call) until others succeed."""
        self._identity = None
        self._auth_error = None
        try:
            self._identity = await self._door.access.authenticate(
                wire.credentials_from_pb(pb, True)
            )
        except Exception as exc:
            self._auth_error = exc

    async def _caller(self) -> Identity:
        if self._auth_error is not None:
            raise self._auth_error.with_traceback(None)  # raised again per request: no growth
        if self._identity is not None:
            return self._identity
        return await self._door.access.authenticate(None)  # as a call without credentials

    # -- lanes ------------------------------------------------------------------------------

    def _enqueue(self, topic: str, pending: Pending, tg: asyncio.TaskGroup) -> None:
        self._open.add(pending.id)
        lane = self._lanes.get(topic)
        if lane is None:
            lane = self._lanes[topic] = collections.deque()
            tg.create_task(self._run_lane(topic, lane))
        lane.append(pending)

    async def _run_lane(self, topic: str, lane: collections.deque[Pending]) -> None:
        try:
            while lane:
                group = take_group(lane)
                await self._append([p for p in group if p.staged is not None], topic)
                writer = self._store.writer_of(topic)  # a region of replicas (proto: writer)
                for pending in group:  # persist before ack: every append above returned
                    if pending.error is None:
                        self._door.count(topic, pending.results, pending.started)
                        if event_spans.ON:  # issue 16
                            event_spans.published(
                                topic, pending.staged or (), pending.results, pending.started
                            )
                    self._open.discard(pending.id)
                    self._answers.put_nowait(answer(pending, writer))
        finally:
            del self._lanes[topic]
            self._end_if_done()

    async def _append(self, admitted: Sequence[Pending], topic: str) -> None:
        """Append the group's events as one write; on failure, each request on its own."""
        if not admitted:
            return
        events = [e for p in admitted for e in p.staged or ()]
        try:
            results = await self._store.append(topic, events, self._region)
        except Exception as exc:
            if len(admitted) == 1:
                admitted[0].error = exc
                return
            for pending in admitted:  # nothing of the failed write is stored
                await self._append([pending], topic)
            return
        start = 0
        for pending in admitted:
            end = start + len(pending.staged or ())
            pending.results = results[start:end]
            start = end

    def _end_if_done(self) -> None:
        if not self._reading and not self._open and not self._lanes:
            with contextlib.suppress(asyncio.QueueFull):
                self._answers.put_nowait(None)
