"""Schema formats, compatibility modes and xRegistry-shaped URIs (pure values).

Numbers are the contract's (contracts/MeshgateRegistry.sol): formats 1 JSON Schema, 2 Avro,
3 Protobuf; modes 0 NONE, 1 BACKWARD (default), 2 BACKWARD_TRANSITIVE, 3 FORWARD,
4 FORWARD_TRANSITIVE, 5 FULL, 6 FULL_TRANSITIVE (Confluent's seven levels, xRegistry's names).

A version's URI, what an event's `dataschema` names it by, follows the xRegistry schema model:
`meshgate://schemagroups/{topic}/schemas/{type}/versions/{n}`; the type is percent-encoded
where it holds characters outside RFC 3986's unreserved set.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from policy.schemas.errors import SchemaError

URI_SCHEME = "meshgate"


class Format(enum.IntEnum):
    JSON = 1
    AVRO = 2
    PROTOBUF = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Format:
        try:
            return cls[label.strip().upper()]
        except KeyError:
            raise SchemaError(f"unknown schema format {label!r} (json, avro, protobuf)") from None

    @classmethod
    def of(cls, number: int) -> Format:
        try:
            return cls(number)
        except ValueError:
            raise SchemaError(f"unknown schema format {number}") from None


class Mode(enum.IntEnum):
    NONE = 0
    BACKWARD = 1
    BACKWARD_TRANSITIVE = 2
    FORWARD = 3
    FORWARD_TRANSITIVE = 4
    FULL = 5
    FULL_TRANSITIVE = 6

    @property
    def transitive(self) -> bool:
        return self.name.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        """The new version must read what the earlier ones wrote."""
        return self in (Mode.BACKWARD, Mode.BACKWARD_TRANSITIVE, Mode.FULL, Mode.FULL_TRANSITIVE)

    @property
    def forward(self) -> bool:
        """The earlier versions must read what the new one writes."""
        return self in (Mode.FORWARD, Mode.FORWARD_TRANSITIVE, Mode.FULL, Mode.FULL_TRANSITIVE)

    @classmethod
    def from_label(cls, label: str) -> Mode:
        try:
            return cls[label.strip().upper().replace("-", "_")]
        except KeyError:
            names = ", ".join(m.name for m in cls)
            raise SchemaError(f"unknown compatibility mode {label!r} ({names})") from None

    @classmethod
    def of(cls, number: int) -> Mode:
        try:
            return cls(number)
        except ValueError:
            raise SchemaError(f"unknown compatibility mode {number}") from None


@dataclass(frozen=True, slots=True)
class SchemaRef:
    topic: str
    event_type: str
    version: int


_URI = re.compile(r"meshgate://schemagroups/([^/]+)/schemas/([^/]+)/versions/([1-9][0-9]{0,18})")


@functools.lru_cache(maxsize=4096)  # per event on the publish path: the same few values
def schema_uri(topic: str, event_type: str, version: int) -> str:
    """The `dataschema` value naming `version` of (topic, type)."""
    return (
        f"{URI_SCHEME}://schemagroups/{quote(topic, safe='')}/schemas/"
        f"{quote(event_type, safe='')}/versions/{version}"
    )


@functools.lru_cache(maxsize=4096)
def parse_schema_uri(uri: str) -> SchemaRef | None:
    """The version a meshgate schema URI names, or None for any other URI."""
    match = _URI.fullmatch(uri)
    if match is None:
        return None
    return SchemaRef(unquote(match.group(1)), unquote(match.group(2)), int(match.group(3)))
