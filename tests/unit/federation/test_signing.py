import dataclasses

import pytest
from nacl.signing import SigningKey

from federation.errors import SignatureError
from federation.messages import ReplicatedEvent
from federation.signing import SignatureVerifier, sign_batch

SEED = bytes(range(32))
KEY = bytes(SigningKey(SEED).verify_key)


def events(n: int) -> list[ReplicatedEvent]:
    return [
        ReplicatedEvent("orders", f"ev{i}".encode(), "aa", i + 1, ("aa",), ("cc",), 8, None)
        for i in range(n)
    ]


def test_each_event_verifies_alone_after_a_split() -> None:
    signed = sign_batch(events(5), SEED)
    verifier = SignatureVerifier()
    for ev in (signed[3], signed[0]):
        verifier.verify(ev, KEY)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event": b"tampered"}, "bad_proof"),
        ({"origin_offset": 99}, "bad_proof"),
        ({"topic": "other"}, "bad_proof"),
        ({"signature": None}, "unsigned"),
    ],
)
def test_tampering_is_rejected(change: dict[str, object], reason: str) -> None:
    ev = dataclasses.replace(sign_batch(events(3), SEED)[1], **change)  # type: ignore[arg-type]
    with pytest.raises(SignatureError) as err:
        SignatureVerifier().verify(ev, KEY)
    assert err.value.reason == reason


def test_wrong_key_and_unknown_origin() -> None:
    ev = sign_batch(events(2), SEED)[0]
    other = bytes(SigningKey(bytes(32)).verify_key)
    with pytest.raises(SignatureError, match="bad_signature"):
        SignatureVerifier().verify(ev, other)
    with pytest.raises(SignatureError, match="unknown_origin"):
        SignatureVerifier().verify(ev, None)


def test_routing_metadata_is_not_signed() -> None:
    ev = sign_batch(events(2), SEED)[0]
    relayed = dataclasses.replace(ev, path=("aa", "bb"), destinations=("dd",), hop_limit=7)
    SignatureVerifier().verify(relayed, KEY)
