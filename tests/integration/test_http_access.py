"""The HTTP edge with access control: Ganache + the registry + a real gateway process, signed in
over HTTP (GET /signin/nonce, POST /signin, Bearer tokens): 401 without a token, 403 without
a grant, 200 with one, the same audit entries as gRPC, and a revoke ending an SSE stream."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from eventmodel import provenance
from eventmodel.attributes import PbEvent
from gateway.http import binding
from ledger.registry import RegistryClient
from meshgate.devchain import DevChain
from policy.audit import audit_path, read_entries
from policy.identity import Challenge
from policy.signin import ALL_TOPICS, sign_in
from tests.support.chain_fixtures import DeployedRegistry, deploy
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    with registry_gateway(tmp_path / "gw", registry, "--http-listen", "127.0.0.1:0") as gw:
        yield gw


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection per request: no race with the gateway closing an idle keep-alive one.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


def base(gw: GatewayProcess) -> str:
    assert gw.http_url is not None
    return gw.http_url


@dataclass(frozen=True)
class HttpSession:
    """A sign-in over HTTP: the token, the account, and what its events are signed for."""

    token: str
    account: LocalAccount
    binding: provenance.Binding


async def sign_in_http(
    http: aiohttp.ClientSession, gw: GatewayProcess, who: LocalAccount
) -> HttpSession:
    """The HTTP sign-in flow a browser wallet would run."""
    async with http.get(f"{base(gw)}/signin/nonce") as resp:
        assert resp.status == 200
        nonce = await resp.json()
    expires = time.time() + 300  # the challenge's own expiry is checked by the gateway
    challenge = Challenge(nonce["nonce"], nonce["domain"], nonce["uri"], nonce["chain_id"], expires)
    proof = sign_in(who, challenge, [ALL_TOPICS], time.time())
    body = {"message": proof.message, "signature": "0x" + proof.signature.hex()}
    async with http.post(f"{base(gw)}/signin", json=body) as resp:
        answer = await resp.json()
        assert resp.status == 200, answer
    assert answer["address"] == who.address
    binding_ = provenance.Binding.of(nonce["chain_id"], nonce["registry"])
    return HttpSession(str(answer["session_token"]), who, binding_)


def event(i: int, topic: str, session: HttpSession | None) -> str:
    """Event `i` in the JSON format, publisher-signed (Binary extensions as Base64) if signed in."""
    pb = PbEvent(id=f"a{i}", source="/acl", spec_version="1.0", type="t")
    if session is not None:
        provenance.sign_events([pb], topic=topic, binding=session.binding, signer=session.account)
    return binding.to_json(pb)


async def publish(
    http: aiohttp.ClientSession,
    gw: GatewayProcess,
    topic: str,
    i: int,
    session: HttpSession | None,
    token: str | None = None,
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    headers = dict(STRUCTURED)
    token = session.token if session is not None else token
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = event(i, topic, session)
    async with http.post(f"{base(gw)}/topics/{topic}/events", data=body, headers=headers) as r:
        return r.status, await r.json(), r.headers


async def test_401_403_then_200_after_sign_in_and_grant(
    gateway: GatewayProcess,
    registry: DeployedRegistry,
    http: aiohttp.ClientSession,
    owner: RegistryClient,
    topic_name: str,
) -> None:
    owner.register(topic_name)
    publisher = Account.create()

    status, body, headers = await publish(http, gateway, topic_name, 1, None)
    assert status == 401 and body["error"].startswith("no credentials")
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = await publish(http, gateway, topic_name, 1, None, "not-a-token")
    assert status == 401 and body["error"].startswith("session invalid")

    session = await sign_in_http(http, gateway, publisher)
    assert session.binding.registry_hex.lower() == registry.address.lower()
    status, body, _ = await publish(http, gateway, topic_name, 1, session)
    assert status == 403 and "not a publisher" in body["error"]

    owner.allow_publisher(topic_name, publisher.address)
    status, body, _ = await publish(http, gateway, topic_name, 2, session)
    assert status == 200, body  # the gateway catches its view up before it would deny
    assert body["results"] == [{"id": "a2", "offset": 0, "duplicate": False}]
    status, body, _ = await publish(http, gateway, f"{topic_name}-unregistered", 3, session)
    assert status == 404 and body["error"].startswith("unknown topic"), body

    decisions = [
        (e.action, e.decision)
        for e in read_entries(audit_path(gateway.data_dir), topic=topic_name)
        if e.address == publisher.address.lower()
    ]
    assert decisions == [("publish", "deny"), ("publish", "allow")]


async def test_sse_needs_a_grant_and_a_revoke_ends_it(
    gateway: GatewayProcess,
    http: aiohttp.ClientSession,
    owner: RegistryClient,
    topic_name: str,
) -> None:
    owner.register(topic_name)
    reader = Account.create()
    url = f"{base(gateway)}/topics/{topic_name}/events"
    async with http.get(url) as resp:
        assert resp.status == 401
    auth = {"Authorization": f"Bearer {(await sign_in_http(http, gateway, reader)).token}"}
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 403 and "no grant" in (await resp.json())["error"]

    owner.grant(topic_name, reader.address)
    owner.allow_publisher(topic_name, owner.signer.address)
    owner_session = await sign_in_http(http, gateway, owner.signer)

    async def published() -> bool:
        status, _, _ = await publish(http, gateway, topic_name, 1, owner_session)
        return status == 200

    await async_wait_for(published, timeout=45, what="the publisher grant")
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 200
        lines: list[str] = []

        async def read_until(prefix: str) -> None:
            async with asyncio.timeout(45):
                while not any(line.startswith(prefix) for line in lines):
                    raw = await resp.content.readline()
                    assert raw, f"stream ended before {prefix!r}: {lines}"
                    lines.append(raw.decode().rstrip("\n"))

        await read_until("data: ")
        owner.revoke(topic_name, reader.address)
        await read_until("event: error")
        async with asyncio.timeout(20):
            data = (await resp.content.readline()).decode()
        error = json.loads(data.removeprefix("data: "))
        assert error["status"] == 403 and "revoked" in error["error"]
        async with asyncio.timeout(20):
            assert await resp.content.read() in (b"", b"\n")  # and the stream ends


@pytest.mark.slow
async def test_a_stale_chain_view_is_503_with_retry_after(
    chain_factory: Callable[[], DevChain], tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    chain = chain_factory()
    deployed = deploy(chain)
    owner = deployed.client(Account.from_key(chain.accounts[1].private_key))
    topic = f"h-{uuid.uuid4().hex[:12]}"
    owner.register(topic)  # the owner may publish to its own topic
    gw = GatewayProcess(
        tmp_path / "gw",
        metrics=False,
        extra_args=[
            "--rpc", chain.url, "--registry", deployed.address,
            "--chain-id", str(chain.chain_id), "--staleness", "2s",
            "--http-listen", "127.0.0.1:0",
        ],
        ready_timeout=60,
    )  # fmt: skip
    try:
        gw.start()
        session = await sign_in_http(http, gw, owner.signer)
        outcomes: list[int] = []

        async def status_is(wanted: int) -> bool:
            status, _, headers = await publish(http, gw, topic, len(outcomes), session)
            outcomes.append(status)
            if status == 503:
                assert headers["Retry-After"] == "5"
            return status == wanted

        await async_wait_for(lambda: status_is(200), timeout=45, what="a first publish")
        await asyncio.to_thread(chain.stop)
        await async_wait_for(lambda: status_is(503), timeout=45, what="access to pause")
        assert set(outcomes) <= {200, 503}  # never a 500 while the chain is gone
    finally:
        gw.stop()
