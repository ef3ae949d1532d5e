"""A peer's event that breaks the CloudEvents spec is refused by count; the rest of the batch
is stored and the link goes on (eventmodel validates at the federation door too)."""

from __future__ import annotations

from nacl.signing import SigningKey

from federation.codec import canonical_event
from federation.messages import Interest, RegionInterest, TopicInterest
from federation.ports import LogRecord
from federation.replication import inbound_events, outbound_events
from federation.routing import RoutingTable
from federation.signing import SignatureVerifier
from proto import cloudevents_pb2

SEED = bytes(range(32))
KEY = bytes(SigningKey(SEED).verify_key)


def record(seq: int, *, bad: bool) -> LogRecord:
    pb = cloudevents_pb2.CloudEvent(id=f"e{seq}", source="/s", spec_version="1.0", type="t")
    if bad:
        pb.attributes["café"].ce_string = "x"  # non-ASCII extension name
    return LogRecord(seq, "orders", canonical_event(pb), {"id": f"e{seq}", "type": "t"}, None)


def test_an_invalid_event_is_rejected_and_the_others_stored() -> None:
    routing = RoutingTable("aa")
    routing.peer_up("bb")
    wants = (TopicInterest("orders"),)
    routing.peer_advertised("bb", Interest(1, (RegionInterest("bb", 0, wants),)))
    out = outbound_events(
        [record(1, bad=False), record(2, bad=True), record(3, bad=False)],
        peer="bb", routing=routing, hop_limit=8, signing_seed=SEED,
    )  # fmt: skip
    assert len(out) == 3
    accepted, rejected = inbound_events(
        out, local_region="bb", verifier=SignatureVerifier(), origin_key={"aa": KEY}.get
    )
    assert [r.reason for r in rejected] == ["invalid_event"]
    assert rejected[0].event.origin_offset == 2
    assert len(accepted) == 2
