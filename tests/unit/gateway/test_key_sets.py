"""GatewayKeySets: a set is taken only when this gateway's view backs it (encrypted topic,
hash recorded under its epoch, owner-signed), after a catch-up; held durably; the port."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventmodel.provenance import Binding
from federation.messages import TopicKeySet
from gateway.errors import InvalidTopicName, KeySetNotAccepted, TopicNotFound
from gateway.key_set_store import KeySetStore, hash_hex
from gateway.key_sets import GatewayKeySets
from policy import key_sets
from policy.errors import KeySetError
from policy.grant_view import GrantView, KeySetRecorded, TopicRegistered

OWNER = Account.from_key("0x" + "0c" * 32)
MALLORY = Account.from_key("0x" + "0e" * 32)
BINDING = Binding(1337, b"\x42" * 20)
READER_PUB = b"\x09" * 32


def document(epoch: int = 1, topic: str = "orders", owner: str = OWNER.address) -> bytes:
    doc = key_sets.build(
        topic, epoch, b"\x05" * 32, {OWNER.address: READER_PUB},
        chain_id=BINDING.chain_id, registry=BINDING.registry_hex, owner=owner, issued_at=1,
    )  # fmt: skip
    return key_sets.encode(doc)


class FakeCatchUp:
    def __init__(self, view: GrantView) -> None:
        self.view, self.waits = view, 0
        self.pending: list[KeySetRecorded] = []

    async def wait(self) -> None:
        self.waits += 1
        for change in self.pending:
            self.view.apply(change)
        self.pending.clear()


def recorded(raw: bytes, epoch: int, topic: str = "orders") -> KeySetRecorded:
    return KeySetRecorded(topic=topic, epoch=epoch, key_set_hash=hash_hex(raw), block=5 + epoch)


def setup(tmp_path: Path) -> tuple[GatewayKeySets, GrantView, FakeCatchUp]:
    view = GrantView()
    view.apply(TopicRegistered(topic="orders", owner=OWNER.address, block=1, encrypted=True))
    view.apply(TopicRegistered(topic="plain", owner=OWNER.address, block=2))
    store = KeySetStore(tmp_path)
    store.load()
    catch_up = FakeCatchUp(view)
    return GatewayKeySets(store, view, BINDING, catch_up), view, catch_up  # type: ignore[arg-type]


async def test_a_recorded_owner_signed_set_is_held_and_served(tmp_path: Path) -> None:
    gks, view, catch_up = setup(tmp_path)
    raw = document(1)
    view.apply(recorded(raw, 1))
    held = await gks.put("orders", raw, key_sets.sign(raw, OWNER))
    assert held.epoch == 1 and catch_up.waits == 0
    sets, current = gks.get("orders")
    assert [s.document for s in sets] == [raw] and current == 1
    assert gks.encryption_of("orders") == (True, 1)
    assert gks.encryption_of("plain") == (False, 0)
    again = KeySetStore(tmp_path)  # durable: a restarted gateway still holds it
    again.load()
    assert [s.document for s in again.all()] == [raw]


async def test_a_hash_mined_a_block_ago_is_found_after_a_catch_up(tmp_path: Path) -> None:
    gks, _, catch_up = setup(tmp_path)
    raw = document(1)
    catch_up.pending.append(recorded(raw, 1))
    assert (await gks.put("orders", raw, key_sets.sign(raw, OWNER))).epoch == 1
    assert catch_up.waits == 1


async def test_a_hash_not_on_chain_is_refused_after_a_catch_up(tmp_path: Path) -> None:
    gks, _, catch_up = setup(tmp_path)
    raw = document(1)
    with pytest.raises(KeySetNotAccepted) as info:
        await gks.put("orders", raw, key_sets.sign(raw, OWNER))
    assert info.value.reason == "hash_not_on_chain" and "not recorded on chain" in str(info.value)
    assert catch_up.waits == 1
    assert gks.store.all() == []


async def test_a_set_not_signed_by_the_owner_is_refused(tmp_path: Path) -> None:
    gks, view, _ = setup(tmp_path)
    raw = document(1)
    view.apply(recorded(raw, 1))
    with pytest.raises(KeySetError) as info:
        await gks.put("orders", raw, key_sets.sign(raw, MALLORY))
    assert info.value.reason == "not_owner_signed"
    forged = document(2, owner=MALLORY.address)  # Mallory's own document, her signature
    view.apply(recorded(forged, 2))
    with pytest.raises(KeySetError, match="not_owner_signed"):
        await gks.put("orders", forged, key_sets.sign(forged, MALLORY))
    assert gks.store.all() == []


async def test_epoch_mismatch_wrong_topic_and_malformed_are_refused(tmp_path: Path) -> None:
    gks, view, catch_up = setup(tmp_path)
    raw = document(2)
    view.apply(recorded(raw, 1))  # the chain recorded this hash as epoch 1
    with pytest.raises(KeySetError, match="epoch_mismatch"):
        await gks.put("orders", raw, key_sets.sign(raw, OWNER))
    other = document(1, topic="plain")
    with pytest.raises(KeySetError, match="wrong_topic"):
        await gks.put("orders", other, key_sets.sign(other, OWNER))
    waits = catch_up.waits
    with pytest.raises(KeySetError, match="malformed"):
        await gks.put("orders", b"{}", b"")
    assert catch_up.waits == waits  # refused before any chain round trip


async def test_topics_not_encrypted_or_not_registered(tmp_path: Path) -> None:
    gks, _, _ = setup(tmp_path)
    raw = document(1, topic="plain")
    with pytest.raises(KeySetNotAccepted, match="'plain' is not encrypted"):
        await gks.put("plain", raw, b"")
    with pytest.raises(TopicNotFound, match="no topic 'nowhere' on chain"):
        await gks.put("nowhere", raw, b"")
    with pytest.raises(KeySetNotAccepted):
        gks.get("plain")
    with pytest.raises(TopicNotFound):
        gks.get("nowhere")
    with pytest.raises(InvalidTopicName):
        gks.get("../x")


async def test_the_federation_port_accepts_only_what_put_would(tmp_path: Path) -> None:
    gks, view, _ = setup(tmp_path)
    raw = document(1)
    view.apply(recorded(raw, 1))
    good = TopicKeySet("orders", raw, key_sets.sign(raw, OWNER))
    assert await gks.wait_key_sets(-1) == 0
    assert await gks.accept_key_set(TopicKeySet("orders", raw, key_sets.sign(raw, MALLORY))) == (
        "not_owner_signed"
    )
    assert await gks.accept_key_set(good) is None
    assert await gks.wait_key_sets(0) == 1
    assert list(gks.key_sets()) == [good]
    assert await gks.accept_key_set(good) is None  # held: no second check or store
    relabelled = TopicKeySet("plain", raw, good.signature)  # a held document, another label
    assert await gks.accept_key_set(relabelled) == "not_encrypted"
    assert await gks.accept_key_set(TopicKeySet("nowhere", raw, b"")) == "unknown_topic"
    assert await gks.accept_key_set(TopicKeySet("bad/name", raw, b"")) == "unknown_topic"
    unknown = document(2)
    signed = key_sets.sign(unknown, OWNER)
    assert await gks.accept_key_set(TopicKeySet("orders", unknown, signed)) == "hash_not_on_chain"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=st.binary(max_size=300), signature=st.binary(max_size=80), topic=st.text(max_size=12)
)
async def test_arbitrary_bytes_get_only_the_documented_errors(
    tmp_path: Path, document: bytes, signature: bytes, topic: str
) -> None:
    gks, _, _ = setup(tmp_path / uuid.uuid4().hex)
    try:
        await gks.put(topic or "orders", document, signature)
    except (KeySetError, KeySetNotAccepted, TopicNotFound, InvalidTopicName):
        pass
    else:  # pragma: no cover (nothing random is on chain)
        raise AssertionError("a random key set was taken")
    reason = await gks.accept_key_set(TopicKeySet(topic, document, signature))
    assert reason is not None and " " not in reason  # a metric label
