"""A certified rogue region cannot plant a key set or cleartext in an encrypted topic (issue 12).

Real gateway processes on a real chain, the federation CA. Region `zz` holds a valid
certificate but is a FederationNode run in this test over an in-memory log and a key-set
source that "holds" whatever the test gives it, so it floods those sets on link up and sends
whatever is in its log, region-signed, exactly as a gateway would. The line is zz - bb - cc
(no mesh): bb is the first honest gateway and the relay towards cc.

zz offers bb four key sets of the encrypted topic: the owner's genuine epoch 1 (recorded on
chain: the control, it must reach cc through bb), the genuine document re-signed by Mallory,
Mallory's own document and an owner-signed epoch 2 the chain never recorded. Then it sends a
plaintext event and a sealed one, both signed by the owner (an allowed publisher: only the
encryption rule stands between them and the store). bb refuses the three forged sets and the
plaintext event, counted by reason, and forwards none of them; the genuine set and the sealed
event reach cc.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount

from eventmodel import provenance
from eventmodel.attributes import PbEvent
from eventmodel.encryption import seal_event
from federation.certs import Identity
from federation.config import PeerConfig
from federation.messages import TopicKeySet
from federation.node import FederationNode
from meshgate.client import GatewayClient
from meshgate.processes import GatewayProcess
from policy import key_sets
from policy.encryption_keys import derive_x25519
from proto import gateway_pb2
from tests.integration.gateway_helpers import metric, scrape
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.federation_fakes import MemoryCursors, MemoryInterest, MemoryLog
from tests.support.waiting import async_wait_for, free_port

pytestmark = [pytest.mark.chain, pytest.mark.timeout(300)]
EPOCH_KEY = b"\x22" * 32


class RogueKeySets:
    """zz's KeySetSource: holds what the test planted, takes anything it is sent."""

    def __init__(self) -> None:
        self.sets: list[TopicKeySet] = []
        self._planted = asyncio.Event()

    def plant(self, sets: Sequence[TopicKeySet]) -> None:
        self.sets = list(sets)
        self._planted.set()

    def key_sets(self) -> Sequence[TopicKeySet]:
        return self.sets

    async def wait_key_sets(self, seen_version: int) -> int:
        if seen_version < 0:
            return 0
        await self._planted.wait()
        self._planted.clear()
        return seen_version + 1

    async def accept_key_set(self, key_set: TopicKeySet) -> str | None:
        return None


@pytest_asyncio.fixture
async def line(
    tmp_path: Path,
    registry: DeployedRegistry,
    region_tls_dir: Callable[[str], Path],
    region_identity: Callable[[str], Identity],
) -> AsyncIterator[tuple[dict[str, GatewayProcess], MemoryLog, RogueKeySets, FederationNode]]:
    ports = {"bb": free_port(), "cc": free_port()}
    gateways: dict[str, GatewayProcess] = {}
    zz: FederationNode | None = None
    try:
        for region, peers in (("bb", ()), ("cc", ("bb",))):
            args = [
                "--rpc", registry.chain.url, "--registry", registry.address,
                "--chain-id", str(registry.chain.chain_id),
                "--peer-listen", f"127.0.0.1:{ports[region]}",
                "--tls-dir", str(region_tls_dir(region)), "--no-mesh",
            ]  # fmt: skip
            for p in peers:
                args += ["--peer", f"127.0.0.1:{ports[p]}"]
            gw = GatewayProcess(tmp_path / region, region=region, extra_args=args, ready_timeout=60)
            gateways[region] = gw
            await asyncio.to_thread(gw.start)
        log, planted = MemoryLog(), RogueKeySets()
        zz = FederationNode(
            config=PeerConfig(
                region="zz",
                seeds=(f"127.0.0.1:{ports['bb']}",),
                mesh=False,
                ping_interval=0.5,
                reconnect_initial=0.1,
                reconnect_max=1.0,
            ),
            identity=region_identity("zz"),
            log_port=log,
            cursors=MemoryCursors(),
            interest=MemoryInterest(),
            key_sets=planted,
        )
        yield gateways, log, planted, zz
    finally:
        if zz is not None:
            async with asyncio.timeout(20):
                await zz.aclose()
        for gw in gateways.values():
            await asyncio.to_thread(gw.stop)


def document(registry: DeployedRegistry, topic: str, epoch: int, owner: LocalAccount) -> bytes:
    public = bytes(derive_x25519(bytes(owner.key)).public_key)
    doc = key_sets.build(
        topic, epoch, EPOCH_KEY, {owner.address: public},
        chain_id=registry.chain.chain_id, registry=registry.address, owner=owner.address,
        issued_at=int(time.time()),
    )  # fmt: skip
    return key_sets.encode(doc)


