"""A real gateway process that follows a deployed registry: the one way tests start one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess, start_serving
from tests.support.waiting import free_port


def registry_args(deployed: DeployedRegistry, *, websocket: bool = False) -> list[str]:
    """`gateway run` flags for `deployed` (HTTP polling by default; `websocket` for newHeads)."""
    chain = deployed.chain
    return [
        "--rpc", chain.ws_url if websocket else chain.url,
        "--registry", deployed.address,
        "--chain-id", str(chain.chain_id),
    ]  # fmt: skip


@contextlib.contextmanager
def registry_gateway(
    data_dir: Path,
    deployed: DeployedRegistry,
    *extra: str,
    metrics: bool = False,
    websocket: bool = False,
) -> Iterator[GatewayProcess]:
    """Start the gateway (ready once its grant view is synced), stop it by its process group
    and print its log's tail (pytest shows it for a failed test)."""
    proc = GatewayProcess(
        data_dir,
        metrics=metrics,
        extra_args=[*registry_args(deployed, websocket=websocket), *extra],
        ready_timeout=60,
    )
    try:
        yield start_serving(proc)
    finally:
        proc.stop()
        print(f"--- gateway stderr (tail) ---\n{proc.stderr_tail(40)}")


@contextlib.contextmanager
def registry_pair(
    root: Path,
    deployed: DeployedRegistry,
    tls_dir: Callable[[str], Path],
    regions: tuple[str, str],
) -> Iterator[dict[str, GatewayProcess]]:
    """Two registry gateways peered over mTLS (peer ports fixed up front); the second names
    the first as its seed. Both stopped by their process groups."""
    first, second = regions
    peer = {region: free_port() for region in regions}
    gateways: dict[str, GatewayProcess] = {}
    try:
        for region in regions:
            args = [
                *registry_args(deployed),
                "--peer-listen", f"127.0.0.1:{peer[region]}",
                "--tls-dir", str(tls_dir(region)),
            ]  # fmt: skip
            if region == second:
                args += ["--peer", f"127.0.0.1:{peer[first]}"]
            gw = GatewayProcess(root / region, region=region, extra_args=args, ready_timeout=60)
            gateways[region] = gw
            start_serving(gw)
        yield gateways
    finally:
        for gw in gateways.values():
            gw.stop()
