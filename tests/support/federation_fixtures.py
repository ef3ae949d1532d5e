"""Fixtures for the federation layer's tests: a CA and per-region identities (session-scoped)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from federation.certs import Identity, create_ca, issue_gateway


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
