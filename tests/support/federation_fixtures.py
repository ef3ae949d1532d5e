"""Fixtures for the federation layer's tests: a CA and per-region identities (session-scoped)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from federation.certs import Identity, create_ca, issue_gateway
from tests.support.gateway_process import GatewayProcess, start_serving
from tests.support.waiting import free_port


@pytest.fixture(scope="session")
def federation_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ca_dir = tmp_path_factory.mktemp("federation-ca")
    create_ca(ca_dir)
    return ca_dir


@pytest.fixture(scope="session")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ca_dir = tmp_path_factory.mktemp("foreign-ca")
    create_ca(ca_dir, name="some other federation")
    return ca_dir


@pytest.fixture(scope="session")
def region_identity(
    federation_ca: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Identity]:
    """`region_identity("eu")`: that region's identity issued by the federation CA (cached)."""
    cache: dict[str, Identity] = {}

    def issue(region: str) -> Identity:
        if region not in cache:
            cache[region] = issue_gateway(
                federation_ca, region, tmp_path_factory.mktemp(f"tls-{region}")
            )
        return cache[region]

    return issue


@pytest.fixture(scope="session")
def region_tls_dir(
    federation_ca: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """`region_tls_dir("eu")`: a gateway TLS directory for that region (cached)."""
    cache: dict[str, Path] = {}

    def issue(region: str) -> Path:
        if region not in cache:
            out = tmp_path_factory.mktemp(f"tlsdir-{region}")
            issue_gateway(federation_ca, region, out)
            cache[region] = out
        return cache[region]

    return issue


class GatewayCluster:
    """Real `meshgate gateway run` processes peered over mTLS (peer ports fixed up front, so a
    restarted gateway comes back where its peers look for it)."""

    def __init__(self, root: Path, tls_dir: Callable[[str], Path]) -> None:
        self.root = root
        self._tls_dir = tls_dir
        self.gateways: dict[str, GatewayProcess] = {}
        self.peer_addr: dict[str, str] = {}

    def start(self, region: str, peers: Sequence[str] = (), *, mesh: bool = True) -> GatewayProcess:
        self.peer_addr.setdefault(region, f"127.0.0.1:{free_port()}")
        args = ["--peer-listen", self.peer_addr[region], "--tls-dir", str(self._tls_dir(region))]
        for p in peers:
            args += ["--peer", self.peer_addr.setdefault(p, f"127.0.0.1:{free_port()}")]
        if not mesh:
            args.append("--no-mesh")
        gw = GatewayProcess(self.root / region, region=region, extra_args=args)
        self.gateways[region] = gw
        return start_serving(gw)

    def stop_all(self) -> None:
        for gw in self.gateways.values():
            gw.stop()


@pytest.fixture
def gateway_cluster(
    tmp_path: Path, region_tls_dir: Callable[[str], Path]
) -> Iterator[GatewayCluster]:
    cluster = GatewayCluster(tmp_path, region_tls_dir)
    try:
        yield cluster
    finally:
        cluster.stop_all()
