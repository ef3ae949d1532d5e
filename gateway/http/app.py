"""The route seam: `build_app(parts, adders)` builds the aiohttp Application of the HTTP edge.

Like `servicers` for gRPC (`gateway.app.Gateway(servicers=...)`), the HTTP edge is built from
a list of route adders: callables `(app, parts) -> None` that add routes (and, if they need
them, startup/cleanup hooks) to the Application. The core routes (ingress, sign-in, SSE) are
always added; further adders come from the composition root.

How to add routes (e.g. the Subscriptions API), without editing this package:

1. In your module, write `def add_routes(app: web.Application, parts: HttpParts) -> None`
   that calls `app.router.add_get(...)` etc. Handlers reach the gateway through
   `gateway.http.parts.parts_of(request)` (store, hub, access control, metrics, configs).
   Authenticate with `gateway.http.identity.authenticate(request)` (bearer token ->
   Identity: the same AccessControl call as gRPC). Raise errors rather than build error
   responses: the error middleware (`gateway.http.responses`) answers with the status from
   gateway/status.py's table (add a row there for a new error class).
2. Background work bound to the listener's lifetime can go in `app.cleanup_ctx` (started
   after the routes, cleaned up when the listener stops, before the store closes).
3. Pass it from `meshgate/assemble.py`: `Gateway(..., http_routes=[add_routes])`.

Event rendering for outgoing HTTP (binary/structured/batch mode) is `gateway.http.binding`.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from gateway.http import identity, ingress, responses, sse
from gateway.http.parts import PARTS, HttpParts, RouteAdder

CORE_ROUTES: tuple[RouteAdder, ...] = (ingress.add_routes, sse.add_routes, identity.add_routes)


def build_app(parts: HttpParts, adders: Sequence[RouteAdder] = ()) -> web.Application:
    """The Application: error middleware, the core routes, then each adder's routes."""
    app = web.Application(middlewares=[responses.error_middleware])
    app[PARTS] = parts
    for add in (*CORE_ROUTES, *adders):
        add(app, parts)
    return app
