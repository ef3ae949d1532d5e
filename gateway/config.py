"""Gateway configuration: frozen keyword-only dataclasses, validated on construction.

The gateway reads no files, environment or flags: `meshgate.config_file` reads the TOML file
(its top-level keys are this module's field names) and `meshgate.settings` merges it with the
environment and the flags into one `GatewaySettings` holding a `GatewayConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.delivery import DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_REDELIVERY_DELAY
from gateway.errors import ConfigError, InvalidTopicName
from gateway.topics import check_topic_name

# 1 MiB: the CloudEvents spec asks intermediaries to accept at least 64 KiB; Kafka's default
# message.max.bytes is ~1 MiB too.
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
# Every RPC's message limit, both ways: a Publish of 64 events of the largest size fits (gRPC's
# own default receive limit is 4 MiB, which would refuse a batch of five such events).
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Room a message needs around its events (topic, credentials, framing).
MESSAGE_OVERHEAD = 64 * 1024
# Long enough for a consumer that processes a credit window between acks.
DEFAULT_ACK_TIMEOUT = 30.0
DEFAULT_RETENTION_INTERVAL = 5.0
DEFAULT_SHUTDOWN_GRACE = 5.0
# When a write is acknowledged: "fsync" after fsync (survives a power cut), "os" once written to
# the OS (survives a crash of the process, not of the machine; JetStream's default). See
# docs/deploying.md and gateway/sqlite_schema.py.
DURABILITY_MODES = ("fsync", "os")
# After a key rotation, events sealed under an older epoch are still taken this long
# (gateway/encrypted_topics.py): publishers that sealed just before it finish.
DEFAULT_ENCRYPTION_GRACE = 30.0


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
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    max_ack_pending: int = DEFAULT_MAX_ACK_PENDING
    max_redelivery_delay: float = DEFAULT_MAX_REDELIVERY_DELAY
    retention: Retention = field(default_factory=Retention)
    topic_retention: Mapping[str, Retention] = field(default_factory=dict)
    retention_interval: float = DEFAULT_RETENTION_INTERVAL
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    # s an older key epoch is still taken after a rotation (gateway/encrypted_topics.py)
    encryption_grace: float = DEFAULT_ENCRYPTION_GRACE
    durability: str = "fsync"  # DURABILITY_MODES
    # host:port where clients reach this gateway, named in a region's writer hints (a region
    # of replicas on JetStream); "" = the listen address, unless its host is a wildcard
    advertise: str = ""

    def __post_init__(self) -> None:
        if not self.region or not self.region.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"invalid region name {self.region!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"invalid port {self.port}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"invalid metrics port {self.metrics_port}")
        if self.max_event_bytes <= 0:
            raise ConfigError("max_event_bytes must be > 0")
        if self.max_message_bytes < self.max_event_bytes + MESSAGE_OVERHEAD:
            raise ConfigError(
                f"max_message_bytes must be >= max_event_bytes + {MESSAGE_OVERHEAD} "
                "(one event of the largest size must fit in a message)"
            )
        if self.ack_timeout <= 0:
            raise ConfigError("ack_timeout must be > 0")
        if self.max_ack_pending <= 0:
            raise ConfigError("max_ack_pending must be > 0")
        if self.max_redelivery_delay <= 0:
            raise ConfigError("max_redelivery_delay must be > 0")
        if self.retention_interval <= 0:
            raise ConfigError("retention_interval must be > 0")
        if self.durability not in DURABILITY_MODES:
            raise ConfigError(f"durability must be fsync or os, not {self.durability!r}")
        if self.encryption_grace < 0:
            raise ConfigError("encryption_grace must be >= 0")
        if self.advertise:
            try:
                parse_listen(self.advertise)
            except ConfigError:
                raise ConfigError(
                    f"invalid advertise address {self.advertise!r}: expected HOST:PORT"
                ) from None
        for topic in self.topic_retention:
            try:
                check_topic_name(topic)
            except InvalidTopicName as exc:
                raise ConfigError(f"retention override: {exc}") from exc

    @property
    def listen(self) -> str:
        return join_host_port(self.host, self.port)

    def client_address(self, port: int) -> str:
        """Where clients reach us once listening on `port` ("" if unknown: a wildcard host
        and no `advertise`)."""
        if self.advertise:
            return self.advertise
        return "" if self.host in ("", "0.0.0.0", "::") else join_host_port(self.host, port)

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


__all__ = ["GatewayConfig", "Retention", "join_host_port", "parse_listen", "replace"]
