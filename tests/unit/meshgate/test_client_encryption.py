"""The client's encryption core: seal under the chain's epoch, open with verified key sets only.

The chain is an in-memory stand-in with RegistryClient's four reads (the real one is exercised
against Ganache by tests/integration); key sets are real (policy/key_sets.py), as are the
X25519 keys derived from the accounts' Ethereum keys.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from eth_account import Account

from eventmodel.attributes import PbEvent
from eventmodel.encryption import EPOCH_ATTRIBUTE, epoch_of, seal_event
from eventmodel.errors import DecryptionError
from meshgate.client.encryption import TopicEncryption
from meshgate.client.provenance import Chain
from meshgate.errors import EncryptionUnavailable
from policy import key_sets
from policy.encryption_keys import announced_public_key
from policy.errors import KeySetError
from proto import gateway_pb2

OWNER = Account.from_key(b"\x11" * 32)
ALICE = Account.from_key(b"\x22" * 32)
BOB = Account.from_key(b"\x33" * 32)
MALLORY = Account.from_key(b"\x44" * 32)
REGISTRY = "0x" + "ab" * 20
CHAIN = Chain(rpc_url="http://unused", registry=REGISTRY, ttl=10.0)
TOPIC = "orders"


@dataclass
class MemoryChain:
    """RegistryClient's reads of encrypted topics, in memory."""

    encrypted: dict[str, bool] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)
    recorded: dict[tuple[str, bytes], int] = field(default_factory=dict)
    down: bool = False
    calls: int = 0

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("chain unreachable")

    def is_encrypted(self, topic: str) -> bool:
        self._call()
        return self.encrypted.get(topic, False)

    def key_epoch_of(self, topic: str) -> int:
        self._call()
        return self.epochs.get(topic, 0)

    def key_set_epoch_of(self, topic: str, key_set_hash: bytes) -> int:
        self._call()
        return self.recorded.get((topic, key_set_hash), 0)

    def owner_of(self, topic: str) -> str | None:
        self._call()
        return self.owners.get(topic)


@dataclass
class World:
    chain: MemoryChain = field(default_factory=MemoryChain)
    held: list[gateway_pb2.KeySet] = field(default_factory=list)  # what the gateway holds
    keys: dict[int, bytes] = field(default_factory=dict)
    fetches: int = 0
    gateway_says: bool = False
    now: float = 1000.0
    arrives: list[gateway_pb2.KeySet] = field(default_factory=list)  # reach the gateway later
    arrive_after: int = 0  # fetches

    def register(self, topic: str = TOPIC) -> None:
        self.chain.encrypted[topic] = True
        self.chain.owners[topic] = OWNER.address

    def key_set(
        self,
        epoch: int,
        readers: Sequence[object],
        *,
        signer: object = OWNER,
        record: int | None = None,
        topic: str = TOPIC,
        new_epoch: bool = True,
    ) -> None:
        """The owner's flow: build, sign, record the hash (under `record`), hand to the gateway."""
        key = self.keys.setdefault(epoch, os.urandom(32))
        recipients = {a.address: announced_public_key(bytes(a.key)) for a in readers}  # type: ignore[attr-defined]
        doc = key_sets.build(
            topic,
            epoch,
            key,
            recipients,
            chain_id=1337,
            registry=REGISTRY,
            owner=OWNER.address,
            issued_at=0,
        )
        raw = key_sets.encode(doc)
        signature = key_sets.sign(raw, signer)  # type: ignore[arg-type]
        if record != 0:
            self.chain.recorded[(topic, key_sets.key_set_hash(raw))] = record or epoch
        if new_epoch:
            self.chain.epochs[topic] = max(self.chain.epochs.get(topic, 0), epoch)
        self.held.append(gateway_pb2.KeySet(document=raw, signature=signature))

    async def fetch(self, topic: str, from_epoch: int) -> list[gateway_pb2.KeySet]:
        self.fetches += 1
        if self.arrives and self.fetches > self.arrive_after:
            self.held.extend(self.arrives)
            self.arrives.clear()
        return [k for k in self.held if _epoch(k) >= from_epoch]

    async def says(self, topic: str) -> bool:
        return self.gateway_says

    def client(self, chain: Chain | None = CHAIN) -> TopicEncryption:
        return TopicEncryption(
            chain=chain,
            fetch=self.fetch,
            gateway_says_encrypted=self.says,
            reads=self.chain,
            clock=lambda: self.now,
            sleep=self.sleep,
        )

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _epoch(key_set: gateway_pb2.KeySet) -> int:
    """What a gateway files a held set under (a forged one passes along: the client judges)."""
    try:
        return key_sets.decode(key_set.document).epoch
    except KeySetError:
        return 1 << 31


