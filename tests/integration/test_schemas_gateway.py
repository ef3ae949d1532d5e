"""Schemas on chain, enforced by real registry gateways (issue 16).

The owner's CLI adds versions (refusing a breaking one before sending it); a gateway follows
the chain, validates at publish and refuses the whole request when one event does not match
(nothing stored); a breaking version put on chain anyway is ignored by the gateway with its
reason (ListSchemas, HTTP); a non-owner cannot add a schema; the compatibility mode is set on
chain. Two peered registry gateways both show and enforce a schema added once on the chain.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account.signers.local import LocalAccount

from eventmodel import provenance, sdk
from ledger.keys import write_keystore
from meshgate.cli import main
from meshgate.client import GatewayClient
from policy.schemas.errors import DataInvalid
from policy.schemas.model import schema_uri
from proto import gateway_pb2
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway, registry_pair
from tests.support.waiting import async_wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(300)]

TYPE = "order.created"
V1 = {
    "type": "object",
    "properties": {"qty": {"type": "integer", "minimum": 1}, "note": {"type": "string"}},
    "required": ["qty"],
    "additionalProperties": False,
}
V2_BREAKING = {**V1, "properties": {**V1["properties"], "sku": {"type": "string"}}}
V2_BREAKING["required"] = ["qty", "sku"]
PASSWORD = "pw"


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    with registry_gateway(tmp_path / "gw", registry, "--http-listen", "127.0.0.1:0") as gw:
        yield gw


def keyfile(tmp_path: Path, account: LocalAccount) -> Path:
    path = tmp_path / f"{account.address}.json"
    write_keystore(path, bytes(account.key), PASSWORD, light=True)
    return path


def schema_cli(
    capsys: pytest.CaptureFixture[str], registry: DeployedRegistry, key: Path, *args: str
) -> tuple[int, str, str]:
    chain = ["--rpc", registry.chain.url, "--registry", registry.address, "--key-file", str(key)]
    action, rest = args[0], args[1:]
    code = main(["schema", action, *chain, *rest])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def event(id: str, data: Any, **attrs: Any) -> CloudEvent:
    return CloudEvent({"type": TYPE, "source": "/shop", "id": id, **attrs}, data)


async def raw_publish(client: GatewayClient, topic: str, *events: CloudEvent) -> None:
    """Signed by the client's key, sent as built: no client-side schema step."""
    creds = await client.sign_in()
    nonce = await client.stub.GetNonce(gateway_pb2.GetNonceRequest(), timeout=20)
    binding = provenance.Binding.of(nonce.chain_id, nonce.registry)
    request = gateway_pb2.PublishRequest(topic=topic, credentials=creds)
    request.batch.events.extend(sdk.to_pb(e) for e in events)
    provenance.sign_events(request.batch.events, topic=topic, binding=binding, signer=client.signer)
    await client.stub.Publish(request, timeout=20)


async def refused(client: GatewayClient, topic: str, *events: CloudEvent) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw_publish(client, topic, *events)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return info.value.details() or ""


async def listed(client: GatewayClient, topic: str) -> gateway_pb2.ListSchemasResponse:
    request = gateway_pb2.ListSchemasRequest(topic=topic, type=TYPE)
    return await client.stub.ListSchemas(request, timeout=20)


async def wait_versions(client: GatewayClient, topic: str, count: int) -> list[Any]:
    async def enough() -> list[Any]:
        versions = list((await listed(client, topic)).versions)
        return versions if len(versions) >= count else []

    return await async_wait_for(enough, timeout=30, what=f"{count} schema versions")


async def stored(client: GatewayClient, topic: str) -> int:
    topics = {t.name: t.event_count for t in await client.topics()}
    return topics.get(topic, 0)


