"""`HttpParts`: what HTTP route handlers may use (the gateway's own parts), and how they get it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.access import AccessControl
from gateway.config import GatewayConfig
from gateway.http.config import HttpConfig
from gateway.hub import SubscriptionHub
from gateway.metrics import GatewayMetrics
from gateway.publishers import PublisherRights
from gateway.store import EventStore


@dataclass(frozen=True, kw_only=True)
class HttpParts:
    """The gateway's parts, shared with the gRPC API: one store, hub and access control."""

    gateway: GatewayConfig
    http: HttpConfig
    store: EventStore
    hub: SubscriptionHub
    access: AccessControl
    metrics: GatewayMetrics
    publishers: PublisherRights | None = None  # registry gateways: publisher-signed events only


RouteAdder = Callable[[web.Application, HttpParts], None]

PARTS: web.AppKey[HttpParts] = web.AppKey("meshgate_parts", HttpParts)


def parts_of(request: web.Request) -> HttpParts:
    """The parts of the Application serving `request`."""
    return request.app[PARTS]
