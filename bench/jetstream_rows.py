"""One region on a NATS JetStream cluster, with 1 and with 2 gateway replicas (issue 14).

Rows (meshgate-only, registered through bench/families.py):

- `js1_publish` / `js2_publish`: batches of 100, 4 calls in flight, to a region whose store is
  a 3-node R3 JetStream cluster (`sync_interval: always`, the equal of meshgate `fsync`),
  through its one replica / its two replicas with the product's `RegionClient`
  (meshgate/client/region_client.py): calls go to the replicas in turn until one answers
  with the topic's writer, then to that writer; beside `publish_batched` (the SQLite region
  of the same run).
- `js2_publish_unrouted`: the same, but calls alternate between the replicas whatever they
  answer (a client that ignores writer hints, e.g. behind a load balancer): the replica that
  does not own the topic forwards its rows to the owner, a second hop (shown, no floor).
- `js2_publish_split`: the same through two replicas, each publishing to its own topic (no
  two writers on one topic head: what is left is the cost of sharing the stream); beside
  `js1_publish`.
- `js1_pubsub` / `js2_pubsub`: publish (with a `RegionClient`) to a durable group
  (gateway/jetstream_groups.py), with one member on each replica; beside `pubsub`.

Processes: each replica is tracked, and so are the three nats-servers, so the report's CPU s
per 1,000 events can be summed over the replicas (issue 14's floor: two replicas spend at most
1.2x one replica's CPU per event) and the cluster's own cost is visible beside it. Two cores
cannot show throughput scaling: the figures are about overhead, not speed-up.

Each row gets its own region (its own stream), started once in `setup`; each run a fresh topic
and, for the pubsub rows, a fresh group starting at the topic's earliest offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.drivers import Target
from bench.families import (
    WINDOW,
    Family,
    RowContext,
    publish_throughput,
    pubsub_throughput,
    register,
)
from bench.meshgate_workloads import STAMP, cloud_event, new_topic
from bench.procs import BenchError, Child, free_port, wait_until
from meshgate.client import GatewayClient, RegionClient

NODES = 3
REGIONS = {1: "jsone", 2: "jstwo"}  # replicas -> region
# per deployment (its work dir): "cluster" -> store URL, replica name -> gRPC address
_started: dict[Path, dict[str, str]] = {}


def _node_config(name: str, ports: list[tuple[int, int, int]], i: int, store: Path) -> str:
    client, cluster, http = ports[i]
    routes = ", ".join(f'"nats://127.0.0.1:{p[1]}"' for p in ports)
    return (
        f"server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{http}\n"
        f'jetstream {{ store_dir: "{store}", sync_interval: always }}\n'
        f"cluster {{ name: meshgate-bench, listen: 127.0.0.1:{cluster}, routes: [{routes}] }}\n"
    )


def _cluster_ready(http_ports: Sequence[int]) -> bool:
    """Every node follows one meta leader, and the leader sees each of the others current."""
    metas = {}
    for i, port in enumerate(http_ports):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/jsz", timeout=2) as resp:
            metas[f"n{i + 1}"] = json.loads(resp.read()).get("meta_cluster") or {}
    leaders = {m.get("leader") for m in metas.values()}
    if len(leaders) != 1 or (leader := leaders.pop()) not in metas:
        return False
    seen = {r["name"]: r for r in metas[leader].get("replicas") or []}
    others = set(metas) - {leader}
    return all(n in seen and seen[n].get("current") and not seen[n].get("offline") for n in others)


def _start_cluster(ctx: RowContext) -> str:
    """The 3-node cluster the rows' regions share (started once, stopped with the bench)."""
    started = _started.setdefault(ctx.work_dir, {})
    if "cluster" in started:
        return started["cluster"]
    work = ctx.work_dir / "jetstream_rows"
    work.mkdir(parents=True, exist_ok=True)
    ports = [(free_port(), free_port(), free_port()) for _ in range(NODES)]
    for i in range(NODES):
        name = f"n{i + 1}"
        conf = work / f"{name}.conf"
        conf.write_text(_node_config(name, ports, i, work / f"js-{name}"))
        child = Child([ctx.nats_binary, "-c", str(conf)], log_path=work / f"{name}.log")
        ctx.stack.callback(child.stop)
        ctx.track(f"nats {name}", child.pid)
    wait_until(
        lambda: _cluster_ready([p[2] for p in ports]), timeout=60, what="the JetStream cluster"
    )
    url = "nats://" + ",".join(f"127.0.0.1:{p[0]}" for p in ports)
    started["cluster"] = url
    return url


def _replica_names(replicas: int) -> list[str]:
    return [f"js{replicas}-{c}" for c in "ab"[:replicas]]


