"""The HTTP edge's ingress against a real gateway process: the three modes of the CloudEvents
HTTP binding, HTTP <-> gRPC both ways with byte-for-byte fidelity, and bad input (each gets its
status and the gateway keeps serving), slow-loris clients included."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import grpc
import pytest

from eventmodel import sdk
from meshgate.client import GatewayClient
from meshgate.processes import GatewayProcess
from proto import cloudevents_pb2, gateway_pb2, gateway_pb2_grpc

PbEvent = cloudevents_pb2.CloudEvent
BODY_TIMEOUT = 2  # s, the gateway's [http] body_timeout and header_timeout here
STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


@pytest.fixture(scope="module")
def http_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    data = tmp_path_factory.mktemp("http-gw")
    config = data / "gateway.toml"
    config.write_text(
        f"[http]\nlisten = '127.0.0.1:0'\nheader_timeout = {BODY_TIMEOUT}\n"
        f"body_timeout = {BODY_TIMEOUT}\n"
    )
    proc = GatewayProcess(data / "gw", metrics=False, extra_args=["--config", str(config)])
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection per request: the gateway closes idle ones after header_timeout.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


@pytest.fixture
def topic() -> str:
    return f"h-{uuid.uuid4().hex[:12]}"


def events_url(gw: GatewayProcess, topic: str) -> str:
    assert gw.http_url is not None
    return f"{gw.http_url}/topics/{topic}/events"


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes | str, headers: dict[str, str]
) -> tuple[int, Any]:
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def read_pbs(target: str, topic: str, n: int) -> list[tuple[int, PbEvent]]:
    """The first `n` deliveries of `topic` over gRPC, as the protobuf events sent."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        hold = asyncio.Event()

        async def requests() -> AsyncIterator[gateway_pb2.SubscribeRequest]:
            open_ = gateway_pb2.SubscriptionOpen(topic=topic, credits=n)
            yield gateway_pb2.SubscribeRequest(open=open_)
            await hold.wait()

        call = stub.Subscribe(requests())
        out: list[tuple[int, PbEvent]] = []
        try:
            async with asyncio.timeout(20):
                async for resp in call:
                    if resp.WhichOneof("kind") == "batch":
                        out.extend((d.offset, d.event) for d in resp.batch.deliveries)
                        if len(out) >= n:
                            break
        finally:
            hold.set()
            call.cancel()
    return out


def structured(i: int, **extra: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e{i}", "source": "/http-test", "type": "t.http", **extra}


async def test_three_modes_store_and_answer_offsets(
    http_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str
) -> None:
    url = events_url(http_gateway, topic)
    binary = {
        "ce-specversion": "1.0",
        "ce-id": "b1",
        "ce-source": "/http-test",
        "ce-type": "t",
        "Content-Type": "text/plain; charset=utf-8",
    }
    assert await post(http, url, b"one", binary) == (
        200,
        {"results": [{"id": "b1", "offset": 0, "duplicate": False}]},
    )
    status, body = await post(http, url, json.dumps(structured(1, data={"n": 1})), STRUCTURED)
    assert status == 200 and body["results"] == [{"id": "e1", "offset": 1, "duplicate": False}]
    batch = [structured(i, data={"n": i}) for i in range(2, 5)]
    status, body = await post(http, url, json.dumps(batch), BATCH)
    assert status == 200
    assert [(r["id"], r["offset"]) for r in body["results"]] == [("e2", 2), ("e3", 3), ("e4", 4)]
    # Idempotent by (source, id), exactly as gRPC: the same events again are duplicates.
    status, body = await post(http, url, json.dumps(batch), BATCH)
    assert [(r["offset"], r["duplicate"]) for r in body["results"]] == [
        (2, True),
        (3, True),
        (4, True),
    ]
    got = await read_pbs(http_gateway.listen, topic, 5)
    assert [o for o, _ in got] == [0, 1, 2, 3, 4]
    assert got[0][1].text_data == "one"
    assert got[0][1].attributes["datacontenttype"].ce_string == "text/plain; charset=utf-8"
    assert [sdk.from_pb(pb).get_data() for _, pb in got[1:]] == [{"n": i} for i in range(1, 5)]


async def test_binary_mode_is_kept_byte_for_byte(
    http_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str
) -> None:
    every_byte = bytes(range(256)) * 4
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "bin-1",
        "ce-source": "https://example.org/a%2Fb",
        "ce-type": "com.example.%C3%A9v%C3%A8nement",
        "ce-time": "2026-01-02T03:04:05.123456789Z",
        "ce-dataschema": "https://example.org/schema",
        "ce-subject": "%22quoted%22%25",
        "Ce-TraceParent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "Content-Type": "application/octet-stream",
    }
    status, _ = await post(http, events_url(http_gateway, topic), every_byte, headers)
    assert status == 200
    [(_, got)] = await read_pbs(http_gateway.listen, topic, 1)
    want = PbEvent(
        id="bin-1",
        source="https://example.org/a/b",
        spec_version="1.0",
        type="com.example.évènement",
        binary_data=every_byte,
    )
    want.attributes["time"].ce_timestamp.FromJsonString("2026-01-02T03:04:05.123456789Z")
    want.attributes["dataschema"].ce_uri = "https://example.org/schema"
    want.attributes["subject"].ce_string = '"quoted"%'
    want.attributes["traceparent"].ce_string = headers["Ce-TraceParent"]
    want.attributes["datacontenttype"].ce_string = "application/octet-stream"
    assert got == want
    assert got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)


