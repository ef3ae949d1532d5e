"""`HttpServer`: the HTTP edge's listener, an aiohttp AppRunner + TCPSite in the gateway's loop.

Resource handling: `start()` builds the Application (gateway.http.app), binds (port 0 picks
one; `port` holds the bound one) and serves; `aclose()` stops accepting, gives open requests
`shutdown_grace` to finish (SSE streams end first: the gateway shuts the hub down before it
closes this), then closes every connection. Idempotent. `gateway.app.Gateway` starts it after
gRPC and closes it before its services and its store.

Slow clients: aiohttp's keep-alive timer starts when a connection opens (and again after each
response) and is not pushed back by partial input, so a request head must be complete within
`header_timeout` or the connection is closed; bodies have their own deadline
(gateway.http.body). One slow client holds one connection and nothing else.

A client that disconnects does not cancel its handler (aiohttp's default, kept on purpose): a
publish whose client went away still commits or fails whole, never half-cancelled in the store.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence

from aiohttp import web

from gateway.config import join_host_port
from gateway.errors import ConfigError
from gateway.http.app import build_app
from gateway.http.config import HttpConfig
from gateway.http.parts import HttpParts, RouteAdder

log = logging.getLogger(__name__)

# After an early answer (413, 408, 401 before the body), aiohttp reads and drops the rest of
# the body for this long so the client sees the answer rather than a reset; its default (10 s)
# would let a trickling client hold the connection ten times longer than body_timeout.
LINGER = 1.0


def tls_context(config: HttpConfig) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP. Raises ConfigError (one line)."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the HTTP TLS certificate/key: {exc}") from exc
    return context


class HttpServer:
    def __init__(
        self,
        config: HttpConfig,
        parts: HttpParts,
        adders: Sequence[RouteAdder] = (),
        *,
        shutdown_grace: float = 5.0,
    ) -> None:
        self.config = config
        self.parts = parts
        self.adders = tuple(adders)
        self.shutdown_grace = shutdown_grace
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._closed = False

    @property
    def listen(self) -> str:
        return join_host_port(self.config.host, self.port)

    @property
    def url(self) -> str:
        return f"{'https' if self.config.tls else 'http'}://{self.listen}"

    async def start(self) -> None:
        context = tls_context(self.config)
        runner = web.AppRunner(
            build_app(self.parts, self.adders),
            handle_signals=False,
            access_log=None,
            keepalive_timeout=self.config.header_timeout,
            lingering_time=LINGER,
            shutdown_timeout=self.shutdown_grace,
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.config.host, self.config.port, ssl_context=context)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen for HTTP on {self.config.listen}: {exc}") from exc
        self.port = int(runner.addresses[0][1])
        log.info("HTTP edge serving on %s", self.url)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            await self._runner.cleanup()
