"""A running gateway notices its audit log was edited: access fails closed, a metric says why.

Real Ganache, real registry, a real gateway process with /metrics on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account

from ledger.registry import RegistryClient
from meshgate.client import GatewayClient
from policy.audit import audit_path
from tests.integration.gateway_helpers import metric, scrape
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    with registry_gateway(tmp_path / "gw", registry, metrics=True, websocket=True) as gw:
        yield gw


async def test_an_audit_log_edited_while_running_fails_closed_and_shows_in_metrics(
    gateway: GatewayProcess, owner: RegistryClient, topic_name: str
) -> None:
    assert gateway.metrics_url is not None
    url = gateway.metrics_url
    assert metric(scrape(url), "meshgate_audit_tampered") == 0
    owner.register(topic_name)
    stranger = Account.create()
    event = CloudEvent({"type": "t.audit", "source": "/audit", "id": "a1"}, {"n": 1})
    async with GatewayClient(gateway.listen, signer=stranger, timeout=20) as client:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await client.publish(topic_name, event)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED  # audited: a deny
        with audit_path(gateway.data_dir).open("a") as log:
            log.write('{"seq": 999, "forged": true}\n')  # someone edits the log under us
        with pytest.raises(grpc.aio.AioRpcError) as closed:
            await client.publish(topic_name, event)
    assert closed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "audit log" in (closed.value.details() or "")
    await asyncio.to_thread(
        wait_for,
        lambda: metric(scrape(url), "meshgate_audit_tampered") == 1,
        30,
        0.1,
        "meshgate_audit_tampered 1",
    )
