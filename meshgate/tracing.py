"""OpenTelemetry tracing of a meshgate process (issue 16), configured only by `OTEL_*` variables.

    OTEL_TRACES_EXPORTER         unset or `none`: tracing is off (the default); `otlp` (OTLP over
                                 gRPC), `console` (stdout), or both comma-separated
    OTEL_EXPORTER_OTLP_ENDPOINT  the collector (default http://localhost:4317); the other
    OTEL_EXPORTER_OTLP_*         variables (INSECURE, HEADERS, CERTIFICATE, ...) as the
                                 exporter reads them
    OTEL_SERVICE_NAME            default `meshgate-gateway` / `meshgate-cli`
    OTEL_RESOURCE_ATTRIBUTES     added to the resource; `meshgate.region` is set to the region
    OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*   as the SDK reads them (parent-based always-on default)

Off costs nothing: `setup` reads one variable and returns None; nothing of OpenTelemetry is
imported, and the span hooks (eventmodel/event_spans.py) stay behind their module flag.
On: a TracerProvider with a batch span processor per exporter (spans leave in the background
thread, never on the event loop), the gRPC aio server (a gateway) or client channels (a client
process) instrumented for RPC spans, and the event span hooks installed. Left out of the gRPC
instrumentation (their events are traced anyway): server streams that answer with
`context.write` (Gateway.PublishStream, Federation.Link; the instrumented wrapper iterates the
handler), and on the client the streams read with `call.read()` (those and Subscribe; the
instrumented call is only an iterator).

Call `setup` before any gRPC server or channel is created (the instrumentors patch
`grpc.aio.server` and the channel constructors), and `shutdown()` the result at exit (flushes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventmodel import event_spans
from meshgate.errors import SettingsError

EXPORTERS = ("otlp", "console")
# Handlers that answer with `context.write` (the instrumented stream wrapper iterates them).
UNTRACED_SERVER = frozenset({"/meshgate.v1.Gateway/PublishStream", "/meshgate.v1.Federation/Link"})
# Calls read with `call.read()` (the instrumented stream call is only an async iterator).
UNTRACED_CLIENT = UNTRACED_SERVER | {"/meshgate.v1.Gateway/Subscribe"}


def exporters_from(env: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters `OTEL_TRACES_EXPORTER` names (empty: off). Raises SettingsError."""
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    names = tuple(n.strip() for n in raw.split(",") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise SettingsError(
            f"OTEL_TRACES_EXPORTER={raw!r}: meshgate exports to {', '.join(EXPORTERS)} or none"
        )
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class Tracing:
    """Tracing turned on in this process; `shutdown()` flushes and stops it (idempotent)."""

    provider: Any
    instrumentors: tuple[Any, ...]

    def shutdown(self) -> None:
        event_spans.uninstall()
        for instrumentor in self.instrumentors:
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        self.provider.shutdown()


def _method(details: Any) -> str:
    method = getattr(details, "method", "")
    return method.decode(errors="replace") if isinstance(method, bytes) else str(method)


def _server_traced(details: Any) -> bool:
    return _method(details) not in UNTRACED_SERVER


def _client_traced(details: Any) -> bool:
    return _method(details) not in UNTRACED_CLIENT


def setup(*, service: str, region: str = "", serves: bool = True) -> Tracing | None:
    """Turn tracing on as the environment says (None: off, nothing imported); the SDK and the
    exporter read their own `OTEL_*` variables from `os.environ`. Raises SettingsError.

    `serves`: a gateway (its gRPC server instrumented); False: a client process (its channels
    instrumented, so a gateway's RPC span is a child of the caller's). Never both: a gateway's
    only outgoing calls are its federation links, which are not instrumented."""
    names = exporters_from(os.environ)
    if not names:
        return None
    from opentelemetry import trace
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({})  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES first
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    if region and "meshgate.region" not in resource.attributes:
        resource = resource.merge(Resource({"meshgate.region": region}))
    provider = TracerProvider(resource=resource)
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    instrumentor = (  # the filter goes to the constructor, not to instrument()
        GrpcAioInstrumentorServer(filter_=_server_traced)
        if serves
        else GrpcAioInstrumentorClient(filter_=_client_traced)
    )
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    instrumentors = (instrumentor,)
    event_spans.install(provider.get_tracer("meshgate"), region)
    return Tracing(provider=provider, instrumentors=instrumentors)
