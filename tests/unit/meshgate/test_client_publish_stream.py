"""GatewayClient.publish over the shared PublishStream, against in-process gRPC servers: a real
gateway (answers, errors as the unary call's), an older gateway (UNIMPLEMENTED: unary), and a
server that breaks the stream (waiting calls fail, never hang; the next call reopens)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from eventmodel import sdk
from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.memory_store import MemoryEventStore
from meshgate.client import GatewayClient
from proto import gateway_pb2, gateway_pb2_grpc
from tests.integration.gateway_helpers import event

pytestmark = pytest.mark.filterwarnings("ignore:gateway runs OPEN")


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    config = GatewayConfig(region="eu", data_dir=tmp_path, host="127.0.0.1", port=0)
    async with Gateway(config, store=MemoryEventStore()) as gw:
        yield gw


async def test_concurrent_publishes_are_answered_each_with_its_own_offset(
    gateway: Gateway,
) -> None:
    async with GatewayClient(gateway.listen) as gw:
        results = await asyncio.gather(*(gw.publish("orders", event(i)) for i in range(300)))
        assert sorted(r.offset for r in results) == list(range(300))
        stored = {e.offset: e.payload for e in await gateway.store.read("orders", 0, 300)}
        for i, result in enumerate(results):  # the answer names the offset of that call's event
            assert sdk.from_bytes(stored[result.offset]).get_id() == str(i)
        again = await asyncio.gather(*(gw.publish("orders", event(i)) for i in (5, 7)))
        assert [(r.offset, r.duplicate) for r in again] == [
            (results[5].offset, True),
            (results[7].offset, True),
        ]
        batch = await gw.publish_batch("orders", [event(i) for i in range(300, 310)])
        assert [r.offset for r in batch] == list(range(300, 310))
    assert (await gateway.store.topic_stats("orders"))[0].event_count == 310


async def test_a_refused_call_raises_what_the_unary_call_raises(gateway: Gateway) -> None:
    bad = sdk.to_pb(event("x"))
    bad.type = ""

    async def refusal(client: GatewayClient, topic: str) -> tuple[grpc.StatusCode, str | None]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.publish_pb(topic, [bad])
        return err.value.code(), err.value.details()

    async with (
        GatewayClient(gateway.listen) as streamed,
        GatewayClient(gateway.listen, publish_stream=False) as unary,
    ):
        calls = [streamed.publish("mixed", event(0)), refusal(streamed, "mixed")]
        first, refused = await asyncio.gather(*calls)
        assert refused == await refusal(unary, "mixed")
        assert refused[0] == grpc.StatusCode.INVALID_ARGUMENT
        assert await refusal(streamed, "no topic") == await refusal(unary, "no topic")
        later = await streamed.publish("mixed", event(1))  # the stream lives on
        assert (first.offset, later.offset) == (0, 1)


class FakeGateway(gateway_pb2_grpc.GatewayServicer):
    async def GetKeySets(self, request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no key sets here")


class OlderGateway(FakeGateway):
    """A gateway from before issue 13: PublishStream answers UNIMPLEMENTED at once."""

    def __init__(self) -> None:
        self.unary_calls = 0

    async def PublishStream(
        self, requests: AsyncIterator[object], context: grpc.aio.ServicerContext
    ) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "PublishStream is not served yet")

    async def Publish(
        self, request: gateway_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.PublishResponse:
        self.unary_calls += 1
        first = 100 * self.unary_calls
        return gateway_pb2.PublishResponse(
            results=[
                gateway_pb2.PublishResult(offset=first + i)
                for i in range(len(request.batch.events))
            ]
        )


class BreakingGateway(FakeGateway):
    """Its first PublishStream reads `hold` requests, then fails UNAVAILABLE; later streams
    answer every request (offset = id)."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.streams = 0
        self.read = asyncio.Event()

    async def PublishStream(
        self,
        requests: AsyncIterator[gateway_pb2.PublishStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[gateway_pb2.PublishStreamResponse]:
        self.streams += 1
        await context.send_initial_metadata(())  # as the gateway does: the client waits for it
        seen = 0
        async for request in requests:
            seen += 1
            if self.streams == 1:
                if seen == self.hold:
                    self.read.set()
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "gateway restarting")
                continue
            result = gateway_pb2.PublishResult(offset=request.id)
            yield gateway_pb2.PublishStreamResponse(id=request.id, results=[result])


async def _serve(servicer: gateway_pb2_grpc.GatewayServicer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    gateway_pb2_grpc.add_GatewayServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_an_older_gateway_is_published_to_unary() -> None:
    servicer = OlderGateway()
    server, target = await _serve(servicer)
    try:
        async with GatewayClient(target) as gw:
            results = await asyncio.gather(*(gw.publish("t", event(i)) for i in range(3)))
            assert sorted(r.offset for r in results) == [100, 200, 300]
            assert (await gw.publish("t", event(9))).offset == 400
        assert servicer.unary_calls == 4
    finally:
        await server.stop(None)


async def test_a_broken_stream_fails_its_waiting_calls_and_the_next_call_reopens() -> None:
    servicer = BreakingGateway(hold=3)
    server, target = await _serve(servicer)
    try:
        async with GatewayClient(target, timeout=10) as gw:
            calls = [asyncio.create_task(gw.publish("t", event(i))) for i in range(3)]
            done, _ = await asyncio.wait(calls, timeout=10)
            assert len(done) == 3  # none hangs
            for call in calls:
                error = call.exception()
                assert isinstance(error, grpc.aio.AioRpcError)
                assert (error.code(), error.details()) == (
                    grpc.StatusCode.UNAVAILABLE,
                    "gateway restarting",
                )
            assert (await gw.publish("t", event(3))).offset == 3  # id 3 on a new stream
        assert servicer.streams == 2
    finally:
        await server.stop(None)


async def test_a_call_not_answered_in_time_raises_deadline_exceeded() -> None:
    servicer = BreakingGateway(hold=10**6)  # reads, never answers
    server, target = await _serve(servicer)
    try:
        async with GatewayClient(target, timeout=0.2) as gw:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await gw.publish("t", event(0))
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        await server.stop(None)
