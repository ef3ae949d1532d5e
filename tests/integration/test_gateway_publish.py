"""Publish against a real gateway process: round trip, idempotency, all-or-nothing, bad input."""

from __future__ import annotations

import grpc
import pytest

from eventmodel import sdk as events
from eventmodel.filters import Any as AnyOf
from eventmodel.filters import Exact, Not, Prefix
from meshgate.client import GatewayClient
from tests.integration.gateway_helpers import event
from tests.support.gateway_process import GatewayProcess


async def test_ten_thousand_events_round_trip_in_order(shared_gateway: GatewayProcess) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        for start in range(0, 10_000, 500):
            results = await gw.publish_batch("bulk", [event(i) for i in range(start, start + 500)])
            assert [r.offset for r in results] == list(range(start, start + 500))
        got: list[tuple[int, str]] = []
        async with gw.subscribe("bulk", credits=1000) as sub:
            async for offset, ev in sub:
                got.append((offset, ev.get_id()))
                if len(got) == 10_000:
                    break
        assert got == [(i, str(i)) for i in range(10_000)]
        info = await gw.topic("bulk")
        assert (info.first_offset, info.next_offset, info.event_count) == (0, 10_000, 10_000)


async def test_idempotent_publish(shared_gateway: GatewayProcess) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        first = await gw.publish("orders", event("a"))
        await gw.publish("orders", event("b"))
        again = await gw.publish("orders", event("a"))
        assert (first.offset, first.duplicate) == (0, False)
        assert (again.offset, again.duplicate) == (0, True)
        assert (await gw.topic("orders")).event_count == 2


async def test_batch_is_all_or_nothing(shared_gateway: GatewayProcess) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        pbs = [events.to_pb(event(i)) for i in range(5)]
        pbs[3].type = ""
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await gw.publish_pb("atomic", pbs)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "type" in (err.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await gw.topic("atomic")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert [r.offset for r in await gw.publish_batch("atomic", [event(1), event(2)])] == [0, 1]


def _broken(field: str, value: object) -> object:
    pb = events.to_pb(event("x"))
    if field == "data":
        pb.text_data = "x" * (1024 * 1024 + 10)
    else:
        setattr(pb, field, value)
    return pb


@pytest.mark.parametrize(
    ("topic", "field", "value", "needle"),
    [
        ("bad-1", "id", "", "'id'"),
        ("bad-2", "source", "", "'source'"),
        ("bad-3", "spec_version", "", "'specversion'"),
        ("bad-4", "type", "", "'type'"),
        ("bad-5", "spec_version", "0.3", "specversion"),
        ("bad-6", "data", None, "over the limit"),
        ("bad topic!", "id", "ok", "invalid topic name"),
        ("-leading", "id", "ok", "invalid topic name"),
        ("x" * 129, "id", "ok", "invalid topic name"),
    ],
)
async def test_bad_input_is_rejected_and_nothing_stored(
    shared_gateway: GatewayProcess, topic: str, field: str, value: object, needle: str
) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await gw.publish_pb(topic, [_broken(field, value)])  # type: ignore[list-item]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in (err.value.details() or "")
        assert topic not in {t.name for t in await gw.topics()}


async def test_empty_batch_and_bad_subscribe_are_rejected(shared_gateway: GatewayProcess) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await gw.publish_pb("empty", [])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            async with gw.subscribe("empty", filters=[AnyOf(())]):
                pass
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "at least one filter" in (bad.value.details() or "")


async def test_filters_select_events_end_to_end(shared_gateway: GatewayProcess) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        batch = [
            event(1, type_="com.shop.order.created", region="eu"),
            event(2, type_="com.shop.order.paid", region="us"),
            event(3, type_="com.shop.user.created", region="eu"),
            event(4, type_="com.shop.order.created", region="us"),
        ]
        await gw.publish_batch("shop", batch)
        flts = [Prefix("type", "com.shop.order."), Not(Exact("region", "us"))]
        async with gw.subscribe("shop", filters=flts) as sub:
            async for offset, ev in sub:
                assert (offset, ev.get_id()) == (0, "1")
                break
        async with gw.subscribe("shop", filters=[Exact("region", "us")], credits=10) as sub:
            ids = []
            async for _offset, ev in sub:
                ids.append(ev.get_id())
                if len(ids) == 2:
                    break
        assert ids == ["2", "4"]