async def test_the_cli_adds_the_gateway_enforces_and_ignores_a_breaking_version(
    tmp_path: Path,
    gateway: GatewayProcess,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESHGATE_KEY_PASSWORD", PASSWORD)
    topic = f"sch-{uuid.uuid4().hex[:10]}"
    owner_account = funded_account()
    owner = registry.client(owner_account)
    owner.register(topic)
    key = keyfile(tmp_path, owner_account)
    (tmp_path / "v1.json").write_text(json.dumps(V1))
    (tmp_path / "v2.json").write_text(json.dumps(V2_BREAKING))

    code, out, err = schema_cli(
        capsys, registry, key, "add", topic, TYPE, str(tmp_path / "v1.json")
    )
    assert code == 0, err
    assert out.startswith(f"added {schema_uri(topic, TYPE, 1)} (json): tx 0x")
    code, _, err = schema_cli(capsys, registry, key, "add", topic, TYPE, str(tmp_path / "v2.json"))
    assert code == 1
    assert "not added: breaks BACKWARD against version 1: at /: property 'sku' is required" in err

    async with GatewayClient(gateway.listen, signer=owner_account, signin_topics=[topic]) as client:
        (v1,) = await wait_versions(client, topic, 1)
        assert (v1.version, v1.format, v1.accepted, v1.uri) == (
            1,
            "json",
            True,
            schema_uri(topic, TYPE, 1),
        )
        assert (await listed(client, topic)).compatibility == "BACKWARD"

        # one bad event refuses the whole request, naming the path; nothing is stored
        details = await refused(client, topic, event("good", {"qty": 2}), event("bad", {"qty": 0}))
        assert details.startswith(
            f"event 'bad' does not match {schema_uri(topic, TYPE, 1)} at /qty:"
        )
        assert await stored(client, topic) == 0
        await raw_publish(client, topic, event("good", {"qty": 2}))
        assert await stored(client, topic) == 1

        # the client validates first (nothing sent) and fills dataschema before signing
        with pytest.raises(DataInvalid, match="at /qty"):
            await client.publish(topic, event("client-bad", {"qty": "x"}))
        await client.publish(topic, event("auto", {"qty": 4}))
        async with asyncio.timeout(30), client.subscribe(topic) as sub:
            async for received in sub:
                if received.event.get_id() == "auto":
                    dataschema = received.event.get_attributes()["dataschema"]
                    assert str(dataschema) == schema_uri(topic, TYPE, 1)
                    break
        assert await stored(client, topic) == 2

        # a breaking version put on chain anyway (not through the CLI) is ignored, with its reason
        owner.add_schema(topic, TYPE, 1, json.dumps(V2_BREAKING).encode())
        _, v2 = await wait_versions(client, topic, 2)
        assert not v2.accepted and v2.reason.startswith("breaks BACKWARD against version 1: at /:")
        await raw_publish(client, topic, event("no-sku", {"qty": 3}))  # still v1's rules
        details = await refused(
            client, topic, event("names-v2", {"qty": 3}, dataschema=schema_uri(topic, TYPE, 2))
        )
        assert "is not accepted (breaks BACKWARD" in details
        assert await stored(client, topic) == 3

        # over HTTP, shaped like xRegistry
        assert gateway.http_url is not None
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async with http.get(f"{gateway.http_url}/schemagroups/{topic}/schemas") as resp:
                assert resp.status == 200
                body = await resp.json()
            versions = body["schemas"][TYPE]["versions"]
            assert (
                body["compatibility"] == "BACKWARD"
                and body["schemas"][TYPE]["defaultversionid"] == "1"
            )
            assert [versions[v]["accepted"] for v in ("1", "2")] == [True, False]
            url = f"{gateway.http_url}/schemagroups/{topic}/schemas/{TYPE}/versions/2"
            async with http.get(url) as resp:
                assert resp.status == 200 and resp.headers["xRegistry-accepted"] == "false"
                assert json.loads(await resp.read()) == V2_BREAKING
            async with http.get(
                f"{gateway.http_url}/schemagroups/{topic}/schemas/{TYPE}/versions/9"
            ) as resp:
                assert resp.status == 404

    code, out, _ = schema_cli(capsys, registry, key, "list", topic)
    assert out.splitlines() == [
        f"{topic}: compatibility BACKWARD",
        f"{schema_uri(topic, TYPE, 1)}  json  accepted",
        f"{schema_uri(topic, TYPE, 2)}  json  ignored: {v2.reason}",
    ]
    (tmp_path / "good.json").write_text('{"qty": 5}')
    (tmp_path / "bad.json").write_text('{"qty": "five"}')
    assert (
        schema_cli(capsys, registry, key, "check", topic, TYPE, str(tmp_path / "good.json"))[0] == 0
    )
    code, _, err = schema_cli(
        capsys, registry, key, "check", topic, TYPE, str(tmp_path / "bad.json")
    )
    assert code == 1 and "at /qty" in err
    code, out, _ = schema_cli(capsys, registry, key, "show", topic, TYPE)
    assert code == 0 and json.loads(out) == V1

    # only the owner adds schemas (the contract refuses anyone else)
    stranger = keyfile(tmp_path, funded_account())
    code, _, err = schema_cli(
        capsys, registry, stranger, "add", topic, TYPE, str(tmp_path / "v1.json")
    )
    assert code == 1 and "not the owner of topic" in err

    # under NONE a breaking version is accepted, and stays so once BACKWARD is back
    assert schema_cli(capsys, registry, key, "mode", topic, "NONE")[0] == 0
    code, _, err = schema_cli(capsys, registry, key, "add", topic, TYPE, str(tmp_path / "v2.json"))
    assert code == 0, err
    assert schema_cli(capsys, registry, key, "mode", topic, "backward")[0] == 0
    async with GatewayClient(gateway.listen, signer=owner_account, signin_topics=[topic]) as client:
        *_, v3 = await wait_versions(client, topic, 3)
        assert v3.accepted
        details = await refused(client, topic, event("no-sku-now", {"qty": 3}))
        assert "versions/3 at /:" in details and "sku" in details


async def test_a_schema_on_chain_reaches_every_region(
    tmp_path: Path,
    registry: DeployedRegistry,
    region_tls_dir: Callable[[str], Path],
    funded_account: Callable[[], LocalAccount],
) -> None:
    topic = f"sch-{uuid.uuid4().hex[:10]}"
    owner_account = funded_account()
    owner = registry.client(owner_account)
    owner.register(topic)
    with registry_pair(tmp_path, registry, region_tls_dir, ("eu", "ap")) as gateways:
        owner.add_schema(topic, TYPE, 1, json.dumps(V1).encode())
        for region, gw in gateways.items():
            async with GatewayClient(
                gw.listen, signer=owner_account, signin_topics=[topic]
            ) as client:
                (version,) = await wait_versions(client, topic, 1)
                assert version.accepted, region
                details = await refused(client, topic, event(f"bad-{region}", {"qty": "x"}))
                assert "at /qty" in details
                await raw_publish(client, topic, event(f"good-{region}", {"qty": 1}))

        # a matching event published in eu passes ap's federation door too (interest first:
        # publish probes until one arrives)
        eu, ap = gateways["eu"], gateways["ap"]
        async with (
            GatewayClient(eu.listen, signer=owner_account, signin_topics=[topic]) as pub,
            GatewayClient(ap.listen, signer=owner_account, signin_topics=[topic]) as sub_client,
            sub_client.subscribe(topic, start="latest") as sub,
        ):
            arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()

            async def read() -> None:
                async for received in sub:
                    if received.event.get_id().startswith("probe-"):
                        arrived.set_result(received.event.get_id())
                        return

            reader = asyncio.create_task(read())
            try:
                async with asyncio.timeout(60):
                    n = 0
                    while not arrived.done():
                        n += 1
                        await pub.publish(topic, event(f"probe-{n}", {"qty": n}))
                        await asyncio.wait([arrived], timeout=0.5)
            finally:
                reader.cancel()
            assert arrived.result().startswith("probe-")
