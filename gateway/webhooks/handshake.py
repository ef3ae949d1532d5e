"""The CloudEvents Webhook abuse-protection handshake (Webhook spec, section 4).

Before the first delivery the gateway sends `OPTIONS <sink>` with
`WebHook-Request-Origin: <origin>` (this gateway's name) and `WebHook-Request-Rate`. The sink
allows it by answering 2xx with `WebHook-Allowed-Origin` equal to the origin or `*`, and
optionally `WebHook-Allowed-Rate` (requests per minute, or `*` for no limit), which the
gateway then honours. Redirects are not followed (the spec forbids it for delivery, and a
handshake that a redirect passes would validate another URL). The asynchronous variant
(`WebHook-Request-Callback`) is not supported.

`judge` is the pure decision; `validate_sink` does the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from gateway.webhooks.errors import SinkRefused

REQUEST_RATE = 600  # requests per minute the gateway asks for (the sink may answer less)


@dataclass(frozen=True, slots=True)
class Allowed:
    """The sink allows this origin; `rate` is requests per minute (None: unlimited)."""

    rate: int | None

    @property
    def min_interval(self) -> float:
        return 0.0 if self.rate is None else 60.0 / self.rate


def judge(status: int, headers: Mapping[str, str], origin: str, sink: str) -> Allowed:
    """The handshake's answer -> Allowed, or SinkRefused naming why."""
    if not 200 <= status < 300:
        raise SinkRefused(f"sink {sink} refused the webhook handshake: HTTP {status} to OPTIONS")
    allowed = headers.get("WebHook-Allowed-Origin")
    if allowed is None:
        raise SinkRefused(
            f"sink {sink} did not answer the webhook handshake (no WebHook-Allowed-Origin "
            f"in its OPTIONS response; it must echo WebHook-Request-Origin {origin!r} or '*')"
        )
    if allowed.strip() not in (origin, "*"):
        raise SinkRefused(
            f"sink {sink} allows origin {allowed.strip()!r}, not this gateway ({origin!r})"
        )
    allow = headers.get("Allow")
    if allow is not None and "POST" not in {m.strip().upper() for m in allow.split(",")}:
        raise SinkRefused(f"sink {sink} does not allow POST (Allow: {allow})")
    rate = headers.get("WebHook-Allowed-Rate")
    if rate is None or rate.strip() == "*":
        return Allowed(None)
    text = rate.strip()
    if not text.isdigit() or int(text) == 0:
        raise SinkRefused(f"sink {sink} answered an unusable WebHook-Allowed-Rate {rate!r}")
    return Allowed(int(text))


async def validate_sink(
    http: aiohttp.ClientSession,
    sink: str,
    origin: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> Allowed:
    """Run the handshake against `sink`. Raises SinkRefused (refused, or unreachable)."""
    request_headers = {
        **(headers or {}),
        "WebHook-Request-Origin": origin,
        "WebHook-Request-Rate": str(REQUEST_RATE),
    }
    try:
        async with http.options(
            sink,
            headers=request_headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            return judge(response.status, response.headers, origin, sink)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        raise SinkRefused(
            f"sink {sink} is unreachable for the webhook handshake: {reason}"
        ) from exc