async def test_grpc_events_read_over_http_and_http_events_over_grpc(
    http_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str
) -> None:
    pb = PbEvent(id="g1", source="/grpc", spec_version="1.0", type="t", binary_data=b"\x00\xff")
    pb.attributes["count"].ce_integer = -7
    pb.attributes["flag"].ce_boolean = True
    pb.attributes["blob"].ce_bytes = b"\x01\x02"
    pb.attributes["link"].ce_uri = "urn:example:1"
    pb.attributes["when"].ce_timestamp.FromJsonString("2026-05-06T07:08:09.000000001Z")
    async with GatewayClient(http_gateway.listen) as client:
        await client.publish_pb(topic, [pb])
    url = events_url(http_gateway, topic)
    async with http.get(url, params={"from": "earliest"}) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        data = await _first_data(resp)
    assert data == {
        "specversion": "1.0",
        "id": "g1",
        "source": "/grpc",
        "type": "t",
        "blob": base64.b64encode(b"\x01\x02").decode(),
        "count": -7,
        "flag": True,
        "link": "urn:example:1",
        "when": "2026-05-06T07:08:09.000000001Z",
        "data_base64": base64.b64encode(b"\x00\xff").decode(),
    }
    # Back in over HTTP (structured, a new id): the JSON types come back as they were.
    status, _ = await post(http, url, json.dumps({**data, "id": "g2"}), STRUCTURED)
    assert status == 200
    got = await read_pbs(http_gateway.listen, topic, 2)
    back = got[1][1]
    assert back.binary_data == pb.binary_data
    assert back.attributes["count"] == pb.attributes["count"]
    assert back.attributes["flag"] == pb.attributes["flag"]
    # JSON has no Binary, URI or Timestamp type (only `time` is one by name): these come back
    # as their string forms, to the nanosecond.
    assert back.attributes["when"].ce_string == "2026-05-06T07:08:09.000000001Z"
    assert back.attributes["blob"].ce_string == base64.b64encode(b"\x01\x02").decode()
    assert back.attributes["link"].ce_string == "urn:example:1"


async def _first_data(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    async with asyncio.timeout(20):
        async for line in resp.content:
            if line.startswith(b"data: "):
                return dict(json.loads(line[len(b"data: ") :]))
    raise AssertionError("stream ended without an event")


async def test_bad_input_gets_its_status_and_stores_nothing(
    http_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str
) -> None:
    url = events_url(http_gateway, topic)
    status, body = await post(http, url, b'{"specversion": "1.0", "id": ', STRUCTURED)
    assert status == 400 and "not JSON" in body["error"]
    batch = [structured(1), structured(2, count=1.5), structured(3)]
    status, body = await post(http, url, json.dumps(batch), BATCH)
    assert status == 400
    assert body["error"] == "event 1: attribute 'count': a JSON number is not a CloudEvents type"
    no_id = {"ce-specversion": "1.0", "ce-source": "/http-test", "ce-type": "t"}
    status, body = await post(http, url, b"x", no_id)
    assert status == 400 and body["error"] == "event is missing required attribute 'id'"
    bad_type = [structured(1), structured(2, specversion="0.3")]
    status, body = await post(http, url, json.dumps(bad_type), BATCH)
    assert status == 400 and "specversion" in body["error"]
    status, body = await post(http, url, b"x" * (2 * 1024 * 1024), {**no_id, "ce-id": "big"})
    assert status == 413 and "over the limit" in body["error"]
    status, body = await post(http, url, b"{}", {"Content-Type": "application/json"})
    assert status == 400 and "not a CloudEvent" in body["error"]
    # Nothing above was stored: the topic does not exist yet.
    async with GatewayClient(http_gateway.listen) as client:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.topic(topic)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    # ...and the gateway keeps serving.
    status, body = await post(http, url, json.dumps(structured(9)), STRUCTURED)
    assert status == 200 and body["results"][0]["offset"] == 0


async def _trickle(host: str, port: int, head: bytes, body: bytes, every: float) -> bytes:
    """Send `head` at once and `body` a byte per `every` s (or, with no body, `head` so);
    return what the server answered before it closed the connection."""
    reader, writer = await asyncio.open_connection(host, port)
    answer = asyncio.create_task(reader.read())  # b"..." once the server closes
    slow = body or head
    try:
        if body:
            writer.write(head)
        for i in range(len(slow)):
            if answer.done():
                break
            writer.write(slow[i : i + 1])
            await writer.drain()
            await asyncio.wait([answer], timeout=every)
        async with asyncio.timeout(10):
            return await answer
    except ConnectionError:
        return b""
    finally:
        answer.cancel()
        writer.close()


@pytest.mark.parametrize("where", ["head", "body"])
async def test_slow_loris_is_cut_off_and_others_are_served(
    http_gateway: GatewayProcess, http: aiohttp.ClientSession, topic: str, where: str
) -> None:
    assert http_gateway.http_url is not None
    host, port = http_gateway.http_url.removeprefix("http://").rsplit(":", 1)
    payload = json.dumps(structured(1)).encode()
    head = (
        f"POST /topics/{topic}/events HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/cloudevents+json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    every = 0.25  # the whole request would take len(...) / 4 seconds: far over the timeouts
    started = time.monotonic()
    slow = asyncio.create_task(
        _trickle(host, int(port), head, b"" if where == "head" else payload, every)
    )
    # While it trickles, others are served.
    for i in range(3):
        status, _ = await post(
            http, events_url(http_gateway, topic), json.dumps(structured(i)), STRUCTURED
        )
        assert status == 200
    answer = await slow
    took = time.monotonic() - started
    full = (len(head) if where == "head" else len(payload)) * every
    assert took < full / 2, f"cut off after {took:.1f}s (the whole request needs {full:.0f}s)"
    if where == "body":
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    else:
        assert answer == b""  # the head never completed: closed without an answer
    async with GatewayClient(http_gateway.listen) as client:
        info = await client.topic(topic)
    assert info.event_count == 3  # the trickled event was never stored
