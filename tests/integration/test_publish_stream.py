"""PublishStream against a real gateway process: order per stream and topic, one answer per
request, per-request errors as the unary call's, a full window (backpressure), idempotence,
and kill -9 during one-event publishes losing nothing acknowledged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from eventmodel import sdk
from meshgate.client import GatewayClient
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc
from tests.integration.gateway_helpers import event
from tests.support.channels import ready_channel
from tests.support.gateway_process import GatewayProcess


def _request(
    i: int, topic: str, pb: cloudevents_pb2.CloudEvent
) -> gateway_pb2.PublishStreamRequest:
    batch = cloudevents_pb2.CloudEventBatch(events=[pb])
    return gateway_pb2.PublishStreamRequest(id=i, topic=topic, batch=batch)


async def _stream(
    listen: str, requests: list[gateway_pb2.PublishStreamRequest]
) -> list[gateway_pb2.PublishStreamResponse]:
    """Send every request without waiting, half-close, and read every answer."""
    async with ready_channel(listen) as channel:
        call = gateway_pb2_grpc.GatewayStub(channel).PublishStream(iter(requests), timeout=60)
        answers = [response async for response in call]
        assert await call.code() == grpc.StatusCode.OK
        return answers


async def test_answers_come_once_each_in_request_order_per_topic(
    shared_gateway: GatewayProcess,
) -> None:
    topics = ("ps-order-a", "ps-order-b")
    requests = [_request(i, topics[i % 2], sdk.to_pb(event(i))) for i in range(600)]
    answers = await _stream(shared_gateway.listen, requests)
    assert sorted(a.id for a in answers) == list(range(600))  # each answered once
    for parity, topic in enumerate(topics):
        mine = [a for a in answers if a.id % 2 == parity]
        assert [a.id for a in mine] == list(range(parity, 600, 2))  # answered in order
        assert [a.results[0].offset for a in mine] == list(range(300))  # and stored in order
        async with GatewayClient(shared_gateway.listen) as gw:
            assert (await gw.topic(topic)).event_count == 300


async def test_a_bad_event_in_request_2_of_3_is_refused_as_unary_publish_refuses_it(
    shared_gateway: GatewayProcess,
) -> None:
    bad = sdk.to_pb(event(1))
    bad.type = ""
    requests = [_request(i, "ps-mixed", pb) for i, pb in enumerate([sdk.to_pb(event(0)), bad])]
    requests.append(_request(2, "ps-mixed", sdk.to_pb(event(2))))
    answers = {a.id: a for a in await _stream(shared_gateway.listen, requests)}
    async with grpc.aio.insecure_channel(shared_gateway.listen) as channel:
        unary = gateway_pb2_grpc.GatewayStub(channel).Publish
        batch = cloudevents_pb2.CloudEventBatch(events=[bad])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await unary(gateway_pb2.PublishRequest(topic="ps-mixed", batch=batch))
    assert (answers[1].code, answers[1].message) == (err.value.code().value[0], err.value.details())
    assert [(answers[i].code, answers[i].results[0].offset) for i in (0, 2)] == [(0, 0), (0, 1)]


async def test_a_thousand_calls_in_flight_through_a_full_window_are_each_answered(
    shared_gateway: GatewayProcess,
) -> None:
    async with GatewayClient(shared_gateway.listen, timeout=60) as gw:  # window: 256
        results = await asyncio.gather(*(gw.publish("ps-window", event(i)) for i in range(1000)))
        assert sorted(r.offset for r in results) == list(range(1000))
        assert not any(r.duplicate for r in results)
        assert (await gw.topic("ps-window")).event_count == 1000


async def test_a_repeated_event_is_stored_once_within_a_stream_and_across_calls(
    shared_gateway: GatewayProcess,
) -> None:
    same = sdk.to_pb(event("dup"))
    answers = await _stream(shared_gateway.listen, [_request(i, "ps-dup", same) for i in range(3)])
    assert [(a.results[0].offset, a.results[0].duplicate) for a in answers] == [
        (0, False),
        (0, True),
        (0, True),
    ]
    async with GatewayClient(shared_gateway.listen) as gw:
        again = await asyncio.gather(*(gw.publish("ps-dup", event("dup")) for _ in range(5)))
        assert {(r.offset, r.duplicate) for r in again} == {(0, True)}
        assert (await gw.topic("ps-dup")).event_count == 1


async def test_kill9_during_one_event_publishes_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    proc = GatewayProcess(tmp_path / "gw", metrics=False)
    try:
        proc.start()
        acked: list[int] = []
        failed = 0
        enough = asyncio.Event()

        async def caller(gw: GatewayClient, ids: range) -> None:
            nonlocal failed
            for i in ids:
                try:
                    await gw.publish("ps-crash", event(i))
                except grpc.aio.AioRpcError:
                    failed += 1
                    return  # the gateway died: nothing more is acknowledged
                acked.append(i)
                if len(acked) >= 3000:
                    enough.set()

        async with GatewayClient(proc.listen, timeout=10) as gw:  # 32 calls in flight
            callers = [
                asyncio.create_task(caller(gw, range(n * 1_000_000, n * 1_000_000 + 100_000)))
                for n in range(32)
            ]
            await asyncio.wait_for(enough.wait(), 60)
            proc.kill9()  # while one-event publishes are in flight on the stream
            await asyncio.wait_for(asyncio.gather(*callers), 60)
        assert failed == 32  # every caller saw the stream fail: none hung
        proc.start()
        async with GatewayClient(proc.listen) as gw:
            stored = (await gw.topic("ps-crash")).event_count
            assert stored >= len(acked)
            survived: set[int] = set()
            async with asyncio.timeout(60), gw.subscribe("ps-crash", credits=1000) as sub:
                async for _offset, ev in sub:
                    survived.add(int(ev.get_id()))
                    if len(survived) == stored:
                        break
        assert set(acked) <= survived
    finally:
        proc.stop()
