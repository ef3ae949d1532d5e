"""A typed, synchronous client for the MeshgateRegistry contract (web3.py 7.16 over HTTP),
and `ChainHead`, the one async read a gateway makes on demand (the head block).

Transactions are signed locally (`sign_transaction` + `send_raw_transaction`); the node never
holds a key. Gas is estimated first, so a rule violation surfaces as the contract's custom
error before anything is sent.

Error handling: every web3/requests failure is translated in `_translated()` into a
`ledger.errors` class (most specific wins): reverts -> `RegistryRejected` subclasses
(`NotOwner`, `UnknownTopic`, ...), "insufficient funds" -> `InsufficientFunds`, connection
problems -> `ChainUnavailable`, other node refusals -> `TransactionFailed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexAddress, HexStr
from web3 import HTTPProvider, Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    Web3Exception,
    Web3RPCError,
)

from ledger.artifact import registry_artifact
from ledger.changes import Change, decode_change
from ledger.config import LedgerConfig
from ledger.errors import (
    ChainUnavailable,
    InsufficientFunds,
    LedgerError,
    TransactionFailed,
    WrongChainId,
)
from ledger.names import ZERO_ADDRESS, check_topic_name, checksum_address
from ledger.reverts import decode_revert

RECEIPT_TIMEOUT = 60.0  # s
GAS_HEADROOM = 1.25  # x the estimate; unused gas is refunded
GAS_SLACK = 10_000


@dataclass(frozen=True)
class TxResult:
    """What a change transaction left on chain."""

    tx_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class GrantInfo:
    reader: str
    expires_at: int  # unix seconds; 0 = never
    granted_at: int


@dataclass(frozen=True)
class TopicInfo:
    name: str
    owner: str
    version: int
    grants: tuple[GrantInfo, ...]
    publishers: tuple[str, ...]
    encrypted: bool = False
    key_epoch: int = 0  # encrypted topics: the newest key-set epoch on chain


def _bytes32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise LedgerError(f"{what} must be 32 bytes, got {len(value)}")
    return bytes(value)


@contextmanager
def _translated(topic: str | None = None) -> Iterator[None]:
    """Map web3/requests exceptions to ledger errors (see module docstring)."""
    try:
        yield
    except LedgerError:
        raise
    except (ContractCustomError, ContractLogicError) as exc:
        raise decode_revert(_revert_data(exc), topic) from exc
    except Web3RPCError as exc:
        message = (
            str(exc.rpc_response.get("error", {}).get("message", exc))
            if exc.rpc_response
            else str(exc)
        )
        if "insufficient funds" in message:
            raise InsufficientFunds(f"insufficient funds: {message}") from exc
        raise TransactionFailed(f"node refused: {message}") from exc
    except TimeExhausted as exc:
        raise ChainUnavailable(f"transaction not mined in time: {exc}") from exc
    except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError) as exc:
        raise ChainUnavailable(f"chain unreachable: {type(exc).__name__}") from exc
    except Web3Exception as exc:
        raise TransactionFailed(str(exc)) from exc


def _revert_data(exc: ContractCustomError | ContractLogicError) -> str | None:
    data: Any = exc.data
    if isinstance(data, dict):
        data = data.get("result") or data.get("data")
    return data if isinstance(data, str) else None


def connect_web3(config: LedgerConfig) -> Web3:
    """An HTTP Web3 for `config`, after checking the node's chain id (if configured)."""
    w3 = Web3(HTTPProvider(config.http_url, request_kwargs={"timeout": config.rpc_timeout}))
    try:
        with _translated():
            actual = int(w3.eth.chain_id)
    except ChainUnavailable as exc:
        raise ChainUnavailable(f"chain unreachable at {config.http_url}") from exc
    if config.chain_id is not None and actual != config.chain_id:
        raise WrongChainId(config.chain_id, actual)
    return w3


class ChainHead:
    """The chain's head block number on demand, for a gateway about to deny (async-safe).

    Gateways call this only before a denial (to catch their grant view up first), so it
    is one `eth_blockNumber` over HTTP, run in a worker thread so the event loop never
    blocks; concurrent callers share one request in flight. No chain-id check on
    construction: a node that is down at start answers `ChainUnavailable` per call.

    Raises: `ChainUnavailable` (unreachable, timed out), `TransactionFailed` (node error).
    """

    def __init__(self, config: LedgerConfig, *, timeout: float = 2.0) -> None:
        self._w3 = Web3(HTTPProvider(config.http_url, request_kwargs={"timeout": timeout}))
        self._pending: asyncio.Future[int] | None = None

    async def block_number(self) -> int:
        pending = self._pending
        if pending is None or pending.done():
            pending = self._pending = asyncio.ensure_future(asyncio.to_thread(self._read))
        return await asyncio.shield(pending)

    def _read(self) -> int:
        with _translated():
            return int(self._w3.eth.block_number)


