"""The Subscriptions API with access control: Ganache + the registry + a real gateway process
+ real HTTP (sign-in over HTTP, Bearer tokens) + a real webhook sink.

Creating a subscription needs a read grant like subscribing; only its owner sees or deletes
it; a revoke mid-stream stops the webhook (audited as a denied delivery) and a new grant
resumes it.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.registry import RegistryClient
from meshgate.client import GatewayClient
from meshgate.devchain import DevChain
from policy.audit import audit_path, read_entries
from policy.identity import ALL_TOPICS, Challenge
from policy.signin import build_message, sign_message
from tests.integration.webhook_sink import Sink
from tests.support.chain_fixtures import DeployedRegistry, deploy
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("webhook-chain"), pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def chain() -> Iterator[DeployedRegistry]:
    dev = DevChain()
    try:
        dev.start()
        yield deploy(dev)
    finally:
        dev.stop()


@pytest.fixture
def owner(chain: DeployedRegistry) -> RegistryClient:
    return chain.client(Account.from_key(chain.chain.accounts[1].private_key))


@pytest.fixture
def gateway(tmp_path: Path, chain: DeployedRegistry) -> Iterator[GatewayProcess]:
    with registry_gateway(tmp_path / "gw", chain, "--http-listen", "127.0.0.1:0") as gw:
        yield gw


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sinks() -> AsyncIterator[list[Sink]]:
    made: list[Sink] = []
    try:
        yield made
    finally:
        for sink in made:
            await sink.stop()


class Api:
    """The Subscriptions API as one signed-in account (or nobody: token None)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str | None) -> None:
        self.http, self.base = http, base
        self.headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = f"{self.base}{path}"
        async with self.http.request(method, url, json=body, headers=self.headers) as resp:
            text = await resp.text()
            return resp.status, (None if not text else await resp.json())


async def sign_in(http: aiohttp.ClientSession, base: str, account: LocalAccount) -> Api:
    async with http.get(f"{base}/signin/nonce") as resp:
        n = await resp.json()
    expires = dt.datetime.fromisoformat(n["expires_at"].replace("Z", "+00:00")).timestamp()
    challenge = Challenge(n["nonce"], n["domain"], n["uri"], n["chain_id"], expires)
    message = build_message(account.address, challenge, [ALL_TOPICS], time.time())
    signature = "0x" + sign_message(account, message).hex()
    async with http.post(f"{base}/signin", json={"message": message, "signature": signature}) as r:
        body = await r.json()
        assert r.status == 200, body
    return Api(http, base, body["session_token"])


def event(n: int) -> CloudEvent:
    return CloudEvent({"type": "t.webhook", "source": "/wh-test", "id": f"e{n}"}, {"n": n})


async def create_when_visible(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    """POST until the gateway's grant view shows the grant (the chain is followed)."""
    answer: dict[str, Any] = {}

    async def created() -> bool:
        nonlocal answer
        status, answer = await api.call("POST", "/subscriptions", body)
        assert status in (201, 403), answer
        return status == 201

    await async_wait_for(created, timeout=45, what="grant visible to the gateway")
    return answer


async def publish_when_visible(client: GatewayClient, topic: str, ev: CloudEvent) -> None:
    async def published() -> bool:
        try:
            await client.publish(topic, ev)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE):
                return False
            raise
        return True

    await async_wait_for(published, timeout=45, what="publisher visible")


async def test_creating_needs_a_grant_and_only_the_owner_sees_it(
    gateway: GatewayProcess,
    owner: RegistryClient,
    http: aiohttp.ClientSession,
    sinks: list[Sink],
) -> None:
    assert gateway.http_url is not None
    topic = f"whs-{uuid.uuid4().hex[:10]}"
    reader, stranger = Account.create(), Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address)
    sink = await Sink().start()
    sinks.append(sink)
    body = {"sink": sink.url, "config": {"topic": topic}}

    status, answer = await Api(http, gateway.http_url, None).call("POST", "/subscriptions", body)
    assert status == 401, answer
    as_stranger = await sign_in(http, gateway.http_url, stranger)
    status, answer = await as_stranger.call("POST", "/subscriptions", body)
    assert status == 403 and "no grant" in answer["error"], answer

    as_reader = await sign_in(http, gateway.http_url, reader)
    created = await create_when_visible(as_reader, body)
    path = f"/subscriptions/{created['id']}"
    assert await as_reader.call("GET", "/subscriptions") == (200, [created])
    assert await as_stranger.call("GET", "/subscriptions") == (200, [])
    for method in ("GET", "DELETE"):
        status, answer = await as_stranger.call(method, path)
        assert status == 404, answer  # another owner's id is not revealed
    status, answer = await as_stranger.call("PUT", path, body)
    assert status == 404, answer
    assert (await as_reader.call("DELETE", path))[0] == 204
    assert (await as_reader.call("GET", path))[0] == 404


async def test_revoke_mid_stream_stops_the_webhook(
    gateway: GatewayProcess,
    owner: RegistryClient,
    http: aiohttp.ClientSession,
    sinks: list[Sink],
) -> None:
    assert gateway.http_url is not None
    topic = f"whr-{uuid.uuid4().hex[:10]}"
    reader = Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address)
    owner.grant(topic, owner.signer.address)
    revoked_sink, control_sink = await Sink().start(), await Sink().start()
    sinks += [revoked_sink, control_sink]
    as_reader = await sign_in(http, gateway.http_url, reader)
    created = await create_when_visible(
        as_reader, {"sink": revoked_sink.url, "config": {"topic": topic}}
    )
    as_owner = await sign_in(http, gateway.http_url, owner.signer)
    await create_when_visible(as_owner, {"sink": control_sink.url, "config": {"topic": topic}})
    async with GatewayClient(gateway.listen, signer=owner.signer, timeout=20) as pub:
        await publish_when_visible(pub, topic, event(0))
        await async_wait_for(lambda: _has(revoked_sink, 1), timeout=30, what="first event")

        owner.revoke(topic, reader.address)

        async def stopped() -> bool:
            status, answer = await as_reader.call("GET", f"/subscriptions/{created['id']}/status")
            assert status == 200, answer
            return str(answer["status"]).startswith("stopped")

        await async_wait_for(stopped, timeout=45, what="the webhook to stop")
        for n in range(1, 4):
            await pub.publish(topic, event(n))
        # The control subscription (same topic, still granted) receives them all...
        await async_wait_for(lambda: _has(control_sink, 4), timeout=30, what="control events")
    # ... the revoked one nothing more.
    assert revoked_sink.accepted_ids() == ["e0"]
    entries = [
        e
        for e in read_entries(audit_path(gateway.data_dir), topic=topic)
        if e.address == reader.address.lower()
    ]
    assert entries[0].decision == "allow"
    assert (entries[-1].action, entries[-1].decision) == ("stream", "deny")
    assert "revoked" in entries[-1].reason

    # A new grant resumes it where it stopped: the group kept the events, in order.
    owner.grant(topic, reader.address)
    await async_wait_for(lambda: _has(revoked_sink, 4), timeout=45, what="delivery resumed")
    assert revoked_sink.accepted_ids() == ["e0", "e1", "e2", "e3"]
    entries = list(read_entries(audit_path(gateway.data_dir), topic=topic))
    assert [e.decision for e in entries if e.address == reader.address.lower()][-2:] == [
        "deny",
        "allow",
    ]


async def _has(sink: Sink, n: int) -> bool:
    return len(sink.accepted) >= n
