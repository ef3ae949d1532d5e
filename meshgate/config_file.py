"""The gateway's TOML config file, read once into plain tables (`meshgate gateway run --config`).

A file looks like::

    region = "eu"
    listen = "127.0.0.1:0"
    data_dir = "/var/lib/meshgate"
    metrics_port = 0
    max_event_bytes = 1048576
    max_message_bytes = 67108864  # gRPC message limit, both ways
    ack_timeout = 30.0
    max_ack_pending = 1000        # unacknowledged events per group at once
    max_redelivery_delay = 300.0  # cap of the doubling wait between redeliveries
    open = false           # true: run without access control (no [registry]); never implied
    durability = "fsync"   # or "os": ack before fsync (deploying.md: what a power cut loses)

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
    confirmations = 12

    [federation]
    peer_listen = "0.0.0.0:7443"
    tls_dir = "/etc/meshgate/tls"
    peer = ["us.example.org:7443"]

    [http]                 # the HTTP edge (CloudEvents HTTP binding, SSE); off without listen
    listen = "0.0.0.0:8080"        # --http-listen
    tls_cert = "/etc/meshgate/http.crt"  # --http-tls-cert / --http-tls-key
    tls_key = "/etc/meshgate/http.key"
    max_body_bytes = 1572864       # larger bodies get 413 before they are read
    header_timeout = "10s"         # request head deadline, and idle keep-alive
    body_timeout = "30s"           # whole-body deadline (408 after)
    heartbeat = "15s"              # SSE comment on idle streams
    retry_after = 5                # seconds, on 503

    [store]                # where events live; without it, SQLite in data_dir
    url = "nats://10.0.0.1:4222,10.0.0.2:4222,10.0.0.3:4222"  # --store (a JetStream cluster)
    replicas = 3           # the region stream's replication factor

Top-level keys are `GatewayConfig` fields (plus `listen` and `open`); the `[registry]` and
`[federation]` tables use the flags' names, so each setting has one name everywhere; `[http]`
keys are `HttpConfig` fields plus `listen` (the flags are `--http-` + the key).
`meshgate.settings` merges this file with the environment and the flags (flags win).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig, Retention, parse_listen
from gateway.errors import ConfigError
from meshgate.errors import SettingsError

# Which keys each flag table may hold (the `gateway run` flags' argparse dests).
REGISTRY_KEYS = (
    "rpc",
    "registry",
    "chain_id",
    "staleness",
    "from_block",
    "signin_domain",
    "confirmations",
)
FEDERATION_KEYS = ("peer_listen", "tls_dir", "peer", "peer_advertise", "no_mesh")
HTTP_KEYS = (
    "listen",
    "tls_cert",
    "tls_key",
    "max_body_bytes",
    "header_timeout",
    "body_timeout",
    "heartbeat",
    "retry_after",
)
STORE_KEYS = ("url", "replicas")
FLAG_TABLES = {
    "registry": REGISTRY_KEYS,
    "federation": FEDERATION_KEYS,
    "http": HTTP_KEYS,
    "store": STORE_KEYS,
}

# The TOML type each scalar setting must have (a `float` setting takes integers too).
Expected = tuple[str, tuple[type, ...]]
_STR: Expected = ("a string", (str,))
_INT: Expected = ("an integer", (int,))
_NUM: Expected = ("a number", (int, float))
_BOOL: Expected = ("true or false", (bool,))
_FIELD_TYPES = {"str": _STR, "Path": _STR, "int": _INT, "int | None": _INT, "float": _NUM}
TABLE_TYPES: dict[str, dict[str, Expected]] = {
    "registry": {
        "rpc": _STR,
        "registry": _STR,
        "chain_id": _INT,
        "from_block": _INT,
        "signin_domain": _STR,
        "confirmations": _INT,
        "staleness": ('a duration (e.g. "30s") or seconds', (str, int, float)),
    },
    "federation": {
        "peer_listen": _STR,
        "tls_dir": _STR,
        "peer": ("an address or a list of addresses", (str, list)),
        "peer_advertise": _STR,
        "no_mesh": _BOOL,
    },
    "store": {"url": _STR, "replicas": _INT},
}


@dataclass(frozen=True, kw_only=True)
class ConfigFile:
    """One file's contents: `GatewayConfig` keyword arguments and the flag tables.

    A table the file does not have is None (an empty table is `{}`: an error where it
    would otherwise mean "open")."""

    path: Path
    gateway: Mapping[str, Any] = field(default_factory=dict)
    registry: Mapping[str, Any] | None = None
    federation: Mapping[str, Any] | None = None
    http: Mapping[str, Any] | None = None
    store: Mapping[str, Any] | None = None
    open_access: bool | None = None


def read_config_file(path: Path) -> ConfigFile:
    """Parse and check a config file. Raises SettingsError naming the file and the key."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read config {path}: {exc}") from exc
    tables: dict[str, Mapping[str, Any] | None] = {}
    for table, allowed in FLAG_TABLES.items():
        values = raw.pop(table, None)
        if values is not None:
            if not isinstance(values, Mapping):
                raise SettingsError(f"{path}: [{table}] must be a table")
            unknown = set(values) - set(allowed)
            if unknown:
                raise SettingsError(f"{path}: [{table}] unknown keys {sorted(unknown)}")
            for key, value in values.items():
                expected = TABLE_TYPES.get(table, {}).get(key)
                if expected is not None:
                    _check_type(path, f"[{table}] {key}", value, expected)
            peers = values.get("peer")
            if isinstance(peers, list) and not all(isinstance(p, str) for p in peers):
                raise SettingsError(f"{path}: [{table}] peer must list addresses as strings")
        tables[table] = values
    open_access = raw.pop("open", None)
    if open_access is not None and not isinstance(open_access, bool):
        raise SettingsError(f"{path}: open must be true or false")
    try:
        gateway = _gateway_kwargs(raw, path)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from exc
    return ConfigFile(
        path=path,
        gateway=gateway,
        registry=tables["registry"],
        federation=tables["federation"],
        http=tables["http"],
        store=tables["store"],
        open_access=open_access,
    )


