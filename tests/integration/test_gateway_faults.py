"""Bad input and failing disks against a real gateway: every answer is a documented status.

Malformed protobuf on every RPC, oversized messages and filters nested past protobuf's limit
are the client's fault (INVALID_ARGUMENT / RESOURCE_EXHAUSTED, never UNKNOWN or INTERNAL). A
full disk is RESOURCE_EXHAUSTED "store full", durable streams survive it, and publishes work
again once space returns; a read-only data directory stops `meshgate gateway run` with one
line. The disk tests mount a small tmpfs (root only; skipped with the reason otherwise).
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.app import Gateway
from gateway.config import MESSAGE_OVERHEAD, GatewayConfig
from meshgate.client import GatewayClient
from proto import gateway_pb2
from tests.integration.gateway_helpers import event
from tests.support.channels import ready_channel
from tests.support.gateway_process import REPO
from tests.support.waiting import async_wait_for

GARBAGE = b"\xff\xff\xff\xff"  # field 536870911, wire type 7: no parser accepts it
SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"]


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str = "16m", readonly: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        if readonly:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    config = GatewayConfig(
        region="eu",
        data_dir=tmp_path,
        max_event_bytes=1024,
        max_message_bytes=1024 + MESSAGE_OVERHEAD,
    )
    async with Gateway(config) as gw:
        yield gw


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def open_with_nested_filter(depth: int) -> bytes:
    """A SubscribeRequest whose filter is `not` nested `depth` deep (built as bytes: the
    protobuf library itself refuses to build or parse such a message)."""
    flt = gateway_pb2.Filter(exact=gateway_pb2.AttributeMatch(attribute="type", value="x"))
    nested = flt.SerializeToString()
    not_field = gateway_pb2.Filter.DESCRIPTOR.fields_by_name["not"].number
    for _ in range(depth):
        nested = field(not_field, nested)
    base = gateway_pb2.SubscriptionOpen(topic="t", credits=1).SerializeToString()
    filters_field = gateway_pb2.SubscriptionOpen.DESCRIPTOR.fields_by_name["filters"].number
    open_field = gateway_pb2.SubscribeRequest.DESCRIPTOR.fields_by_name["open"].number
    return field(open_field, base + field(filters_field, nested))


async def call_raw(
    channel: grpc.aio.Channel, method: str, *messages: bytes
) -> grpc.aio.AioRpcError:
    """Send raw bytes to `method`; return the error it ended with (fail if it succeeded)."""
    path = f"/{SERVICE.full_name}/{method}"
    desc = SERVICE.methods_by_name[method]
    try:
        if desc.client_streaming:
            call = channel.stream_stream(path)(iter(messages))
            async for _ in call:
                pass
        else:
            await channel.unary_unary(path)(messages[0], timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError(f"{method} accepted {messages!r}")


async def test_malformed_protobuf_is_invalid_argument_on_every_rpc(gateway: Gateway) -> None:
    async with ready_channel(gateway.listen) as channel:
        for method in SERVICE.methods:
            error = await call_raw(channel, method.name, GARBAGE)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method.name, error)
            assert f"malformed {method.input_type.name}" in (error.details() or "")
        # A stream that opened well and then sends garbage ends the same way.
        good = gateway_pb2.SubscribeRequest(
            open=gateway_pb2.SubscriptionOpen(topic="t", credits=1)
        ).SerializeToString()
        error = await call_raw(channel, "Subscribe", good, GARBAGE)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "malformed SubscribeRequest" in (error.details() or "")
        # Health and reflection are still served next to the gateway API.
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE.full_name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_filter_nested_10000_deep_is_invalid_argument(gateway: Gateway) -> None:
    async with ready_channel(gateway.listen) as channel:
        error = await call_raw(channel, "Subscribe", open_with_nested_filter(10_000))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details()


async def test_a_filter_with_200000_branches_is_invalid_argument(tmp_path: Path) -> None:
    leaf = gateway_pb2.Filter(exact=gateway_pb2.AttributeMatch(attribute="type", value="x"))
    wide = gateway_pb2.Filter(any=gateway_pb2.FilterList(filters=[leaf] * 200_000))
    request = gateway_pb2.SubscribeRequest(
        open=gateway_pb2.SubscriptionOpen(topic="t", credits=1, filters=[wide])
    ).SerializeToString()
    async with (
        Gateway(GatewayConfig(region="eu", data_dir=tmp_path)) as gw,  # 64 MiB: the size fits
        ready_channel(gw.listen) as channel,
    ):
        error = await call_raw(channel, "Subscribe", request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details()


async def test_a_message_over_the_limit_is_resource_exhausted(gateway: Gateway) -> None:
    async with GatewayClient(gateway.listen) as client:
        big = [event(i, blob="x" * 900) for i in range(100)]  # ~100 KiB > 1 KiB + 64 KiB
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.publish_batch("t", big)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await client.publish_batch("t", big[:10])  # under the limit: accepted


def fill(disk: Path) -> Path:
    """Write a file until the filesystem is full; return it (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        chunk = b"\0" * 65536
        for _ in range(10_000):  # bounded: a 16 MiB tmpfs is full long before
            try:
                f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return filler
    raise AssertionError("the tmpfs never filled")


async def test_full_disk_is_resource_exhausted_and_recovers(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        config = GatewayConfig(region="eu", data_dir=disk / "data", ack_timeout=30)
        topic = f"full-{uuid.uuid4().hex[:8]}"
        async with Gateway(config) as gw, GatewayClient(gw.listen) as client:
            acked = [r.offset for r in await client.publish_batch(topic, [event(0), event(1)])]
            async with client.subscribe(topic, group="g", auto_ack=False, credits=100) as sub:
                first, _ = await anext(aiter(sub))
                filler = fill(disk)
                outcomes: list[grpc.StatusCode] = []

                async def refused() -> bool:
                    try:
                        result = await client.publish(topic, event(f"f{len(outcomes)}"))
                        acked.append(result.offset)
                        outcomes.append(grpc.StatusCode.OK)
                        return False
                    except grpc.aio.AioRpcError as exc:
                        outcomes.append(exc.code())
                        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                        assert "store full: database or disk is full" in (exc.details() or "")
                        return True

                await async_wait_for(refused, timeout=30, interval=0.01, what="a full store")
                await sub.ack(first)  # the group's offset cannot be written: stream goes on
                second, _ = await anext(aiter(sub))
                assert second == 1
                filler.unlink()

                async def accepted() -> bool:
                    try:
                        acked.append((await client.publish(topic, event("after"))).offset)
                        return True
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                        return False

                await async_wait_for(accepted, timeout=30, interval=0.05, what="space returned")
                await sub.ack(second)
            info = await client.topic(topic)
            assert info.next_offset == len(acked)  # every acknowledged publish is stored
            assert [(g.name, g.committed_offset) for g in info.groups] == [("g", 2)]


def test_read_only_data_directory_stops_the_gateway_with_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", readonly=True) as ro:
        proc = subprocess.run(
            [sys.executable, "-m", "meshgate", "gateway", "run", "--region", "eu",
             "--data", str(ro), "--listen", "127.0.0.1:0", "--open"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "Traceback" in line or "Error" in line]
    assert not any("Traceback" in line for line in errors), proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"data directory {ro} is not writable" in last, proc.stderr


async def test_deliveries_fit_the_message_limit_however_many_credits(gateway: Gateway) -> None:
    async with GatewayClient(gateway.listen) as client:
        for i in range(10):  # 100 events of ~1 KiB: 100 KiB, over the 65 KiB message limit
            await client.publish_batch(
                "big", [event(f"{i}-{j}", blob="x" * 900) for j in range(10)]
            )
        seen = 0
        async with client.subscribe("big", credits=500) as sub:
            async for _offset, _ev in sub:
                seen += 1
                if seen == 100:
                    break
        assert seen == 100
