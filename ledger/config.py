"""Ledger configuration: one frozen dataclass, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

DEFAULT_POLL_INTERVAL = 0.5  # s; policy needs a revoke visible within 1 s of mining
DEFAULT_CONFIRMATIONS = 0  # Ganache automines and never reorgs; raise it on public chains
DEFAULT_RPC_TIMEOUT = 10.0  # s


@dataclass(frozen=True, kw_only=True)
class LedgerConfig:
    """Where the registry lives and how to follow it.

    `rpc_url` may be http(s):// (polling) or ws(s):// (live subscription plus polling).
    `chain_id` is checked against the node on connect; None skips the check.
    `registry` is the contract address (None only before deployment).
    """

    rpc_url: str
    registry: str | None = None
    chain_id: int | None = None
    confirmations: int = DEFAULT_CONFIRMATIONS
    poll_interval: float = DEFAULT_POLL_INTERVAL
    rpc_timeout: float = DEFAULT_RPC_TIMEOUT

    def __post_init__(self) -> None:
        scheme = urlparse(self.rpc_url).scheme
        if scheme not in ("http", "https", "ws", "wss"):
            raise ValueError(f"rpc_url must be http(s):// or ws(s)://, got {self.rpc_url!r}")
        if self.confirmations < 0:
            raise ValueError("confirmations must be >= 0")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        if self.rpc_timeout <= 0:
            raise ValueError("rpc_timeout must be > 0")

    @property
    def http_url(self) -> str:
        """The same node over HTTP (Ganache serves HTTP and WebSocket on one port)."""
        return _swap_scheme(self.rpc_url, {"ws": "http", "wss": "https"})

    @property
    def ws_url(self) -> str:
        return _swap_scheme(self.rpc_url, {"http": "ws", "https": "wss"})


def _swap_scheme(url: str, mapping: dict[str, str]) -> str:
    parsed = urlparse(url)
    return parsed._replace(scheme=mapping.get(parsed.scheme, parsed.scheme)).geturl()
