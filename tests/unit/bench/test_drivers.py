"""The shared drivers over an in-process loopback target: counting, windows and loss accounting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from bench.drivers import DriverParams, paced_latency, publish_throughput, pubsub_throughput
from bench.harness import read_stamp


class LoopbackTarget:
    """Delivers every published payload on the next loop turn; optionally drops some."""

    def __init__(self, drop_every: int = 0, publish_delay: float = 0.0) -> None:
        self.published: list[bytes] = []
        self.publish_delay = publish_delay
        self.drop_every = drop_every
        self.max_in_flight = 0
        self._on_payload: Callable[[bytes], None] | None = None
        self._pending = 0

    async def publish(self, payloads: Sequence[bytes]) -> None:
        loop = asyncio.get_running_loop()
        for payload in payloads:
            self.published.append(payload)
            seq, _ = read_stamp(payload)
            if self._on_payload is None or (self.drop_every and seq % self.drop_every == 0):
                continue
            self._pending += 1
            self.max_in_flight = max(self.max_in_flight, self._pending)
            loop.call_soon(self._deliver, payload)
        await asyncio.sleep(self.publish_delay)

    def _deliver(self, payload: bytes) -> None:
        self._pending -= 1
        if self._on_payload is not None:
            self._on_payload(payload)

    @asynccontextmanager
    async def _subscription(self, on_payload: Callable[[bytes], None]) -> AsyncIterator[None]:
        self._on_payload = on_payload
        try:
            yield
        finally:
            self._on_payload = None

    def subscribe(self, on_payload: Callable[[bytes], None]) -> AbstractAsyncContextManager[None]:
        return self._subscription(on_payload)


async def test_publish_throughput_counts_every_event_published() -> None:
    target = LoopbackTarget()
    params = DriverParams(seconds=0.05, concurrency=3, batch=5)
    metrics = await publish_throughput(target, params)
    assert metrics["events_per_s"] > 0
    assert len(target.published) % 5 == 0


async def test_pubsub_is_lossless_on_a_lossless_target() -> None:
    target = LoopbackTarget()
    params = DriverParams(seconds=0.05, concurrency=2, batch=10, window=40, drain_timeout=5)
    metrics = await pubsub_throughput(target, params)
    assert metrics["lost"] == 0.0
    assert metrics["events_per_s"] > 0
    assert target.max_in_flight <= 40


async def test_pubsub_reports_lost_events_instead_of_hanging() -> None:
    target = LoopbackTarget(drop_every=7)
    params = DriverParams(seconds=0.5, concurrency=1, batch=10, window=1000, drain_timeout=0.3)
    metrics = await pubsub_throughput(target, params)
    assert metrics["lost"] > 0


async def test_paced_latency_sends_exactly_rate_times_seconds() -> None:
    target = LoopbackTarget()
    params = DriverParams(seconds=0.1, rate=200.0, concurrency=4, drain_timeout=5)
    metrics = await paced_latency(target, params)
    assert len(target.published) == 20
    assert metrics["lost"] == 0.0
    assert 0.0 <= metrics["p50_ms"] <= metrics["p99_ms"] <= metrics["max_ms"]


async def test_paced_latency_batches_events_per_call() -> None:
    target = LoopbackTarget()
    params = DriverParams(seconds=0.1, rate=200.0, batch=5, concurrency=4, drain_timeout=5)
    metrics = await paced_latency(target, params)
    assert len(target.published) == 20
    assert metrics["lost"] == 0.0


async def test_paced_latency_counts_from_the_scheduled_time_not_the_send() -> None:
    # One call in flight, each taking >= 20 ms, 20 events due 5 ms apart: the last is due at
    # 95 ms but sent after >= 380 ms; stamped at send time it would show ~0 ms.
    target = LoopbackTarget(publish_delay=0.02)
    params = DriverParams(seconds=0.1, rate=200.0, concurrency=1, drain_timeout=5)
    metrics = await paced_latency(target, params)
    assert metrics["lost"] == 0.0
    assert metrics["max_ms"] >= 380.0 - 95.0


async def test_paced_latency_past_its_bound_reports_lost_instead_of_failing() -> None:
    # 20 events, one call in flight, 50 ms a call: ~1 s of work against a 0.3 s bound.
    target = LoopbackTarget(publish_delay=0.05)
    params = DriverParams(seconds=0.1, rate=200.0, concurrency=1, drain_timeout=0.2)
    metrics = await paced_latency(target, params)
    assert metrics["timed_out"] == 1.0
    assert 0 < metrics["lost"] < 20
    assert metrics["events"] == 20 - metrics["lost"]