def key_set_outcomes(gw: GatewayProcess) -> dict[str, float]:
    assert gw.metrics_url is not None
    text = scrape(gw.metrics_url)
    name = "meshgate_federation_key_sets_total"
    outcomes = ("accepted", "not_owner_signed", "hash_not_on_chain")
    return {o: metric(text, name, outcome=o) or 0.0 for o in outcomes}


def rejected(gw: GatewayProcess, reason: str) -> float:
    assert gw.metrics_url is not None
    name = "meshgate_federation_rejected_events_total"
    return metric(scrape(gw.metrics_url), name, reason=reason) or 0.0


def event(name: str) -> PbEvent:
    pb = PbEvent(id=name, source="/rogue", spec_version="1.0", type="t.injected")
    pb.text_data = f"cleartext marker {name}"
    return pb


async def test_a_rogue_region_cannot_plant_key_sets_or_cleartext_in_an_encrypted_topic(
    line: tuple[dict[str, GatewayProcess], MemoryLog, RogueKeySets, FederationNode],
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    gateways, zz_log, planted, zz = line
    bb, cc = gateways["bb"], gateways["cc"]
    topic = f"enc-{uuid.uuid4().hex[:10]}"
    owner_key = funded_account()
    owner = registry.client(owner_key)
    mallory: LocalAccount = Account.create()
    readers = {"bb": Account.create(), "cc": Account.create()}
    owner.register(topic, encrypted=True)
    for reader in readers.values():
        owner.grant(topic, reader.address)
    genuine = document(registry, topic, 1, owner_key)
    owner.publish_key_set(topic, 1, key_sets.key_set_hash(genuine))
    unrecorded = document(registry, topic, 2, owner_key)
    own = document(registry, topic, 1, mallory)
    planted.plant(
        [
            TopicKeySet(topic, genuine, key_sets.sign(genuine, mallory)),
            TopicKeySet(topic, own, key_sets.sign(own, mallory)),
            TopicKeySet(topic, unrecorded, key_sets.sign(unrecorded, owner_key)),
            TopicKeySet(topic, genuine, key_sets.sign(genuine, owner_key)),  # the control
        ]
    )
    await zz.start()
    binding = provenance.Binding.of(registry.chain.chain_id, registry.address)

    async with (
        GatewayClient(bb.listen, signer=readers["bb"]) as at_bb,
        GatewayClient(cc.listen, signer=readers["cc"]) as at_cc,
        at_bb.subscribe(topic) as sub_bb,
        at_cc.subscribe(topic) as sub_cc,
    ):
        await sub_bb.start()
        await sub_cc.start()

        async def cc_holds_the_genuine_set() -> bool:
            reply = await at_cc.key_sets(topic)
            return [k.document for k in reply.key_sets] == [genuine]

        await async_wait_for(cc_holds_the_genuine_set, timeout=60, what="the set relayed to cc")

        async def bb_judged_all_four() -> bool:
            got = await asyncio.to_thread(key_set_outcomes, bb)
            return got == {"accepted": 1, "not_owner_signed": 2, "hash_not_on_chain": 1}

        await async_wait_for(bb_judged_all_four, timeout=30, what="bb's verdicts on zz's sets")
        bb_held = (await at_bb.key_sets(topic)).key_sets
        assert [(k.document, k.signature) for k in bb_held] == [
            (genuine, key_sets.sign(genuine, owner_key))
        ]
        # bb forwarded only what it accepted: cc was never offered a forged set.
        assert key_set_outcomes(cc) == {
            "accepted": 1,
            "not_owner_signed": 0,
            "hash_not_on_chain": 0,
        }

        for region in ("bb", "cc"):

            async def routed(region: str = region) -> bool:
                return any(p.region == region and topic in p.topics for p in zz.peers())

            await async_wait_for(routed, timeout=60, what=f"{region}'s interest at zz")
        cleartext = event("plain")
        sealed = seal_event(event("sealed"), topic, 1, EPOCH_KEY)
        for pb in (cleartext, sealed):
            provenance.sign_events([pb], topic=topic, binding=binding, signer=owner_key)
            await zz_log.publish(topic, pb.SerializeToString(deterministic=True))

        async def stored(client: GatewayClient) -> int:
            try:
                return int((await client.topic(topic)).event_count)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    return 0
                raise

        async def both_hold_the_sealed_event() -> bool:
            return await stored(at_bb) == 1 and await stored(at_cc) == 1

        await async_wait_for(both_hold_the_sealed_event, timeout=60, what="the sealed event")
        assert rejected(bb, "plaintext") == 1
        assert rejected(cc, "plaintext") == 0  # the relay never forwarded it
        info: gateway_pb2.TopicInfo = await at_cc.topic(topic)
        assert (info.encrypted, info.key_epoch, info.event_count) == (True, 1, 1)
