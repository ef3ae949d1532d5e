"""Registry changes as frozen values, decoded from raw logs without web3 (pure).

Each change carries its chain `Position` (block, log_index): positions are strictly increasing
along the chain, so a consumer persists the last one it processed and resumes after it. It
also carries the hash of its block, so the follower can tell a reorganised block from the one
it read.
`Synced` is not a change: it says "every change up to `block_number` has been handed out",
with that block's timestamp (the contract's clock, for expiry) and the wall time at which the
node was last heard from (for staleness bounds).
`Rewound` is not a change either: the chain no longer holds what was handed out after
`block_number` (a reorg, a node restarted without its database, a registry gone); the consumer
drops it and counts its view incomplete until the next `Synced`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from ledger.artifact import registry_artifact

END_OF_BLOCK = 2**32  # a log index past any real one: "the whole block was processed"


@dataclass(frozen=True, order=True)
class Position:
    """A point in the chain's log order; compare positions to order or dedupe changes."""

    block: int
    log_index: int

    @classmethod
    def end_of(cls, block: int) -> Position:
        return cls(block, END_OF_BLOCK)


@dataclass(frozen=True, kw_only=True)
class Change:
    """One registry change; `version` is the topic's version after it."""

    position: Position
    topic: str
    topic_key: str  # 0x-hex keccak256 of the name
    version: int
    tx_hash: str
    block_hash: str = ""  # 0x-hex; "" when the node did not say (then it is not compared)


@dataclass(frozen=True, kw_only=True)
class TopicRegistered(Change):
    owner: str
    encrypted: bool = False


@dataclass(frozen=True, kw_only=True)
class OwnershipTransferred(Change):
    owner: str
    previous_owner: str


@dataclass(frozen=True, kw_only=True)
class AccessGranted(Change):
    """A grant or re-grant; `expires_at` unix seconds (chain time), 0 = never."""

    reader: str
    expires_at: int


@dataclass(frozen=True, kw_only=True)
class AccessRevoked(Change):
    reader: str


@dataclass(frozen=True, kw_only=True)
class PublisherAllowed(Change):
    publisher: str


@dataclass(frozen=True, kw_only=True)
class PublisherDenied(Change):
    publisher: str


@dataclass(frozen=True, kw_only=True)
class KeySetPublished(Change):
    """An owner-signed key set of an encrypted topic, recorded by its hash (0x-hex keccak256)."""

    epoch: int
    key_set_hash: str


@dataclass(frozen=True, kw_only=True)
class SchemaAdded(Change):
    """Version `schema_version` (1-based) of the schema for (topic, `event_type`)."""

    event_type: str
    schema_version: int
    format: int  # 1 JSON Schema, 2 Avro, 3 Protobuf descriptor set
    document: bytes


@dataclass(frozen=True, kw_only=True)
class SchemaCompatibilitySet(Change):
    mode: int  # 0 NONE, 1 BACKWARD, 2 BACKWARD_TRANSITIVE, 3 FORWARD, 4 .._T, 5 FULL, 6 .._T


@dataclass(frozen=True, kw_only=True)
class Synced:
    """Checkpoint: all changes up to and including `block_number` were yielded."""

    block_number: int
    block_timestamp: int
    observed_at: float  # time.time() when the node reported the head

    @property
    def position(self) -> Position:
        return Position.end_of(self.block_number)


@dataclass(frozen=True, kw_only=True)
class Rewound:
    """Everything handed out after `block_number` is void: drop it, then wait for a `Synced`.

    `block_number` is the newest block still on the chain as it was read (the common ancestor),
    or `from_block - 1` when none is known (start over: the registry is gone, or the fork is
    deeper than the follower remembers). Changes after it come again, from the new chain.
    """

    block_number: int
    reason: str

    @property
    def position(self) -> Position:
        return Position.end_of(self.block_number)


@dataclass(frozen=True, kw_only=True)
class BlockHeader:
    """What the follower needs of a block: where it sits in the chain, and its time."""

    number: int
    hash: str  # 0x-hex
    parent_hash: str
    timestamp: int


FollowItem = Change | Synced | Rewound

_CLASSES: dict[str, type[Change]] = {
    "TopicRegistered": TopicRegistered,
    "OwnershipTransferred": OwnershipTransferred,
    "AccessGranted": AccessGranted,
    "AccessRevoked": AccessRevoked,
    "PublisherAllowed": PublisherAllowed,
    "PublisherDenied": PublisherDenied,
    "KeySetPublished": KeySetPublished,
    "SchemaAdded": SchemaAdded,
    "SchemaCompatibilitySet": SchemaCompatibilitySet,
}
# Registry events that are not topic changes (an account's X25519 key): no Change, decoded None.
_NOT_CHANGES = frozenset({"EncryptionKeyAnnounced"})
# ABI argument name -> dataclass field name
_FIELDS = {
    "owner": "owner",
    "newOwner": "owner",
    "previousOwner": "previous_owner",
    "reader": "reader",
    "expiresAt": "expires_at",
    "publisher": "publisher",
    "name": "topic",
    "version": "version",
    "encrypted": "encrypted",
    "epoch": "epoch",
    "keySetHash": "key_set_hash",
    "eventType": "event_type",
    "schemaVersion": "schema_version",
    "format": "format",
    "document": "document",
    "mode": "mode",
}


@dataclass(frozen=True)
class _EventShape:
    name: str
    indexed: tuple[tuple[str, str], ...]  # (arg name, abi type) after topic0
    data: tuple[tuple[str, str], ...]


@cache
def event_topics() -> dict[bytes, _EventShape]:
    """topic0 -> event shape, for every registry event."""
    table = {}
    for entry in registry_artifact().abi:
        if entry.get("type") != "event":
            continue
        inputs = entry["inputs"]
        table[bytes(event_abi_to_log_topic(entry))] = _EventShape(  # type: ignore[arg-type]
            name=entry["name"],
            indexed=tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
            data=tuple((i["name"], i["type"]) for i in inputs if not i["indexed"]),
        )
    return table


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    return bytes(value)


def _as_int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _normalize(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type == "bytes32":
        return "0x" + bytes(value).hex()
    if abi_type == "bytes":
        return bytes(value)
    return value


def decode_change(log: Mapping[str, Any]) -> Change | None:
    """Decode one raw `eth_getLogs` entry (camelCase keys); None if it is not a registry event."""
    topics = [_as_bytes(t) for t in log["topics"]]
    shape = event_topics().get(topics[0]) if topics else None
    if shape is None or shape.name in _NOT_CHANGES or len(topics) != 1 + len(shape.indexed):
        return None
    args: dict[str, Any] = {}
    for (name, abi_type), raw in zip(shape.indexed, topics[1:], strict=True):
        args[name] = _normalize(abi_type, decode([abi_type], raw)[0])
    values = decode([t for _, t in shape.data], _as_bytes(log["data"]))
    for (name, abi_type), value in zip(shape.data, values, strict=True):
        args[name] = _normalize(abi_type, value)
    fields = {_FIELDS[k]: v for k, v in args.items() if k in _FIELDS}
    return _CLASSES[shape.name](
        position=Position(_as_int(log["blockNumber"]), _as_int(log["logIndex"])),
        topic_key=args["topic"],
        tx_hash="0x" + _as_bytes(log["transactionHash"]).hex(),
        block_hash="0x" + _as_bytes(log["blockHash"]).hex() if log.get("blockHash") else "",
        **fields,
    )
