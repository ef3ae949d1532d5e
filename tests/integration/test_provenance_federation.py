"""A rogue region cannot inject events: every gateway checks the publisher's signature (issue 11).

Real gateway processes on a real chain, with the federation's own CA. Region `zz` holds a valid
certificate from that CA but is a hand-built peer: a FederationNode run in this test over an
in-memory log, so whatever we put in its log goes out region-signed with zz's key, over the
federation protocol, exactly as a gateway's would. The line is zz - bb - cc (no mesh): bb is
the first honest gateway and the relay towards cc; readers with grants subscribe at bb and cc.

zz sends, in this order: an event signed by an account that is not an allowed publisher, an
unsigned one, one whose data was changed after signing, one whose signature was altered, and
then two malformed embedded events (bytes that are no protobuf, and a CloudEvent without an
id: zz writes its log's bytes into the batch as they are, federation/raw_wire.py), and last a
valid event signed by the topic's owner. bb refuses the six (counted by reason), never stores
or forwards them, and keeps the link: the valid one reaches both readers, first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount

from eventmodel import provenance
from eventmodel.attributes import PbEvent
from federation.certs import Identity
from federation.config import PeerConfig
from federation.node import FederationNode
from federation.ports import LogRecord
from meshgate.client import GatewayClient
from meshgate.processes import GatewayProcess
from tests.integration.gateway_helpers import metric, scrape
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.federation_fakes import MemoryCursors, MemoryInterest, MemoryLog
from tests.support.waiting import async_wait_for, free_port

pytestmark = [pytest.mark.chain, pytest.mark.timeout(300)]
REJECTED = "meshgate_federation_rejected_events_total"
BAD = ("not_publisher", "unsigned", "bad_proof", "bad_signature")


def pb_event(name: str) -> PbEvent:
    pb = PbEvent(id=name, source="/rogue", spec_version="1.0", type="t.injected")
    pb.text_data = f"payload {name}"
    return pb


def signed(name: str, topic: str, binding: provenance.Binding, key: LocalAccount) -> PbEvent:
    pb = pb_event(name)
    provenance.sign_events([pb], topic=topic, binding=binding, signer=key)
    return pb


def plant(log: MemoryLog, topic: str, raw: bytes, key: str) -> None:
    """Put `raw` into zz's log as if it were a stored event (a rogue's log holds anything)."""
    log._last_seq += 1
    attrs = {"source": "/rogue", "id": key, "type": "t", "specversion": "1.0"}
    log.records.append(LogRecord(log._last_seq, topic, raw, attrs, None))


def rejected(gw: GatewayProcess, reason: str) -> float:
    assert gw.metrics_url is not None
    return metric(scrape(gw.metrics_url), REJECTED, reason=reason) or 0.0


@pytest_asyncio.fixture
async def line(
    tmp_path: Path,
    registry: DeployedRegistry,
    region_tls_dir: Callable[[str], Path],
    region_identity: Callable[[str], Identity],
) -> AsyncIterator[tuple[dict[str, GatewayProcess], MemoryLog, FederationNode]]:
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
        log = MemoryLog()
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
        )
        await zz.start()
        yield gateways, log, zz
    finally:
        if zz is not None:
            async with asyncio.timeout(20):
                await zz.aclose()
        for gw in gateways.values():
            await asyncio.to_thread(gw.stop)


async def test_a_rogue_region_cannot_inject_and_a_relay_forwards_nothing_mis_signed(
    line: tuple[dict[str, GatewayProcess], MemoryLog, FederationNode],
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    gateways, zz_log, zz = line
    bb, cc = gateways["bb"], gateways["cc"]
    topic = f"prov-{uuid.uuid4().hex[:10]}"
    owner_key = funded_account()
    owner = registry.client(owner_key)
    readers = {"bb": Account.create(), "cc": Account.create()}
    mallory: LocalAccount = Account.create()  # any key: not an allowed publisher of the topic
    owner.register(topic)
    for reader in readers.values():
        owner.grant(topic, reader.address)
    binding = provenance.Binding.of(registry.chain.chain_id, registry.address)

    async with (
        GatewayClient(bb.listen, signer=readers["bb"]) as at_bb,
        GatewayClient(cc.listen, signer=readers["cc"]) as at_cc,
        at_bb.subscribe(topic) as sub_bb,
        at_cc.subscribe(topic) as sub_cc,
    ):

        def zz_routes_to(region: str) -> Callable[[], Awaitable[bool]]:
            async def routed() -> bool:
                return any(p.region == region and topic in p.topics for p in zz.peers())

            return routed

        # The rogue sends only where interest was advertised: wait for both readers' regions.
        await async_wait_for(zz_routes_to("bb"), timeout=60, what="bb's interest at zz")
        await async_wait_for(zz_routes_to("cc"), timeout=60, what="cc's interest at zz")

        tampered_data = signed("tampered-data", topic, binding, owner_key)
        tampered_data.text_data = "changed after signing"
        tampered_sig = signed("tampered-sig", topic, binding, owner_key)
        sig = bytearray(tampered_sig.attributes[provenance.SIGNATURE].ce_bytes)
        sig[3] ^= 0xFF
        tampered_sig.attributes[provenance.SIGNATURE].ce_bytes = bytes(sig)
        for pb in (
            signed("by-mallory", topic, binding, mallory),
            pb_event("unsigned"),
            tampered_data,
            tampered_sig,
        ):
            await zz_log.publish(topic, pb.SerializeToString(deterministic=True))
        plant(zz_log, topic, b"\xff\xff\x07 not a protobuf", "junk")
        no_id = PbEvent(source="/rogue", spec_version="1.0", type="t.injected")
        plant(zz_log, topic, no_id.SerializeToString(deterministic=True), "no-id")
        await zz_log.publish(
            topic, signed("valid", topic, binding, owner_key).SerializeToString(deterministic=True)
        )

        for sub in (sub_bb, sub_cc):
            async with asyncio.timeout(60):
                got = await anext(sub)
            assert got.event.get_id() == "valid"  # the four before it were never delivered
            assert got.publisher == owner_key.address

        for reason in BAD:

            async def counted(reason: str = reason) -> bool:
                return await asyncio.to_thread(rejected, bb, reason) == 1

            await async_wait_for(counted, timeout=30, what=f"bb counts one {reason}")
            assert rejected(cc, reason) == 0  # the relay forwarded none of them
        assert rejected(bb, "invalid_event") == 2  # refused one by one: the link went on
        assert rejected(cc, "invalid_event") == 0
        assert (await at_bb.topic(topic)).event_count == 1
        assert (await at_cc.topic(topic)).event_count == 1
