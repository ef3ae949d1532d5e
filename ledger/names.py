"""Topic names and addresses: the off-chain checks done before any transaction is sent."""

from __future__ import annotations

import re

from eth_utils import is_checksum_address, is_hex_address, keccak, to_checksum_address

from ledger.errors import BadAddress, BadTopicName

# Same rule as the gateway's topic names (the contract only requires non-empty).
TOPIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def check_topic_name(name: str) -> str:
    if not TOPIC_NAME.fullmatch(name):
        raise BadTopicName(
            f"bad topic name {name!r}: 1-128 chars of A-Z a-z 0-9 . _ -, starting alphanumeric"
        )
    return name


def topic_key(name: str) -> bytes:
    """The on-chain key of a topic: keccak256 of its UTF-8 name (indexed in every event)."""
    return bytes(keccak(text=name))


def checksum_address(value: str) -> str:
    """Return the EIP-55 form; reject non-addresses and mixed-case input with a wrong checksum."""
    if not isinstance(value, str) or not is_hex_address(value):
        raise BadAddress(f"not an Ethereum address: {value!r}")
    body = value[2:]
    mixed_case = body != body.lower() and body != body.upper()
    if mixed_case and not is_checksum_address(value):
        raise BadAddress(f"bad address checksum: {value}")
    return str(to_checksum_address(value))
