"""One typed configuration for a gateway process, read once from file, environment and flags.

Precedence, per setting: a flag given on the command line, then the environment
(`MESHGATE_RPC`, `MESHGATE_REGISTRY`), then the config file, then the default.

Access control is a choice, never a fallback: a gateway either follows a registry (`--rpc` and
`--registry`, or the environment, or a `[registry]` table) or runs open because it was told
to (`--open`, or `open = true` in the file). Neither, both, an empty `MESHGATE_REGISTRY=` or an
empty `[registry]` table is a `SettingsError`.

Pure: `resolve()` takes the flags as a mapping of argparse dests (None = not given), the
environment and the parsed file; it reads nothing itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.config import PeerConfig
from gateway.config import GatewayConfig, parse_listen
from gateway.errors import ConfigError
from gateway.http.config import HttpConfig
from ledger.config import LedgerConfig
from meshgate.config_file import ConfigFile
from meshgate.errors import SettingsError
from policy.decision import DEFAULT_STALENESS_BOUND

RPC_ENV = "MESHGATE_RPC"
REGISTRY_ENV = "MESHGATE_REGISTRY"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_NO_ACCESS_CHOICE = (
    "no access control configured: give --rpc and --registry (or MESHGATE_RPC and "
    "MESHGATE_REGISTRY, or a [registry] table), or --open to run without access control"
)


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    """Access control by the on-chain registry."""

    ledger: LedgerConfig
    staleness: float
    from_block: int
    domain: str


@dataclass(frozen=True, kw_only=True)
class FederationSettings:
    peer: PeerConfig
    tls_dir: Path


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    """The region's events on a NATS JetStream cluster (`--store nats://...`, `[store]`)."""

    servers: tuple[str, ...]  # nats://HOST:PORT each
    replicas: int = 3


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """Everything one `meshgate gateway run` process is built from (`meshgate.assemble`)."""

    gateway: GatewayConfig
    registry: RegistrySettings | None  # None: open, because the operator said so
    federation: FederationSettings | None
    log_level: str = "INFO"
    http: HttpConfig | None = None  # None: no HTTP edge (no --http-listen, no [http] listen)
    store: StoreSettings | None = None  # None: SQLite in the data directory

    @property
    def open_access(self) -> bool:
        return self.registry is None


def parse_duration(text: str) -> float:
    """Seconds from '30', '30s', '2.5s', '500ms' or '1m'. Raises SettingsError."""
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(f"not a duration: {text!r} (use e.g. 30s, 500ms)")
    value = float(match[1])
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match[2]]


def resolve(
    flags: Mapping[str, Any], env: Mapping[str, str], file: ConfigFile | None
) -> GatewaySettings:
    """The process's settings. Raises SettingsError (one line, names the setting)."""
    gateway = _gateway_config(flags, file)
    return GatewaySettings(
        gateway=gateway,
        registry=_registry(flags, env, file, gateway.region),
        federation=_federation(flags, file, gateway.region),
        http=_http(flags, file),
        store=_store(flags, file),
        log_level=str(flags.get("log_level") or "INFO").upper(),
    )


