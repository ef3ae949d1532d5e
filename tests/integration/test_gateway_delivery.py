"""Subscribe against a real gateway process: redelivery, credits, groups sharing work, lag."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from meshgate.client import GatewayClient
from proto import gateway_pb2, gateway_pb2_grpc
from tests.integration.gateway_helpers import event, metric, scrape
from tests.support.gateway_process import GatewayProcess
from tests.support.waiting import wait_for


async def test_unacked_event_is_redelivered_after_ack_timeout(
    shared_gateway: GatewayProcess,
) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        await gw.publish_batch("jobs", [event(0), event(1)])
        async with gw.subscribe("jobs", group="workers", auto_ack=False, credits=10) as sub:
            seen: list[tuple[int, int]] = []
            async for offset, _ev in sub:
                seen.append((offset, sub.last_attempt))
                if offset == 1:
                    await sub.ack(1)  # 0 stays unacked: it must come back
                if len(seen) == 3:
                    break
            assert seen == [(0, 1), (1, 1), (0, 2)]
            await sub.ack(0)
        info = await gw.topic("jobs")
        assert [(g.name, g.committed_offset, g.lag) for g in info.groups] == [("workers", 2, 0)]


async def test_server_never_sends_more_than_the_credit(shared_gateway: GatewayProcess) -> None:
    async with (
        GatewayClient(shared_gateway.listen) as gw,
        grpc.aio.insecure_channel(shared_gateway.listen) as channel,
    ):
        await gw.publish_batch("credit", [event(i) for i in range(20)])
        stub = gateway_pb2_grpc.GatewayStub(channel)
        requests: asyncio.Queue[gateway_pb2.SubscribeRequest | None] = asyncio.Queue()

        async def stream():  # type: ignore[no-untyped-def]
            while (req := await requests.get()) is not None:
                yield req

        call = stub.Subscribe(stream())
        open_req = gateway_pb2.SubscriptionOpen(topic="credit", credits=5)
        await requests.put(gateway_pb2.SubscribeRequest(open=open_req))
        assert (await call.read()).WhichOneof("kind") == "subscribed"
        # Read in a task: cancelling a pending call.read() would cancel the whole RPC.
        inbox: asyncio.Queue[list[int]] = asyncio.Queue()

        async def pump() -> None:
            while (resp := await call.read()) is not grpc.aio.EOF:
                await inbox.put([d.offset for d in resp.batch.deliveries])

        reader = asyncio.create_task(pump())
        received: list[int] = []
        while len(received) < 5:
            received += await asyncio.wait_for(inbox.get(), 30)
        assert received == [0, 1, 2, 3, 4]
        # A barrier: a second stream sees all 20, so the first could have been sent more.
        async with gw.subscribe("credit", credits=100) as other:
            n = 0
            async for _ in other:
                n += 1
                if n == 20:
                    break
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(inbox.get(), 1.0)  # nothing beyond the 5 credits
        await requests.put(gateway_pb2.SubscribeRequest(credit=gateway_pb2.Credit(credits=3)))
        while len(received) < 8:
            received += await asyncio.wait_for(inbox.get(), 30)
        assert received == list(range(8))
        await requests.put(None)
        call.cancel()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_two_group_members_share_the_work(shared_gateway: GatewayProcess) -> None:
    total = 400
    async with GatewayClient(shared_gateway.listen) as gw:
        first = gw.subscribe("work", group="pool", credits=20)
        second = gw.subscribe("work", group="pool", credits=20)
        await first.start()
        await second.start()
        got: dict[str, list[int]] = {"a": [], "b": []}
        done = asyncio.Event()

        async def consume(name: str, sub) -> None:  # type: ignore[no-untyped-def]
            async for offset, _ev in sub:
                got[name].append(offset)
                await asyncio.sleep(0)  # let the other member take its share
                if len(got["a"]) + len(got["b"]) >= total:
                    done.set()
                    break

        tasks = [asyncio.create_task(consume(n, s)) for n, s in (("a", first), ("b", second))]
        for start in range(0, total, 50):
            await gw.publish_batch("work", [event(i) for i in range(start, start + 50)])
        await asyncio.wait_for(done.wait(), 60)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await first.aclose()
        await second.aclose()
        assert got["a"] and got["b"], "both members must get work"
        assert not set(got["a"]) & set(got["b"]), "an offset went to two members"
        assert sorted(got["a"] + got["b"]) == list(range(total))


async def test_consumer_lag_is_visible_at_metrics(shared_gateway: GatewayProcess) -> None:
    assert shared_gateway.metrics_url is not None
    async with GatewayClient(shared_gateway.listen) as gw:
        await gw.publish_batch("lagging", [event(i) for i in range(30)])
        async with gw.subscribe("lagging", group="slow", credits=10) as sub:
            n = 0
            async for _ in sub:
                n += 1
                if n == 10:
                    break
        url = shared_gateway.metrics_url

        def lag() -> float | None:
            return metric(scrape(url), "meshgate_consumer_lag", topic="lagging", group="slow")

        wait_for(lambda: lag() == 20, timeout=30, what="lag 20 at /metrics")
        text = scrape(url)
        assert metric(text, "meshgate_events_in_total", topic="lagging") == 30
        assert (metric(text, "meshgate_events_out_total", topic="lagging") or 0) >= 10
        assert (metric(text, "meshgate_stored_bytes", topic="lagging") or 0) > 0
        assert "meshgate_publish_latency_seconds_bucket" in text


async def test_group_members_must_share_filters(shared_gateway: GatewayProcess) -> None:
    from eventmodel.filters import Exact

    async with GatewayClient(shared_gateway.listen) as gw:
        async with gw.subscribe("f", group="g", filters=[Exact("type", "a")]):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async with gw.subscribe("f", group="g", filters=[Exact("type", "b")]):
                    pass
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "other filters" in (err.value.details() or "")
        # Once nobody reads, the group may change its filters.
        async with gw.subscribe("f", group="g", filters=[Exact("type", "b")]) as sub:
            assert sub.subscribed is not None


async def test_unacked_events_and_open_access_are_visible_at_metrics(
    shared_gateway: GatewayProcess,
) -> None:
    assert shared_gateway.metrics_url is not None
    url = shared_gateway.metrics_url
    async with GatewayClient(shared_gateway.listen) as gw:
        await gw.publish_batch("held", [event(i) for i in range(8)])
        async with gw.subscribe("held", group="holder", credits=5, auto_ack=False) as sub:
            n = 0
            async for _ in sub:
                n += 1
                if n == 5:
                    break

            def unacked() -> float | None:
                return metric(scrape(url), "meshgate_unacked_events", topic="held", group="holder")

            wait_for(lambda: unacked() == 5, timeout=30, what="5 unacked events at /metrics")
    assert metric(scrape(url), "meshgate_access_open") == 1
