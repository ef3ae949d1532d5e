"""End-to-end encryption across real gateway processes, the chain and three regions (issue 12).

eu (the publisher's region), cc and ap (readers' regions) are real registry gateways peered
over mTLS; zz is a rogue region holding a valid certificate from the federation CA, built by
hand (tests/support/rogue_peer.py) and attracting the topic with granted readers' genuine
interest proofs (leaked to it), so the mesh really sends it everything it would send a region,
and it hands the revoked reader what was published after her revoke. The owner's
keys go through meshgate/key_custody.py, the readers' and publishers' through GatewayClient.

What is shown (the issue's must-show list):
1. a granted reader in another region reads the plaintext;
2. a marker in the plaintext appears in no file under any gateway's data directory (logs
   included) and in no byte the rogue region received, while the events' ids do (the
   scan can see what is stored; only the data is sealed);
3. after a revoke (and the rotation it brings), events published later are undecryptable for
   the revoked reader even given the ciphertext, with the client and with every key she
   holds; the remaining reader keeps reading with no gap;
5. a denied publisher loses the key with the next epoch.
(4, the refusals: test_encryption_refusals.py.)

Waits are on conditions: a grant mined is not yet a grant in a gateway's view (subscriptions
are opened until the view lets them), interest must reach eu before it routes, key sets must
reach a region's gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account.signers.local import LocalAccount

from eventmodel.encryption import epoch_of, open_event
from eventmodel.errors import DecryptionError
from federation.certs import Identity
from meshgate.client import Chain, GatewayClient, Subscription
from meshgate.errors import EncryptionUnavailable
from meshgate.key_custody import KeyCustody
from meshgate.key_set_port import GatewayKeySets
from meshgate.processes import GatewayProcess
from policy import key_sets
from policy.encryption_keys import announced_public_key, derive_x25519
from proto import cloudevents_pb2, gateway_pb2
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.registry_gateway import registry_args
from tests.support.rogue_peer import RecordingPeer, interest_proof
from tests.support.waiting import async_wait_for, free_port

pytestmark = [pytest.mark.chain, pytest.mark.timeout(180)]

REGIONS = ("eu", "cc", "ap")
WAIT = 45.0


@dataclass
class Mesh:
    registry: DeployedRegistry
    gateways: dict[str, GatewayProcess]
    peer: dict[str, str]

    def chain(self) -> Chain:
        # ttl 0: every publish reads the chain's current epoch, so nothing this test publishes
        # after a rotation can ride an older epoch's grace.
        return Chain(rpc_url=self.registry.chain.url, registry=self.registry.address, ttl=0.0)


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
    registry: DeployedRegistry,
    region_tls_dir: Callable[[str], Path],
) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("encrypted-mesh")
    peer = {region: f"127.0.0.1:{free_port()}" for region in REGIONS}
    gateways: dict[str, GatewayProcess] = {}
    for region in REGIONS:
        args = [
            *registry_args(registry),
            "--peer-listen", peer[region],
            "--tls-dir", str(region_tls_dir(region)),
        ]  # fmt: skip
        if region != "eu":
            args += ["--peer", peer["eu"]]
        gateways[region] = GatewayProcess(
            root / region, region=region, extra_args=args, ready_timeout=60
        )
    try:
        with ThreadPoolExecutor(len(REGIONS)) as pool:  # start the three at once
            list(pool.map(lambda gw: gw.start(), gateways.values()))
        yield Mesh(registry, gateways, peer)
    finally:
        for gw in gateways.values():
            gw.stop()


# ---- helpers ------------------------------------------------------------------------------------


def announce(registry: DeployedRegistry, *accounts: LocalAccount) -> None:
    for who in accounts:
        registry.client(who).announce_key(announced_public_key(bytes(who.key)))


def custody(mesh: Mesh, owner: LocalAccount) -> KeyCustody:
    return KeyCustody(
        mesh.registry.client(owner), owner, GatewayKeySets(mesh.gateways["eu"].listen)
    )


@contextlib.asynccontextmanager
async def client(mesh: Mesh, region: str, who: LocalAccount) -> AsyncIterator[GatewayClient]:
    async with GatewayClient(mesh.gateways[region].listen, signer=who, chain=mesh.chain()) as c:
        yield c


async def opened(sub: Subscription) -> bool:
    """Open `sub` once the gateway's view has the grant (it follows the chain)."""
    try:
        await sub.start()
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
            return False
        raise
    return True


async def routed(c: GatewayClient, region: str, topic: str) -> bool:
    reply = await c.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=10)
    return any(p.region == region and topic in p.topics for p in reply.peers)


PEERS_SEEN: dict[str, set[str]] = {}  # the last ListPeers answers (shown when a wait fails)


async def peered(mesh: Mesh) -> bool:
    for region, gw in mesh.gateways.items():
        async with GatewayClient(gw.listen) as c:
            reply = await c.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=10)
        PEERS_SEEN[region] = {p.region for p in reply.peers if p.up}
    print(f"peers up: {PEERS_SEEN}")
    return all(PEERS_SEEN[r] >= set(REGIONS) - {r} for r in REGIONS)


