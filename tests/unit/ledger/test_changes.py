"""Decoding raw registry logs into change values (no chain)."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak

from ledger.changes import (
    AccessGranted,
    OwnershipTransferred,
    Position,
    Synced,
    decode_change,
)
from ledger.names import topic_key

A = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
B = "0xFFcf8FDEE72ac11b5c542428B35EEF5769C409f0"


def _topic_for(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


def _addr_topic(address: str) -> str:
    return "0x" + encode(["address"], [address]).hex()


def test_access_granted_from_hex_log() -> None:
    log = {
        "topics": [
            _topic_for("AccessGranted(bytes32,address,string,uint64,uint64)"),
            "0x" + topic_key("orders").hex(),
            _addr_topic(A),
        ],
        "data": "0x" + encode(["string", "uint64", "uint64"], ["orders", 1234, 3]).hex(),
        "blockNumber": "0x10",
        "logIndex": "0x2",
        "transactionHash": "0x" + "ab" * 32,
    }
    change = decode_change(log)
    assert change == AccessGranted(
        position=Position(16, 2),
        topic="orders",
        topic_key="0x" + topic_key("orders").hex(),
        version=3,
        tx_hash="0x" + "ab" * 32,
        reader=A,
        expires_at=1234,
    )


def test_ownership_transferred_from_bytes_log() -> None:
    log = {
        "topics": [
            keccak(text="OwnershipTransferred(bytes32,address,address,string,uint64)"),
            topic_key("t"),
            bytes.fromhex(_addr_topic(B)[2:]),
            bytes.fromhex(_addr_topic(A)[2:]),
        ],
        "data": encode(["string", "uint64"], ["t", 9]),
        "blockNumber": 3,
        "logIndex": 0,
        "transactionHash": b"\x01" * 32,
        "blockHash": b"\x0c" * 32,
    }
    change = decode_change(log)
    assert isinstance(change, OwnershipTransferred)
    assert (change.owner, change.previous_owner, change.version) == (B, A, 9)
    assert change.block_hash == "0x" + "0c" * 32  # compared by the follower against headers


def test_foreign_logs_are_ignored() -> None:
    log = {"topics": [_topic_for("Transfer(address,address,uint256)")], "data": "0x"}
    assert decode_change(log) is None
    assert decode_change({"topics": [], "data": "0x"}) is None


def test_synced_position_is_after_every_log_of_its_block() -> None:
    synced = Synced(block_number=5, block_timestamp=0, observed_at=0.0)
    assert Position(5, 10_000) < synced.position < Position(6, 0)
