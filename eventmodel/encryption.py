"""End-to-end encryption of an event's data under a topic's epoch key (issue 12). Pure: no I/O
(the nonce is drawn from `os.urandom` unless the caller passes one).

Why here: the publisher's client seals the data before it signs (eventmodel/provenance.py covers
the ciphertext and the epoch), a gateway only ever holds the sealed form and checks its shape
(`looks_sealed`), the reader's client opens it. One module, below all three.

Sealed form (what a gateway stores and relays)::

    mgepoch      Integer  the key epoch, 1 .. 2**31-1 (an extension, so filters can see it)
    binary_data  nonce (24 bytes, random) || XChaCha20-Poly1305 ciphertext (IETF, 16-byte tag)
                 of the envelope  kind (1 byte) || payload

    kind 0  no data                 payload empty
    kind 1  binary_data             the bytes
    kind 2  text_data               the UTF-8 of the string
    kind 3  proto_data (an Any)     the Any's deterministic serialisation

Every other attribute (id, source, type, datacontenttype, subject, time, extensions) stays
visible: the gateway filters and routes on them. `datacontenttype` describes the plaintext.

Associated data (what the AEAD binds the ciphertext to, so a sealed data cannot be moved to
another event, topic or epoch): `DOMAIN`, then for each of topic, id, source, type a u32
big-endian length and the UTF-8 bytes, then a u32 length (4) and the epoch as u32 big-endian.

Invariants: `open_event(seal_event(pb, t, e, k), t, k) == pb` for any `pb` without `mgepoch`
(bytes in = bytes out: the data oneof is restored exactly); `seal_event` and `open_event` return
copies and leave their input as it was. Errors: `DecryptionError(reason)` with a reason among
REASONS; a wrong key and a tampered ciphertext or attribute are the same reason (`tampered`):
the AEAD cannot tell them apart.
"""

from __future__ import annotations

import os
import struct
from typing import Final

from google.protobuf.any_pb2 import Any as PbAny
from google.protobuf.message import DecodeError
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_ABYTES,
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)
from nacl.exceptions import CryptoError

from eventmodel.attributes import PbEvent
from eventmodel.errors import DecryptionError

EPOCH_ATTRIBUTE: Final = "mgepoch"
DOMAIN: Final = b"meshgate/encrypt/v1\x00"
KEY_BYTES: Final = crypto_aead_xchacha20poly1305_ietf_KEYBYTES  # 32
NONCE_BYTES: Final = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES: Final = crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
MIN_SEALED: Final = NONCE_BYTES + TAG_BYTES + 1  # the envelope holds at least its kind byte
MAX_EPOCH: Final = 2**31 - 1  # an Integer attribute is signed 32-bit
REASONS: Final = ("not_sealed", "tampered", "bad_envelope")

KIND_NONE: Final = 0
KIND_BINARY: Final = 1
KIND_TEXT: Final = 2
KIND_PROTO: Final = 3
_U32 = struct.Struct(">I")


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"an epoch key is {KEY_BYTES} bytes, got {len(key)}")


def _check_epoch(epoch: int) -> None:
    if not 1 <= epoch <= MAX_EPOCH:
        raise ValueError(f"a key epoch is 1..{MAX_EPOCH}, got {epoch}")


def associated_data(pb: PbEvent, topic: str, epoch: int) -> bytes:
    """The canonical bytes the AEAD binds: topic, id, source, type, epoch, length-prefixed."""
    parts = [DOMAIN]
    for text in (topic, pb.id, pb.source, pb.type):
        raw = text.encode()
        parts.append(_U32.pack(len(raw)))
        parts.append(raw)
    parts.append(_U32.pack(4))
    parts.append(_U32.pack(epoch))
    return b"".join(parts)


def _envelope(pb: PbEvent) -> bytes:
    kind = pb.WhichOneof("data")
    if kind is None:
        return bytes((KIND_NONE,))
    if kind == "binary_data":
        return bytes((KIND_BINARY,)) + pb.binary_data
    if kind == "text_data":
        return bytes((KIND_TEXT,)) + pb.text_data.encode()
    return bytes((KIND_PROTO,)) + pb.proto_data.SerializeToString(deterministic=True)


