"""GatewayClient.publish over the shared PublishStream, against in-process gRPC servers: a real
gateway (answers, errors as the unary call's), an older gateway (UNIMPLEMENTED: unary), and a
server that breaks the stream (waiting calls fail, never hang; the next call reopens)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from eventmodel import sdk
from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.memory_store import MemoryEventStore
from meshgate.client import GatewayClient, PublishResult
from meshgate.client.publish_stream import MERGE_MAX_BYTES, Call, take_calls
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc
from tests.integration.gateway_helpers import event

LOST_DETAILS = "PublishStream ended while a request was sent"
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
    servicer = BreakingGateway(hold=1)
    server, target = await _serve(servicer)
    try:
        async with GatewayClient(target, timeout=10) as gw:
            calls = [asyncio.create_task(gw.publish("t", event(i))) for i in range(3)]
            done, _ = await asyncio.wait(calls, timeout=10)
            assert len(done) == 3  # none hangs
            for call in calls:
                error = call.exception()
                assert isinstance(error, grpc.aio.AioRpcError)
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                # the gateway's own words, unless a write met the ended call (LOST_STATUS)
                assert error.details() in ("gateway restarting", LOST_DETAILS)
            assert (await gw.publish("t", event(3))).offset == 0  # id 0 of a new stream
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


class RecordingGateway(FakeGateway):
    """Answers every request (offsets 0, 1, ... across requests) and records each request's
    topic and event ids; a request holding an event of type "bad" is refused."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, list[str]]] = []
        self.next_offset = 0

    async def PublishStream(
        self,
        requests: AsyncIterator[gateway_pb2.PublishStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[gateway_pb2.PublishStreamResponse]:
        await context.send_initial_metadata(())
        async for request in requests:
            self.requests.append((request.topic, [e.id for e in request.batch.events]))
            if any(e.type == "bad" for e in request.batch.events):
                yield gateway_pb2.PublishStreamResponse(id=request.id, code=3, message="bad one")
                continue
            first, self.next_offset = self.next_offset, self.next_offset + len(request.batch.events)
            results = [
                gateway_pb2.PublishResult(offset=first + i)
                for i in range(len(request.batch.events))
            ]
            yield gateway_pb2.PublishStreamResponse(id=request.id, results=results)


async def test_calls_queued_together_go_as_one_request_and_are_split_back() -> None:
    servicer = RecordingGateway()
    server, target = await _serve(servicer)
    try:
        async with GatewayClient(target, timeout=10) as gw:
            await gw.publish("t", event("warm"))  # the stream is open, hooks are warm
            calls = [gw.publish("t" if i < 8 else "u", event(i)) for i in range(10)]
            results = await asyncio.gather(*calls)
        sent = servicer.requests[1:]
        assert len(sent) < 10  # merged (how many go together depends on the loop's turns)
        assert [i for topic, ids in sent if topic == "t" for i in ids] == [str(i) for i in range(8)]
        assert [i for topic, ids in sent if topic == "u" for i in ids] == ["8", "9"]
        assert sorted(r.offset for r in results) == list(range(1, 11))
        by_offset = {r.offset: str(i) for i, r in enumerate(results)}  # each call its own
        assert [by_offset[o] for o in range(1, 11)] == [i for _, ids in sent for i in ids]
    finally:
        await server.stop(None)


async def test_a_refused_merged_request_is_sent_again_call_by_call() -> None:
    servicer = RecordingGateway()
    server, target = await _serve(servicer)
    try:
        async with GatewayClient(target, timeout=10) as gw:
            await gw.publish("t", event("warm"))
            calls = [gw.publish("t", event(i, type_="bad" if i == 1 else "t")) for i in range(3)]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        ok0, refused, ok2 = outcomes
        assert isinstance(refused, grpc.aio.AioRpcError)
        assert (refused.code(), refused.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "bad one")
        assert [ok0.offset, ok2.offset] == [1, 2]  # type: ignore[union-attr]
        assert servicer.requests[1:] == [
            ("t", ["0", "1", "2"]),
            ("t", ["0"]),
            ("t", ["1"]),
            ("t", ["2"]),
        ]
    finally:
        await server.stop(None)


def _call(topic: str, size: int, creds: str | None = None) -> Call:
    token = None if creds is None else gateway_pb2.Credentials(session_token=creds)
    batch = cloudevents_pb2.CloudEventBatch()
    future: asyncio.Future[list[PublishResult]] = asyncio.get_running_loop().create_future()
    return Call(topic, batch, token, future, size)


async def test_take_calls_merges_a_run_of_one_topic_and_credentials_within_the_bounds() -> None:
    queue = collections.deque(
        [_call("t", 10), _call("t", 10), _call("u", 10), _call("u", 10, "a"), _call("u", 10, "a")]
    )
    assert [c.topic for c in take_calls(queue)] == ["t", "t"]
    assert [c.topic for c in take_calls(queue)] == ["u"]
    assert len(take_calls(queue)) == 2 and not queue
    big = collections.deque([_call("t", MERGE_MAX_BYTES - 5), _call("t", 10), _call("t", 5)])
    assert len(take_calls(big)) == 1 and len(take_calls(big)) == 2
    alone = collections.deque([_call("t", 1), _call("t", 1)])
    alone[1].alone = True
    assert len(take_calls(alone)) == 1 and len(take_calls(alone)) == 1
