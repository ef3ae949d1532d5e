"""Event encryption: every data kind round-trips exactly; tamper, wrong key or epoch refuse."""

from __future__ import annotations

import pytest
from eth_account import Account
from google.protobuf.any_pb2 import Any as PbAny
from hypothesis import given, settings
from hypothesis import strategies as st

from eventmodel.attributes import PbEvent, parse, validate
from eventmodel.encryption import (
    EPOCH_ATTRIBUTE,
    MIN_SEALED,
    NONCE_BYTES,
    associated_data,
    epoch_of,
    looks_sealed,
    open_event,
    seal_event,
)
from eventmodel.errors import DecryptionError
from eventmodel.provenance import Binding, ProvenanceVerifier, sign_events

KEY = b"\x01" * 32
OTHER_KEY = b"\x02" * 32
TOPIC = "orders"


def event(data: object = b"payload") -> PbEvent:
    pb = PbEvent(id="e1", source="/src", spec_version="1.0", type="t.created")
    pb.attributes["subject"].ce_string = "s1"
    pb.attributes["datacontenttype"].ce_string = "application/octet-stream"
    if isinstance(data, bytes):
        pb.binary_data = data
    elif isinstance(data, str):
        pb.text_data = data
    elif isinstance(data, PbAny):
        pb.proto_data.CopyFrom(data)
    return pb


def reason(pb: PbEvent, key: bytes = KEY, topic: str = TOPIC) -> str:
    with pytest.raises(DecryptionError) as info:
        open_event(pb, topic, key)
    return info.value.reason


def an_any() -> PbAny:
    any_ = PbAny()
    any_.Pack(PbEvent(id="inner", source="/x", spec_version="1.0", type="t"))
    return any_


@pytest.mark.parametrize("data", [b"payload", b"", "h\u00e9llo \u2603", "", None, "any"])
def test_round_trip_restores_every_data_kind_exactly(data: object) -> None:
    pb = event(an_any() if data == "any" else data)
    sealed = seal_event(pb, TOPIC, 3, KEY)
    assert sealed.WhichOneof("data") == "binary_data"
    assert epoch_of(sealed) == 3
    assert looks_sealed(sealed) is None
    opened = open_event(sealed, TOPIC, KEY)
    assert opened == pb
    assert opened.SerializeToString(deterministic=True) == pb.SerializeToString(deterministic=True)
    assert opened.WhichOneof("data") == pb.WhichOneof("data")


def test_seal_and_open_leave_their_input_alone() -> None:
    pb = event()
    before = pb.SerializeToString(deterministic=True)
    sealed = seal_event(pb, TOPIC, 1, KEY)
    assert pb.SerializeToString(deterministic=True) == before
    sealed_bytes = sealed.SerializeToString(deterministic=True)
    open_event(sealed, TOPIC, KEY)
    assert sealed.SerializeToString(deterministic=True) == sealed_bytes


def test_the_plaintext_is_not_in_the_sealed_bytes_and_nonces_differ() -> None:
    pb = event(b"MARKER-0123456789")
    one, two = seal_event(pb, TOPIC, 1, KEY), seal_event(pb, TOPIC, 1, KEY)
    assert b"MARKER" not in one.SerializeToString()
    assert one.binary_data[:NONCE_BYTES] != two.binary_data[:NONCE_BYTES]


def test_sealed_event_is_a_valid_cloudevent_and_survives_the_wire() -> None:
    sealed = seal_event(event(), TOPIC, 7, KEY)
    validate(sealed)
    again = parse(sealed.SerializeToString(deterministic=True))
    assert open_event(again, TOPIC, KEY) == event()


@given(
    data=st.one_of(st.binary(max_size=2048), st.text(max_size=512), st.none()),
    epoch=st.integers(min_value=1, max_value=2**31 - 1),
    topic=st.text(min_size=1, max_size=40),
    key=st.binary(min_size=32, max_size=32),
)
@settings(max_examples=150, deadline=None)
def test_round_trip_property(data: bytes | str | None, epoch: int, topic: str, key: bytes) -> None:
    pb = event(data)
    sealed = seal_event(pb, topic, epoch, key)
    assert open_event(sealed, topic, key) == pb


@pytest.mark.parametrize(
    "field, value",
    [("id", "e2"), ("source", "/other"), ("type", "t.deleted")],
)
def test_tampering_any_bound_field_refuses(field: str, value: str) -> None:
    sealed = seal_event(event(), TOPIC, 1, KEY)
    setattr(sealed, field, value)
    assert reason(sealed) == "tampered"


def test_another_topic_refuses() -> None:
    assert reason(seal_event(event(), TOPIC, 1, KEY), topic="payments") == "tampered"