def _gateway_config(flags: Mapping[str, Any], file: ConfigFile | None) -> GatewayConfig:
    values: dict[str, Any] = dict(file.gateway) if file is not None else {}
    if flags.get("listen"):
        values["host"], values["port"] = _listen(flags["listen"])
    renamed = {"data": "data_dir"}
    dests = ("region", "data", "metrics_port", "max_event_bytes", "ack_timeout", "durability")
    for dest in (*dests, "advertise"):
        if flags.get(dest) is not None:
            values[renamed.get(dest, dest)] = flags[dest]
    if flags.get("retention_interval") is not None:
        values["retention_interval"] = flags["retention_interval"]
    if flags.get("encryption_grace") is not None:  # else the file's encryption_grace, or 30 s
        values["encryption_grace"] = flags["encryption_grace"]
    missing = [k for k in ("region", "data_dir") if k not in values]
    if missing:
        raise SettingsError(f"missing configuration: {', '.join(missing)}")
    values["data_dir"] = Path(values["data_dir"])
    try:
        return GatewayConfig(**values)
    except (ConfigError, TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from exc


def _listen(value: str) -> tuple[str, int]:
    try:
        return parse_listen(value)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from exc


def _pick(
    name: str,
    flags: Mapping[str, Any],
    table: Mapping[str, Any] | None,
    env: Mapping[str, str] | None = None,
    env_name: str | None = None,
    section: str = "registry",
) -> Any:
    """One setting by precedence (flag, environment, file); an empty string is an error."""
    if flags.get(name) is not None:
        value, where = flags[name], f"--{name.replace('_', '-')}"
    elif env is not None and env_name is not None and env_name in env:
        value, where = env[env_name], env_name
    elif table is not None and name in table:
        value, where = table[name], f"[{section}] {name}"
    else:
        return None
    if isinstance(value, str) and not value.strip():
        raise SettingsError(f"{where} is set but empty")
    return value


def _registry(
    flags: Mapping[str, Any], env: Mapping[str, str], file: ConfigFile | None, region: str
) -> RegistrySettings | None:
    table = file.registry if file is not None else None
    if table is not None and not table:
        where = file.path if file is not None else "config"
        raise SettingsError(f"{where}: [registry] is empty ({_NO_ACCESS_CHOICE})")
    rpc = _pick("rpc", flags, table, env, RPC_ENV)
    registry = _pick("registry", flags, table, env, REGISTRY_ENV)
    open_access = bool(flags.get("open")) or bool(file is not None and file.open_access)
    if open_access:
        if rpc or registry:
            raise SettingsError("--open runs without access control: drop --rpc/--registry")
        return None
    if not registry:
        if rpc:
            raise SettingsError(f"--rpc given without --registry (or {REGISTRY_ENV})")
        raise SettingsError(_NO_ACCESS_CHOICE)
    if not rpc:
        raise SettingsError(f"--registry needs --rpc (or {RPC_ENV})")
    staleness = _pick("staleness", flags, table)
    if isinstance(staleness, str):
        staleness = parse_duration(staleness)
    staleness = DEFAULT_STALENESS_BOUND if staleness is None else float(staleness)
    if staleness <= 0:
        raise SettingsError("--staleness must be positive")
    confirmations = _pick("confirmations", flags, table)
    try:
        ledger = LedgerConfig(
            rpc_url=str(rpc),
            registry=str(registry),
            chain_id=_pick("chain_id", flags, table),
            confirmations=int(confirmations or 0),
        )
    except (TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from exc
    return RegistrySettings(
        ledger=ledger,
        staleness=staleness,
        from_block=int(_pick("from_block", flags, table) or 0),
        domain=_pick("signin_domain", flags, table) or f"meshgate-{region}",
    )


def _federation(
    flags: Mapping[str, Any], file: ConfigFile | None, region: str
) -> FederationSettings | None:
    table = file.federation if file is not None else None
    peer_listen = _pick("peer_listen", flags, table, section="federation")
    tls_dir = _pick("tls_dir", flags, table, section="federation")
    seeds = flags.get("peer") or (table or {}).get("peer") or []
    seeds = [seeds] if isinstance(seeds, str) else list(seeds)
    if not peer_listen:
        if seeds or tls_dir:
            raise SettingsError("--peer and --tls-dir need --peer-listen")
        return None
    if not tls_dir:
        raise SettingsError("--peer-listen needs --tls-dir (see `meshgate certs issue`)")
    host, port = _listen(str(peer_listen))
    no_mesh = bool(flags.get("no_mesh")) or bool((table or {}).get("no_mesh", False))
    try:
        peer = PeerConfig(
            region=region,
            listen_host=host,
            listen_port=port,
            advertise_address=_pick("peer_advertise", flags, table, section="federation") or "",
            seeds=tuple(seeds),
            mesh=not no_mesh,
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    return FederationSettings(peer=peer, tls_dir=Path(tls_dir))


_HTTP_DURATIONS = ("header_timeout", "body_timeout", "heartbeat")


def _http(flags: Mapping[str, Any], file: ConfigFile | None) -> HttpConfig | None:
    """The HTTP edge: on when `--http-listen` or `[http] listen` is given."""
    table = dict(file.http) if file is not None and file.http is not None else None
    listen = _pick("http_listen", flags, None) or (table or {}).get("listen")
    if not listen:
        if table is not None or flags.get("http_tls_cert") or flags.get("http_tls_key"):
            raise SettingsError("the HTTP edge needs --http-listen (or [http] listen)")
        return None
    values: dict[str, Any] = {k: v for k, v in (table or {}).items() if k != "listen"}
    values["host"], values["port"] = _listen(str(listen))
    for key in ("tls_cert", "tls_key"):
        value = flags.get(f"http_{key}") or values.get(key)
        if value is not None:
            values[key] = Path(value)
    for key in _HTTP_DURATIONS:
        if isinstance(values.get(key), str):
            values[key] = parse_duration(values[key])
    try:
        return HttpConfig(**values)
    except (ConfigError, TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from exc


def parse_store_url(url: str) -> tuple[str, ...]:
    """`nats://HOST:PORT[,HOST:PORT...]` -> one nats:// URL per server. Raises SettingsError."""
    rest = url.strip()
    if not rest.startswith("nats://"):
        raise SettingsError(f"--store must be nats://HOST:PORT[,HOST:PORT...], not {url!r}")
    servers = []
    for part in rest.removeprefix("nats://").split(","):
        part = part.strip().removeprefix("nats://")
        try:
            _host, port = parse_listen(part)
        except ConfigError as exc:
            raise SettingsError(f"--store: {exc}") from exc
        if port == 0:
            raise SettingsError(f"--store: {part!r} needs a port")
        servers.append(f"nats://{part}")
    return tuple(servers)


def _store(flags: Mapping[str, Any], file: ConfigFile | None) -> StoreSettings | None:
    table = dict(file.store) if file is not None and file.store is not None else {}
    url = flags.get("store") or table.get("url")
    if not url:
        if table:
            raise SettingsError('[store] needs url = "nats://HOST:PORT[,HOST:PORT...]"')
        return None
    replicas = int(table.get("replicas", 3))
    if not 1 <= replicas <= 5:
        raise SettingsError(f"[store] replicas must be 1 to 5, not {replicas}")
    return StoreSettings(servers=parse_store_url(str(url)), replicas=replicas)
