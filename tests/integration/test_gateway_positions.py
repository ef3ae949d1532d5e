"""Start positions, retention and config files against a real gateway process."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest

from meshgate.client import GatewayClient
from meshgate.client.positions import StartSpec
from tests.integration.gateway_helpers import event
from tests.support.gateway_process import GatewayProcess
from tests.support.waiting import async_wait_for


async def _first(gw: GatewayClient, topic: str, start: StartSpec) -> int:
    async with gw.subscribe(topic, start=start, credits=1) as sub:
        async for offset, _ev in sub:
            return offset
    raise AssertionError("stream ended")


async def test_start_positions(shared_gateway: GatewayProcess) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        await gw.publish_batch("pos", [event(i) for i in range(5)])
        cut = dt.datetime.now(dt.UTC)  # after the first batch was stored, before the second
        await gw.publish_batch("pos", [event(i) for i in range(5, 8)])
        assert await _first(gw, "pos", "earliest") == 0
        assert await _first(gw, "pos", "3") == 3
        assert await _first(gw, "pos", cut) == 5
        async with gw.subscribe("pos", start="latest", credits=5) as sub:
            assert sub.subscribed is not None and sub.subscribed.start_offset == 8
            await gw.publish("pos", event(99))
            async for offset, ev in sub:
                assert (offset, ev.get_id()) == (8, "99")
                break


async def test_retention_by_size_from_config_file(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text("retention_interval = 0.2\n[retention.topics.short]\nmax_bytes = 2000\n")
    with GatewayProcess(tmp_path / "gw", extra_args=["--config", str(config)]) as proc:
        async with GatewayClient(proc.listen) as gw:
            await gw.publish_batch("short", [event(i) for i in range(100)])
            await gw.publish_batch("long", [event(i) for i in range(100)])

            async def trimmed() -> bool:
                info = await gw.topic("short")
                return info.stored_bytes <= 2000 and info.first_offset > 0

            await async_wait_for(trimmed, timeout=30, what="retention to trim 'short'")
            short, long_ = await gw.topic("short"), await gw.topic("long")
            assert short.retention.max_bytes == 2000
            assert short.next_offset == 100 and short.event_count == 100 - short.first_offset
            assert (long_.first_offset, long_.event_count) == (0, 100)
            assert await _first(gw, "short", "earliest") == short.first_offset


async def test_unknown_topic_and_health(shared_gateway: GatewayProcess) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with GatewayClient(shared_gateway.listen) as gw:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await gw.topic("nothing-here")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    async with grpc.aio.insecure_channel(shared_gateway.listen) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service="meshgate.v1.Gateway"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
