"""How often one event eu -> ap is parsed and serialized on the federation path (issue 13).

Counts protobuf C calls (sys.setprofile) while a signed batch of local events goes through the
sender's framing, the receiver's deserializer, decoding, the door's checks (spec, origin
signature), the admission judges' parse, the store append and a relay's forward from its blob.
Before the raw wire: per event 8 parses and 4 serializations (sender: parse + encode into the
batch; receiver: PeerMessage parse, canonical re-encode, spec check, admission, store; relay:
two blob parses, a canonical re-encode, parse + encode into its batch); now: one parse (the
spec check, shared by the judges and the store), none on the sender or the relay.
`python -m tests.unit.federation.test_event_parse_counts` prints them.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from types import FrameType
from typing import Any

from nacl.signing import SigningKey

from eventmodel import attributes
from federation import codec, replication
from federation.messages import EventBatch, ReplicatedEvent
from federation.signing import SignatureVerifier, sign_batch
from gateway.federation_port import GatewayReplicationLog
from gateway.memory_store import MemoryEventStore
from gateway.store import NewEvent
from proto import cloudevents_pb2, federation_pb2

# This harness also runs against the tree before the raw wire (copied beside it), to compare.
RAW = hasattr(codec, "raw_wire")
_deserialize: Any = (
    codec.raw_wire.PeerMessage.FromString if RAW else federation_pb2.PeerMessage.FromString
)

_CALLS = {"FromString", "ParseFromString", "MergeFromString", "SerializeToString", "CopyFrom"}
SEED = b"\x07" * 32


def _events(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        ce = cloudevents_pb2.CloudEvent(
            id=f"e{i}", source="/bench", spec_version="1.0", type="t.x", binary_data=b"x" * 1024
        )
        ce.attributes["subject"].ce_string = "s"
        out.append(ce.SerializeToString(deterministic=True))
    return out


async def _path(n: int, counts: Counter[str]) -> None:
    eu, ap = MemoryEventStore(), MemoryEventStore()
    await eu.open()
    await ap.open()
    for raw in _events(n):
        pb = attributes.parse(raw)
        await eu.append("orders", [NewEvent(pb.source, pb.id, pb.type, raw)], "eu")
    records = await GatewayReplicationLog(eu).read_since(0, 1000)
    own = [
        ReplicatedEvent("orders", r.event, "eu", r.seq, ("eu",), ("ap", "cc"), 4, None)
        for r in records
    ]
    key = bytes(SigningKey(SEED).verify_key)
    ap_log = GatewayReplicationLog(ap)

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__name__", "") in _CALLS:
            owner = getattr(arg, "__self__", None)
            kind = owner.__name__ if isinstance(owner, type) else type(owner).__name__
            counts[f"{kind}.{arg.__name__}"] += 1

    sys.setprofile(profile)
    try:
        wire = codec.message_to_pb(EventBatch(1, sign_batch(own, SEED))).SerializeToString()
        msg = codec.message_from_pb(_deserialize(wire))
        assert isinstance(msg, EventBatch)
        accepted, rejected = replication.inbound_events(
            msg.events, local_region="ap", verifier=SignatureVerifier(), origin_key={"eu": key}.get
        )
        assert not rejected
        for ev in accepted:  # what the admission judges parse (publisher provenance)
            ev.message() if hasattr(ev, "message") else attributes.parse(ev.event)
        await ap_log.append_replicated(accepted)
        for rec in await ap_log.read_since(0, 1000):  # ap relays to cc from the blob
            assert rec.replication is not None
            codec.replication_hops(rec.replication)
            try:
                ev = codec.decode_replication(
                    rec.replication, event=rec.event, with_attributes=False
                )
            except TypeError:  # pragma: no cover  (the older signature)
                ev = codec.decode_replication(rec.replication)
            codec.message_to_pb(EventBatch(2, (ev,))).SerializeToString()
    finally:
        sys.setprofile(None)


def count(n: int = 50) -> Counter[str]:
    counts: Counter[str] = Counter()
    asyncio.run(_path(n, counts))
    return counts


def per_event(counts: Counter[str], n: int) -> tuple[float, float]:
    """(CloudEvent parses, CloudEvent serializations) per event. Before the raw wire every
    federation message parsed or serialized with events inside does each embedded event too
    (the harness: one batch of n out and in, n relayed blobs parsed twice, n relays out)."""
    parses = counts["CloudEvent.FromString"] + counts["CloudEvent.ParseFromString"]
    encodes = counts["CloudEvent.SerializeToString"]
    if not RAW:
        parses += counts["PeerMessage.FromString"] * n + counts["ReplicatedEvent.ParseFromString"]
        encodes += 2 * n  # the sender's batch and the relay's
    return parses / n, encodes / n


def test_one_event_is_parsed_once_and_never_re_encoded_across_a_region_and_a_relay() -> None:
    n = 50
    parses, encodes = per_event(count(n), n)
    assert parses == 1.0  # the spec check at the door, shared with the judges and the store
    assert encodes == 0.0


if __name__ == "__main__":
    c = count(50)
    print(dict(c))
    print("per event: parses {:.1f}, serializations {:.1f}".format(*per_event(c, 50)))
