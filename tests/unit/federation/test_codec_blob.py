"""The replication blob is written without re-encoding the event; it must still be a plain
ReplicatedEvent serialisation to any protobuf parser."""

import os

from federation.codec import (
    canonical_event,
    decode_replication,
    encode_replication,
    replicated_to_pb,
    replication_hops,
    replication_origin,
)
from federation.messages import OriginSignature, ReplicatedEvent
from proto import cloudevents_pb2, federation_pb2


def _event(payload: bytes) -> ReplicatedEvent:
    ce = cloudevents_pb2.CloudEvent(
        id="9", source="/s", spec_version="1.0", type="t", binary_data=payload
    )
    ce.attributes["subject"].ce_string = "sub"
    return ReplicatedEvent(
        "orders", canonical_event(ce), "aa", 300, ("aa", "bb"), ("cc", "dd"), 5,
        OriginSignature(b"r" * 32, b"s" * 64, 2, 4, (b"p" * 32, b"q" * 32)),
    )  # fmt: skip


def test_blob_parses_like_a_full_serialisation() -> None:
    # 0, 1-byte, 2-byte and 3-byte length prefixes of the appended event field
    for size in (0, 50, 1024, 70_000):
        ev = _event(os.urandom(size))
        parsed = federation_pb2.ReplicatedEvent.FromString(encode_replication(ev))
        # replicated_to_pb is a raw_wire message (event as bytes): same bytes as protobuf's own
        assert (
            parsed.SerializeToString(deterministic=True) == replicated_to_pb(ev).SerializeToString()
        )
        assert canonical_event(parsed.event) == ev.event


def test_blob_round_trips_and_exposes_routing_fields() -> None:
    ev = _event(b"x" * 300)
    blob = encode_replication(ev)
    back = decode_replication(blob)
    assert back == ev and back.attributes["subject"] == "sub"
    assert replication_hops(blob) == (("aa", "bb"), 5)
    assert replication_origin(blob) == "aa"
