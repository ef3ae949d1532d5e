"""Workload drivers written once and run against every system (meshgate, NATS JetStream, core NATS).

A system under test is a `Target`: `publish(payloads)` returns once the system has taken the
events (durably, for persisted targets), and `subscribe(on_payload)` delivers each payload to a
plain callback. The drivers own pacing, stamping, windows, deadlines and counting, so both
systems are measured by the same code.

Every loop is bounded by a deadline; a driver that cannot finish within its drain timeout
reports what it saw (lost events are counted, never hidden).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from bench.harness import (
    CreditWindow,
    Pacer,
    events_per_second,
    make_payload,
    read_stamp,
    summarize_latencies,
)

Metrics = dict[str, float]


class Target(Protocol):
    async def publish(self, payloads: Sequence[bytes]) -> None: ...

    def subscribe(
        self, on_payload: Callable[[bytes], None]
    ) -> AbstractAsyncContextManager[None]: ...


@dataclass(frozen=True, kw_only=True)
class DriverParams:
    seconds: float = 3.0  # publish window of a throughput run
    concurrency: int = 32  # publish calls in flight
    batch: int = 1  # events per publish call
    window: int = 2048  # events in flight between publisher and subscriber
    rate: float = 1000.0  # events/s of a paced latency run
    drain_timeout: float = 30.0  # how long to wait for the last events


async def publish_throughput(target: Target, params: DriverParams) -> Metrics:
    """Events/s accepted: `concurrency` workers each publishing `batch` events per call."""
    count = 0
    deadline = time.monotonic() + params.seconds

    async def worker() -> None:
        nonlocal count
        seq = 0
        while time.monotonic() < deadline:
            now = time.monotonic_ns()
            await target.publish([make_payload(seq + i, now) for i in range(params.batch)])
            seq += params.batch
            count += params.batch

    start = time.monotonic()
    async with asyncio.timeout(params.seconds + params.drain_timeout):
        await asyncio.gather(*(worker() for _ in range(params.concurrency)))
    return {
        "events_per_s": events_per_second(count, time.monotonic() - start),
        "events": float(count),
    }


class _Receiver:
    """Counts deliveries, records latencies and wakes the publisher when credit returns."""

    def __init__(self, window: CreditWindow | None) -> None:
        self.window = window
        self.received = 0
        self.latencies_ns: list[int] = []
        self.last_ns = 0
        self.progress = asyncio.Event()

    def on_payload(self, payload: bytes) -> None:
        now = time.monotonic_ns()
        _, sent_ns = read_stamp(payload)
        self.latencies_ns.append(now - sent_ns)
        self.received += 1
        self.last_ns = now
        if self.window is not None:
            self.window.on_received()
        self.progress.set()

    async def wait_for(self, total: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.received < total:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.progress.clear()
            try:
                async with asyncio.timeout(min(remaining, 0.5)):
                    await self.progress.wait()
            except TimeoutError:
                continue


async def pubsub_throughput(target: Target, params: DriverParams) -> Metrics:
    """End-to-end events/s, publish to delivery, lossless: publishers respect a credit window."""
    window = CreditWindow(params.window)
    receiver = _Receiver(window)
    sent = 0
    async with target.subscribe(receiver.on_payload):
        deadline = time.monotonic() + params.seconds
        start_ns = time.monotonic_ns()

        async def worker() -> None:
            nonlocal sent
            while time.monotonic() < deadline:
                if window.room() < params.batch:
                    receiver.progress.clear()
                    try:
                        async with asyncio.timeout(0.5):
                            await receiver.progress.wait()
                    except TimeoutError:
                        continue
                    continue
                window.on_sent(params.batch)
                seq = sent
                sent += params.batch
                now = time.monotonic_ns()
                await target.publish([make_payload(seq + i, now) for i in range(params.batch)])

        async with asyncio.timeout(params.seconds + params.drain_timeout):
            await asyncio.gather(*(worker() for _ in range(params.concurrency)))
        await receiver.wait_for(sent, params.drain_timeout)
    elapsed = max(receiver.last_ns - start_ns, 1) / 1e9
    return {
        "events_per_s": events_per_second(receiver.received, elapsed),
        "events": float(receiver.received),
        "lost": float(sent - receiver.received),
    }


async def paced_latency(target: Target, params: DriverParams) -> Metrics:
    """One-way latency at a fixed event rate: open-loop pacer, stamp in the event.

    `batch` events go in each call, so calls are paced at rate / batch per second; at most
    `concurrency` calls are in flight (a call waiting for a slot still carries its scheduled
    time, so no coordinated omission).
    """
    calls = max(1, int(params.rate * params.seconds / params.batch))
    total = calls * params.batch
    pacer = Pacer(rate=params.rate / params.batch, total=calls)
    receiver = _Receiver(None)
    in_flight = asyncio.Semaphore(max(params.concurrency, 1))
    tasks: set[asyncio.Task[None]] = set()

    async def send(payloads: list[bytes]) -> None:
        async with in_flight:
            await target.publish(payloads)

    async with target.subscribe(receiver.on_payload):
        start_ns = time.monotonic_ns()
        start = start_ns / 1e9
        sent = 0
        achieved = 0.0
        bound = asyncio.timeout(params.seconds + params.drain_timeout)
        try:
            async with bound:
                while sent < calls:
                    due = pacer.due(time.monotonic() - start)
                    while sent < due:
                        # Stamped with its scheduled send time, not the moment the loop got
                        # to it: time queued behind a slow system (or a late loop) counts.
                        scheduled = start_ns + round(sent * 1e9 / pacer.rate)
                        first = sent * params.batch
                        payloads = [make_payload(first + i, scheduled) for i in range(params.batch)]
                        task = asyncio.create_task(send(payloads))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                        sent += 1
                    delay = pacer.delay_until_next(sent, time.monotonic() - start)
                    if delay > 0 and sent < calls:
                        await asyncio.sleep(delay)
                achieved = events_per_second(total, max(time.monotonic() - start, 1e-9))
                await asyncio.gather(*tasks)
        except TimeoutError:
            if not bound.expired():
                raise
            # The system could not take the schedule within the bound: what was not delivered
            # is counted as lost, the latencies of what was delivered still count.
            pending = list(tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            timed_out = True
        else:
            timed_out = False
        await receiver.wait_for(total, 0.0 if timed_out else params.drain_timeout)
    if not receiver.latencies_ns:
        return {"lost": float(total), "events": 0.0, "timed_out": float(timed_out)}
    summary = summarize_latencies(receiver.latencies_ns)
    return {
        "p50_ms": summary.p50_ms,
        "p99_ms": summary.p99_ms,
        "p999_ms": summary.p999_ms,
        "max_ms": summary.max_ms,
        "offered_per_s": achieved,
        "events": float(receiver.received),
        "lost": float(total - receiver.received),
        "timed_out": float(timed_out),
    }
