"""The CloudEvents Subscriptions API over HTTP, and the webhook delivery behind it.

Routes (bodies are gateway.webhooks.subscription's API form; errors as every HTTP route's)::

    POST   /subscriptions          create           201 + Location, the subscription
    GET    /subscriptions          the caller's     200 [subscription, ...]
    GET    /subscriptions/{id}     one              200 | 404
    PUT    /subscriptions/{id}     create/replace   201 | 200
    DELETE /subscriptions/{id}     delete           204 | 404
    GET    /subscriptions/{id}/status   meshgate's own: {"status", "delivered", "deadlettered"}

Every route authenticates (Bearer token, like the rest of the HTTP edge). Creating needs the
same grant as subscribing, and the sink must pass the Webhook handshake first (400 naming
why otherwise). Webhook delivery (`WebhookService`) runs for the listener's lifetime: started
after the routes, stopped when the listener stops (before the store closes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.http.body import read_body
from gateway.http.identity import authenticate
from gateway.http.parts import HttpParts, parts_of
from gateway.http.responses import json_response
from gateway.webhooks.errors import InvalidSubscription
from gateway.webhooks.service import WebhookService

SUBSCRIPTION_BODY_LIMIT = 64 * 1024  # a subscription is a small JSON document
WEBHOOKS: web.AppKey[WebhookService] = web.AppKey("meshgate_webhooks", WebhookService)


def _service(request: web.Request) -> WebhookService:
    return request.app[WEBHOOKS]


async def _body(request: web.Request) -> Any:
    raw = await read_body(request, SUBSCRIPTION_BODY_LIMIT, parts_of(request).http.body_timeout)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSubscription(f"subscription body is not JSON: {exc}") from None


async def create(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    sub = await _service(request).create(caller, await _body(request))
    response = json_response(sub.to_api(), status=201)
    response.headers["Location"] = f"/subscriptions/{sub.id}"
    return response


async def list_all(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    return json_response([s.to_api() for s in _service(request).list(caller)])


async def get_one(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    return json_response(_service(request).get(caller, request.match_info["id"]).to_api())


async def put(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    service = _service(request)
    sub_id = request.match_info["id"]
    existed = any(s.id == sub_id for s in service.list(caller))
    sub = await service.put(caller, sub_id, await _body(request))
    return json_response(sub.to_api(), status=200 if existed else 201)


async def delete(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    await _service(request).delete(caller, request.match_info["id"])
    return web.Response(status=204)


async def status(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    service = _service(request)
    sub = service.get(caller, request.match_info["id"])
    return json_response({"id": sub.id, **service.statistics(sub.id)})


def add_routes(app: web.Application, parts: HttpParts) -> None:
    service = WebhookService(
        data_dir=parts.gateway.data_dir,
        hub=parts.hub,
        access=parts.access,
        store=parts.store,
        region=parts.gateway.region,
        on_delivered=lambda topic, n: parts.metrics.events_out.labels(topic).inc(n),
    )
    app[WEBHOOKS] = service

    async def run_webhooks(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(service.run(), name="webhooks")
        started = asyncio.ensure_future(service.wait_started())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if task.done():
            task.result()  # a subscriptions file that cannot be read fails the start, loudly
        yield
        task.cancel()
        await asyncio.wait({task})  # never raises the task's cancellation

    app.cleanup_ctx.append(run_webhooks)
    app.router.add_post("/subscriptions", create)
    app.router.add_get("/subscriptions", list_all)
    app.router.add_get("/subscriptions/{id}", get_one)
    app.router.add_put("/subscriptions/{id}", put)
    app.router.add_delete("/subscriptions/{id}", delete)
    app.router.add_get("/subscriptions/{id}/status", status)
