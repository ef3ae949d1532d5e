"""Publisher provenance: sign a batch, verify each event alone, refuse every tampering."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from eventmodel.attributes import PbEvent, parse
from eventmodel.errors import ProvenanceError
from eventmodel.provenance import (
    PROOF,
    PUBLISHER,
    SIGNATURE,
    Binding,
    ProvenanceVerifier,
    leaf_bytes,
    sign_events,
)

ALICE = Account.from_key(b"\x11" * 32)
MALLORY = Account.from_key(b"\x22" * 32)
BINDING = Binding(1337, b"\xab" * 20)
OTHER = Binding(1337, b"\xcd" * 20)


def event(i: int, data: bytes = b"payload") -> PbEvent:
    pb = PbEvent(id=f"e{i}", source="/src", spec_version="1.0", type="t.created")
    pb.binary_data = data
    pb.attributes["subject"].ce_string = f"s{i}"
    pb.attributes["prio"].ce_integer = i
    return pb


def signed(n: int, topic: str = "orders", signer: object = ALICE) -> list[PbEvent]:
    batch = [event(i) for i in range(n)]
    sign_events(batch, topic=topic, binding=BINDING, signer=signer)  # type: ignore[arg-type]
    return batch


def reason(pb: PbEvent, topic: str = "orders", binding: Binding | None = BINDING) -> str:
    with pytest.raises(ProvenanceError) as info:
        ProvenanceVerifier(binding).verify(pb, topic)
    return info.value.reason


def test_round_trip_names_the_signer() -> None:
    batch = signed(5)
    verifier = ProvenanceVerifier(BINDING)
    for pb in batch:
        got = verifier.verify(pb, "orders")
        assert got.publisher == ALICE.address
        assert got.binding == BINDING


def test_each_event_verifies_alone_after_the_wire() -> None:
    """Serialised, split, parsed one by one (what a relay or a store does): each still verifies."""
    for pb in signed(7):
        alone = parse(pb.SerializeToString(deterministic=True))
        assert ProvenanceVerifier(BINDING).verify(alone, "orders").publisher == ALICE.address


def test_leaf_excludes_only_the_provenance() -> None:
    plain = event(3)
    batch = [event(3)]
    sign_events(batch, topic="orders", binding=BINDING, signer=ALICE)
    assert leaf_bytes(batch[0]) == plain.SerializeToString(deterministic=True)
    assert {PUBLISHER, SIGNATURE, PROOF} <= set(batch[0].attributes)  # left as it was


def test_unsigned_is_refused() -> None:
    assert reason(event(1)) == "unsigned"


def test_other_topic_or_registry_is_refused() -> None:
    pb = signed(2)[0]
    assert reason(pb, topic="payments") == "bad_signature"
    assert reason(pb, binding=OTHER) == "bad_signature"


def test_without_a_binding_the_proof_names_the_registry() -> None:
    pb = signed(1)[0]
    assert ProvenanceVerifier(None).verify(pb, "orders").binding == BINDING


def test_claiming_another_publisher_is_refused() -> None:
    pb = signed(1)[0]
    pb.attributes[PUBLISHER].ce_string = MALLORY.address
    assert reason(pb) == "bad_signature"


def test_resigning_by_another_account_names_that_account() -> None:
    pb = signed(1, signer=MALLORY)[0]
    assert ProvenanceVerifier(BINDING).verify(pb, "orders").publisher == MALLORY.address


def test_tampered_data_proof_or_signature_is_refused() -> None:
    pb = signed(4)[1]
    data = PbEvent()
    data.CopyFrom(pb)
    data.binary_data = b"other"
    assert reason(data) == "bad_proof"
    proof = PbEvent()
    proof.CopyFrom(pb)
    raw = bytearray(proof.attributes[PROOF].ce_bytes)
    raw[-1] ^= 1
    proof.attributes[PROOF].ce_bytes = bytes(raw)
    assert reason(proof) == "bad_proof"
    sig = PbEvent()
    sig.CopyFrom(pb)
    raw = bytearray(sig.attributes[SIGNATURE].ce_bytes)
    raw[5] ^= 1
    sig.attributes[SIGNATURE].ce_bytes = bytes(raw)
    assert reason(sig) == "bad_signature"


def test_malformed_provenance_is_refused() -> None:
    pb = signed(1)[0]
    pb.attributes[PROOF].ce_bytes = b"\x01short"
    assert reason(pb) == "bad_proof"
    pb = signed(1)[0]
    pb.attributes[SIGNATURE].ce_string = "not base64!"
    assert reason(pb) == "bad_proof"
    pb = signed(1)[0]
    del pb.attributes[PUBLISHER]
    assert reason(pb) == "bad_proof"
    pb = signed(1)[0]
    pb.attributes[SIGNATURE].ce_bytes = b"\x00" * 65
    assert reason(pb) == "bad_signature"


def test_signing_again_replaces_old_provenance() -> None:
    batch = signed(2, signer=MALLORY)
    sign_events(batch, topic="orders", binding=BINDING, signer=ALICE)
    assert ProvenanceVerifier(BINDING).verify(batch[1], "orders").publisher == ALICE.address


_VALUES = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8),
    st.binary(max_size=8),
    st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 12),
    pick=st.integers(0, 11),
    name=st.sampled_from(["subject", "prio", "zz", "id", "type", "source", "data"]),
    value=_VALUES,
)
def test_any_change_to_a_covered_part_is_refused(
    n: int, pick: int, name: str, value: object
) -> None:
    batch = signed(n)
    pb = batch[pick % n]
    before = pb.SerializeToString(deterministic=True)
    if name in ("id", "type", "source"):
        setattr(pb, name, str(value) + "x")
    elif name == "data":
        pb.binary_data = pb.binary_data + b"!"
    elif isinstance(value, bool):
        pb.attributes[name].ce_boolean = value
    elif isinstance(value, int):
        pb.attributes[name].ce_integer = value
    elif isinstance(value, bytes):
        pb.attributes[name].ce_bytes = value
    else:
        pb.attributes[name].ce_string = str(value)
    if pb.SerializeToString(deterministic=True) == before:
        return  # the "change" set the same value
    assert reason(pb) in ("bad_proof", "bad_signature")


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 20), keep=st.sets(st.integers(0, 19)))
def test_any_subset_of_a_batch_verifies(n: int, keep: set[int]) -> None:
    verifier = ProvenanceVerifier(BINDING)
    batch = signed(n)
    for i in sorted(k for k in keep if k < n):
        assert verifier.verify(parse(batch[i].SerializeToString()), "orders").publisher


def test_binary_extensions_may_arrive_as_base64_strings() -> None:
    """The HTTP binding and the JSON format carry Binary values as Base64 text."""
    import base64

    pb = signed(3)[2]
    for name in (SIGNATURE, PROOF):
        raw = pb.attributes[name].ce_bytes
        pb.attributes[name].ce_string = base64.b64encode(raw).decode()
    assert ProvenanceVerifier(BINDING).verify(pb, "orders").publisher == ALICE.address
