"""A real webhook sink for the tests: an aiohttp server on 127.0.0.1 that checks the
CloudEvents Webhook handshake and answers posts from a script."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent


@dataclass
class Post:
    at: float
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Sink:
    """`script(n)` gives the status (and headers) of the n-th post (1-based); default 200.
    `allow_origin`: what the handshake answers (None: it does not answer the handshake)."""

    script: Callable[[int], tuple[int, dict[str, str]]] = lambda n: (200, {})
    allow_origin: str | None = "echo"
    allowed_rate: str = "*"
    hang: bool = False  # posts never get an answer
    in_flight: int = 0
    handshakes: list[str] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    accepted: list[CloudEvent] = field(default_factory=list)
    posts_before_handshake: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def options(self, request: web.Request) -> web.Response:
        origin = request.headers.get("WebHook-Request-Origin", "")
        self.handshakes.append(origin)
        if self.allow_origin is None or not origin:
            return web.Response(status=200)
        allowed = origin if self.allow_origin == "echo" else self.allow_origin
        return web.Response(
            status=200,
            headers={"WebHook-Allowed-Origin": allowed, "WebHook-Allowed-Rate": self.allowed_rate},
        )

    async def post(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.handshakes:
            self.posts_before_handshake += 1
        if self.hang:
            self.in_flight += 1
            await asyncio.Event().wait()
        status, headers = self.script(len(self.posts) + 1)
        self.posts.append(Post(time.monotonic(), status, dict(request.headers), body))
        if 200 <= status < 300:
            message = ce_http.HTTPMessage(dict(request.headers), body)
            if request.content_type == "application/cloudevents-batch+json":
                self.accepted += [JSONFormat().read(None, json.dumps(e)) for e in json.loads(body)]
            else:
                self.accepted.append(ce_http.from_http(message, JSONFormat()))
        return web.Response(status=status, headers=headers)

    async def start(self, path: str = "/hook") -> Sink:
        app = web.Application()
        app.router.add_route("OPTIONS", path, self.options)
        app.router.add_post(path, self.post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{path}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def accepted_ids(self) -> list[str]:
        return [str(e.get_attributes()["id"]) for e in self.accepted]