def _restore(pb: PbEvent, envelope: bytes) -> None:
    """Put the envelope's data into `pb` (whose data oneof is cleared first)."""
    pb.ClearField("data")
    kind, payload = envelope[0], envelope[1:]
    if kind == KIND_NONE and not payload:
        return
    if kind == KIND_BINARY:
        pb.binary_data = payload
        return
    if kind == KIND_TEXT:
        try:
            pb.text_data = payload.decode()
        except UnicodeDecodeError as exc:
            raise DecryptionError("bad_envelope", f"event {pb.id!r}: text is not UTF-8") from exc
        return
    if kind == KIND_PROTO:
        any_ = PbAny()
        try:
            any_.ParseFromString(payload)
        except DecodeError as exc:
            raise DecryptionError("bad_envelope", f"event {pb.id!r}: proto data") from exc
        pb.proto_data.CopyFrom(any_)
        return
    raise DecryptionError("bad_envelope", f"event {pb.id!r}: unknown data kind {kind}")


def seal_event(
    pb: PbEvent, topic: str, epoch: int, key: bytes, *, nonce: bytes | None = None
) -> PbEvent:
    """A copy of `pb` with its data sealed under `key` for `topic` and `epoch` and `mgepoch`
    set (any old value replaced). Seal before signing: the signature must cover the result.
    Raises ValueError for a key that is not 32 bytes or an epoch out of range."""
    _check_key(key)
    _check_epoch(epoch)
    if nonce is None:
        nonce = os.urandom(NONCE_BYTES)
    elif len(nonce) != NONCE_BYTES:
        raise ValueError(f"a nonce is {NONCE_BYTES} bytes, got {len(nonce)}")
    sealed = PbEvent()
    sealed.CopyFrom(pb)
    sealed.attributes[EPOCH_ATTRIBUTE].ce_integer = epoch
    ad = associated_data(sealed, topic, epoch)
    ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(_envelope(pb), ad, nonce, key)
    sealed.binary_data = nonce + ciphertext
    return sealed


def epoch_of(pb: PbEvent) -> int | None:
    """The event's key epoch, or None when `mgepoch` is missing, not an Integer or < 1."""
    value = pb.attributes.get(EPOCH_ATTRIBUTE)
    if value is None or value.WhichOneof("attr") != "ce_integer" or value.ce_integer < 1:
        return None
    return value.ce_integer


def _shape(pb: PbEvent) -> int | str:
    """The epoch of a well-shaped sealed event, else why it is not one (one pass)."""
    value = pb.attributes.get(EPOCH_ATTRIBUTE)
    if value is None:
        return f"event {pb.id!r} has no {EPOCH_ATTRIBUTE} (plaintext?)"
    if value.WhichOneof("attr") != "ce_integer" or value.ce_integer < 1:
        return f"event {pb.id!r}: {EPOCH_ATTRIBUTE} must be an Integer epoch >= 1"
    kind = pb.WhichOneof("data")
    if kind != "binary_data":
        return f"event {pb.id!r}: sealed data must be binary, got {kind or 'no data'}"
    if len(pb.binary_data) < MIN_SEALED:
        return f"event {pb.id!r}: sealed data is {len(pb.binary_data)} bytes, under {MIN_SEALED}"
    return int(value.ce_integer)


def looks_sealed(pb: PbEvent) -> str | None:
    """Why `pb` is not in the sealed form (one line), or None if its shape is right. For
    gateways, which hold no key: a right shape says nothing of whether the data opens."""
    shape = _shape(pb)
    return shape if isinstance(shape, str) else None


def sealed_epoch(pb: PbEvent) -> int:
    """The epoch of a sealed event; raises DecryptionError('not_sealed') naming what is wrong."""
    shape = _shape(pb)
    if isinstance(shape, str):
        raise DecryptionError("not_sealed", shape)
    return shape


def open_event(pb: PbEvent, topic: str, key: bytes) -> PbEvent:
    """A copy of `pb` with its data opened and `mgepoch` removed: the event as published
    before sealing (its provenance attributes, if any, cover the sealed form: verify them
    before opening). The key must be the one of `epoch_of(pb)`. Raises DecryptionError:
    `not_sealed` (wrong shape), `tampered` (wrong key, or the ciphertext, topic, id, source,
    type or epoch changed), `bad_envelope` (opened, but not an envelope this module writes)."""
    _check_key(key)
    epoch = sealed_epoch(pb)
    raw = pb.binary_data
    nonce, ciphertext = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    try:
        envelope = crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, associated_data(pb, topic, epoch), nonce, key
        )
    except CryptoError as exc:
        raise DecryptionError(
            "tampered", f"event {pb.id!r} does not open with the key of epoch {epoch}"
        ) from exc
    opened = PbEvent()
    opened.CopyFrom(pb)
    del opened.attributes[EPOCH_ATTRIBUTE]
    _restore(opened, envelope)
    return opened