async def holds_key_set(gw: GatewayProcess, topic: str, epoch: int, address: str) -> bool:
    """True once `gw` holds a key set of `epoch` with an entry for `address` (the flood)."""
    async with GatewayClient(gw.listen) as c:
        reply = await c.stub.GetKeySets(gateway_pb2.GetKeySetsRequest(topic=topic), timeout=10)
    for ks in reply.key_sets:
        doc = key_sets.decode(bytes(ks.document))
        if doc.epoch == epoch and address.lower() in doc.sealed:
            return True
    return False


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


def order(n: int, marker: str, topic: str) -> CloudEvent:
    """Order `n`: the marker only in its data (ids are attributes: visible by design)."""
    return CloudEvent(
        {"type": "com.example.order", "source": "/shop", "id": f"{topic}-order-{n}"},
        {"n": n, "note": marker},
    )


def sealed_copies(rogue: RecordingPeer, topic: str) -> dict[int, cloudevents_pb2.CloudEvent]:
    """The events of `topic` the rogue received, by order number."""
    pbs = [cloudevents_pb2.CloudEvent.FromString(e.event) for e in rogue.events if e.topic == topic]
    return {int(pb.id.rsplit("-", 1)[1]): pb for pb in pbs}


async def take(sub: Subscription, n: int) -> list[tuple[int, CloudEvent]]:
    async with asyncio.timeout(WAIT):
        return [tuple(await anext(sub)) for _ in range(n)]  # type: ignore[misc]


# ---- 1, 2, 3 -------------------------------------------------------------------------------


async def test_readers_elsewhere_read_plaintext_gateways_and_a_rogue_see_ciphertext_and_a_revoke_locks_out_later_events(  # noqa: E501
    mesh: Mesh,
    funded_account: Callable[[], LocalAccount],
    region_identity: Callable[[str], Identity],
) -> None:
    registry = mesh.registry
    owner, publisher, alice, bob = (funded_account() for _ in range(4))
    announce(registry, publisher, alice, bob)
    topic = f"enc-{uuid.uuid4().hex[:10]}"
    marker = f"plaintext-marker-{uuid.uuid4().hex}"
    keys = custody(mesh, owner)
    keys.register_encrypted(topic)
    chain_owner = registry.client(owner)
    chain_owner.allow_publisher(topic, publisher.address)
    chain_owner.grant(topic, alice.address)
    chain_owner.grant(topic, bob.address)
    (epoch1,) = keys.reissue(topic, alice.address).issued
    assert epoch1.epoch == 1 and {alice.address.lower(), bob.address.lower()} <= set(
        epoch1.recipients
    )

    await async_wait_for(lambda: peered(mesh), timeout=WAIT, what="eu, cc and ap peered")
    eu, cc, ap = (mesh.gateways[r] for r in REGIONS)
    # Both readers' genuine proofs naming zz leak to the rogue: it attracts the topic as long as
    # one of them holds a grant (so it still gets what is published after alice's revoke).
    proofs = [
        interest_proof(who, region="zz", topic=topic, chain_id=registry.chain.chain_id)
        for who in (alice, bob)
    ]
    async with (
        client(mesh, "eu", publisher) as pub,
        client(mesh, "cc", alice) as reader_a,
        client(mesh, "ap", bob) as reader_b,
        RecordingPeer(region_identity("zz"), mesh.peer["eu"], "eu") as rogue,
    ):
        undecryptable: list[str] = []
        sub_a = reader_a.subscribe(
            topic, group="a", on_undecodable=lambda u: undecryptable.append(u.reason)
        )
        sub_b = reader_b.subscribe(
            topic, group="b", on_undecodable=lambda u: undecryptable.append(u.reason)
        )
        await async_wait_for(lambda: opened(sub_a), timeout=WAIT, what="alice's grant at cc")
        await async_wait_for(lambda: opened(sub_b), timeout=WAIT, what="bob's grant at ap")
        await rogue.want(topic, *proofs)
        for region in ("cc", "ap", "zz"):

            async def is_routed(region: str = region) -> bool:
                return await routed(pub, region, topic)

            await async_wait_for(is_routed, timeout=WAIT, what=f"{region} routed at eu")

        # 1. readers in other regions read the plaintext.
        first = 5
        for n in range(first):
            await pub.publish(topic, order(n, marker, topic))
        got_a = await take(sub_a, first)
        got_b = await take(sub_b, first)
        assert [e.get_data() for _, e in got_a] == [{"n": n, "note": marker} for n in range(first)]
        assert [o for o, _ in got_b] == list(range(first))

        # 2. no gateway file and no byte the rogue received holds the marker; ids do show.
        await async_wait_for(
            lambda: _count(rogue, topic, first), timeout=WAIT, what="the rogue's copy"
        )
        assert {epoch_of(pb) for pb in sealed_copies(rogue, topic).values()} == {1}
        assert not [raw for raw in rogue.received if marker.encode() in raw]
        for gw in (eu, cc, ap):
            assert files_containing(gw.data_dir, marker.encode()) == [], gw.region
            assert files_containing(gw.data_dir, f"{topic}-order-0".encode()), gw.region

        # 3. revoke alice: a new epoch; what follows is closed to her, bob reads on.
        chain_owner.revoke(topic, alice.address)
        epoch2 = keys.rotate(topic)
        assert epoch2.epoch == 2 and alice.address.lower() not in epoch2.recipients
        later = 5
        for n in range(first, first + later):
            await pub.publish(topic, order(n, marker, topic))
        got_b += await take(sub_b, later)
        assert [o for o, _ in got_b] == list(range(first + later))  # no gap
        assert [e.get_data() for _, e in got_b] == [
            {"n": n, "note": marker} for n in range(first + later)
        ]
        await async_wait_for(
            lambda: _count(rogue, topic, first + later), timeout=WAIT, what="the rogue's copy"
        )
        after = [pb for n, pb in sealed_copies(rogue, topic).items() if n >= first]
        assert not [raw for raw in rogue.received if marker.encode() in raw]
        assert len(after) == later and {epoch_of(pb) for pb in after} == {2}
        # Alice holds epoch 1's key (her client fetched it); none of hers opens what followed,
        # and her client refuses it for want of a key, whichever gateway she asks.
        held = await _keys_of(alice, topic, registry, [eu, cc, ap])
        assert set(held) == {1}
        for pb in after:
            with pytest.raises(DecryptionError):
                open_event(pb, topic, held[1])
        async with client(mesh, "ap", alice) as fresh:
            for pb in after:
                with pytest.raises(DecryptionError, match="no key set for epoch 2"):
                    await fresh._encryption.open(pb, topic, alice)
        assert undecryptable == []
        for gw in (eu, cc, ap):  # nor after the second epoch
            assert files_containing(gw.data_dir, marker.encode()) == [], gw.region


