"""One trace across regions (issue 16): real eu and ap gateways export to an OTLP collector here.

The collector is a grpc server in this test process implementing opentelemetry-proto's
TraceService. An event published in eu without a trace context gets one at eu's ingest; the
trace then holds, under one trace id: eu's Publish RPC span, `ingest` (the context the event
carries, child of that RPC), `publish` in eu, `replicate send` in eu, `replicate receive` in
ap and `deliver` in ap, each a child of the event's context; and the event ap delivers still
carries that same `traceparent`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from eventmodel import trace_context
from eventmodel.trace_context import TraceContext
from meshgate.client import GatewayClient
from meshgate.tracing import setup as setup_tracing
from proto import cloudevents_pb2
from tests.support.gateway_process import GatewayProcess
from tests.support.waiting import async_wait_for, free_port

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="function")]


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: int
    span_id: int
    parent_id: int
    region: str
    links: tuple[tuple[int, int], ...]
    attributes: dict[str, Any]


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span it is sent, flattened."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for rs in request.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(
                        Span(
                            name=s.name,
                            trace_id=int.from_bytes(s.trace_id, "big"),
                            span_id=int.from_bytes(s.span_id, "big"),
                            parent_id=int.from_bytes(s.parent_span_id or b"\0", "big"),
                            region=str(resource.get("meshgate.region", "")),
                            links=tuple(
                                (
                                    int.from_bytes(ln.trace_id, "big"),
                                    int.from_bytes(ln.span_id, "big"),
                                )
                                for ln in s.links
                            ),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: int) -> dict[str, list[Span]]:
        out: dict[str, list[Span]] = {}
        for s in self.spans:
            if s.trace_id == trace_id:
                out.setdefault(s.name, []).append(s)
        return out


@contextlib.asynccontextmanager
async def otlp_collector() -> AsyncIterator[tuple[Collector, str]]:
    collector = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield collector, f"http://127.0.0.1:{port}"
    finally:
        await server.stop(None)


def otel_env(endpoint: str) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: spans leave promptly
    }


@contextlib.contextmanager
def traced_pair(
    root: Path, tls_dir: Callable[[str], Path], endpoint: str
) -> Iterator[dict[str, GatewayProcess]]:
    env = otel_env(endpoint)
    peer = {r: f"127.0.0.1:{free_port()}" for r in ("eu", "ap")}  # as GatewayCluster peers
    gateways: dict[str, GatewayProcess] = {}
    try:
        for region, other in (("eu", "ap"), ("ap", "eu")):
            args = ["--peer-listen", peer[region], "--tls-dir", str(tls_dir(region))]
            args += ["--http-listen", "127.0.0.1:0"]
            args += ["--peer", peer[other]] if region == "ap" else []
            gateways[region] = GatewayProcess(
                root / region, region=region, extra_args=args, env=env
            ).start()
        yield gateways
    finally:
        for gw in gateways.values():
            gw.stop()


def event(i: int, prefix: str) -> cloudevents_pb2.CloudEvent:
    return cloudevents_pb2.CloudEvent(
        id=f"{prefix}-{i}", source="/shop", spec_version="1.0", type="order.created",
        text_data=f"payload {i}",
    )  # fmt: skip


class Reader:
    """Reads a subscription in the background: each delivered event's traceparent by id."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self.received: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Reader]:
        async with self.client.subscribe("orders", group="g") as sub:

            async def read() -> None:
                async for got in sub:
                    self.received[got.event.get_id()] = got.event.get_extension("traceparent")

            reader = asyncio.ensure_future(read())
            try:
                yield self
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await reader

    async def wait(self, event_id: str) -> TraceContext:
        async def delivered() -> bool:
            return event_id in self.received

        await async_wait_for(delivered, timeout=30, what=f"{event_id} delivered in ap")
        carried = trace_context.parse_traceparent(self.received[event_id])
        assert carried is not None, self.received[event_id]
        return carried


async def spans_of(
    collector: Collector, trace_id: int, names: set[str], gws: dict[str, GatewayProcess]
) -> dict[str, list[Span]]:
    """The trace's spans by name once every one of `names` arrived."""

    async def whole() -> bool:
        return names <= set(collector.trace(trace_id))

    try:
        await async_wait_for(whole, timeout=30, what="the trace's spans")
    except TimeoutError:
        got = sorted(collector.trace(trace_id))
        stderr = {r: gw.stderr_tail() for r, gw in gws.items()}
        raise AssertionError(f"spans of the trace: {got}; logs: {stderr}") from None
    return collector.trace(trace_id)


def one_each(spans: dict[str, list[Span]]) -> dict[str, Span]:
    """One span per name: one hop each way, one delivery, nothing recorded twice."""
    assert all(len(v) == 1 for v in spans.values()), spans
    return {name: got[0] for name, got in spans.items()}


HOPS = (
    ("publish orders", "eu"),
    ("replicate send orders", "eu"),
    ("replicate receive orders", "ap"),
    ("deliver orders", "ap"),
)


