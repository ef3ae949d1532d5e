"""Decode the registry's custom errors from revert data into `ledger.errors` classes.

Pure: takes the hex revert payload (4-byte selector + ABI-encoded arguments) and the ABI.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from ledger.artifact import registry_artifact
from ledger.errors import REJECTIONS, RegistryRejected, TransactionFailed

_MESSAGES = {
    "NotOwner": "not the owner of topic {0} (caller {1})",
    "UnknownTopic": "unknown topic {0}",
    "AlreadyRegistered": "topic {0} is already registered (owner {1})",
    "ExpiryInPast": "expiry in the past: {0} is not after the chain time {1}",
    "NotGranted": "no grant on topic {0} for {1}",
    "AlreadyPublisher": "{1} is already a publisher of topic {0}",
    "NotPublisher": "{1} is not a publisher of topic {0}",
    "ZeroAddress": "the zero address is not allowed here",
    "EmptyName": "empty topic name",
    "ZeroKey": "a zero key or hash is not allowed here",
    "NotEncrypted": "topic {0} is not encrypted",
    "BadEpoch": "epoch {1} is not valid for topic {0} (current epoch {2})",
    "EmptyDocument": "empty schema document",
    "UnknownFormat": "unknown schema format {0} (1 JSON Schema, 2 Avro, 3 Protobuf)",
    "UnknownMode": "unknown compatibility mode {0}",
}


@cache
def _error_table() -> dict[bytes, tuple[str, tuple[str, ...]]]:
    table: dict[bytes, tuple[str, tuple[str, ...]]] = {}
    for entry in registry_artifact().abi:
        if entry.get("type") != "error":
            continue
        types = tuple(str(i["type"]) for i in entry["inputs"])
        signature = f"{entry['name']}({','.join(types)})"
        table[bytes(function_signature_to_4byte_selector(signature))] = (entry["name"], types)
    return table


def _display(value: Any, abi_type: str) -> object:
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type == "bytes32":
        return "0x" + bytes(value).hex()
    return value


def decode_revert(data: str | bytes | None, topic_name: str | None = None) -> TransactionFailed:
    """Return the most specific error for revert `data`.

    Custom errors become their `RegistryRejected` subclass; a known `topic_name` replaces the
    topic key in the message. Unknown or empty data gives a plain `TransactionFailed`.
    """
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    if not raw or len(raw) < 4:
        return TransactionFailed("transaction reverted without a reason")
    found = _error_table().get(raw[:4])
    if found is None:
        return TransactionFailed(f"transaction reverted (data 0x{raw.hex()})")
    name, types = found
    values: Sequence[Any] = decode(list(types), raw[4:])
    shown = [_display(v, t) for v, t in zip(values, types, strict=True)]
    if topic_name is not None and types and types[0] == "bytes32":
        shown[0] = repr(topic_name)
    cls: type[RegistryRejected] = REJECTIONS.get(name, RegistryRejected)
    return cls(_MESSAGES.get(name, name).format(*shown), tuple(shown))
