"""Fixtures for the gateway layer's tests (and other layers' tests that need a gateway)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import GatewayConfig
from tests.support.gateway_process import GatewayProcess


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A running `meshgate gateway run` (region eu, metrics on), stopped after the test."""
    proc = GatewayProcess(tmp_path / "gw", extra_args=["--ack-timeout", "2"])
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def shared_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway process for the whole session (ack timeout 2 s, metrics on).

    Tests that share it must use topic and group names no other test uses.
    """
    proc = GatewayProcess(tmp_path_factory.mktemp("shared-gw"), extra_args=["--ack-timeout", "2"])
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture
async def inproc_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """An in-process Gateway on a free port (no subprocess), closed after the test."""
    config = GatewayConfig(region="eu", data_dir=tmp_path / "gw", ack_timeout=1.0)
    async with Gateway(config) as gw:
        yield gw