async def test_publish_in_eu_replicate_deliver_in_ap_is_one_trace(
    tmp_path: Path, region_tls_dir: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with otlp_collector() as (collector, endpoint):
        with traced_pair(tmp_path, region_tls_dir, endpoint) as gws:
            async with (
                GatewayClient(gws["eu"].listen, publish_stream=False) as eu,
                GatewayClient(gws["ap"].listen) as ap,
                Reader(ap).running() as reader,
            ):
                await eu.wait_ready()
                async with asyncio.timeout(45):  # interest reaches eu: probes arrive
                    i = 0
                    while not any(k.startswith("warm-") for k in reader.received):
                        await eu.publish_pb("orders", [event(i, "warm")])
                        i += 1
                        await asyncio.sleep(0.3)
                # 1. a client that does not trace: eu gives the event its context at ingest
                await eu.publish_pb("orders", [event(1, "traced")])
                carried = await reader.wait("traced-1")
                rpc_name = "/meshgate.v1.Gateway/Publish"
                names = {"ingest orders", rpc_name, *(name for name, _ in HOPS)}
                spans = one_each(await spans_of(collector, carried.trace_id, names, gws))
                ingest, rpc = spans["ingest orders"], spans[rpc_name]
                assert ingest.span_id == carried.span_id  # the context the event carries
                assert ingest.attributes["messaging.message.id"] == "traced-1"
                assert ingest.parent_id == rpc.span_id and rpc.region == ingest.region == "eu"
                for name, region in HOPS:
                    assert (spans[name].region, spans[name].parent_id) == (region, carried.span_id)
                assert spans["replicate send orders"].attributes["meshgate.peer"] == "ap"
                assert spans["replicate receive orders"].attributes["meshgate.peer"] == "eu"
                assert (rpc.trace_id, rpc.span_id) in spans["publish orders"].links

                # 1b. the same through the HTTP ingress (no RPC span: ingest is the root)
                async with aiohttp.ClientSession() as http:
                    headers = {
                        "ce-id": "traced-http", "ce-source": "/shop", "ce-specversion": "1.0",
                        "ce-type": "order.created", "content-type": "text/plain",
                    }  # fmt: skip
                    url = f"{gws['eu'].http_url}/topics/orders/events"
                    async with http.post(url, data=b"over http", headers=headers) as response:
                        assert response.status == 200, await response.text()
                carried = await reader.wait("traced-http")
                names = {"ingest orders", *(name for name, _ in HOPS)}
                spans = one_each(await spans_of(collector, carried.trace_id, names, gws))
                assert spans["ingest orders"].span_id == carried.span_id
                assert spans["ingest orders"].parent_id == 0
                for name, region in HOPS:
                    assert (spans[name].region, spans[name].parent_id) == (region, carried.span_id)

                # 2. a client that traces: it sets the context itself (before it would sign),
                # over PublishStream and over unary Publish (whose RPC span is the client's child)
                for name, value in otel_env(endpoint).items():
                    monkeypatch.setenv(name, value)
                tracing = setup_tracing(service="test-client", serves=False)
                assert tracing is not None
                app = tracing.provider.get_tracer("app")
                try:
                    async with (
                        GatewayClient(gws["eu"].listen) as streaming,
                        GatewayClient(gws["eu"].listen, publish_stream=False) as unary,
                    ):
                        await streaming.publish_pb("orders", [event(2, "traced")])
                        with app.start_as_current_span("checkout"):  # the app's own span
                            await unary.publish_pb("orders", [event(3, "traced")])
                        contexts = [await reader.wait(f"traced-{n}") for n in (2, 3)]
                finally:
                    # flushes to the collector, which answers on this loop: not on the loop
                    await asyncio.to_thread(tracing.shutdown)
            names = {"create orders", *(name for name, _ in HOPS)}
            for n, context in zip((2, 3), contexts, strict=True):
                got = await spans_of(collector, context.trace_id, names, gws)
                assert "ingest orders" not in got  # set once: eu kept the client's context
                spans = one_each({name: got[name] for name in names})
                create = spans["create orders"]
                assert create.span_id == context.span_id and create.region == ""
                assert create.attributes["messaging.message.id"] == f"traced-{n}"
                for name, region in HOPS:
                    assert (spans[name].region, spans[name].parent_id) == (
                        region,
                        context.span_id,
                    ), name
            # the unary call under the app's span: app -> create, app -> client RPC -> eu's RPC
            got = await spans_of(collector, contexts[1].trace_id, {"checkout", rpc_name}, gws)
            (checkout,) = got["checkout"]
            (client_rpc,) = [s for s in got[rpc_name] if s.region == ""]
            (eu_rpc,) = [s for s in got[rpc_name] if s.region == "eu"]
            assert got["create orders"][0].parent_id == checkout.span_id
            assert client_rpc.parent_id == checkout.span_id
            assert eu_rpc.parent_id == client_rpc.span_id
