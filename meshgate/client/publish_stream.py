"""`PublishStreams`: a client's publish calls as requests on one shared PublishStream.

Made by `GatewayClient` (meshgate/client/gateway_client.py, whose docstring describes what a
caller sees); not constructed by applications.

Theory of operation: the stream opens lazily on the first call. Each call queues its batch
(signed, final) with a future; one writer task writes the queue in order, and one reader
task settles the futures from the answers, matched by request id.

- Merging: calls queued while the writer was busy, one after another, to the same topic with
  the same credentials, go as ONE request (`take_calls`: at most `MERGE_MAX_CALLS` calls and
  `MERGE_MAX_BYTES`, so it stays under any gateway's message limit, which is at least
  64 KiB above its event limit). A gRPC message costs the gateway ~100-200 us to read and as
  much to answer, which is what bounds one-event calls; the gateway coalesces requests into
  shared appends on its side too. The answer's results are split back per call, in order.
  A merged request refused (any error code) stored nothing (a request is all or nothing),
  so its calls are sent again one request each: each call gets exactly the answer its own
  unary Publish would have got.
- Credentials: a request carries them only when they differ from the ones this stream last
  sent (the gateway keeps the latest for the requests after it).
- Headers first: the writer waits for the gateway's response headers before its first
  write. A gateway without PublishStream ends the call at once (UNIMPLEMENTED), and a write
  racing that end turns the call's status into INTERNAL.

Failure: when the stream ends (gateway restart, network, shutdown: UNAVAILABLE), every call
still waiting fails with that error, never hangs, and the next call opens a new stream. An
answer that never came may still have been stored: a publish is idempotent by (source, id),
so calling again is safe and the caller's choice. A gateway that does not serve
PublishStream (UNIMPLEMENTED, before issue 13) fails the waiting calls with
`StreamUnsupported`: nothing reached its store, and the client publishes unary from then on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from dataclasses import dataclass

import grpc

from meshgate.client.results import PublishResult
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc

_CODES = {code.value[0]: code for code in grpc.StatusCode}
MERGE_MAX_CALLS = 256
MERGE_MAX_BYTES = 48 * 1024  # under the 64 KiB every gateway allows beyond one event
# What grpc makes the call's status when a write meets a call the gateway just ended (its
# own status, e.g. UNAVAILABLE at shutdown, is overwritten): the stream broke, the calls on
# it fail UNAVAILABLE (retry elsewhere or later), not INTERNAL (a gateway bug).
LOST_STATUS = "Internal error from Core"


class StreamUnsupported(Exception):
    """The gateway does not serve PublishStream; publish with the unary call instead."""


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """An error shaped as the unary call raises it (callers check `.code()`/`.details()`)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


WriterHints = dict[str, str]  # topic -> the writer hint of its last answered publish


def note_writer(hints: WriterHints, topic: str, writer: str) -> None:
    """Keep the writer hint of a publish's answer (proto/gateway.proto); none drops it."""
    if writer:
        hints[topic] = writer
    else:
        hints.pop(topic, None)


@dataclass(slots=True)
class Call:
    """One publish call waiting for its answer."""

    topic: str
    batch: cloudevents_pb2.CloudEventBatch
    creds: gateway_pb2.Credentials | None
    future: asyncio.Future[list[PublishResult]]
    size: int
    alone: bool = False  # sent again on its own after a merged request was refused


def take_calls(queue: collections.deque[Call]) -> list[Call]:
    """Pop the calls of the next request: the first, then each next one of the same topic and
    credentials while the bounds hold (a call sent again alone is never merged)."""
    first = queue.popleft()
    calls, size = [first], first.size
    while queue and not first.alone and len(calls) < MERGE_MAX_CALLS:
        nxt = queue[0]
        if nxt.alone or nxt.topic != first.topic or nxt.creds != first.creds:
            break
        if size + nxt.size > MERGE_MAX_BYTES:
            break
        calls.append(queue.popleft())
        size += nxt.size
    return calls


def merged(calls: list[Call]) -> cloudevents_pb2.CloudEventBatch:
    if len(calls) == 1:
        return calls[0].batch
    return cloudevents_pb2.CloudEventBatch(events=[e for c in calls for e in c.batch.events])


