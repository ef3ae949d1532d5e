"""The gateway's HTTP edge: the CloudEvents HTTP binding, sign-in, Server-Sent Events.

Served by aiohttp in the gateway's event loop, beside grpc.aio, with the same store, hub and
access control as the gRPC API (so both refuse, store and audit exactly the same way).

- `gateway.http.config`: `HttpConfig` (listen address, TLS, body cap, timeouts).
- `gateway.http.app`: `HttpParts` and `build_app`: the route seam (how to add routes).
- `gateway.http.server`: `HttpServer`, the listener (AppRunner/TCPSite), started and stopped
  by `gateway.app.Gateway`.
- `gateway.http.binding`: pure: HTTP messages <-> protobuf CloudEvents (binary, structured,
  batch modes), and the structured JSON rendering.
- `gateway.http.body`: reading a body under the size cap and the body deadline.
- `gateway.http.ingress`: `POST /topics/{topic}/events`.
- `gateway.http.identity`: `GET /signin/nonce`, `POST /signin`, bearer tokens.
- `gateway.http.sse`: `GET /topics/{topic}/events` as Server-Sent Events.
- `gateway.http.responses`: errors -> JSON responses (statuses from gateway/status.py).
- `gateway.http.errors`: what only HTTP can get wrong.

This `__init__` imports nothing: gateway/status.py imports `gateway.http.errors` without
loading aiohttp.
"""