def event(i: int = 1, data: bytes = b"secret") -> PbEvent:
    pb = PbEvent(id=f"e{i}", source="/src", spec_version="1.0", type="t.created")
    pb.binary_data = data
    return pb


@pytest.fixture
def world() -> World:
    w = World()
    w.register()
    w.key_set(1, [OWNER, ALICE, BOB])
    return w


async def reason(crypto: TopicEncryption, pb: PbEvent, account: object = ALICE) -> str:
    with pytest.raises(DecryptionError) as info:
        await crypto.open(pb, TOPIC, account)
    return info.value.reason


async def test_publish_seals_under_the_current_epoch_and_a_reader_opens(world: World) -> None:
    publisher, reader = world.client(), world.client()
    sealed = await publisher.seal(TOPIC, [event(1), event(2)], BOB)
    assert [epoch_of(pb) for pb in sealed] == [1, 1]
    assert all(b"secret" not in pb.SerializeToString() for pb in sealed)
    assert [await reader.open(pb, TOPIC, ALICE) for pb in sealed] == [event(1), event(2)]
    assert world.fetches == 2  # one per client, not per event


async def test_a_plaintext_topic_is_left_alone(world: World) -> None:
    crypto = world.client()
    pbs = [event()]
    assert await crypto.seal("plain", pbs, ALICE) is pbs
    pb = event()
    assert await crypto.open(pb, "plain", ALICE) is pb
    assert world.fetches == 0


async def test_without_a_chain_an_encrypted_topic_is_refused_before_sending(world: World) -> None:
    world.gateway_says = True
    with pytest.raises(EncryptionUnavailable, match="is encrypted: give the client a chain"):
        await world.client(chain=None).seal(TOPIC, [event()], ALICE)
    world.gateway_says = False
    pbs = [event()]
    assert await world.client(chain=None).seal(TOPIC, pbs, ALICE) is pbs


async def test_without_a_chain_a_sealed_event_is_reported_not_delivered(world: World) -> None:
    sealed = seal_event(event(), TOPIC, 1, world.keys[1])
    assert await reason(world.client(chain=None), sealed) == "no_key"
    plain = event()
    assert await world.client(chain=None).open(plain, TOPIC, ALICE) is plain


async def test_a_plaintext_event_on_an_encrypted_topic_is_refused(world: World) -> None:
    assert await reason(world.client(), event()) == "not_sealed"


async def test_tamper_and_wrong_epoch_are_refused(world: World) -> None:
    world.key_set(2, [OWNER, ALICE])
    crypto = world.client()
    sealed = seal_event(event(), TOPIC, 1, world.keys[1])
    changed = PbEvent()
    changed.CopyFrom(sealed)
    changed.binary_data = sealed.binary_data[:-1] + bytes([sealed.binary_data[-1] ^ 1])
    assert await reason(crypto, changed) == "tampered"
    relabelled = PbEvent()
    relabelled.CopyFrom(sealed)
    relabelled.attributes[EPOCH_ATTRIBUTE].ce_integer = 2  # a key we hold, the wrong one
    assert await reason(crypto, relabelled) == "tampered"
    assert await crypto.open(sealed, TOPIC, ALICE) == event()


@pytest.mark.parametrize(
    "spoil, needle",
    [
        ({"signer": MALLORY}, "not_owner_signed"),
        ({"record": 0}, "hash_not_on_chain"),
        ({"record": 7}, "epoch_mismatch"),
    ],
)
async def test_a_key_set_the_chain_does_not_vouch_for_is_not_used(
    spoil: dict[str, object], needle: str
) -> None:
    world = World()
    world.register()
    world.key_set(1, [OWNER, ALICE], **spoil)  # type: ignore[arg-type]
    with pytest.raises(EncryptionUnavailable, match=needle):
        await world.client().seal(TOPIC, [event()], ALICE)
    sealed = seal_event(event(), TOPIC, 1, world.keys[1])
    assert await reason(world.client(), sealed) == "no_key"


async def test_a_forged_set_beside_the_real_one_does_not_matter(world: World) -> None:
    world.held.insert(0, gateway_pb2.KeySet(document=b"{}", signature=b""))
    world.key_set(1, [MALLORY], signer=MALLORY, record=0, new_epoch=False)
    sealed = await world.client().seal(TOPIC, [event()], BOB)
    assert await world.client().open(sealed[0], TOPIC, ALICE) == event()


