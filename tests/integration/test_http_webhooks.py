"""Webhook delivery from a real gateway process to a real sink (aiohttp) over real HTTP.

The sink checks the Webhook handshake, fails posts, throttles with 429 + Retry-After, answers
410; the gateway must deliver every event once, in order, resume after a restart, dead-letter
what the sink rejects, and end a subscription whose sink is gone.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from eventmodel import sdk
from gateway.http.binding import BATCH
from meshgate.client import GatewayClient
from tests.integration.gateway_helpers import event, metric, scrape
from tests.integration.webhook_sink import Sink
from tests.support.gateway_process import REPO, GatewayProcess
from tests.support.waiting import async_wait_for, wait_for

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    proc = GatewayProcess(
        tmp_path / "gw", metrics=False, extra_args=["--http-listen", "127.0.0.1:0"]
    )
    try:
        yield proc.start()
    finally:
        proc.stop()
        print(f"--- gateway stderr (tail) ---\n{proc.stderr_tail(40)}")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def subscribe(
    http: aiohttp.ClientSession, gateway: GatewayProcess, body: dict[str, Any]
) -> tuple[int, Any]:
    async with http.post(f"{gateway.http_url}/subscriptions", json=body) as resp:
        return resp.status, await resp.json()


def topic_name() -> str:
    return f"wh-{uuid.uuid4().hex[:10]}"


async def test_retries_and_429_then_every_event_once_in_order_and_resume_after_restart(
    gateway: GatewayProcess, http: aiohttp.ClientSession
) -> None:
    def script(n: int) -> tuple[int, dict[str, str]]:
        if n == 1:
            return 503, {}
        if n == 2:  # without honouring it, the backoff would wait 1.6-2 s
            return 429, {"Retry-After": "3"}
        return 200, {}

    sink = await Sink(script=script).start()
    topic = topic_name()
    try:
        status, created = await subscribe(
            http, gateway, {"sink": sink.url, "config": {"topic": topic}}
        )
        assert status == 201, created
        assert sink.handshakes == ["meshgate-eu"]
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, [event(i) for i in range(12)])
        await async_wait_for(_count(sink, 12), timeout=40, what="12 events accepted")
        assert sink.accepted_ids() == [str(i) for i in range(12)]  # once each, in order
        assert [p.status for p in sink.posts[:3]] == [503, 429, 200]
        assert sink.posts[1].at - sink.posts[0].at >= 0.8 * 1.0  # backoff (jitter <= 20 %)
        assert sink.posts[2].at - sink.posts[1].at >= 3.0  # Retry-After honoured
        assert sink.posts_before_handshake == 0
        first = sink.posts[0]
        assert first.headers["ce-id"] == "0" and first.headers["ce-source"] == "/test"
        assert first.body == b'{"n":0}'  # binary mode: the data as stored is the body

        gateway.restart(same_port=False)
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, [event(i) for i in range(12, 15)])
        await async_wait_for(_count(sink, 15), timeout=30, what="3 more after the restart")
        assert sink.accepted_ids() == [str(i) for i in range(15)]  # nothing acked came back
        assert len(sink.handshakes) == 2  # validated again before the first delivery
    finally:
        await sink.stop()


async def test_sink_answering_410_ends_the_subscription(
    gateway: GatewayProcess, http: aiohttp.ClientSession
) -> None:
    sink = await Sink(script=lambda n: (200, {}) if n <= 2 else (410, {})).start()
    topic = topic_name()
    try:
        status, created = await subscribe(
            http, gateway, {"sink": sink.url, "config": {"topic": topic}}
        )
        assert status == 201, created
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, [event(i) for i in range(5)])
        url = f"{gateway.http_url}/subscriptions/{created['id']}"

        async def gone() -> bool:
            async with http.get(url) as resp:
                return resp.status == 404

        await async_wait_for(gone, timeout=20, what="the subscription to end")
        assert [p.status for p in sink.posts] == [200, 200, 410]  # nothing after the 410
        async with http.get(f"{gateway.http_url}/subscriptions") as resp:
            assert await resp.json() == []
        gateway.restart(same_port=False)  # and it stays gone
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, [event(9)])
        async with http.get(f"{gateway.http_url}/subscriptions") as resp:
            assert await resp.json() == []
        assert len(sink.posts) == 3 and len(sink.handshakes) == 1
    finally:
        await sink.stop()


async def test_rejected_and_undeliverable_events_go_to_the_dead_letter_topic_unchanged(
    gateway: GatewayProcess, http: aiohttp.ClientSession
) -> None:
    # Event "1" is rejected (400: dead-lettered at once); event "2" fails twice (maxattempts 2).
    def script(n: int) -> tuple[int, dict[str, str]]:
        return {2: (400, {}), 3: (500, {}), 4: (500, {})}.get(n, (200, {}))

    sink = await Sink(script=script).start()
    topic = topic_name()
    try:
        body = {"sink": sink.url, "config": {"topic": topic, "maxattempts": 2}}
        status, created = await subscribe(http, gateway, body)
        assert status == 201, created
        sent = [event(i, subject=f"s{i}") for i in range(4)]
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, sent)
            await async_wait_for(_count(sink, 2), timeout=30, what="events 0 and 3")
            assert sink.accepted_ids() == ["0", "3"]
            async with gw.subscribe(f"{topic}.dlq", credits=10) as sub:
                dead = []
                async for _offset, ev in sub:
                    dead.append(ev)
                    if len(dead) == 2:
                        break
        # deterministic: map entries (the attributes) in key order, as a pb map has no order
        want = [sdk.to_pb(e).SerializeToString(deterministic=True) for e in sent[1:3]]
        got = [sdk.to_pb(e).SerializeToString(deterministic=True) for e in dead]
        assert got == want  # no attribute added
    finally:
        await sink.stop()


async def test_sink_failing_the_handshake_is_refused_and_nothing_is_stored(
    gateway: GatewayProcess, http: aiohttp.ClientSession
) -> None:
    for allow in (None, "someone-else"):
        sink = await Sink(allow_origin=allow).start()
        try:
            status, answer = await subscribe(
                http, gateway, {"sink": sink.url, "config": {"topic": topic_name()}}
            )
            assert status == 400
            assert "webhook handshake" in answer["error"] or "allows origin" in answer["error"]
            assert sink.posts == []
        finally:
            await sink.stop()
    async with http.get(f"{gateway.http_url}/subscriptions") as resp:
        assert await resp.json() == []
    wait_for(lambda: gateway.running(), timeout=1)


def _count(sink: Sink, n: int) -> Any:
    async def check() -> bool:
        assert len(sink.accepted) <= n, sink.accepted_ids()
        return len(sink.accepted) == n

    return check


async def _meshgate(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshgate",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_subscribe_sink_then_list_and_delete(gateway: GatewayProcess) -> None:
    assert gateway.http_url is not None
    sink = await Sink().start()
    topic = topic_name()
    try:
        code, out, err = await _meshgate(
            "subscribe", "--gateway", gateway.listen, "--topic", topic, "--sink", sink.url,
            "--http", gateway.http_url, "--filter", "prefix:type=com.example",
            "--mode", "structured",
        )  # fmt: skip
        assert code == 0, err
        created = json.loads(out)
        assert created["filters"] == [{"prefix": {"type": "com.example"}}]
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, [event(1), event(2, type_="other")])
        await async_wait_for(_count(sink, 1), timeout=20, what="the structured post")
        assert sink.posts[0].headers["Content-Type"].startswith("application/cloudevents+json")

        code, out, err = await _meshgate("subscriptions", "list", "--gateway", gateway.http_url)
        assert code == 0, err
        assert created["id"] in out and topic in out and "structured" in out
        code, out, err = await _meshgate(
            "subscriptions", "delete", "--gateway", gateway.http_url, created["id"]
        )
        assert code == 0, err
        code, out, err = await _meshgate(
            "subscriptions", "delete", "--gateway", gateway.http_url, created["id"]
        )
        assert code == 1 and err.strip().endswith(f"no subscription '{created['id']}'"), err
        code, out, err = await _meshgate(
            "subscribe", "--gateway", gateway.listen, "--topic", topic, "--sink", "ftp://x/",
            "--http", gateway.http_url,
        )  # fmt: skip
        assert code == 1 and "http:// or https://" in err and "Traceback" not in err, err
    finally:
        await sink.stop()


def guide_sink_source() -> str:
    """The 15-line sink of docs/consumers-guide.md, on a free port."""
    guide = (REPO / "docs" / "consumers-guide.md").read_text()
    section = guide.split("## Webhooks", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 15
    assert "port=8090" in code
    return code.replace("port=8090", "port=0")


async def test_the_guides_fifteen_line_sink_receives_events(
    gateway: GatewayProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    script = tmp_path / "sink.py"
    script.write_text(guide_sink_source())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            line = (await proc.stdout.readline()).decode()
        url = line.split("Running on ", 1)[1].split()[0] + "/hook"
        topic = topic_name()
        status, created = await subscribe(http, gateway, {"sink": url, "config": {"topic": topic}})
        assert status == 201, created
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, [event(i) for i in range(3)])
        printed = []
        async with asyncio.timeout(30):
            while len(printed) < 3:
                text = (await proc.stdout.readline()).decode()
                if text.split(" ", 1)[0] in {"0", "1", "2"}:
                    printed.append(text.split(" ", 2)[:2])
        assert printed == [[str(i), "com.example.t"] for i in range(3)]
    finally:
        proc.terminate()
        await proc.wait()


async def test_batch_mode_honours_the_allowed_rate_and_counts_deliveries(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    sink = await Sink(allowed_rate="120").start()  # 2 per second: posts >= 0.5 s apart
    proc = GatewayProcess(tmp_path / "gw", extra_args=["--http-listen", "127.0.0.1:0"])
    topic = topic_name()
    try:
        proc.start()
        body = {
            "sink": sink.url,
            "config": {"topic": topic},
            "protocolsettings": {"mode": "batch", "batchsize": 4},
        }
        status, created = await subscribe(http, proc, body)
        assert status == 201, created
        async with GatewayClient(proc.listen) as gw:
            await gw.publish_batch(topic, [event(i) for i in range(10)])
        await async_wait_for(_count(sink, 10), timeout=30, what="10 events in batches")
        assert sink.accepted_ids() == [str(i) for i in range(10)]
        assert all(p.headers["Content-Type"].startswith(BATCH) for p in sink.posts)
        assert all(len(json.loads(p.body)) <= 4 for p in sink.posts)
        gaps = [b.at - a.at for a, b in itertools.pairwise(sink.posts)]
        assert gaps and min(gaps) >= 0.45, gaps  # WebHook-Allowed-Rate honoured
        assert proc.metrics_url is not None
        metrics_url = proc.metrics_url

        async def all_counted() -> bool:
            # the sink records a post before its 2xx reaches the gateway, which counts on the 2xx
            text = await asyncio.to_thread(scrape, metrics_url)
            return metric(text, "meshgate_events_out_total", topic=topic) == 10.0

        await async_wait_for(all_counted, timeout=10, what="10 deliveries counted")
    finally:
        proc.stop()
        await sink.stop()


async def test_gateway_stops_promptly_while_a_sink_hangs(
    gateway: GatewayProcess, http: aiohttp.ClientSession
) -> None:
    sink = await Sink(hang=True).start()
    topic = topic_name()
    try:
        status, created = await subscribe(
            http, gateway, {"sink": sink.url, "config": {"topic": topic}}
        )
        assert status == 201, created
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, [event(0)])
        await async_wait_for(_posted(sink), timeout=20, what="a POST in flight")
        started = time.monotonic()
        assert gateway.stop() == 0
        assert time.monotonic() - started < 15  # the POST is cancelled, not waited out (30 s)
    finally:
        await sink.stop()


def _posted(sink: Sink) -> Any:
    async def check() -> bool:
        return sink.in_flight > 0

    return check


async def test_api_refusals_and_put_replaces_keeping_the_offset(
    gateway: GatewayProcess, http: aiohttp.ClientSession
) -> None:
    assert gateway.http_url is not None
    base = f"{gateway.http_url}/subscriptions"
    sink = await Sink().start()
    topic = topic_name()
    try:
        async with http.post(
            base, data=b"{nope", headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400 and "not JSON" in (await r.json())["error"]
        async with http.post(
            base, json={"sink": sink.url, "config": {"topic": topic}, "x": 1}
        ) as r:
            assert (
                r.status == 400 and "unknown subscription field(s): x" in (await r.json())["error"]
            )
        async with http.get(f"{base}/missing") as r:
            assert r.status == 404
        async with http.delete(f"{base}/missing") as r:
            assert r.status == 404
        body = {"sink": sink.url, "config": {"topic": topic}, "types": ["com.example.t"]}
        async with http.put(f"{base}/mine", json=body) as r:
            assert r.status == 201, await r.text()
        async with GatewayClient(gateway.listen) as gw:
            await gw.publish_batch(topic, [event(0), event(1)])
            await async_wait_for(_count(sink, 2), timeout=20, what="two events")
            replaced = {**body, "protocolsettings": {"mode": "structured"}}
            async with http.put(f"{base}/mine", json=replaced) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["protocolsettings"]["mode"] == "structured"
            await gw.publish_batch(topic, [event(2)])
            await async_wait_for(_count(sink, 3), timeout=20, what="the third, structured")
        assert sink.accepted_ids() == ["0", "1", "2"]  # same group: nothing delivered twice
        assert sink.posts[-1].headers["Content-Type"].startswith("application/cloudevents+json")
        async with http.post(base, json={**body, "id": "mine"}) as r:
            assert r.status == 400 and "PUT replaces it" in (await r.json())["error"]
    finally:
        await sink.stop()


def test_a_damaged_subscriptions_file_stops_the_start_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "webhooks.json").write_text('{"version": 1, "subscriptions": [{"owner": null}]}')
    cmd = [
        sys.executable, "-m", "meshgate", "gateway", "run", "--region", "eu", "--open",
        "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("meshgate: webhook subscriptions file") and "malformed" in last
    assert "Traceback" not in done.stderr
