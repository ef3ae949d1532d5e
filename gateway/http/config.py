"""`HttpConfig`: the HTTP edge's settings (`--http-listen`, `--http-tls-*`, the `[http]` table).

Defaults, and why:

- `max_body_bytes` 1.5 MiB: one event of the gateway's default `max_event_bytes` (1 MiB) fits
  in binary mode, and in structured mode with its data as Base64 (4/3 of 1 MiB, ~1.33 MiB, plus
  its attributes). Larger bodies are refused with 413 before they are read.
- `header_timeout` 10 s: a request's head (request line and headers) must arrive within this
  of the connection opening or of the previous response (node.js: headersTimeout 60 s; nginx:
  client_header_timeout 60 s; ours is shorter because our requests are small and machine-made).
  It is also the idle keep-alive limit.
- `body_timeout` 30 s: the whole body must arrive within this of the handler starting to read
  it (node.js requestTimeout 300 s covers the whole request); a client trickling bytes is cut off
  with 408.
- `heartbeat` 15 s: a comment line on idle Server-Sent Events streams, under the 30-60 s idle
  limits common in proxies and load balancers.
- `retry_after` 5 s: the `Retry-After` of a 503 (stale chain view, store busy, closing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.config import join_host_port
from gateway.errors import ConfigError

DEFAULT_MAX_BODY_BYTES = 3 * 512 * 1024
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_HEARTBEAT = 15.0
DEFAULT_RETRY_AFTER = 5


@dataclass(frozen=True, kw_only=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    heartbeat: float = DEFAULT_HEARTBEAT
    retry_after: int = DEFAULT_RETRY_AFTER

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"invalid HTTP port {self.port}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("HTTP TLS needs both a certificate and a key (--http-tls-cert/-key)")
        if self.max_body_bytes <= 0:
            raise ConfigError("[http] max_body_bytes must be > 0")
        for name in ("header_timeout", "body_timeout", "heartbeat"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[http] {name} must be > 0")
        if self.retry_after < 0:
            raise ConfigError("[http] retry_after must be >= 0")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def listen(self) -> str:
        return join_host_port(self.host, self.port)