async def test_no_key_is_refetched_once_per_ttl_then_found_after_a_reissue(world: World) -> None:
    crypto = world.client()
    sealed = seal_event(event(), TOPIC, 1, world.keys[1])
    assert await reason(crypto, sealed, MALLORY) == "no_key"
    assert await reason(crypto, sealed, MALLORY) == "no_key"
    assert world.fetches == 1  # the second event of that epoch does not refetch
    world.key_set(1, [OWNER, ALICE, BOB, MALLORY], new_epoch=False)  # a grant re-issues epoch 1
    assert await reason(crypto, sealed, MALLORY) == "no_key"
    world.now += 11
    assert await crypto.open(sealed, TOPIC, MALLORY) == event()
    assert world.fetches == 2


async def test_after_a_rotation_the_revoked_reader_cannot_open_new_events(world: World) -> None:
    world.key_set(2, [OWNER, BOB])  # ALICE revoked: epoch 2 is not sealed to her
    publisher, alice, bob = world.client(), world.client(), world.client()
    sealed = (await publisher.seal(TOPIC, [event()], BOB))[0]
    assert epoch_of(sealed) == 2
    assert await bob.open(sealed, TOPIC, BOB) == event()
    assert await reason(alice, sealed) == "no_key"
    old = seal_event(event(9), TOPIC, 1, world.keys[1])
    assert await alice.open(old, TOPIC, ALICE) == event(9)  # what she was given stays hers


async def test_the_epoch_is_cached_for_ttl_then_the_rotation_is_seen(world: World) -> None:
    crypto = world.client()
    assert epoch_of((await crypto.seal(TOPIC, [event()], BOB))[0]) == 1
    world.key_set(2, [OWNER, BOB])
    assert epoch_of((await crypto.seal(TOPIC, [event()], BOB))[0]) == 1
    world.now += 11
    assert epoch_of((await crypto.seal(TOPIC, [event()], BOB))[0]) == 2


async def test_a_chain_that_does_not_answer_fails_closed(world: World) -> None:
    world.chain.down = True
    with pytest.raises(EncryptionUnavailable, match="cannot ask the chain"):
        await world.client().seal(TOPIC, [event()], BOB)
    sealed = seal_event(event(), TOPIC, 1, world.keys[1])
    assert await reason(world.client(), sealed) == "unverifiable"


async def test_no_epoch_yet_or_no_private_key_is_refused(world: World) -> None:
    world.register("fresh")
    with pytest.raises(EncryptionUnavailable, match="no key epoch yet"):
        await world.client().seal("fresh", [event()], BOB)

    class External:  # a signer without a key at hand (a hardware wallet)
        address = BOB.address

    with pytest.raises(EncryptionUnavailable, match="private key"):
        await world.client().seal(TOPIC, [event()], External())


async def test_a_key_set_on_chain_but_not_yet_at_the_gateway_is_waited_for(world: World) -> None:
    """The owner records a set before any gateway holds it; a set floods apart from events."""
    world.key_set(2, [OWNER, ALICE, BOB])
    world.arrives.append(world.held.pop())
    world.arrive_after = 3
    sealed = seal_event(event(), TOPIC, 2, world.keys[2])
    assert await world.client().open(sealed, TOPIC, ALICE) == event()
    assert world.fetches == 4


async def test_a_key_set_that_never_comes_is_given_up_after_the_wait(world: World) -> None:
    world.chain.epochs[TOPIC] = 2  # recorded on chain, withheld by the gateway
    start = world.now
    with pytest.raises(EncryptionUnavailable, match="no key set for epoch 2"):
        await world.client().seal(TOPIC, [event()], BOB)
    assert 10.0 <= world.now - start <= 10.5
    assert world.fetches == 41  # every 0.25 s, bounded


async def test_a_set_of_the_epoch_not_sealed_to_us_is_final_at_once(world: World) -> None:
    world.key_set(2, [OWNER, BOB])
    start = world.now
    sealed = seal_event(event(), TOPIC, 2, world.keys[2])
    assert await reason(world.client(), sealed) == "no_key"
    assert world.now == start and world.fetches == 1


async def test_concurrent_publishes_at_an_expiry_ask_the_chain_once(world: World) -> None:
    """256 calls in flight must not each send a chain read when the epoch's cache expires."""
    crypto = world.client()
    await crypto.seal(TOPIC, [event()], BOB)
    world.now += 11
    before = world.chain.calls
    sealed = await asyncio.gather(*(crypto.seal(TOPIC, [event(i)], BOB) for i in range(64)))
    assert {epoch_of(batch[0]) for batch in sealed} == {1}
    assert world.chain.calls - before == 1  # key_epoch_of once ("encrypted" is kept for ever)


async def test_an_epoch_the_chain_never_reached_is_not_waited_for(world: World) -> None:
    sealed = seal_event(event(), TOPIC, 9, os.urandom(32))  # epoch 9: the chain is at 1
    start = world.now
    assert await reason(world.client(), sealed) == "no_key"
    assert world.now == start and world.fetches == 1