def deploy_registry(config: LedgerConfig, signer: LocalAccount) -> tuple[str, TxResult]:
    """Deploy a fresh registry; return its address and the deployment tx."""
    w3 = connect_web3(config)
    artifact = registry_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    with _translated():
        tx = factory.constructor().build_transaction(_tx_params(w3, signer))
        receipt = _send(w3, signer, tx)
    address = receipt["contractAddress"]
    if not address:
        raise TransactionFailed("deployment produced no contract")
    return str(address), _result(receipt)


def _tx_params(w3: Web3, signer: LocalAccount) -> Any:
    return {
        "from": signer.address,
        "nonce": w3.eth.get_transaction_count(signer.address, "pending"),
        "chainId": w3.eth.chain_id,
    }


def _send(w3: Web3, signer: LocalAccount, tx: Any) -> Any:
    # The estimate ran against the latest block; the tx runs in the next one, where e.g.
    # `grantedAt = block.timestamp` may turn a no-op store into a paid one. Leave headroom.
    tx = {**tx, "gas": int(tx["gas"] * GAS_HEADROOM) + GAS_SLACK}
    signed = signer.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
    if receipt["status"] != 1:
        raise TransactionFailed(f"transaction {tx_hash.to_0x_hex()} reverted")
    return receipt


def _result(receipt: Any) -> TxResult:
    return TxResult(
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        gas_used=int(receipt["gasUsed"]),
    )


