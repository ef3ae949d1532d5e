"""Crash and shutdown behaviour of a real gateway process, and the CLI end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshgate.client import GatewayClient
from tests.integration.gateway_helpers import event
from tests.support.channels import ready_channel
from tests.support.gateway_process import REPO, GatewayProcess


async def _drain(listen: str, topic: str, count: int, group: str | None = None) -> list[int]:
    out: list[int] = []
    async with GatewayClient(listen) as gw, gw.subscribe(topic, group=group, credits=500) as sub:
        async for _offset, ev in sub:
            out.append(int(ev.get_id()))
            if len(out) == count:
                break
    return out


async def test_group_resumes_from_committed_offset_after_restart(tmp_path: Path) -> None:
    with GatewayProcess(tmp_path / "gw") as proc:
        async with GatewayClient(proc.listen) as gw:
            await gw.publish_batch("orders", [event(i) for i in range(20)])
        assert await _drain(proc.listen, "orders", 10, group="billing") == list(range(10))
        proc.restart()
        async with GatewayClient(proc.listen) as gw:
            info = await gw.topic("orders")
            assert [(g.name, g.committed_offset) for g in info.groups] == [("billing", 10)]
        assert await _drain(proc.listen, "orders", 10, group="billing") == list(range(10, 20))


async def test_kill9_during_publish_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    proc = GatewayProcess(tmp_path / "gw", metrics=False)
    try:
        proc.start()
        acked: list[int] = []
        half = asyncio.Event()

        async def producer(base: int) -> None:
            async with GatewayClient(proc.listen, timeout=10) as gw:
                for start in range(base, base + 100_000, 50):
                    try:
                        batch = [event(i) for i in range(start, start + 50)]
                        await gw.publish_batch("crash", batch)
                    except grpc.aio.AioRpcError:
                        return  # the gateway died: nothing more is acknowledged
                    acked.extend(range(start, start + 50))
                    if len(acked) >= 2000:
                        half.set()

        producers = [asyncio.create_task(producer(n * 1_000_000)) for n in range(4)]
        await asyncio.wait_for(half.wait(), 60)
        proc.kill9()  # while publishes are in flight
        await asyncio.wait_for(asyncio.gather(*producers), 60)
        proc.start()
        async with GatewayClient(proc.listen) as gw:
            stored = (await gw.topic("crash")).event_count
        assert stored >= len(acked)
        survived = set(await _drain(proc.listen, "crash", stored))
        assert set(acked) <= survived
    finally:
        proc.stop()


async def test_durability_os_is_announced_and_survives_kill9(tmp_path: Path) -> None:
    """`--durability os` says so in the ready line and in health; a kill -9 (not a power cut)
    loses nothing acknowledged with it either."""
    proc = GatewayProcess(tmp_path / "gw", metrics=False, extra_args=["--durability", "os"])
    try:
        proc.start()
        assert proc.durability == "os"
        async with ready_channel(proc.listen) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            got = await check(health_pb2.HealthCheckRequest(service="meshgate.durability.os"))
            assert got.status == health_pb2.HealthCheckResponse.SERVING
        async with GatewayClient(proc.listen) as gw:
            await gw.publish_batch("os", [event(i) for i in range(50)])
            await asyncio.gather(*(gw.publish("os", event(i)) for i in range(50, 100)))
        proc.kill9()
        proc.start()
        assert set(await _drain(proc.listen, "os", 100)) == set(range(100))
    finally:
        proc.stop()
    with GatewayProcess(tmp_path / "gw", metrics=False) as default:
        assert default.durability == "fsync"
        async with ready_channel(default.listen) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await check(health_pb2.HealthCheckRequest(service="meshgate.durability.os"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_sigterm_drains_in_flight_publishes(tmp_path: Path) -> None:
    proc = GatewayProcess(tmp_path / "gw", metrics=False)
    try:
        proc.start()
        acked: list[int] = []
        async with GatewayClient(proc.listen, timeout=10) as gw:
            sub = gw.subscribe("drain", credits=10)
            await sub.start()  # an open stream must not hold shutdown up

            async def one(i: int) -> None:
                try:
                    await gw.publish("drain", event(i))
                except grpc.aio.AioRpcError:
                    return
                acked.append(i)

            tasks = [asyncio.create_task(one(i)) for i in range(300)]
            await asyncio.sleep(0)
            code = await asyncio.to_thread(proc.stop, 30)
            await asyncio.gather(*tasks)
            await sub.aclose()
        assert code == 0
        assert "gateway eu stopped" in proc.stderr_tail(50)
        proc.start()
        if acked:
            assert set(acked) <= set(await _drain(proc.listen, "drain", len(acked)))
    finally:
        proc.stop()


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshgate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_cli_publish_subscribe_topics(shared_gateway: GatewayProcess) -> None:
    gw = shared_gateway.listen
    one = _cli("publish", "--gateway", gw, "--topic", "cli", "--type", "t.a", "--source", "/s",
               "--id", "e1", "--data", '{"k": 1}')  # fmt: skip
    assert (one.returncode, one.stdout.strip()) == (0, "offset=0 duplicate=false")
    lines = "".join(json.dumps({"n": i}) + "\n" for i in range(1200))
    many = _cli("publish", "--gateway", gw, "--topic", "cli", "--type", "t.b", "--source", "/s",
                stdin=lines)  # fmt: skip
    assert (many.returncode, many.stdout.strip()) == (0, "published=1200 duplicates=0")
    sub = _cli("subscribe", "--gateway", gw, "--topic", "cli", "--group", "g", "--count", "2",
               "--filter", "exact:type=t.b")  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    printed = [json.loads(line) for line in sub.stdout.splitlines()]
    assert [p["data"] for p in printed] == [{"n": 0}, {"n": 1}]
    assert all(p["type"] == "t.b" and p["specversion"] == "1.0" for p in printed)
    topics = _cli("topics", "--gateway", gw, "--json")
    info = next(t for t in map(json.loads, topics.stdout.splitlines()) if t["name"] == "cli")
    assert (info["name"], info["event_count"], info["backend"]) == ("cli", 1201, "sqlite")
    assert info["groups"] == [{"name": "g", "committed_offset": 3, "lag": 1198}]
    table = _cli("topics", "--gateway", gw)
    assert "g(1198)" in table.stdout and "BACKEND" in table.stdout and " sqlite " in table.stdout


def test_cli_errors_are_one_line(shared_gateway: GatewayProcess, tmp_path: Path) -> None:
    bad = _cli("publish", "--gateway", shared_gateway.listen, "--topic", "no way", "--type", "t",
               "--source", "/s", "--data", "{}")  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("meshgate: INVALID_ARGUMENT: invalid topic name")
    assert len(bad.stderr.strip().splitlines()) == 1
    junk = _cli("publish", "--gateway", shared_gateway.listen, "--topic", "t", "--type", "t",
                "--source", "/s", "--data", "{nope")  # fmt: skip
    assert junk.returncode == 1 and "not valid JSON" in junk.stderr
    down = _cli("gateway", "run", "--region", "eu", "--data", str(tmp_path / "d"),
                "--listen", "nonsense")  # fmt: skip
    assert down.returncode == 1 and "invalid listen address" in down.stderr