def test_changed_epoch_refuses() -> None:
    sealed = seal_event(event(), TOPIC, 1, KEY)
    sealed.attributes[EPOCH_ATTRIBUTE].ce_integer = 2
    assert reason(sealed) == "tampered"


@pytest.mark.parametrize("index", [0, NONCE_BYTES, NONCE_BYTES + 1, -1])
def test_flipping_any_ciphertext_byte_refuses(index: int) -> None:
    sealed = seal_event(event(), TOPIC, 1, KEY)
    raw = bytearray(sealed.binary_data)
    raw[index] ^= 0x01
    sealed.binary_data = bytes(raw)
    assert reason(sealed) == "tampered"


def test_truncated_ciphertext_refuses() -> None:
    sealed = seal_event(event(b"x" * 100), TOPIC, 1, KEY)
    sealed.binary_data = sealed.binary_data[:-1]
    assert reason(sealed) == "tampered"


def test_wrong_key_refuses() -> None:
    assert reason(seal_event(event(), TOPIC, 1, KEY), key=OTHER_KEY) == "tampered"


def test_unbound_attributes_stay_visible_and_may_differ() -> None:
    """Only topic, id, source, type and epoch are bound; other attributes are the signature's."""
    sealed = seal_event(event(), TOPIC, 1, KEY)
    assert sealed.attributes["subject"].ce_string == "s1"
    sealed.attributes["subject"].ce_string = "changed"
    assert open_event(sealed, TOPIC, KEY).attributes["subject"].ce_string == "changed"


@pytest.mark.parametrize(
    "spoil, needle",
    [
        (lambda pb: pb.attributes.pop(EPOCH_ATTRIBUTE), "no mgepoch"),
        (lambda pb: pb.attributes[EPOCH_ATTRIBUTE].__setattr__("ce_string", "1"), "Integer"),
        (lambda pb: pb.attributes[EPOCH_ATTRIBUTE].__setattr__("ce_integer", 0), "Integer"),
        (lambda pb: pb.__setattr__("text_data", "plain"), "binary"),
        (lambda pb: pb.ClearField("data"), "no data"),
        (lambda pb: pb.__setattr__("binary_data", b"\x00" * (MIN_SEALED - 1)), "bytes"),
    ],
)
def test_looks_sealed_names_what_is_wrong(spoil: object, needle: str) -> None:
    sealed = seal_event(event(), TOPIC, 1, KEY)
    spoil(sealed)  # type: ignore[operator]
    why = looks_sealed(sealed)
    assert why is not None and needle in why
    assert reason(sealed) == "not_sealed"


def test_plaintext_event_does_not_look_sealed() -> None:
    assert looks_sealed(event()) is not None
    assert epoch_of(event()) is None


def test_bad_inputs_are_value_errors() -> None:
    with pytest.raises(ValueError):
        seal_event(event(), TOPIC, 1, b"short")
    with pytest.raises(ValueError):
        seal_event(event(), TOPIC, 0, KEY)
    with pytest.raises(ValueError):
        seal_event(event(), TOPIC, 2**31, KEY)
    with pytest.raises(ValueError):
        seal_event(event(), TOPIC, 1, KEY, nonce=b"\x00")


def test_seal_then_sign_verifies_and_covers_the_epoch() -> None:
    """The client's order: seal, then sign; the signature covers ciphertext and mgepoch."""
    signer = Account.from_key(b"\x11" * 32)
    binding = Binding(1337, b"\xab" * 20)
    sealed = seal_event(event(), TOPIC, 4, KEY)
    sign_events([sealed], topic=TOPIC, binding=binding, signer=signer)
    verifier = ProvenanceVerifier(binding)
    assert verifier.verify(sealed, TOPIC).publisher == signer.address
    sealed.attributes[EPOCH_ATTRIBUTE].ce_integer = 5
    with pytest.raises(Exception, match="not in the signed batch"):
        verifier.verify(sealed, TOPIC)


def test_the_sealed_form_is_pinned() -> None:
    """Known answer: a change to the associated data, envelope or AEAD would strand every
    stored event; this fails first."""
    pb = PbEvent(id="e1", source="/src", spec_version="1.0", type="t.created")
    pb.text_data = "hi"
    assert associated_data(pb, "orders", 3) == (
        b"meshgate/encrypt/v1\x00"
        + b"\x00\x00\x00\x06orders"
        + b"\x00\x00\x00\x02e1"
        + b"\x00\x00\x00\x04/src"
        + b"\x00\x00\x00\x09t.created"
        + b"\x00\x00\x00\x04\x00\x00\x00\x03"
    )
    sealed = seal_event(pb, "orders", 3, b"\x01" * 32, nonce=b"\x02" * 24)
    assert sealed.binary_data.hex() == ("02" * 24 + "ce0e5f6abce9bfb05542b2a9a1245cc79c2681")
    assert open_event(sealed, "orders", b"\x01" * 32) == pb