class RegistryClient:
    """Reads and (with a signer) changes one deployed registry.

    Raises: `ChainUnavailable`, `WrongChainId` (on construction), `BadTopicName`, `BadAddress`
    (before sending), and for changes `RegistryRejected` subclasses, `InsufficientFunds`,
    `TransactionFailed`.
    """

    def __init__(self, config: LedgerConfig, signer: LocalAccount | None = None) -> None:
        if config.registry is None:
            raise LedgerError("no registry address configured (deploy one first)")
        self.config = config
        self.address = ChecksumAddress(HexAddress(HexStr(checksum_address(config.registry))))
        self.signer = signer
        self.w3 = connect_web3(config)
        self.contract = self.w3.eth.contract(address=self.address, abi=registry_artifact().abi)
        with _translated():
            code = self.w3.eth.get_code(self.address)
        if not code:
            raise LedgerError(f"no contract at {self.address} on this chain")

    # ---- changes -------------------------------------------------------------------------

    def register(self, topic: str, *, encrypted: bool = False) -> TxResult:
        function = "registerEncrypted" if encrypted else "register"
        return self._transact(topic, function, check_topic_name(topic))

    def transfer(self, topic: str, new_owner: str) -> TxResult:
        return self._transact(topic, "transferOwnership", topic, checksum_address(new_owner))

    def grant(self, topic: str, reader: str, expires_at: int = 0) -> TxResult:
        """Grant or update read access; `expires_at` unix seconds, 0 = never."""
        if expires_at < 0:
            raise LedgerError("expiry must be a unix time >= 0")
        return self._transact(topic, "grant", topic, checksum_address(reader), expires_at)

    def revoke(self, topic: str, reader: str) -> TxResult:
        return self._transact(topic, "revoke", topic, checksum_address(reader))

    def allow_publisher(self, topic: str, publisher: str) -> TxResult:
        return self._transact(topic, "allowPublisher", topic, checksum_address(publisher))

    def deny_publisher(self, topic: str, publisher: str) -> TxResult:
        return self._transact(topic, "denyPublisher", topic, checksum_address(publisher))

    def announce_key(self, public_key: bytes) -> TxResult:
        """Bind a 32-byte X25519 public key to the signer's account (issue 12)."""
        return self._transact(None, "announceKey", _bytes32(public_key, "public key"))

    def publish_key_set(self, topic: str, epoch: int, key_set_hash: bytes) -> TxResult:
        """Record an owner-signed key set of `topic` by its keccak256 hash."""
        return self._transact(
            topic, "publishKeySet", topic, epoch, _bytes32(key_set_hash, "key-set hash")
        )

    def add_schema(self, topic: str, event_type: str, format: int, document: bytes) -> TxResult:
        """Add the next schema version for (topic, type); format 1 JSON, 2 Avro, 3 Protobuf."""
        return self._transact(topic, "addSchema", topic, event_type, format, document)

    def set_schema_compatibility(self, topic: str, mode: int) -> TxResult:
        return self._transact(topic, "setSchemaCompatibility", topic, mode)

    def _transact(self, topic: str | None, function: str, *args: Any) -> TxResult:
        if self.signer is None:
            raise LedgerError("a key file is needed to change the registry")
        with _translated(topic):
            call = self.contract.functions[function](*args)
            tx = call.build_transaction(_tx_params(self.w3, self.signer))
            return _result(_send(self.w3, self.signer, tx))

    # ---- reads ---------------------------------------------------------------------------

    def owner_of(self, topic: str) -> str | None:
        """The owner's address, or None for a topic nobody registered."""
        owner = str(self._call("ownerOf", topic))
        return None if owner == ZERO_ADDRESS else owner

    def version_of(self, topic: str) -> int:
        return int(self._call("versionOf", topic))

    def can_read(self, topic: str, reader: str) -> bool:
        return bool(self._call("canRead", topic, checksum_address(reader)))

    def can_publish(self, topic: str, publisher: str) -> bool:
        return bool(self._call("canPublish", topic, checksum_address(publisher)))

    def grant_of(self, topic: str, reader: str) -> GrantInfo | None:
        address = checksum_address(reader)
        exists, expires_at, granted_at = self._call("grantOf", topic, address)
        if not exists:
            return None
        return GrantInfo(reader=address, expires_at=int(expires_at), granted_at=int(granted_at))

    def readers_of(self, topic: str) -> list[str]:
        return [str(a) for a in self._call("readersOf", topic)]

    def publishers_of(self, topic: str) -> list[str]:
        return [str(a) for a in self._call("publishersOf", topic)]

    def topic_info(self, topic: str) -> TopicInfo | None:
        """Owner, version, grants and publishers from on-chain enumerable storage."""
        owner = self.owner_of(topic)
        if owner is None:
            return None
        grants = [self.grant_of(topic, r) for r in self.readers_of(topic)]
        return TopicInfo(
            name=topic,
            owner=owner,
            version=self.version_of(topic),
            grants=tuple(sorted((g for g in grants if g), key=lambda g: g.reader.lower())),
            publishers=tuple(sorted(self.publishers_of(topic), key=str.lower)),
            encrypted=self.is_encrypted(topic),
            key_epoch=self.key_epoch_of(topic),
        )

    def topic_changes(self, topic: str) -> list[Change]:
        """Every change of `topic` on chain, oldest first, decoded like the follower's (one
        eth_getLogs over the whole chain: for the CLI, e.g. a topic's schema history)."""
        key = Web3.keccak(text=topic).to_0x_hex()
        with _translated(topic):
            logs = self.w3.eth.get_logs(
                {
                    "address": self.contract.address,
                    "fromBlock": 0,
                    "toBlock": "latest",
                    "topics": [None, key],
                }
            )
        decoded = (decode_change(dict(entry)) for entry in logs)
        return sorted((c for c in decoded if c is not None), key=lambda c: c.position)

    def is_encrypted(self, topic: str) -> bool:
        return bool(self._call("isEncrypted", topic))

    def key_epoch_of(self, topic: str) -> int:
        return int(self._call("keyEpochOf", topic))

    def key_set_epoch_of(self, topic: str, key_set_hash: bytes) -> int:
        """The epoch a key set with this hash was recorded under; 0 = never recorded."""
        return int(self._call("keySetEpochOf", topic, _bytes32(key_set_hash, "key-set hash")))

    def encryption_key_of(self, account: str) -> bytes | None:
        """The X25519 public key `account` announced, or None."""
        raw = bytes(self._call("encryptionKeyOf", checksum_address(account)))
        return None if raw == bytes(32) else raw

    def schema_compatibility_of(self, topic: str) -> int:
        return int(self._call("schemaCompatibilityOf", topic))

    def schema_count(self, topic: str, event_type: str) -> int:
        return int(self._call("schemaCount", topic, event_type))

    def schema_at(self, topic: str, event_type: str, version: int) -> tuple[int, bytes]:
        """(format, document) of schema version `version` (1-based) of (topic, type)."""
        format, document = self._call("schemaAt", topic, event_type, version)
        return int(format), bytes(document)

    def chain_time(self) -> int:
        """The latest block's timestamp: the clock the contract checks expiry against."""
        with _translated():
            return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        with _translated():
            return int(self.w3.eth.block_number)

    def _call(self, function: str, *args: Any) -> Any:
        with _translated(args[0] if args and isinstance(args[0], str) else None):
            return self.contract.functions[function](*args).call()
