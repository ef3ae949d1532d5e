"""A webhook subscription: the CloudEvents Subscriptions API resource, parsed and checked (pure).

The API body (CloudEvents Subscriptions API, 0.1)::

    {"id": "...",                      optional on POST (the gateway picks one)
     "source": "/orders",              optional: only events whose `source` is exactly this
     "types": ["com.example.placed"],  optional: only events of one of these types
     "filters": [{"prefix": {"type": "com.example."}}],   the gRPC API's dialects
     "config": {"topic": "orders",     required: the meshgate topic to read
                "group": "...",        durable group (default "webhook-<id>")
                "deadlettertopic": "orders.dlq",   default "<topic>.dlq"
                "maxattempts": 10},    POST attempts before dead-lettering (1..100)
     "sink": "https://example.com/hook",
     "protocol": "HTTP",
     "protocolsettings": {"method": "POST",
                          "headers": {"Authorization": "..."},   sent with every POST
                          "mode": "binary" | "structured" | "batch",
                          "batchsize": 100}}    events per POST in batch mode (1..1000)

`source`, `types` and `filters` together are the group's filter list (every one must match).
Unknown keys are refused (a typo would silently widen a subscription). Each subscription is
owned by the identity that created it (`owner`: its address, None on an open gateway): only
the owner sees, replaces or deletes it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from eventmodel import filters as ev_filters
from eventmodel.errors import EventModelError
from gateway.errors import InvalidTopicName
from gateway.topics import check_topic_name
from gateway.webhooks.errors import InvalidSubscription

MODES: Final = ("binary", "structured", "batch")
SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_ATTEMPTS_LIMIT: Final = 100
MAX_BATCH_SIZE: Final = 1000
DEFAULT_BATCH_SIZE: Final = 100
DEFAULT_MAX_ATTEMPTS: Final = 10
MAX_HEADERS: Final = 32
# Headers the gateway sets itself (the binding's, the handshake's, the transport's).
RESERVED_HEADER = re.compile(
    r"(ce-.*|content-type|content-length|host|transfer-encoding|connection|webhook-.*)",
    re.IGNORECASE,
)
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
TOP_KEYS: Final = frozenset(
    {"id", "source", "types", "filters", "config", "sink", "protocol", "protocolsettings"}
)
CONFIG_KEYS: Final = frozenset({"topic", "group", "deadlettertopic", "maxattempts"})
SETTINGS_KEYS: Final = frozenset({"method", "headers", "mode", "batchsize"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    id: str
    owner: str | None
    topic: str
    group: str
    sink: str
    source: str | None = None
    types: tuple[str, ...] = ()
    filters: tuple[ev_filters.Filter, ...] = ()
    mode: str = "binary"
    batch_size: int = DEFAULT_BATCH_SIZE
    headers: tuple[tuple[str, str], ...] = ()
    dead_letter_topic: str = ""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # Where the group starts if it has no committed offset yet: the topic's end when the
    # subscription was created (it receives what is published after it exists).
    start_offset: int = 0

    def delivery_filters(self) -> tuple[ev_filters.Filter, ...]:
        """The group's filter list: `source`, `types`, then `filters`."""
        out: list[ev_filters.Filter] = []
        if self.source is not None:
            out.append(ev_filters.Exact("source", self.source))
        if len(self.types) == 1:
            out.append(ev_filters.Exact("type", self.types[0]))
        elif self.types:
            out.append(ev_filters.Any(tuple(ev_filters.Exact("type", t) for t in self.types)))
        return (*out, *self.filters)

    def events_per_post(self) -> int:
        return self.batch_size if self.mode == "batch" else 1

    def to_api(self) -> dict[str, Any]:
        """The Subscriptions API form (what GET answers)."""
        out: dict[str, Any] = {"id": self.id}
        if self.source is not None:
            out["source"] = self.source
        if self.types:
            out["types"] = list(self.types)
        out["filters"] = ev_filters.list_to_json(self.filters)
        out["config"] = {
            "topic": self.topic,
            "group": self.group,
            "deadlettertopic": self.dead_letter_topic,
            "maxattempts": self.max_attempts,
        }
        out["sink"] = self.sink
        out["protocol"] = "HTTP"
        settings: dict[str, Any] = {
            "method": "POST",
            "headers": dict(self.headers),
            "mode": self.mode,
        }
        if self.mode == "batch":
            settings["batchsize"] = self.batch_size
        out["protocolsettings"] = settings
        return out

    def to_record(self) -> dict[str, Any]:
        """The persisted form: the API form plus the owner and the start offset."""
        return {"owner": self.owner, "start": self.start_offset, "subscription": self.to_api()}


def from_record(record: Mapping[str, Any]) -> Subscription:
    """Inverse of `Subscription.to_record`. Raises InvalidSubscription."""
    if not isinstance(record, Mapping):
        raise InvalidSubscription("stored subscription record is not an object")
    body = record.get("subscription")
    owner = record.get("owner")
    start = record.get("start", 0)
    if (
        not isinstance(body, Mapping)
        or not (owner is None or isinstance(owner, str))
        or isinstance(start, bool)
        or not isinstance(start, int)
    ):
        raise InvalidSubscription("stored subscription record is malformed")
    sub = parse(body, sub_id=str(body.get("id", "")), owner=owner)
    return dataclasses.replace(sub, start_offset=start)


