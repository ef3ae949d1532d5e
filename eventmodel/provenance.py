"""Publisher provenance: the publisher's own Ethereum signature over a batch, carried per event.

Why: a region's origin signature (federation/signing.py) proves which region emitted an event,
not that an allowed publisher wrote it. Here the publisher's account signs what it publishes,
once per batch (a Merkle root), and every event carries what it needs to be verified alone,
after any gateway split, filtered or regrouped the batch. Pure: no I/O, no clock.

Extension attributes (CloudEvents extensions, so the stored bytes and the bytes on every hop
are the signed bytes; a gateway never rewrites them)::

    mgpublisher  String  the signer's checksummed address, "0x" + 40 hex digits
    mgpubsig     Binary  65 bytes: secp256k1 r (32) || s (32) || v (1, 27 or 28)
    mgpubproof   Binary  0x01 (version) || root (32) || chain id (u64) || registry (20)
                         || leaf index (u32) || leaf count (u32) || sibling hashes (32 each,
                         leaf to root); integers big-endian

Leaf (what the Merkle tree covers, one per event): the event's deterministic protobuf
serialisation (`SerializeToString(deterministic=True)`, map entries sorted by name) with the
three attributes above removed: id, source, specversion, type, every other attribute and
extension with its type, and the data. Hashes are RFC 9162's (eventmodel/merkle.py).

Statement (what the account signs, EIP-191 personal_sign, so any Ethereum wallet can sign)::

    b"meshgate/publish/v1\\x00" || chain id (u64) || registry address (20)
    || len(topic) (u32) || topic (UTF-8) || root (32)

Binding the chain, the registry and the topic means an event cannot be replayed into another
topic, registry or chain. Not covered: the topic's offset, the receive time, the origin region
(any gateway may carry the event on), and the delivery attempt.

Verification (`ProvenanceVerifier.verify`): the inclusion proof by hashing, then the statement's
signer recovered once per (statement, signature) (~0.1 ms with coincurve), cached; the signer
must be the `mgpublisher` the event names. Whether that address may publish to the topic is the
caller's question (the registry's view), not this module's. Errors: `ProvenanceError` with a
`reason` among REASONS.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from eventmodel.attributes import PbEvent
from eventmodel.errors import ProvenanceError
from eventmodel.merkle import tree_with_proofs, verify_inclusion

PUBLISHER: Final = "mgpublisher"
SIGNATURE: Final = "mgpubsig"
PROOF: Final = "mgpubproof"
NAMES: Final = (PUBLISHER, SIGNATURE, PROOF)
DOMAIN: Final = b"meshgate/publish/v1\x00"
VERSION: Final = 1
REASONS: Final = ("unsigned", "bad_proof", "bad_signature")
_HEAD = struct.Struct(">B32sQ20sII")  # version, root, chain id, registry, index, count
MAX_CACHED = 4096


@dataclass(frozen=True, slots=True)
class Binding:
    """Which registry the signature speaks for: the chain id and the registry's address."""

    chain_id: int
    registry: bytes  # 20 bytes

    def __post_init__(self) -> None:
        if len(self.registry) != 20 or not 0 <= self.chain_id < 2**64:
            raise ValueError("a binding needs a 20-byte registry address and a u64 chain id")

    @classmethod
    def of(cls, chain_id: int, registry: str) -> Binding:
        """From a chain id and a 0x-hex registry address."""
        return cls(chain_id, bytes.fromhex(registry.removeprefix("0x")))

    @property
    def registry_hex(self) -> str:
        from eth_utils import to_checksum_address  # lazily: ~0.3 s with pydantic (CLI start)

        return to_checksum_address(self.registry)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who signed an event (checksummed address) and for which registry."""

    publisher: str
    binding: Binding


class Signer(Protocol):
    """What can sign: an eth-account LocalAccount (its `sign_message`)."""

    @property
    def address(self) -> str: ...

    def sign_message(self, signable_message: object) -> object: ...


def statement(binding: Binding, topic: str, root: bytes) -> bytes:
    """The exact bytes the publisher's account signs (EIP-191 wraps them)."""
    name = topic.encode()
    return b"".join(
        (
            DOMAIN,
            struct.pack(">Q", binding.chain_id),
            binding.registry,
            struct.pack(">I", len(name)),
            name,
            root,
        )
    )


def _strip(pb: PbEvent) -> None:
    """Remove the provenance attributes from `pb` (before signing it anew)."""
    for name in NAMES:
        if name in pb.attributes:
            del pb.attributes[name]


def leaf_bytes(pb: PbEvent) -> bytes:
    """The event's canonical bytes without its provenance (the leaf); `pb` is left as it was."""
    if not any(name in pb.attributes for name in NAMES):
        return pb.SerializeToString(deterministic=True)
    bare = PbEvent()
    bare.CopyFrom(pb)  # measured: a copy costs less than taking the attributes out and back
    for name in NAMES:
        if name in bare.attributes:
            del bare.attributes[name]
    return bare.SerializeToString(deterministic=True)


