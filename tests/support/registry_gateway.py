"""A real gateway process that follows a deployed registry: the one way tests start one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess


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
        yield proc.start()
    finally:
        proc.stop()
        print(f"--- gateway stderr (tail) ---\n{proc.stderr_tail(40)}")
