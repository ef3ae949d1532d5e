"""Gateway configuration: frozen keyword-only dataclasses, loaded from CLI args and TOML.

Only this module reads files. A TOML file looks like::

    region = "eu"
    listen = "127.0.0.1:0"
    data_dir = "/var/lib/meshgate"
    metrics_port = 0
    max_event_bytes = 1048576
    ack_timeout = 30.0

    [retention]            # defaults for every topic
    max_age_seconds = 0    # 0 = unbounded
    max_bytes = 0

    [retention.topics.orders]
    max_age_seconds = 3600

    [registry]             # access control; the same names as the `gateway run` flags
    rpc = "wss://rpc.example.org"
    registry = "0x..."
    chain_id = 1
    staleness = "30s"

    [federation]
    peer_listen = "0.0.0.0:7443"
    tls_dir = "/etc/meshgate/tls"
    peer = ["us.example.org:7443"]

CLI arguments override file values. The `[registry]` and `[federation]` tables are handed to
the command line as flag defaults (`flag_defaults`), so each setting has one name everywhere.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError, InvalidTopicName
from gateway.topics import check_topic_name

# 1 MiB: the CloudEvents spec asks intermediaries to accept at least 64 KiB; Kafka's default
# message.max.bytes is ~1 MiB too.
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
# Long enough for a consumer that processes a credit window between acks.
DEFAULT_ACK_TIMEOUT = 30.0
DEFAULT_RETENTION_INTERVAL = 5.0
DEFAULT_SHUTDOWN_GRACE = 5.0


@dataclass(frozen=True, kw_only=True)
class Retention:
    """How long a topic keeps events; 0 means unbounded."""

    max_age_seconds: float = 0
    max_bytes: int = 0

    def __post_init__(self) -> None:
        if self.max_age_seconds < 0 or self.max_bytes < 0:
            raise ConfigError("retention limits must be >= 0")

    @property
    def unbounded(self) -> bool:
        return not self.max_age_seconds and not self.max_bytes


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    region: str
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    data_dir: Path
    metrics_port: int | None = None  # None = no metrics server, 0 = pick a free port
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    retention: Retention = field(default_factory=Retention)
    topic_retention: Mapping[str, Retention] = field(default_factory=dict)
    retention_interval: float = DEFAULT_RETENTION_INTERVAL
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE

    def __post_init__(self) -> None:
        if not self.region or not self.region.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"invalid region name {self.region!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"invalid port {self.port}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"invalid metrics port {self.metrics_port}")
        if self.max_event_bytes <= 0:
            raise ConfigError("max_event_bytes must be > 0")
        if self.ack_timeout <= 0:
            raise ConfigError("ack_timeout must be > 0")
        if self.retention_interval <= 0:
            raise ConfigError("retention_interval must be > 0")
        for topic in self.topic_retention:
            try:
                check_topic_name(topic)
            except InvalidTopicName as exc:
                raise ConfigError(f"retention override: {exc}") from exc

    @property
    def listen(self) -> str:
        return join_host_port(self.host, self.port)

    def retention_for(self, topic: str) -> Retention:
        return self.topic_retention.get(topic, self.retention)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listen(value: str) -> tuple[str, int]:
    """Split HOST:PORT; raise ConfigError on anything else."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"invalid listen address {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _retention(raw: Any, where: str) -> Retention:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(raw) - {"max_age_seconds", "max_bytes", "topics"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    return Retention(
        max_age_seconds=float(raw.get("max_age_seconds", 0)),
        max_bytes=int(raw.get("max_bytes", 0)),
    )


# Tables of flag defaults: which `gateway run` flags (argparse dests) each may set.
FLAG_TABLES = {
    "registry": ("rpc", "registry", "chain_id", "staleness", "from_block", "signin_domain"),
    "federation": ("peer_listen", "tls_dir", "peer", "peer_advertise", "no_mesh"),
}


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc


def flag_defaults(path: Path) -> dict[str, Any]:
    """The `[registry]` and `[federation]` tables as {flag dest: value}. Raises ConfigError."""
    out: dict[str, Any] = {}
    raw = _read(path)
    for table, allowed in FLAG_TABLES.items():
        values = raw.get(table, {})
        if not isinstance(values, Mapping):
            raise ConfigError(f"{path}: [{table}] must be a table")
        unknown = set(values) - set(allowed)
        if unknown:
            raise ConfigError(f"{path}: [{table}] unknown keys {sorted(unknown)}")
        out.update(values)
    return out


def load_toml(path: Path) -> dict[str, Any]:
    """Read a config file into GatewayConfig keyword arguments (flag tables aside)."""
    raw = {k: v for k, v in _read(path).items() if k not in FLAG_TABLES}
    known = {f.name for f in fields(GatewayConfig)} | {"listen"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "listen":
            out["host"], out["port"] = parse_listen(str(value))
        elif key == "data_dir":
            out["data_dir"] = Path(value)
        elif key == "retention":
            out["retention"] = _retention(value, "[retention]")
            topics = value.get("topics", {})
            out["topic_retention"] = {
                name: _retention(sub, f"[retention.topics.{name}]") for name, sub in topics.items()
            }
        else:
            out[key] = value
    return out


def build_config(file: Path | None = None, **overrides: Any) -> GatewayConfig:
    """File values, then non-None `overrides` on top. Raises ConfigError."""
    values: dict[str, Any] = load_toml(file) if file is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    missing = [k for k in ("region", "data_dir") if k not in values]
    if missing:
        raise ConfigError(f"missing configuration: {', '.join(missing)}")
    try:
        return GatewayConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc


__all__ = [
    "GatewayConfig",
    "Retention",
    "build_config",
    "flag_defaults",
    "parse_listen",
    "replace",
]
