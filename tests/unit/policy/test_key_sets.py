"""Key sets: canonical bytes, owner signature, each refusal reason, unseal by the right key only."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.encryption_keys import announced_public_key, derive_x25519, public_bytes, public_key
from policy.errors import KeySetError
from policy.key_sets import (
    KeySetDocument,
    build,
    decode,
    encode,
    key_set_hash,
    key_set_hash_hex,
    sign,
    signer_of,
    unseal,
    verify,
)

OWNER = Account.from_key(b"\x11" * 32)
ALICE = Account.from_key(b"\x22" * 32)
BOB = Account.from_key(b"\x33" * 32)
MALLORY = Account.from_key(b"\x44" * 32)
REGISTRY = "0x" + "ab" * 20
KEY = os.urandom(32)


def a_set(epoch: int = 2, topic: str = "orders", key: bytes = KEY) -> KeySetDocument:
    recipients = {a.address: announced_public_key(bytes(a.key)) for a in (OWNER, ALICE, BOB)}
    return build(
        topic,
        epoch,
        key,
        recipients,
        chain_id=1337,
        registry=REGISTRY,
        owner=OWNER.address,
        issued_at=1767225600,
    )


def signed(doc: KeySetDocument | None = None, by: object = OWNER) -> tuple[bytes, bytes]:
    raw = encode(doc or a_set())
    return raw, sign(raw, by)  # type: ignore[arg-type]


def refusal(raw: bytes, signature: bytes, **overrides: object) -> str:
    kwargs: dict[str, object] = {"topic": "orders", "owner": OWNER.address, "recorded_epoch": 2}
    kwargs.update(overrides)
    with pytest.raises(KeySetError) as info:
        verify(raw, signature, **kwargs)  # type: ignore[arg-type]
    return info.value.reason


def test_encode_is_canonical_and_stable() -> None:
    doc = a_set()
    raw = encode(doc)
    assert decode(raw) == doc
    assert encode(decode(raw)) == raw
    body = json.loads(raw)
    assert raw == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert list(body["sealed"]) == sorted(body["sealed"])
    assert all(a == a.lower() for a in body["sealed"])
    # the same content built with recipients in another order has the same bytes
    shuffled = KeySetDocument(
        topic=doc.topic,
        epoch=doc.epoch,
        chain_id=doc.chain_id,
        registry=doc.registry,
        owner=doc.owner,
        issued_at=doc.issued_at,
        sealed=dict(reversed(list(doc.sealed.items()))),
    )
    assert encode(shuffled) == raw
    assert key_set_hash(raw) == key_set_hash(encode(shuffled))
    assert key_set_hash_hex(raw) == "0x" + key_set_hash(raw).hex()
    assert len(key_set_hash(raw)) == 32


def test_a_fixed_document_has_a_fixed_encoding() -> None:
    """Pinned bytes: a change of the canonical form would change every hash on chain."""
    doc = KeySetDocument(
        topic="t",
        epoch=1,
        chain_id=1,
        registry="0x" + "00" * 20,
        owner="0x" + "11" * 20,
        issued_at=5,
        sealed={"0x" + "22" * 20: b"\x07" * 80},
    )
    box = base64.b64encode(b"\x07" * 80).decode()
    assert (
        encode(doc)
        == (
            '{"chain_id":1,"epoch":1,"issued_at":5,"owner":"0x'
            + "11" * 20
            + '","registry":"0x'
            + "00" * 20
            + '","sealed":{"0x'
            + "22" * 20
            + '":"'
            + box
            + '"},"topic":"t"}'
        ).encode()
    )


@pytest.mark.parametrize(
    "spoil",
    [
        lambda raw: raw + b" ",
        lambda raw: raw.replace(b":", b": ", 1),
        lambda raw: b"[]",
        lambda raw: b"\xff\xfe",
        lambda raw: json.dumps(
            {**json.loads(raw), "extra": 1}, sort_keys=True, separators=(",", ":")
        ).encode(),
        lambda raw: raw.replace(b'"epoch":2', b'"epoch":true'),
        lambda raw: raw.replace(b'"epoch":2', b'"epoch":0'),
        lambda raw: raw.replace(b'"epoch":2', b'"epoch":2.0'),
        lambda raw: raw.replace(REGISTRY.encode(), REGISTRY.upper().replace("0X", "0x").encode()),
        lambda raw: raw.replace(b'"sealed":{', b'"sealed":{"0x' + b"1" * 40 + b'":"AAAA",'),
        lambda raw: raw.replace(b'"sealed":{', b'"sealed":{"0x' + b"0" * 40 + b'":"!!",'),
    ],
)
def test_decode_refuses_anything_not_canonical(spoil: object) -> None:
    raw = spoil(encode(a_set()))  # type: ignore[operator]
    with pytest.raises(KeySetError) as info:
        decode(raw)
    assert info.value.reason == "malformed"


def test_verify_accepts_the_owners_recorded_set() -> None:
    raw, signature = signed()
    doc = verify(
        raw,
        signature,
        topic="orders",
        owner=OWNER.address.lower(),
        recorded_epoch=2,
        chain_id=1337,
        registry=REGISTRY,
    )
    assert doc == decode(raw) and doc.epoch == 2
    assert signer_of(raw, signature) == OWNER.address.lower()


def test_verify_refuses_each_reason() -> None:
    raw, signature = signed()
    assert refusal(raw[:-1], signature) == "malformed"
    assert refusal(raw, signature, topic="payments") == "wrong_topic"
    assert refusal(raw, signature, chain_id=1) == "wrong_topic"
    assert refusal(raw, signature, registry="0x" + "cd" * 20) == "wrong_topic"
    assert refusal(*signed(by=MALLORY)) == "not_owner_signed"
    assert refusal(raw, b"\x00" * 65) == "not_owner_signed"
    assert refusal(raw, b"short") == "not_owner_signed"
    assert refusal(raw, signature, owner=MALLORY.address) == "not_owner_signed"
    assert refusal(raw, signature, recorded_epoch=0) == "hash_not_on_chain"
    assert refusal(raw, signature, recorded_epoch=3) == "epoch_mismatch"


def test_a_document_naming_another_owner_refuses_even_if_signed_by_the_owner() -> None:
    doc = a_set()
    other = KeySetDocument(
        topic=doc.topic,
        epoch=doc.epoch,
        chain_id=doc.chain_id,
        registry=doc.registry,
        owner=MALLORY.address.lower(),
        issued_at=doc.issued_at,
        sealed=doc.sealed,
    )
    assert refusal(*signed(other)) == "not_owner_signed"


def test_a_changed_byte_changes_the_hash_and_breaks_the_signature() -> None:
    raw, signature = signed()
    changed = raw.replace(b'"issued_at":1767225600', b'"issued_at":1767225601')
    assert key_set_hash(changed) != key_set_hash(raw)
    assert refusal(changed, signature) == "not_owner_signed"


def test_unseal_by_the_right_key_only() -> None:
    doc = decode(encode(a_set()))
    for account in (OWNER, ALICE, BOB):
        assert unseal(doc, account.address, derive_x25519(bytes(account.key))) == KEY
    with pytest.raises(KeySetError) as info:
        unseal(doc, MALLORY.address, derive_x25519(bytes(MALLORY.key)))
    assert info.value.reason == "not_a_recipient"
    with pytest.raises(KeySetError) as info:
        unseal(doc, ALICE.address, derive_x25519(bytes(MALLORY.key)))
    assert info.value.reason == "unseal_failed"


def test_the_key_is_not_in_the_document() -> None:
    key = b"K" * 32
    raw = encode(a_set(key=key))
    assert key not in raw and base64.b64encode(key) not in raw


def test_build_refuses_bad_inputs() -> None:
    good = {ALICE.address: announced_public_key(bytes(ALICE.key))}
    kwargs = {"chain_id": 1337, "registry": REGISTRY, "owner": OWNER.address, "issued_at": 0}
    with pytest.raises(ValueError):
        build("orders", 1, b"short", good, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build("orders", 1, KEY, {"bob": b"\x01" * 32}, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build("orders", 1, KEY, {ALICE.address: bytes(32)}, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build("orders", 0, KEY, good, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build("orders", 1, KEY, {}, **kwargs)  # type: ignore[arg-type]


def test_derived_key_is_stable_and_per_account() -> None:
    one = derive_x25519(bytes(ALICE.key))
    assert bytes(one) == bytes(derive_x25519(bytes(ALICE.key)))
    assert bytes(one) != bytes(derive_x25519(bytes(BOB.key)))
    assert bytes(one) != bytes(ALICE.key)  # domain-separated, not the Ethereum key itself
    assert public_bytes(one) == announced_public_key(bytes(ALICE.key))
    assert bytes(public_key(public_bytes(one))) == public_bytes(one)
    with pytest.raises(ValueError):
        public_key(bytes(32))
    with pytest.raises(ValueError):
        derive_x25519(b"short")


@given(
    topic=st.text(min_size=1, max_size=30),
    epoch=st.integers(1, 2**31 - 1),
    issued_at=st.integers(0, 2**40),
)
@settings(max_examples=40, deadline=None)
def test_encode_decode_property(topic: str, epoch: int, issued_at: int) -> None:
    doc = KeySetDocument(
        topic=topic,
        epoch=epoch,
        chain_id=1337,
        registry=REGISTRY,
        owner=OWNER.address.lower(),
        issued_at=issued_at,
        sealed={ALICE.address.lower(): b"\x01" * 80},
    )
    raw = encode(doc)
    assert decode(raw) == doc and raw.isascii()


def test_build_for_a_hundred_recipients_is_quick() -> None:
    """Not a benchmark (see the report): a bound that catches an accidental quadratic."""
    recipients = {
        Account.from_key(bytes([i + 1]) * 32).address: public_bytes(
            derive_x25519(bytes([i + 1]) * 32)
        )
        for i in range(100)
    }
    start = time.perf_counter()
    doc = build(
        "orders",
        1,
        KEY,
        recipients,
        chain_id=1337,
        registry=REGISTRY,
        owner=OWNER.address,
        issued_at=0,
    )
    raw = encode(doc)
    sign(raw, OWNER)
    assert time.perf_counter() - start < 5.0
    assert len(decode(raw).sealed) == 100


def test_the_derivation_is_pinned() -> None:
    """Known answer: announced keys on chain depend on it; a change would orphan them all."""
    private = derive_x25519(b"\x11" * 32)
    assert bytes(private).hex() == (
        "565340f4688e55642cb482b6b6fb1ac7940a7596c0e5fa14aa0f8d75c57ec7ff"
    )
    assert public_bytes(private).hex() == (
        "c4cf2998c7b60e8d951ca3d7a5915e65f45df61dce23b6abd119d89c9278d452"
    )