def _gateway_kwargs(raw: Mapping[str, Any], path: Path) -> dict[str, Any]:
    known = {f.name for f in fields(GatewayConfig)} | {"listen"}
    unknown = set(raw) - known
    if unknown:
        raise SettingsError(f"{path}: unknown keys {sorted(unknown)}")
    types = {f.name: str(f.type) for f in fields(GatewayConfig)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "listen" or types.get(key) in _FIELD_TYPES:
            _check_type(path, key, value, _FIELD_TYPES.get(types.get(key, "str"), _STR))
        if key == "listen":
            out["host"], out["port"] = parse_listen(str(value))
        elif key == "data_dir":
            out["data_dir"] = Path(value)
        elif key == "retention":
            out["retention"] = _retention(value, "[retention]")
            topics = value.get("topics", {})
            if not isinstance(topics, Mapping):
                raise SettingsError(f"{path}: [retention.topics] must be a table")
            out["topic_retention"] = {
                name: _retention(sub, f"[retention.topics.{name}]") for name, sub in topics.items()
            }
        else:
            out[key] = value
    return out


def _check_type(path: Path, key: str, value: Any, expected: Expected) -> None:
    what, types = expected
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        raise SettingsError(f"{path}: {key} must be {what}, not {value!r}")


def _retention(raw: Any, where: str) -> Retention:
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where} must be a table")
    unknown = set(raw) - {"max_age_seconds", "max_bytes", "topics"}
    if unknown:
        raise SettingsError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        return Retention(
            max_age_seconds=float(raw.get("max_age_seconds", 0)),
            max_bytes=int(raw.get("max_bytes", 0)),
        )
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{where}: {exc}") from exc
