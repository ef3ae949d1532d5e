"""Events come out as they went in, the door validates by the spec, and no event poisons a
reader: against real gateway processes (and the real `meshgate subscribe`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent

from eventmodel.filters import MAX_FILTER_DEPTH, Exact, Filter, Not
from gateway.sqlite_store import SqliteEventStore
from gateway.store import NewEvent
from meshgate.client import GatewayClient, Undecodable
from proto import cloudevents_pb2, gateway_pb2
from tests.fuzz.pb_strategies import length_delimited, nest
from tests.support.gateway_process import REPO, GatewayProcess

PbEvent = cloudevents_pb2.CloudEvent


def pb_event(i: int | str, **data: object) -> PbEvent:
    return PbEvent(id=str(i), source="/fidelity", spec_version="1.0", type="t", **data)  # type: ignore[arg-type]


async def read(gw: GatewayClient, topic: str, n: int) -> list[CloudEvent]:
    got: list[CloudEvent] = []
    async with gw.subscribe(topic, credits=n) as sub:
        async for _offset, ev in sub:
            got.append(ev)
            if len(got) == n:
                break
    return got


async def test_no_attribute_is_invented_and_data_keeps_its_type(
    shared_gateway: GatewayProcess,
) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        await gw.publish_pb("fidelity", [pb_event(1, text_data="no time")])
        as_string = CloudEvent(
            {"type": "t", "source": "/f", "id": "2", "datacontenttype": "application/json"}, "123"
        )
        empty_list = CloudEvent({"type": "t", "source": "/f", "id": "3"}, [])
        empty_list.get_attributes().pop("time")
        await gw.publish_batch("fidelity", [as_string, empty_list])
        first = await read(gw, "fidelity", 3)
        second = await read(gw, "fidelity", 3)
    for got in (first, second):
        assert got[0].get_time() is None and "time" not in got[0].get_attributes()
        assert got[0].get_data() == "no time"
        assert got[1].get_data() == "123" and isinstance(got[1].get_data(), str)
        assert got[2].get_data() == [] and got[2].get_datacontenttype() is None
        assert got[2].get_time() is None


@pytest.mark.parametrize(
    ("name", "edit", "needle"),
    [
        ("non-ascii-name", lambda pb: pb.attributes["café"].SetInParent(), "'café'"),
        ("reserved-name", lambda pb: setattr(pb.attributes["id"], "ce_string", "x"), "'id'"),
        ("time-string", lambda pb: setattr(pb.attributes["time"], "ce_string", "now"), "'time'"),
        ("bad-source", lambda pb: setattr(pb, "source", "not a uri"), "'source'"),
        (
            "bad-dataschema",
            lambda pb: setattr(pb.attributes["dataschema"], "ce_uri", "no-scheme"),
            "'dataschema'",
        ),
    ],
)
async def test_an_event_the_spec_forbids_is_refused_and_nothing_stored(
    shared_gateway: GatewayProcess, name: str, edit: object, needle: str
) -> None:
    pb = pb_event("bad")
    edit(pb)  # type: ignore[operator]
    topic = f"spec-{name}"
    async with GatewayClient(shared_gateway.listen) as gw:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await gw.publish_pb(topic, [pb_event("ok"), pb])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in (err.value.details() or "")
        assert topic not in {t.name for t in await gw.topics()}


async def test_an_all_digit_extension_name_is_accepted(shared_gateway: GatewayProcess) -> None:
    pb = pb_event("digits")
    pb.attributes["123"].ce_integer = 7
    async with GatewayClient(shared_gateway.listen) as gw:
        [result] = await gw.publish_pb("spec-digits", [pb])
        [back] = await read(gw, "spec-digits", 1)
    assert result.offset == 0 and back.get_extension("123") == 7


def _deep(depth: int) -> Filter:
    flt: Filter = Exact("type", "t")
    for _ in range(depth - 1):
        flt = Not(flt)
    return flt


def _raw_deep_open(depth: int) -> bytes:
    """A SubscribeRequest whose filter is `depth` levels deep, as bytes: protobuf itself
    refuses to build (or parse) a message past 100 levels."""
    leaf = gateway_pb2.Filter(exact=gateway_pb2.AttributeMatch(attribute="type", value="t"))
    flt = nest([6], depth - 1, leaf.SerializeToString())  # Filter.not
    open_pb = length_delimited(1, b"limits") + length_delimited(3, flt)  # .topic, .filters
    return length_delimited(1, open_pb)  # SubscribeRequest.open


async def _raw_subscribe_error(listen: str, request: bytes) -> str:
    async with grpc.aio.insecure_channel(listen) as channel:
        call = channel.stream_stream(
            "/meshgate.v1.Gateway/Subscribe",
            request_serializer=lambda raw: raw,
            response_deserializer=gateway_pb2.SubscribeResponse.FromString,
        )(iter([request]))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in call:
                pass
    return f"{err.value.code().name}: {err.value.details()}"


async def _subscribe_error(gw: GatewayClient, open_pb: gateway_pb2.SubscriptionOpen) -> str:
    """The status (and details) a Subscribe opened with `open_pb` ends with."""

    async def requests():  # type: ignore[no-untyped-def]
        yield gateway_pb2.SubscribeRequest(open=open_pb)

    call = gw.stub.Subscribe(requests())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    return f"{err.value.code().name}: {err.value.details()}"


async def test_filters_over_the_limits_are_invalid_arguments(
    shared_gateway: GatewayProcess,
) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async with gw.subscribe("limits", filters=[_deep(MAX_FILTER_DEPTH + 1)]):
                pass
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "deeper than 32" in (err.value.details() or "")
        leaf = gateway_pb2.Filter(exact=gateway_pb2.AttributeMatch(attribute="type", value="t"))
        wide = gateway_pb2.Filter(any=gateway_pb2.FilterList(filters=[leaf] * 200_000))
        status = await _subscribe_error(
            gw, gateway_pb2.SubscriptionOpen(topic="limits", filters=[wide])
        )
        assert status.startswith("INVALID_ARGUMENT") and "1024 nodes" in status
        deep = await _raw_subscribe_error(shared_gateway.listen, _raw_deep_open(10_000))
        assert deep.startswith("INVALID_ARGUMENT"), deep


async def _seed_with_a_poisoned_event(data_dir: Path) -> None:
    """Store what an older gateway accepted: good, poisoned (illegal name), good."""
    store = SqliteEventStore(data_dir)
    await store.open()
    try:
        rows = []
        for i in range(3):
            pb = pb_event(f"p{i}", text_data=f"event {i}")
            if i == 1:
                pb.attributes["Bad-Name"].ce_string = "x"
            rows.append(NewEvent(pb.source, pb.id, pb.type, pb.SerializeToString()))
        await store.append("poison", rows, "eu")
    finally:
        await store.aclose()


def _cli_subscribe(listen: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "meshgate", "subscribe", "--gateway", listen, "--topic", "poison"]
    return subprocess.run(
        [*cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


async def test_no_event_poisons_a_reader_or_wedges_a_group(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    data.mkdir()
    await _seed_with_a_poisoned_event(data)
    proc = GatewayProcess(data).start()
    try:
        # The client reports the bad event and goes on.
        seen: list[Undecodable] = []
        async with GatewayClient(proc.listen) as gw:
            got = []
            async with gw.subscribe("poison", credits=10, on_undecodable=seen.append) as sub:
                async for offset, ev in sub:
                    got.append((offset, ev.get_id()))
                    if len(got) == 2:
                        break
        assert got == [(0, "p0"), (2, "p2")]
        assert [b.offset for b in seen] == [1] and "Bad-Name" in seen[0].reason
        assert PbEvent.FromString(seen[0].raw).id == "p1"
        # The CLI prints one line for it, acks it, and a durable group moves past it.
        first = _cli_subscribe(proc.listen, "--group", "g", "--count", "2")
        assert first.returncode == 0, first.stderr
        assert [line.count('"id": "p') for line in first.stdout.splitlines()] == [1, 1]
        assert '"p0"' in first.stdout and '"p2"' in first.stdout
        [warning] = [line for line in first.stderr.splitlines() if "undecodable" in line]
        assert "offset 1" in warning and "Traceback" not in first.stderr
        async with GatewayClient(proc.listen) as gw:
            info = await gw.topic("poison")
        assert [(g.name, g.committed_offset) for g in info.groups] == [("g", 3)]
    finally:
        proc.stop()
