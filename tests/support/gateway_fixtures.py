"""Fixtures for the gateway layer's tests (and other layers' tests that need a gateway)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway_process import GatewayProcess, start_serving


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A running `meshgate gateway run` (region eu, metrics on), stopped after the test."""
    proc = GatewayProcess(tmp_path / "gw", extra_args=["--ack-timeout", "2"])
    try:
        yield start_serving(proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def shared_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway process for the whole session (ack timeout 2 s, metrics on).

    Tests that share it must use topic and group names no other test uses.
    """
    proc = GatewayProcess(tmp_path_factory.mktemp("shared-gw"), extra_args=["--ack-timeout", "2"])
    try:
        yield start_serving(proc)
    finally:
        proc.stop()
