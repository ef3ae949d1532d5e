"""Server-Sent Events against a real gateway process: one message per delivery, resume with
Last-Event-ID, live events, heartbeats, and a group shared with gRPC."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from meshgate.processes import GatewayProcess

HEARTBEAT = 0.3  # s, the gateway's [http] heartbeat here
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


@pytest.fixture(scope="module")
def sse_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    data = tmp_path_factory.mktemp("sse-gw")
    config = data / "gateway.toml"
    config.write_text(f"[http]\nlisten = '127.0.0.1:0'\nheartbeat = {HEARTBEAT}\n")
    proc = GatewayProcess(data / "gw", metrics=False, extra_args=["--config", str(config)])
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection per request: no race with the gateway closing an idle keep-alive one.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


@pytest.fixture
def topic() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def url(gw: GatewayProcess, topic: str) -> str:
    assert gw.http_url is not None
    return f"{gw.http_url}/topics/{topic}/events"


async def publish(http: aiohttp.ClientSession, gw: GatewayProcess, topic: str, ids: range) -> None:
    batch = [
        {"specversion": "1.0", "id": f"e{i}", "source": "/sse", "type": "t", "data": {"n": i}}
        for i in ids
    ]
    async with http.post(url(gw, topic), data=json.dumps(batch), headers=BATCH) as resp:
        assert resp.status == 200, await resp.text()


async def messages(resp: aiohttp.ClientResponse, n: int) -> list[tuple[int, dict[str, Any]]]:
    """The next `n` SSE messages (id, data), skipping comments (heartbeats)."""
    out: list[tuple[int, dict[str, Any]]] = []
    event_id: int | None = None
    async with asyncio.timeout(20):
        while len(out) < n:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                assert event_id is not None
                out.append((event_id, json.loads(line[6:])))
    return out


async def test_resume_with_last_event_id_then_live(
    sse_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str
) -> None:
    await publish(http, sse_gateway, topic, range(5))
    async with http.get(url(sse_gateway, topic)) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        first = await messages(resp, 3)
    assert [(o, d["id"], d["data"]) for o, d in first] == [
        (0, "e0", {"n": 0}),
        (1, "e1", {"n": 1}),
        (2, "e2", {"n": 2}),
    ]
    # A browser reconnects to the same URL with the last id it saw.
    async with http.get(url(sse_gateway, topic), headers={"Last-Event-ID": "2"}) as resp:
        resumed = await messages(resp, 2)
        assert [o for o, _ in resumed] == [3, 4]
        await publish(http, sse_gateway, topic, range(5, 7))
        live = await messages(resp, 2)
        assert [(o, d["id"]) for o, d in live] == [(5, "e5"), (6, "e6")]


async def test_from_latest_and_heartbeats(
    sse_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str
) -> None:
    await publish(http, sse_gateway, topic, range(3))
    async with http.get(url(sse_gateway, topic), params={"from": "latest"}) as resp:
        async with asyncio.timeout(20):
            seen = [await resp.content.readline() for _ in range(4)]
        assert seen[0].startswith(b": subscribed topic=") and b"start=3" in seen[0]
        assert b": heartbeat\n" in seen[2:]  # nothing to send: a comment keeps it open
        await publish(http, sse_gateway, topic, range(3, 4))
        [(offset, data)] = await messages(resp, 1)
        assert (offset, data["id"]) == (3, "e3")


async def test_a_group_resumes_where_it_was_acknowledged(
    sse_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str
) -> None:
    await publish(http, sse_gateway, topic, range(4))
    params = {"group": "workers"}
    async with http.get(url(sse_gateway, topic), params=params) as resp:
        assert [o for o, _ in await messages(resp, 4)] == [0, 1, 2, 3]
    await publish(http, sse_gateway, topic, range(4, 6))
    async with http.get(url(sse_gateway, topic), params=params) as resp:
        assert [o for o, _ in await messages(resp, 2)] == [4, 5]


async def test_bad_positions_are_400(
    sse_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str
) -> None:
    async with http.get(url(sse_gateway, topic), params={"from": "yesterday"}) as resp:
        assert resp.status == 400
        assert "from='yesterday'" in (await resp.json())["error"]
    async with http.get(url(sse_gateway, topic), headers={"Last-Event-ID": "x"}) as resp:
        assert resp.status == 400
