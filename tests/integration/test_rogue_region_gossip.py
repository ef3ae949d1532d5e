"""Gossip cannot re-point a region: a member's address is signed by its own region key.

Real open gateways `eu` and `cc` peered over mTLS; a hand-built `zz` (valid certificate from
the federation CA) relays cc's genuine public certificate with zz's own address, first signed
by zz's key, then with cc's signature over an older address (a replay). `eu` refuses both,
counts them (meshgate_federation_refused_members_total{reason}), and keeps cc's address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from federation.certs import Identity, load_identity
from federation.membership import signed_member
from federation.messages import Member, Members
from meshgate.client import GatewayClient
from proto import gateway_pb2
from tests.integration.gateway_helpers import metric, scrape
from tests.support.federation_fixtures import GatewayCluster
from tests.support.rogue_peer import RecordingPeer as RoguePeer
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def eu_and_cc(gateway_cluster: GatewayCluster) -> Iterator[GatewayCluster]:
    gateway_cluster.start("eu")
    gateway_cluster.start("cc", ["eu"])
    yield gateway_cluster


def refused(cluster: GatewayCluster, reason: str) -> float:
    url = cluster.gateways["eu"].metrics_url
    assert url is not None
    name = "meshgate_federation_refused_members_total"
    return metric(scrape(url), name, reason=reason) or 0.0


async def test_a_relayed_certificate_with_a_re_pointed_address_is_refused(
    eu_and_cc: GatewayCluster,
    region_identity: Callable[[str], Identity],
    region_tls_dir: Callable[[str], Path],
) -> None:
    cluster = eu_and_cc
    real = cluster.peer_addr["cc"]
    cc = load_identity(region_tls_dir("cc"))
    async with GatewayClient(cluster.gateways["eu"].listen) as eu:

        async def cc_address() -> str:
            reply = await eu.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=10)
            return next((p.address for p in reply.peers if p.region == "cc" and p.up), "")

        async def at_real_address() -> bool:
            # A link may flap for a moment (a duplicate link replaced): "" is not a re-point,
            # so wait for the real address rather than sampling once; never the fake one.
            address = await cc_address()
            assert address != fake, "eu re-pointed cc to the rogue's address"
            return address == real

        fake = "127.0.0.1:1"  # where zz would like eu to look for cc
        await async_wait_for(at_real_address, timeout=45, what="cc linked to eu at its address")

        rogue = region_identity("zz")
        async with RoguePeer(rogue, cluster.peer_addr["eu"], "eu") as zz:
            by_zz = signed_member(Member("cc", fake, cc.cert_pem), rogue.signing_seed, 2**62)
            await zz.send(Members((by_zz,)))

            async def signature_refused() -> bool:
                return refused(cluster, "address_signature") >= 1

            await async_wait_for(signature_refused, timeout=30, what="re-pointed member refused")
            await async_wait_for(at_real_address, timeout=30, what="cc still at its address")

            # A row cc really signed once, for an older address (a replay): refused as stale.
            old = signed_member(Member("cc", fake, cc.cert_pem), cc.signing_seed, 1)
            await zz.send(Members((old,)))

            async def stale_refused() -> bool:
                return refused(cluster, "stale_address") >= 1

            await async_wait_for(stale_refused, timeout=30, what="older member refused")
            await async_wait_for(at_real_address, timeout=30, what="cc still at its address")
