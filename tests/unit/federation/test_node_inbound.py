"""A relayed batch whose origin we have not learnt yet must not be lost (nor stored in part)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from federation.certs import Identity
from federation.codec import canonical_event
from federation.config import PeerConfig
from federation.errors import OriginNotYetKnown
from federation.membership import signed_member
from federation.messages import EventBatch, Member, ReplicatedEvent
from federation.metrics import FederationMetrics
from federation.node import FederationNode
from federation.signing import sign_batch
from proto import cloudevents_pb2
from tests.support.federation_fakes import MemoryCursors, MemoryInterest, MemoryLog


def signed_by(origin: Identity, count: int) -> tuple[ReplicatedEvent, ...]:
    events = [
        ReplicatedEvent(
            topic="orders",
            event=canonical_event(
                cloudevents_pb2.CloudEvent(id=f"ev-{i}", source="/s", spec_version="1.0", type="t")
            ),
            origin_region=origin.region,
            origin_offset=i,
            path=(origin.region, "bb"),
            destinations=("cc",),
            hop_limit=4,
            signature=None,
        )
        for i in range(count)
    ]
    return sign_batch(events, origin.signing_seed)


async def test_unknown_origin_refuses_the_whole_batch_until_the_member_is_learnt(
    region_identity: Callable[[str], Identity],
) -> None:
    log = MemoryLog()
    metrics = FederationMetrics()
    node = FederationNode(
        config=PeerConfig(region="cc"),
        identity=region_identity("cc"),
        log_port=log,
        cursors=MemoryCursors(),
        interest=MemoryInterest(),
        metrics=metrics,
    )
    origin = region_identity("zz")
    batch = EventBatch(seq=3, events=signed_by(origin, 3))
    relay: Any = SimpleNamespace(peer_region="bb")

    with pytest.raises(OriginNotYetKnown, match="zz"):
        await node.store_batches(relay, [batch])
    assert log.topic_events("orders") == []  # nothing stored: the batch stays unacknowledged
    rejected = metrics.registry.get_sample_value(
        "meshgate_federation_rejected_events_total", {"reason": "unknown_origin"}
    )
    assert rejected == 3

    # Membership gossip (a Hello or Members message) names the origin; the resend is stored.
    node._learn_members([signed_member(Member("zz", "", origin.cert_pem), origin.signing_seed, 1)])
    await node.store_batches(relay, [batch])
    assert len(log.topic_events("orders")) == 3