def parse(body: Any, *, sub_id: str, owner: str | None) -> Subscription:
    """A Subscriptions API body -> Subscription with id `sub_id` (a body `id`, if any, must
    equal it). Raises InvalidSubscription naming the first problem."""
    if not isinstance(body, Mapping):
        raise InvalidSubscription("a subscription is a JSON object")
    _no_unknown(body, TOP_KEYS, "subscription")
    check_id(sub_id)
    if "id" in body and body["id"] != sub_id:
        raise InvalidSubscription(f"body id {body['id']!r} does not match {sub_id!r}")
    protocol = body.get("protocol", "HTTP")
    if not isinstance(protocol, str) or protocol.upper() != "HTTP":
        raise InvalidSubscription(f"protocol {protocol!r} is not supported (only HTTP)")
    config = _object(body.get("config"), "config")
    _no_unknown(config, CONFIG_KEYS, "config")
    settings = _object(body.get("protocolsettings", {}), "protocolsettings")
    _no_unknown(settings, SETTINGS_KEYS, "protocolsettings")
    topic = _topic(config.get("topic"), "config.topic")
    method = settings.get("method", "POST")
    if not isinstance(method, str) or method.upper() != "POST":
        raise InvalidSubscription("protocolsettings.method must be POST")
    mode = settings.get("mode", "binary")
    if mode not in MODES:
        raise InvalidSubscription(f"protocolsettings.mode must be one of {', '.join(MODES)}")
    return Subscription(
        id=sub_id,
        owner=owner,
        topic=topic,
        group=_topic(config.get("group", f"webhook-{sub_id}"), "config.group"),
        sink=check_sink(body.get("sink")),
        source=_optional_str(body.get("source"), "source"),
        types=_types(body.get("types", [])),
        filters=_filters(body.get("filters", [])),
        mode=mode,
        batch_size=_bounded_int(
            settings.get("batchsize", DEFAULT_BATCH_SIZE), "batchsize", MAX_BATCH_SIZE
        ),
        headers=_headers(settings.get("headers", {})),
        dead_letter_topic=_topic(
            config.get("deadlettertopic", f"{topic}.dlq"), "config.deadlettertopic"
        ),
        max_attempts=_bounded_int(
            config.get("maxattempts", DEFAULT_MAX_ATTEMPTS), "maxattempts", MAX_ATTEMPTS_LIMIT
        ),
    )


def check_id(sub_id: str) -> str:
    if not SUBSCRIPTION_ID.fullmatch(sub_id):
        raise InvalidSubscription(
            f"invalid subscription id {sub_id!r}: must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}$"
        )
    return sub_id


def check_sink(sink: Any) -> str:
    """An absolute http(s) URL with a host."""
    if not isinstance(sink, str) or not sink:
        raise InvalidSubscription("sink must be an http(s) URL")
    try:
        parts = urlsplit(sink)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise InvalidSubscription(f"sink {sink!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSubscription(f"sink {sink!r} must be an absolute http:// or https:// URL")
    if parts.fragment:
        raise InvalidSubscription(f"sink {sink!r} must not carry a fragment")
    return sink


# -- field checks ------------------------------------------------------------------------------


def _no_unknown(obj: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in obj if k not in known)
    if unknown:
        raise InvalidSubscription(f"unknown {where} field(s): {', '.join(unknown)}")


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSubscription(f"{where} must be an object")
    return value


def _topic(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidSubscription(f"{where} must be a topic name (a string)")
    try:
        return check_topic_name(value)
    except InvalidTopicName as exc:
        raise InvalidSubscription(f"{where}: {exc}") from None


def _optional_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidSubscription(f"{where} must be a non-empty string")
    return value


def _types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise InvalidSubscription("types must be a list of non-empty strings")
    if len(value) > ev_filters.MAX_FILTER_NODES:
        raise InvalidSubscription(f"at most {ev_filters.MAX_FILTER_NODES} types")
    return tuple(value)


def _filters(value: Any) -> tuple[ev_filters.Filter, ...]:
    if not isinstance(value, list):
        raise InvalidSubscription("filters must be a list of filter objects")
    try:
        return ev_filters.check_all(ev_filters.list_from_json(value))
    except EventModelError as exc:
        raise InvalidSubscription(f"filters: {exc}") from None


def _bounded_int(value: Any, where: str, limit: int) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # the spec's config values are strings
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidSubscription(f"{where} must be an integer from 1 to {limit}")
    return value


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or len(value) > MAX_HEADERS:
        raise InvalidSubscription(f"protocolsettings.headers must be an object of <= {MAX_HEADERS}")
    out = []
    for name, text in value.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise InvalidSubscription(f"header name {name!r} is not a valid token")
        if RESERVED_HEADER.fullmatch(name):
            raise InvalidSubscription(f"header {name!r} is set by the gateway")
        if not isinstance(text, str) or len(text) > 4096 or any(c in text for c in "\r\n\0"):
            raise InvalidSubscription(f"header {name!r} must be one line of text (<= 4096)")
        out.append((name, text))
    return tuple(out)
