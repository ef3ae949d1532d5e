"""Federation settings: one frozen dataclass, validated on construction.

Defaults follow what the link needs on a loopback/LAN mesh: batches of 256 events keep gRPC's
per-message overhead low (toolchain notes: ~100x more events/s than one per message), a window of
8 unacked batches keeps the pipe full without unbounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from federation.protocol import LinkSettings

DEFAULT_BATCH_SIZE = 256
DEFAULT_WINDOW = 8
DEFAULT_HOP_LIMIT = 8


@dataclass(frozen=True, kw_only=True)
class PeerConfig:
    """How this gateway takes part in the federation.

    `listen_port=0` picks a free port. `seeds` are HOST:PORT addresses of any members; the rest
    of the federation is learnt from them.
    """

    region: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    advertise_address: str = ""
    seeds: tuple[str, ...] = field(default_factory=tuple)
    # Dial every member learnt through gossip (full mesh). False: dial only `seeds`, for
    # deliberate topologies (a line, hub and spoke); others may still dial us.
    mesh: bool = True
    batch_size: int = DEFAULT_BATCH_SIZE
    window: int = DEFAULT_WINDOW
    hop_limit: int = DEFAULT_HOP_LIMIT
    ping_interval: float = 1.0
    stale_after: float = 5.0
    handshake_timeout: float = 10.0
    drain_timeout: float = 3.0
    reconnect_initial: float = 0.2
    reconnect_max: float = 5.0

    def __post_init__(self) -> None:
        if not self.region or not all(c.isalnum() or c in "-_" for c in self.region):
            raise ValueError(f"region must be alphanumeric (with - or _): {self.region!r}")
        if not 0 <= self.listen_port <= 65535:
            raise ValueError(f"listen_port out of range: {self.listen_port}")
        for seed in self.seeds:
            host, sep, port = seed.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"peer address must be HOST:PORT: {seed!r}")
        if self.batch_size < 1 or self.window < 1 or self.hop_limit < 1:
            raise ValueError("batch_size, window and hop_limit must be positive")
        if self.stale_after <= self.ping_interval:
            raise ValueError("stale_after must exceed ping_interval")
        if not 0 < self.reconnect_initial <= self.reconnect_max:
            raise ValueError("need 0 < reconnect_initial <= reconnect_max")

    @property
    def link_settings(self) -> LinkSettings:
        return LinkSettings(
            window=self.window,
            ping_interval=self.ping_interval,
            stale_after=self.stale_after,
            handshake_timeout=self.handshake_timeout,
            drain_timeout=self.drain_timeout,
        )