def sign_events(events: Sequence[PbEvent], *, topic: str, binding: Binding, signer: Signer) -> str:
    """Sign `events` as one batch for `topic`: each gets the three attributes (any old ones
    are replaced). One signature per call. Returns the signer's checksummed address."""
    if not events:
        raise ValueError("nothing to sign")
    for pb in events:
        _strip(pb)
    from eth_account.messages import encode_defunct  # lazily: the client SDK imports this module
    from eth_utils import to_checksum_address  # as lazily (~0.3 s with pydantic; CLI start)

    root, proofs = tree_with_proofs([pb.SerializeToString(deterministic=True) for pb in events])
    signed = signer.sign_message(encode_defunct(primitive=statement(binding, topic, root)))
    signature = bytes(signed.signature)  # type: ignore[attr-defined]
    address = to_checksum_address(signer.address)
    n = len(events)
    for i, pb in enumerate(events):
        head = _HEAD.pack(VERSION, root, binding.chain_id, binding.registry, i, n)
        pb.attributes[PUBLISHER].ce_string = address
        pb.attributes[SIGNATURE].ce_bytes = signature
        pb.attributes[PROOF].ce_bytes = head + b"".join(proofs[i])
    return address


def is_signed(pb: PbEvent) -> bool:
    """Does `pb` carry any provenance attribute (valid or not)?"""
    return any(name in pb.attributes for name in NAMES)


def _bytes_attr(pb: PbEvent, name: str) -> bytes:
    """A Binary attribute, or its Base64 string form (what the HTTP and JSON forms carry:
    they cannot name the type; the leaf never covers these attributes, so either form works)."""
    value = pb.attributes.get(name)
    kind = None if value is None else value.WhichOneof("attr")
    if value is not None and kind == "ce_bytes":
        return value.ce_bytes
    if value is not None and kind == "ce_string":
        try:
            return base64.b64decode(value.ce_string, validate=True)
        except ValueError:
            pass
    raise ProvenanceError("bad_proof", f"event {pb.id!r}: {name} is missing or not Binary")


@dataclass(frozen=True, slots=True)
class _Proof:
    root: bytes
    binding: Binding
    index: int
    count: int
    siblings: tuple[bytes, ...]


_bindings: dict[tuple[int, bytes], Binding] = {}  # few distinct ones: skip re-validating


def _parse_proof(pb: PbEvent) -> _Proof:
    raw = _bytes_attr(pb, PROOF)
    rest = len(raw) - _HEAD.size
    if rest < 0 or rest % 32:
        raise ProvenanceError("bad_proof", f"event {pb.id!r}: {PROOF} has a bad length")
    version, root, chain_id, registry, index, count = _HEAD.unpack_from(raw)
    if version != VERSION:
        raise ProvenanceError("bad_proof", f"event {pb.id!r}: {PROOF} version {version}")
    binding = _bindings.get((chain_id, registry))
    if binding is None:
        binding = Binding(chain_id, registry)
        if len(_bindings) < 64:
            _bindings[(chain_id, registry)] = binding
    n = _HEAD.size
    siblings = [raw[i : i + 32] for i in range(n, len(raw), 32)]
    return _Proof(root, binding, index, count, tuple(siblings))


class ProvenanceVerifier:
    """Verifies events' publisher signatures; remembers recovered signers (one recovery per
    batch, not per event). `binding` None: accept any registry the proof names (a client with
    no chain configured); else the proof must name this one."""

    def __init__(self, binding: Binding | None = None, max_cached: int = MAX_CACHED) -> None:
        self.binding = binding
        self._recovered: dict[tuple[bytes, bytes], str] = {}
        self._max = max_cached

    def verify(self, pb: PbEvent, topic: str) -> Provenance:
        """Raises ProvenanceError(reason) unless `pb` is signed, for `topic`, by the account
        it names. `pb` is left as it was."""
        if not is_signed(pb):
            raise ProvenanceError("unsigned", f"event {pb.id!r} carries no publisher signature")
        claimed = pb.attributes.get(PUBLISHER)
        if claimed is None or claimed.WhichOneof("attr") != "ce_string":
            raise ProvenanceError("bad_proof", f"event {pb.id!r}: {PUBLISHER} missing")
        signature = _bytes_attr(pb, SIGNATURE)
        proof = _parse_proof(pb)
        if self.binding is not None and proof.binding != self.binding:
            raise ProvenanceError(
                "bad_signature",
                f"event {pb.id!r} is signed for registry {proof.binding.registry_hex} on chain "
                f"{proof.binding.chain_id}, not this one",
            )
        leaf = leaf_bytes(pb)
        if not verify_inclusion(leaf, proof.index, proof.count, proof.siblings, proof.root):
            raise ProvenanceError("bad_proof", f"event {pb.id!r} is not in the signed batch")
        message = statement(proof.binding, topic, proof.root)
        signer = self._recover(message, signature)
        if signer is None or signer.lower() != claimed.ce_string.lower():
            raise ProvenanceError(
                "bad_signature",
                f"event {pb.id!r}: signature is not by {claimed.ce_string} for topic {topic!r}",
            )
        return Provenance(signer, proof.binding)

    def _recover(self, message: bytes, signature: bytes) -> str | None:
        key = (message, signature)
        hit = self._recovered.get(key)
        if hit is not None:
            return hit
        from eth_account import Account  # lazily (see sign_events)
        from eth_account.messages import encode_defunct

        try:
            signer = str(
                Account.recover_message(encode_defunct(primitive=message), signature=signature)
            )
        except Exception:  # eth-keys raises several types for a malformed signature
            return None
        if len(self._recovered) >= self._max:
            self._recovered.pop(next(iter(self._recovered)))
        self._recovered[key] = signer
        return signer
