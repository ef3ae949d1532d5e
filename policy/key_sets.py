"""A topic's key set: one epoch's data key sealed to each recipient, signed by the topic owner.

Why: the owner alone decides who can read an encrypted topic (issue 12). Each epoch key (32
random bytes, never derived from the last) is sealed (libsodium SealedBox, X25519) to every
recipient's announced public key; the owner signs the document; its keccak256 goes on chain
with the epoch (`publishKeySet`). A gateway stores and relays the document but can neither
forge one (the owner's signature) nor swap in another it holds (the hash on chain), and it
learns no key.

Document (canonical JSON: sorted keys, no spaces, ASCII; the only spelling `decode` accepts,
so one document has one hash)::

    {"chain_id":1337,"epoch":2,"issued_at":1767225600,"owner":"0x..40 hex, lower",
     "registry":"0x..40 hex, lower","sealed":{"0xreader..lower":"<base64 of 80 bytes>",...},
     "topic":"orders"}

Signature: EIP-191 personal_sign (any Ethereum wallet can sign) of
`DOMAIN || keccak256(document)`, 65 bytes r || s || v.

Verification (`verify`), in this order, each refusal a `KeySetError` with its reason:
`malformed` (not a canonical document), `wrong_topic` (another topic, chain or registry),
`not_owner_signed` (signer or named owner is not the topic's owner), `hash_not_on_chain` (the
chain recorded no epoch for this hash), `epoch_mismatch` (recorded under another epoch than it
names). Pure, except that eth_account does the secp256k1 work; no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from eth_utils import keccak
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from policy.errors import KeySetError

DOMAIN: Final = b"meshgate/key-set/v1\x00"
KEY_BYTES: Final = 32
SEALED_BYTES: Final = 32 + 16 + KEY_BYTES  # ephemeral public key, tag, the key
MAX_DOCUMENT_BYTES: Final = 1 << 20  # ~6,500 recipients; a key set travels in one message
MAX_EPOCH: Final = 2**31 - 1  # the event's mgepoch is a signed 32-bit Integer
REASONS: Final = (
    "malformed",
    "wrong_topic",
    "not_owner_signed",
    "hash_not_on_chain",
    "epoch_mismatch",
)
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_FIELDS = frozenset(("topic", "epoch", "chain_id", "registry", "owner", "issued_at", "sealed"))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySetDocument:
    """One epoch's key sealed to its recipients (addresses lower-case 0x-hex)."""

    topic: str
    epoch: int
    chain_id: int
    registry: str
    owner: str
    issued_at: int  # unix seconds, informative (the chain orders epochs, not this)
    sealed: Mapping[str, bytes]


class Signer(Protocol):
    """What can sign: an eth-account LocalAccount."""

    @property
    def address(self) -> str: ...

    def sign_message(self, signable_message: Any) -> Any: ...


