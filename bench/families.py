"""The workload families `make bench` measures, and the profiles (full, quick) that size them.

A family names a driver, its parameters and whether producer and consumer sit in different
regions. Every system (meshgate, NATS JetStream, core NATS) runs the same family with the same
parameters; only the `Target` differs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.drivers import (
    DriverParams,
    Metrics,
    Target,
    paced_latency,
    publish_throughput,
    pubsub_throughput,
)


@dataclass(frozen=True, kw_only=True)
class Profile:
    runs: int
    throughput_seconds: float
    latency_seconds: float
    drain_timeout: float = 30.0


FULL = Profile(runs=3, throughput_seconds=4.0, latency_seconds=5.0)
QUICK = Profile(runs=1, throughput_seconds=1.0, latency_seconds=1.0, drain_timeout=15.0)

# Events in flight between publisher and subscriber of an end-to-end run.
WINDOW = 4096


@dataclass(frozen=True, kw_only=True)
class Family:
    name: str
    title: str
    driver: Callable[[Target, DriverParams], Awaitable[Metrics]]
    cross_region: bool
    persisted_only: bool  # core NATS keeps nothing: not a peer for "persisted publish"
    signed: bool = False  # meshgate with access control on, one region: the cost of policy
    http: bool = False  # meshgate's HTTP edge (CloudEvents HTTP binding); NATS has none
    # meshgate across regions with no registry: no sign-in, no publisher signatures (the
    # baseline for the cost of provenance, issue 11); NATS has nothing to turn off
    open_mesh: bool = False
    headline: tuple[str, ...]  # metrics the summary table shows
    concurrency: int
    batch: int
    latency: bool = False

    def params(self, profile: Profile) -> DriverParams:
        return DriverParams(
            seconds=profile.latency_seconds if self.latency else profile.throughput_seconds,
            concurrency=self.concurrency,
            batch=self.batch,
            window=WINDOW,
            rate=1000.0,
            drain_timeout=profile.drain_timeout,
        )

    def describe(self, profile: Profile) -> str:
        p = self.params(profile)
        if self.latency:
            if p.batch == 1:
                return f"{p.rate:.0f} events/s for {p.seconds:.0f} s, one event per call"
            every_ms = 1000.0 * p.batch / p.rate
            return (
                f"{p.rate:.0f} events/s for {p.seconds:.0f} s, "
                f"{p.batch} events per call every {every_ms:.0f} ms"
            )
        events = "1 event" if p.batch == 1 else f"{p.batch} events"
        shape = f"{events} per call, {p.concurrency} calls in flight"
        if self.driver is pubsub_throughput:
            shape += f", window {p.window} events"
        return f"{shape}, {p.seconds:.0f} s publish window"


FAMILIES: tuple[Family, ...] = (
    Family(
        name="publish_single",
        title="persisted publish, one event per call",
        driver=publish_throughput,
        cross_region=False,
        persisted_only=True,
        headline=("events_per_s",),
        concurrency=32,
        batch=1,
    ),
    Family(
        name="publish_batched",
        title="persisted publish, batches of 100",
        driver=publish_throughput,
        cross_region=False,
        persisted_only=True,
        headline=("events_per_s",),
        concurrency=4,
        batch=100,
    ),
    Family(
        name="http_publish_batched",
        title="persisted publish over HTTP (CloudEvents batch mode), batches of 100",
        driver=publish_throughput,
        cross_region=False,
        persisted_only=True,
        http=True,
        headline=("events_per_s",),
        concurrency=4,
        batch=100,
    ),
    Family(
        name="pubsub",
        title="publish to subscribe, one region",
        driver=pubsub_throughput,
        cross_region=False,
        persisted_only=False,
        headline=("events_per_s",),
        concurrency=2,
        batch=100,
    ),
    Family(
        name="pubsub_signed",
        title="publish to subscribe, one region, access control on",
        driver=pubsub_throughput,
        cross_region=False,
        persisted_only=False,
        signed=True,
        headline=("events_per_s",),
        concurrency=2,
        batch=100,
    ),
    Family(
        name="latency",
        title="end-to-end latency at 1,000 events/s, one region",
        driver=paced_latency,
        cross_region=False,
        persisted_only=False,
        headline=("p50_ms", "p99_ms"),
        concurrency=64,
        batch=1,
        latency=True,
    ),
    Family(
        name="latency_batched",
        title="end-to-end latency at 1,000 events/s, one region, batched",
        driver=paced_latency,
        cross_region=False,
        persisted_only=False,
        headline=("p50_ms", "p99_ms"),
        concurrency=64,
        batch=10,
        latency=True,
    ),
    Family(
        name="xregion_pubsub",
        title="publish east, consume west",
        driver=pubsub_throughput,
        cross_region=True,
        persisted_only=False,
        headline=("events_per_s",),
        concurrency=2,
        batch=100,
    ),
    Family(
        name="xregion_pubsub_open",
        title="publish east, consume west, provenance off (open gateways, no registry)",
        driver=pubsub_throughput,
        cross_region=True,
        persisted_only=False,
        open_mesh=True,
        headline=("events_per_s",),
        concurrency=2,
        batch=100,
    ),
    Family(
        name="xregion_latency",
        title="end-to-end latency at 1,000 events/s, east to west",
        driver=paced_latency,
        cross_region=True,
        persisted_only=False,
        headline=("p50_ms", "p99_ms"),
        concurrency=64,
        batch=1,
        latency=True,
    ),
    Family(
        name="xregion_latency_batched",
        title="end-to-end latency at 1,000 events/s, east to west, batched",
        driver=paced_latency,
        cross_region=True,
        persisted_only=False,
        headline=("p50_ms", "p99_ms"),
        concurrency=64,
        batch=10,
        latency=True,
    ),
)

FAMILY_NAMES = tuple(f.name for f in FAMILIES)