async def _count(rogue: RecordingPeer, topic: str, n: int) -> bool:
    return sum(1 for e in rogue.events if e.topic == topic) >= n


async def _keys_of(
    who: LocalAccount, topic: str, registry: DeployedRegistry, gateways: list[GatewayProcess]
) -> dict[int, bytes]:
    """Every epoch key `who` can unseal from a verified key set any of `gateways` holds."""
    reads = registry.client()
    owner = reads.owner_of(topic)
    assert owner is not None
    private = derive_x25519(bytes(who.key))
    out: dict[int, bytes] = {}
    for gw in gateways:
        async with GatewayClient(gw.listen) as c:
            reply = await c.stub.GetKeySets(gateway_pb2.GetKeySetsRequest(topic=topic), timeout=10)
        for ks in reply.key_sets:
            raw = bytes(ks.document)
            recorded = reads.key_set_epoch_of(topic, key_sets.key_set_hash(raw))
            doc = key_sets.verify(
                raw, bytes(ks.signature), topic=topic, owner=owner, recorded_epoch=recorded
            )
            if who.address.lower() in doc.sealed:
                out[doc.epoch] = key_sets.unseal(doc, who.address, private)
    return out


# ---- 5 -------------------------------------------------------------------------------------


async def test_a_denied_publisher_loses_the_key_with_the_next_epoch(
    mesh: Mesh, funded_account: Callable[[], LocalAccount]
) -> None:
    registry = mesh.registry
    owner, stays, denied = (funded_account() for _ in range(3))
    announce(registry, stays, denied)
    topic = f"enc-{uuid.uuid4().hex[:10]}"
    keys = custody(mesh, owner)
    keys.register_encrypted(topic)
    chain_owner = registry.client(owner)
    for p in (stays, denied):
        chain_owner.allow_publisher(topic, p.address)
    (epoch1,) = keys.reissue(topic, denied.address).issued
    assert {stays.address.lower(), denied.address.lower()} <= set(epoch1.recipients)
    marker = uuid.uuid4().hex
    async with client(mesh, "eu", stays) as ok, client(mesh, "eu", denied) as gone:

        async def denied_publishes() -> bool:  # the gateway's view may lag the allow tx
            try:
                await gone.publish(topic, order(0, marker, topic))
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                    return False
                raise
            return True

        await async_wait_for(denied_publishes, timeout=WAIT, what="the publisher allowed at eu")
        chain_owner.deny_publisher(topic, denied.address)
        epoch2 = keys.rotate(topic)
        assert epoch2.epoch == 2 and denied.address.lower() not in epoch2.recipients
        # Its client has no key for the new epoch, so it cannot even seal (nothing is sent),
        # and no gateway holds an entry for it.
        with pytest.raises(EncryptionUnavailable, match="no key set for epoch 2"):
            await gone.publish(topic, order(1, marker, topic))
        assert await holds_key_set(mesh.gateways["eu"], topic, 2, stays.address)
        assert not await holds_key_set(mesh.gateways["eu"], topic, 2, denied.address)
        result = await ok.publish(topic, order(2, marker, topic))  # the allowed one publishes on
        assert result.offset == 1
