"""`PublishStreams`: a client's publish calls as requests on one shared PublishStream.

Made by `GatewayClient` (meshgate/client/gateway_client.py, whose docstring describes what a
caller sees); not constructed by applications.

Theory of operation: the stream opens lazily on the first call. Each call takes the next
request id, registers a future under it and queues its request; grpc writes the queue in
order, and one reader task settles each future from the answer carrying its id (results,
or an `AioRpcError` with the code and message the unary Publish would have given). A
request carries credentials only when they differ from the ones this stream last sent
(the gateway keeps the latest for the requests after it).

Failure: when the stream ends (gateway restart, network, shutdown: UNAVAILABLE), every call
still waiting fails with that error, never hangs, and the next call opens a new stream. An
answer that never came may still have been stored: a publish is idempotent by (source, id),
so calling again is safe and the caller's choice. A gateway that does not serve
PublishStream (UNIMPLEMENTED, before issue 13) fails the waiting calls with
`StreamUnsupported`: nothing reached its store, and the client publishes unary from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import grpc

from meshgate.client.results import PublishResult
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc

_CODES = {code.value[0]: code for code in grpc.StatusCode}


class StreamUnsupported(Exception):
    """The gateway does not serve PublishStream; publish with the unary call instead."""


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """An error shaped as the unary call raises it (callers check `.code()`/`.details()`)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class _Stream:
    """One open PublishStream call and the calls waiting on it."""

    def __init__(self, stub: gateway_pb2_grpc.GatewayStub) -> None:
        self.queue: asyncio.Queue[gateway_pb2.PublishStreamRequest | None] = asyncio.Queue()
        self.waiting: dict[int, asyncio.Future[list[PublishResult]]] = {}
        self.sent_credentials: gateway_pb2.Credentials | None = None
        self.ended = False
        self.call = stub.PublishStream()
        self.writer = asyncio.create_task(self._write(), name="publish-stream-writer")
        self.reader = asyncio.create_task(self._read(), name="publish-stream-reader")

    async def _write(self) -> None:
        """Write the queued requests in order, once the gateway has answered the call with
        its headers: a gateway without PublishStream ends the call at once (UNIMPLEMENTED),
        and a first write racing that end would turn its status into INTERNAL."""
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await self.call.initial_metadata()
            while not self.call.done() and (request := await self.queue.get()) is not None:
                await self.call.write(request)  # the reader reports why the call ended

    def send(
        self, request: gateway_pb2.PublishStreamRequest, creds: gateway_pb2.Credentials | None
    ) -> asyncio.Future[list[PublishResult]]:
        if creds is not None and creds != self.sent_credentials:
            request.credentials.CopyFrom(creds)
            self.sent_credentials = creds
        future: asyncio.Future[list[PublishResult]] = asyncio.get_running_loop().create_future()
        self.waiting[request.id] = future
        self.queue.put_nowait(request)
        return future

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
        except asyncio.CancelledError:
            failure = rpc_error(grpc.StatusCode.CANCELLED, "the client closed its PublishStream")
            raise
        finally:
            self.ended = True
            self.writer.cancel()
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(failure)
            self.waiting.clear()

    def _settle(self, response: gateway_pb2.PublishStreamResponse) -> None:
        future = self.waiting.pop(response.id, None)
        if future is None or future.done():  # timed out or cancelled meanwhile
            return
        if response.code:
            code = _CODES.get(response.code, grpc.StatusCode.UNKNOWN)
            future.set_exception(rpc_error(code, response.message))
        else:
            future.set_result([PublishResult(r.offset, r.duplicate) for r in response.results])

    async def aclose(self) -> None:
        self.call.cancel()
        await asyncio.wait({self.reader, self.writer})  # never raises their errors


class PublishStreams:
    """The client's one shared stream, reopened after it fails."""

    def __init__(self, stub: gateway_pb2_grpc.GatewayStub) -> None:
        self._stub = stub
        self._ids = itertools.count()
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
            self._stream = _Stream(self._stub)
        stream = self._stream
        request = gateway_pb2.PublishStreamRequest(id=next(self._ids), topic=topic, batch=batch)
        future = stream.send(request, creds)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise rpc_error(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"publish not answered within {timeout}s"
            ) from None
        finally:
            stream.waiting.pop(request.id, None)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.aclose()