class _Stream:
    """One open PublishStream call and the calls queued on it or waiting for its answers."""

    def __init__(self, stub: gateway_pb2_grpc.GatewayStub, hints: WriterHints) -> None:
        self.hints = hints
        self.queue: collections.deque[Call] = collections.deque()
        self.queued = asyncio.Event()
        self.waiting: dict[int, list[Call]] = {}
        self.sent_credentials: gateway_pb2.Credentials | None = None
        self.ended = False
        self._ids = itertools.count()
        self.call = stub.PublishStream()
        self.writer = asyncio.create_task(self._write(), name="publish-stream-writer")
        self.reader = asyncio.create_task(self._read(), name="publish-stream-reader")

    def enqueue(self, call: Call) -> None:
        self.queue.append(call)
        self.queued.set()

    async def _write(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await self.call.initial_metadata()  # headers first (module docstring)
            while not self.call.done():
                if not self.queue:
                    self.queued.clear()
                    await self.queued.wait()
                    continue
                calls = take_calls(self.queue)
                calls = [c for c in calls if not c.future.done()]  # cancelled: never sent
                if not calls:
                    continue
                request = gateway_pb2.PublishStreamRequest(
                    id=next(self._ids), topic=calls[0].topic, batch=merged(calls)
                )
                creds = calls[0].creds
                if creds is not None and creds != self.sent_credentials:
                    request.credentials.CopyFrom(creds)
                    self.sent_credentials = creds
                self.waiting[request.id] = calls
                await self.call.write(request)  # the reader reports why the call ended

    async def _read(self) -> None:
        failure: BaseException = rpc_error(
            grpc.StatusCode.UNAVAILABLE, "PublishStream ended with publishes unanswered"
        )
        try:
            async for response in self.call:
                self._settle(response)
        except grpc.aio.AioRpcError as exc:
            failure = exc
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                failure = StreamUnsupported(exc.details() or "PublishStream not served")
            elif exc.code() == grpc.StatusCode.INTERNAL and exc.details() == LOST_STATUS:
                failure = rpc_error(  # see LOST_STATUS
                    grpc.StatusCode.UNAVAILABLE, "PublishStream ended while a request was sent"
                )
        except asyncio.CancelledError:
            failure = rpc_error(grpc.StatusCode.CANCELLED, "the client closed its PublishStream")
            raise
        finally:
            self.ended = True
            self.writer.cancel()
            left = [c for calls in self.waiting.values() for c in calls] + list(self.queue)
            for call in left:
                if not call.future.done():
                    call.future.set_exception(failure)
            self.waiting.clear()
            self.queue.clear()

    def _settle(self, response: gateway_pb2.PublishStreamResponse) -> None:
        calls = self.waiting.pop(response.id, None)
        if calls is None:
            return
        if response.code and len(calls) > 1:  # nothing of it is stored: each on its own
            for call in reversed(calls):
                call.alone = True
                self.queue.appendleft(call)
            self.queued.set()
            return
        if response.code:
            code = _CODES.get(response.code, grpc.StatusCode.UNKNOWN)
            if not calls[0].future.done():
                calls[0].future.set_exception(rpc_error(code, response.message))
            return
        note_writer(self.hints, calls[0].topic, response.writer)
        start = 0
        for call in calls:
            end = start + len(call.batch.events)
            if not call.future.done():  # timed out or cancelled meanwhile
                call.future.set_result(
                    [PublishResult(r.offset, r.duplicate) for r in response.results[start:end]]
                )
            start = end

    async def aclose(self) -> None:
        self.call.cancel()
        await asyncio.wait({self.reader, self.writer})  # never raises their errors


class PublishStreams:
    """The client's one shared stream, reopened after it fails."""

    def __init__(self, stub: gateway_pb2_grpc.GatewayStub, hints: WriterHints) -> None:
        self._stub = stub
        self._hints = hints
        self._stream: _Stream | None = None

    async def publish(
        self,
        topic: str,
        batch: cloudevents_pb2.CloudEventBatch,
        creds: gateway_pb2.Credentials | None,
        timeout: float | None,
    ) -> list[PublishResult]:
        """One publish, answered once durable. Raises AioRpcError (the unary call's codes;
        DEADLINE_EXCEEDED after `timeout`) or StreamUnsupported."""
        if self._stream is None or self._stream.ended:
            self._stream = _Stream(self._stub, self._hints)
        future: asyncio.Future[list[PublishResult]] = asyncio.get_running_loop().create_future()
        self._stream.enqueue(Call(topic, batch, creds, future, batch.ByteSize()))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise rpc_error(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"publish not answered within {timeout}s"
            ) from None

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.aclose()