def _int(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise KeySetError("malformed", f"{name} must be an integer in {low}..{high}")
    return value


def _address(value: object, name: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise KeySetError("malformed", f"{name} must be a lower-case 0x address")
    return value


def _check(doc: KeySetDocument) -> None:
    """Raise KeySetError('malformed') unless every field is in range."""
    if not isinstance(doc.topic, str) or not doc.topic:
        raise KeySetError("malformed", "topic must be a non-empty string")
    _int(doc.epoch, "epoch", 1, MAX_EPOCH)
    _int(doc.chain_id, "chain_id", 0, 2**64 - 1)
    _int(doc.issued_at, "issued_at", 0, 2**63 - 1)
    _address(doc.registry, "registry")
    _address(doc.owner, "owner")
    if not doc.sealed:
        raise KeySetError("malformed", "a key set seals its key to at least one recipient")
    for address, box in doc.sealed.items():
        _address(address, "a recipient")
        if not isinstance(box, bytes) or len(box) != SEALED_BYTES:
            raise KeySetError("malformed", f"the entry of {address} is not {SEALED_BYTES} bytes")


def encode(doc: KeySetDocument) -> bytes:
    """The canonical bytes of `doc` (what is signed, hashed, stored and sent)."""
    _check(doc)
    body = {
        "topic": doc.topic,
        "epoch": doc.epoch,
        "chain_id": doc.chain_id,
        "registry": doc.registry,
        "owner": doc.owner,
        "issued_at": doc.issued_at,
        "sealed": {a: base64.b64encode(box).decode() for a, box in doc.sealed.items()},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def decode(raw: bytes) -> KeySetDocument:
    """Parse canonical bytes; raises KeySetError('malformed') for anything else (another
    spelling of the same content included: it would have another hash)."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise KeySetError("malformed", f"over {MAX_DOCUMENT_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeySetError("malformed", "not JSON") from exc
    if not isinstance(body, dict) or set(body) != _FIELDS:
        raise KeySetError("malformed", f"fields must be exactly {sorted(_FIELDS)}")
    sealed_in = body["sealed"]
    if not isinstance(sealed_in, dict):
        raise KeySetError("malformed", "sealed must be an object")
    sealed: dict[str, bytes] = {}
    for address, text in sealed_in.items():
        if not isinstance(text, str):
            raise KeySetError("malformed", f"the entry of {address!r} is not base64")
        try:
            sealed[address] = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise KeySetError("malformed", f"the entry of {address!r} is not base64") from exc
    doc = KeySetDocument(
        topic=body["topic"],
        epoch=body["epoch"],
        chain_id=body["chain_id"],
        registry=body["registry"],
        owner=body["owner"],
        issued_at=body["issued_at"],
        sealed=sealed,
    )
    if encode(doc) != raw:  # encode checks every field first
        raise KeySetError("malformed", "not in canonical form")
    return doc


def key_set_hash(raw: bytes) -> bytes:
    """keccak256 of the document bytes: what `publishKeySet` records on chain."""
    return bytes(keccak(raw))


def key_set_hash_hex(raw: bytes) -> str:
    """The hash as GrantView's `key_sets` spells it: 0x-hex, lower case."""
    return "0x" + key_set_hash(raw).hex()


def statement(raw: bytes) -> bytes:
    """What the owner's account signs (EIP-191 wraps it)."""
    return DOMAIN + key_set_hash(raw)


def sign(raw: bytes, account: Signer) -> bytes:
    """The owner's 65-byte EIP-191 signature of the document."""
    from eth_account.messages import encode_defunct

    signed = account.sign_message(encode_defunct(primitive=statement(raw)))
    return bytes(signed.signature)


def signer_of(raw: bytes, signature: bytes) -> str | None:
    """The lower-case address that signed the document, or None for a malformed signature."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        return str(
            Account.recover_message(encode_defunct(primitive=statement(raw)), signature=signature)
        ).lower()
    except Exception:  # eth-keys raises several types for a malformed signature
        return None


def build(
    topic: str,
    epoch: int,
    key: bytes,
    recipients: Mapping[str, bytes],
    *,
    chain_id: int,
    registry: str,
    owner: str,
    issued_at: int,
) -> KeySetDocument:
    """Seal `key` to each recipient (address -> 32-byte X25519 public key). Raises ValueError
    for a key that is not 32 bytes, an address or public key of the wrong shape."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"an epoch key is {KEY_BYTES} bytes, got {len(key)}")
    sealed: dict[str, bytes] = {}
    for address, public in recipients.items():
        lower = address.lower()
        if not _ADDRESS.fullmatch(lower):
            raise ValueError(f"not an Ethereum address: {address!r}")
        if len(public) != 32 or public == bytes(32):
            raise ValueError(f"the public key of {address} is not 32 non-zero bytes")
        sealed[lower] = bytes(SealedBox(PublicKey(bytes(public))).encrypt(key))
    doc = KeySetDocument(
        topic=topic,
        epoch=epoch,
        chain_id=chain_id,
        registry=registry.lower(),
        owner=owner.lower(),
        issued_at=issued_at,
        sealed=sealed,
    )
    try:
        _check(doc)
    except KeySetError as exc:
        raise ValueError(exc.detail) from exc
    return doc


def unseal(doc: KeySetDocument, address: str, private: PrivateKey) -> bytes:
    """The epoch key from `address`'s entry. Raises KeySetError: `not_a_recipient`, or
    `unseal_failed` (the entry was sealed to another key than `private`'s)."""
    box = doc.sealed.get(address.lower())
    if box is None:
        raise KeySetError(
            "not_a_recipient", f"{address} has no entry in epoch {doc.epoch} of {doc.topic!r}"
        )
    try:
        key = SealedBox(private).decrypt(box)
    except CryptoError as exc:
        raise KeySetError(
            "unseal_failed",
            f"the entry of {address} in epoch {doc.epoch} of {doc.topic!r} does not open with "
            "this key (announced key changed?)",
        ) from exc
    if len(key) != KEY_BYTES:
        raise KeySetError("unseal_failed", f"the entry of {address} holds no {KEY_BYTES}-byte key")
    return bytes(key)


def verify(
    raw: bytes,
    signature: bytes,
    *,
    topic: str,
    owner: str,
    recorded_epoch: int,
    chain_id: int | None = None,
    registry: str | None = None,
) -> KeySetDocument:
    """The document, if it may be used: for `topic` (and, when given, this chain and registry),
    signed by `owner` (the topic's owner on chain), and recorded on chain under the epoch it
    names (`recorded_epoch` = the chain's `keySetEpochOf(topic, key_set_hash(raw))`, 0 =
    never). Raises KeySetError with the first reason that applies (module docstring)."""
    doc = decode(raw)
    if doc.topic != topic:
        raise KeySetError("wrong_topic", f"the key set is for {doc.topic!r}, not {topic!r}")
    if chain_id is not None and doc.chain_id != chain_id:
        raise KeySetError("wrong_topic", f"the key set is for chain {doc.chain_id}, not {chain_id}")
    if registry is not None and doc.registry != registry.lower():
        raise KeySetError("wrong_topic", f"the key set is for registry {doc.registry}")
    expected = owner.lower()
    signer = signer_of(raw, signature)
    if signer != expected or doc.owner != expected:
        raise KeySetError(
            "not_owner_signed",
            f"epoch {doc.epoch} of {topic!r} is signed by {signer or 'nobody'}, not the owner "
            f"{expected}",
        )
    if recorded_epoch == 0:
        raise KeySetError(
            "hash_not_on_chain",
            f"epoch {doc.epoch} of {topic!r} ({key_set_hash_hex(raw)}) is not recorded on chain",
        )
    if doc.epoch != recorded_epoch:
        raise KeySetError(
            "epoch_mismatch",
            f"the key set names epoch {doc.epoch} of {topic!r}, the chain recorded it as "
            f"{recorded_epoch}",
        )
    return doc