def _setup(replicas: int) -> Callable[[RowContext], None]:
    def setup(ctx: RowContext) -> None:
        url = _start_cluster(ctx)
        started = _started[ctx.work_dir]
        for name in _replica_names(replicas):
            if name not in started:
                args = ["--open", "--store", url]
                started[name] = ctx.start_gateway(name, REGIONS[replicas], args)

    return setup


@dataclass
class RegionTarget:
    """Publishes through `region` (writer hints followed) or alternately through each
    replica; subscribes as one durable group with a member on each replica (every event
    reaches exactly one member, once acked)."""

    clients: list[GatewayClient]
    topics: list[str]  # per client: one shared topic, or each replica its own (split)
    window: int
    region: RegionClient | None = None  # None: calls alternate, whatever the replicas answer
    _turn: itertools.cycle[int] = field(init=False)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(range(len(self.clients)))

    @property
    def topic(self) -> str:
        return self.topics[0]

    async def publish(self, payloads: Sequence[bytes]) -> None:
        events = [cloud_event(p) for p in payloads]
        if self.region is not None:
            await self.region.publish_pb(self.topic, events)
            return
        i = next(self._turn)
        await self.clients[i].publish_pb(self.topics[i], events)

    @asynccontextmanager
    async def subscribe(self, on_payload: Callable[[bytes], None]) -> AsyncIterator[None]:
        group = f"bench-{time.monotonic_ns()}"
        credits = max(1, self.window // len(self.clients))
        subs = [c.subscribe(self.topic, group=group, credits=credits) for c in self.clients]
        for sub in subs:
            await sub.start()

        async def pump(sub: Any) -> None:
            async for delivery in sub.deliveries():
                payload = delivery.event.binary_data
                if len(payload) >= STAMP.size:
                    on_payload(payload)

        readers = [asyncio.create_task(pump(s)) for s in subs]
        try:
            yield
        finally:
            for reader in readers:
                reader.cancel()
            for reader, sub in zip(readers, subs, strict=True):
                with contextlib.suppress(BaseException):
                    async with asyncio.timeout(10):
                        await reader
                await sub.aclose()


def _target(
    replicas: int, *, split: bool = False, hints: bool = True
) -> Callable[[RowContext, Family], Any]:
    @asynccontextmanager
    async def target(ctx: RowContext, family: Family) -> AsyncIterator[Target]:
        names = _replica_names(replicas)
        started = _started.get(ctx.work_dir, {})
        missing = [n for n in names if n not in started]
        if missing:
            raise BenchError(f"replicas {missing} were not started")
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for name in names:
                client = GatewayClient(started[name], timeout=30)
                await stack.enter_async_context(client)
                clients.append(client)
            shared = new_topic()
            topics = [new_topic() if split else shared for _ in clients]
            region = None
            if hints and not split:
                region = RegionClient([started[n] for n in names], timeout=30)
                await stack.enter_async_context(region)
            yield RegionTarget(clients, topics, WINDOW, region)

    return target


def _processes(replicas: int) -> tuple[str, ...]:
    return (*_replica_names(replicas), *(f"nats n{i + 1}" for i in range(NODES)))


def _row(
    name: str, title: str, baseline: str, replicas: int, *, pubsub: bool = False, **how: bool
) -> None:
    """Register one row on the region of `replicas` replicas; `how`: `_target`'s options."""
    register(
        Family(
            name=name,
            title=title,
            driver=pubsub_throughput if pubsub else publish_throughput,
            cross_region=False,
            compare=False,
            baseline=baseline,
            headline=("events_per_s",),
            concurrency=2 if pubsub else 4,
            batch=100,
            setup=_setup(replicas),
            target=_target(replicas, **how),
            processes=_processes(replicas),
        )
    )


PUBLISH = "persisted publish, batches of 100"
for _replicas in (1, 2):
    _word = "one replica" if _replicas == 1 else "two replicas"
    _row(
        f"js{_replicas}_publish",
        f"{PUBLISH}, region on JetStream R3, {_word}",
        "publish_batched",
        _replicas,
    )
    _row(
        f"js{_replicas}_pubsub",
        f"publish to a durable group, region on JetStream R3, {_word}",
        "pubsub",
        _replicas,
        pubsub=True,
    )
_row(
    "js2_publish_unrouted",
    f"{PUBLISH}, JetStream R3, two replicas, writer hints ignored",
    "js1_publish",
    2,
    hints=False,
)
_row(
    "js2_publish_split",
    f"{PUBLISH}, JetStream R3, two replicas, a topic each",
    "js1_publish",
    2,
    split=True,
)
