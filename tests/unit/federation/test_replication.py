"""Outbound selection and inbound checks, over a hand-built routing table."""

from nacl.signing import SigningKey

from eventmodel.filters import leaf
from federation.codec import canonical_event, encode_replication, encode_routing
from federation.messages import Interest, RegionInterest, TopicInterest
from federation.ports import LogRecord
from federation.replication import inbound_events, outbound_events
from federation.routing import RoutingTable
from federation.signing import SignatureVerifier
from proto import cloudevents_pb2

SEED = bytes(range(32))
KEY = bytes(SigningKey(SEED).verify_key)
ORDERS = (TopicInterest("orders"),)


def raw(i: int) -> bytes:
    return canonical_event(
        cloudevents_pb2.CloudEvent(id=f"e{i}", source="/s", spec_version="1.0", type="t")
    )


def record(seq: int, topic: str = "orders", blob: bytes | None = None) -> LogRecord:
    return LogRecord(seq, topic, raw(seq), {"id": f"e{seq}", "type": "t"}, blob)


def table(local: str) -> RoutingTable:
    """local links to bb; bb reaches cc (wants orders) and dd (wants nothing)."""
    t = RoutingTable(local)
    t.peer_up("bb")
    t.peer_advertised(
        "bb",
        Interest(
            1,
            (
                RegionInterest("bb", 0, ()),
                RegionInterest("cc", 1, ORDERS),
                RegionInterest("dd", 1, ()),
            ),
        ),
    )
    return t


def test_local_events_go_to_interested_regions_signed() -> None:
    out = outbound_events(
        [record(1), record(2, topic="other")],
        peer="bb", routing=table("aa"), hop_limit=8, signing_seed=SEED,
    )  # fmt: skip
    assert len(out) == 1
    [ev] = out
    assert (ev.origin_region, ev.origin_offset, ev.path, ev.destinations) == (
        "aa",
        1,
        ("aa",),
        ("cc",),
    )
    accepted, rejected = inbound_events(
        out, local_region="bb", verifier=SignatureVerifier(), origin_key={"aa": KEY}.get
    )
    assert len(accepted) == 1 and rejected == []


def test_relay_forwards_remaining_destinations_and_counts_hops() -> None:
    [ev] = outbound_events(
        [record(1)], peer="bb", routing=table("aa"), hop_limit=2, signing_seed=SEED
    )
    # at bb (which has a direct link to cc): forward with bb on the path, one hop fewer
    relay = RoutingTable("bb")
    relay.peer_up("cc")
    relay.peer_advertised("cc", Interest(1, (RegionInterest("cc", 0, ORDERS),)))
    stored = LogRecord(9, "orders", ev.event, {}, encode_replication(ev))
    [fwd] = outbound_events([stored], peer="cc", routing=relay, hop_limit=8, signing_seed=SEED)
    assert fwd.path == ("aa", "bb") and fwd.hop_limit == 1 and fwd.signature == ev.signature
    # never back along the path, and not once the hop limit is spent
    relay.peer_up("aa")
    assert outbound_events([stored], peer="aa", routing=relay, hop_limit=8, signing_seed=SEED) == ()
    spent = LogRecord(10, "orders", fwd.event, {}, encode_replication(fwd))
    assert outbound_events([spent], peer="cc", routing=relay, hop_limit=8, signing_seed=SEED) == ()


def test_inbound_rejects_loops_and_unknown_origins() -> None:
    [ev] = outbound_events(
        [record(1)], peer="bb", routing=table("aa"), hop_limit=8, signing_seed=SEED
    )
    verifier = SignatureVerifier()
    no_keys: dict[str, bytes] = {}
    _, rejected = inbound_events([ev], local_region="aa", verifier=verifier, origin_key=no_keys.get)
    assert [r.reason for r in rejected] == ["loop"]
    _, rejected = inbound_events([ev], local_region="cc", verifier=verifier, origin_key=no_keys.get)
    assert [r.reason for r in rejected] == ["unknown_origin"]


def test_a_relayed_record_does_not_change_the_hop_limit_of_local_events_after_it() -> None:
    [ev] = outbound_events(
        [record(1)], peer="bb", routing=table("aa"), hop_limit=3, signing_seed=SEED
    )
    relay = RoutingTable("bb")
    relay.peer_up("cc")
    relay.peer_advertised("cc", Interest(1, (RegionInterest("cc", 0, ORDERS),)))
    relayed = LogRecord(9, "orders", ev.event, {}, encode_routing(ev))  # hop limit 3 left
    fwd, own = outbound_events(
        [relayed, record(10)], peer="cc", routing=relay, hop_limit=8, signing_seed=SEED
    )
    assert fwd.hop_limit == 2 and fwd.event == ev.event  # the event from the stored payload
    assert own.origin_region == "bb" and own.hop_limit == 8  # was the relayed record's 3


def test_filtered_interest_is_judged_per_event_and_unfiltered_once_per_topic() -> None:
    t = RoutingTable("aa")
    t.peer_up("bb")
    only_t2 = TopicInterest("orders", (leaf("exact", "type", "t2"),))
    t.peer_advertised(
        "bb",
        Interest(1, (RegionInterest("bb", 0, (only_t2,)), RegionInterest("cc", 1, ORDERS))),
    )
    first = LogRecord(1, "orders", raw(1), {"id": "e1", "type": "t1"}, None)
    second = LogRecord(2, "orders", raw(2), {"id": "e2", "type": "t2"}, None)
    out = outbound_events([first, second], peer="bb", routing=t, hop_limit=8, signing_seed=SEED)
    assert [ev.destinations for ev in out] == [("cc",), ("bb", "cc")]
