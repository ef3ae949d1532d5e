"""The bench's meshgate target (bench/meshgate_workloads.py) over a real gateway: the shared
drivers see every event, and leaving the subscription closes it cleanly."""

from __future__ import annotations

from bench.drivers import DriverParams, paced_latency, pubsub_throughput
from bench.meshgate_workloads import meshgate_target
from tests.support.gateway_process import GatewayProcess


async def test_pubsub_through_the_client_loses_nothing(shared_gateway: GatewayProcess) -> None:
    params = DriverParams(seconds=0.5, concurrency=2, batch=10, window=64, drain_timeout=20)
    addr = shared_gateway.listen
    async with meshgate_target(addr, addr, window=params.window) as target:
        metrics = await pubsub_throughput(target, params)
    assert metrics["lost"] == 0
    assert metrics["events_per_s"] > 0


async def test_paced_latency_after_a_probe_skips_the_probes(
    shared_gateway: GatewayProcess,
) -> None:
    params = DriverParams(seconds=0.3, concurrency=4, batch=1, rate=100.0, drain_timeout=20)
    addr = shared_gateway.listen
    async with meshgate_target(addr, addr, window=16, probe=True) as target:
        metrics = await paced_latency(target, params)
    assert metrics["lost"] == 0
    assert metrics["p99_ms"] >= metrics["p50_ms"] > 0
