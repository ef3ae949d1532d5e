"""Maps between federation value types and the pb2 wire messages (`proto/federation.proto`).

The only federation module besides the gRPC shells and raw_wire that imports pb2. Decoding raises
PeerProtocolError for messages that cannot be valid. Filters and attribute strings come from
`eventmodel` (the one codec and rendering, shared with the gateway).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from eventmodel.attributes import attribute_strings
from eventmodel.errors import InvalidFilter
from eventmodel.filter_codec import filter_to_pb, filters_from_pb
from federation import raw_wire
from federation.errors import PeerProtocolError
from federation.messages import (
    MAX_KEY_SET_BYTES,
    MAX_KEY_SETS_PER_MESSAGE,
    MAX_PROOF_BYTES,
    MAX_PROOFS_PER_TOPIC,
    BatchAck,
    EventBatch,
    Hello,
    Interest,
    InterestProof,
    KeySets,
    Member,
    Members,
    OriginSignature,
    PeerMessage,
    Ping,
    Pong,
    RegionInterest,
    ReplicatedEvent,
    TopicInterest,
    TopicKeySet,
)
from proto import cloudevents_pb2, federation_pb2, gateway_pb2

# Event batches are built as `federation.raw_wire` classes (each event as its bytes, no
# re-encode), the rest as federation_pb2; decoding takes either (the Link stream's deserializer
# gives raw_wire ones; a test peer or the fuzzer hands us federation_pb2 ones).

# ---- CloudEvents ------------------------------------------------------------------------------


def canonical_event(event: cloudevents_pb2.CloudEvent) -> bytes:
    """The bytes an origin signs: deterministic serialisation (map entries sorted)."""
    return event.SerializeToString(deterministic=True)


def event_from_bytes(raw: bytes) -> cloudevents_pb2.CloudEvent:
    event = cloudevents_pb2.CloudEvent()
    try:
        event.ParseFromString(raw)
    except DecodeError as exc:
        raise PeerProtocolError(f"undecodable CloudEvent: {exc}") from exc
    return event


# ---- filters ----------------------------------------------------------------------------------


def topic_interest_from_pb(pb: Any) -> TopicInterest:
    """Raises PeerProtocolError for a bad filter, or more (or larger) proofs than a sender
    may attach: the receiver never spends verification work beyond that bound."""
    if len(pb.proofs) > MAX_PROOFS_PER_TOPIC:
        raise PeerProtocolError(
            f"interest in {pb.topic!r} carries {len(pb.proofs)} proofs "
            f"(at most {MAX_PROOFS_PER_TOPIC})"
        )
    if any(len(p.message) + len(p.signature) > MAX_PROOF_BYTES for p in pb.proofs):
        raise PeerProtocolError(f"interest in {pb.topic!r}: a proof exceeds {MAX_PROOF_BYTES} B")
    try:
        flts = filters_from_pb(pb.filters)
    except InvalidFilter as exc:
        raise PeerProtocolError(f"interest in {pb.topic!r}: {exc}") from exc
    proofs = tuple(InterestProof(p.message, bytes(p.signature)) for p in pb.proofs)
    return TopicInterest(pb.topic, flts, proofs)


def topic_interest_to_pb(ti: TopicInterest) -> federation_pb2.TopicInterest:
    return federation_pb2.TopicInterest(
        topic=ti.topic,
        filters=[filter_to_pb(f) for f in ti.filters],
        proofs=[
            federation_pb2.InterestProof(message=p.message, signature=p.signature)
            for p in ti.proofs
        ],
    )


# ---- events -----------------------------------------------------------------------------------


def replicated_from_pb(pb: Any, *, with_attributes: bool = True) -> ReplicatedEvent:
    """`with_attributes=False` skips the filter strings, which a received event never needs:
    routing past this region follows its `destinations`, not filters. A raw message's event
    is taken as its bytes (no parse); a federation_pb2 one's is serialized canonically."""
    sig = None
    if pb.HasField("signature"):
        s = pb.signature
        sig = OriginSignature(
            bytes(s.merkle_root), bytes(s.signature), s.leaf_index, s.leaf_count, tuple(s.proof)
        )
    event = pb.event if isinstance(pb.event, bytes) else canonical_event(pb.event)
    return ReplicatedEvent(
        topic=pb.topic,
        event=event,
        origin_region=pb.origin_region,
        origin_offset=pb.origin_offset,
        path=tuple(pb.path),
        destinations=tuple(pb.destinations),
        hop_limit=pb.hop_limit,
        signature=sig,
        attributes=attribute_strings(event_from_bytes(event)) if with_attributes else {},
    )


def replicated_to_pb(ev: ReplicatedEvent, *, with_event: bool = True) -> Any:
    """A raw `ReplicatedEvent` carrying the event's bytes as they are (no parse, no encode)."""
    pb = raw_wire.ReplicatedEvent(
        topic=ev.topic,
        event=ev.event if with_event else b"",
        origin_region=ev.origin_region,
        origin_offset=ev.origin_offset,
        path=ev.path,
        destinations=ev.destinations,
        hop_limit=ev.hop_limit,
    )
    if ev.signature is not None:
        s = ev.signature
        sig = pb.signature
        sig.merkle_root = s.merkle_root
        sig.signature = s.signature
        sig.leaf_index = s.leaf_index
        sig.leaf_count = s.leaf_count
        sig.proof.extend(s.proof)
    return pb


def encode_replication(ev: ReplicatedEvent) -> bytes:
    """A whole `ReplicatedEvent` serialisation, the canonical event bytes written as they are."""
    data: bytes = replicated_to_pb(ev).SerializeToString()
    return data


def encode_routing(ev: ReplicatedEvent) -> bytes:
    """The opaque blob a gateway stores beside a replicated event (to forward it unchanged):
    the `ReplicatedEvent` without its event, which the store holds beside it as the payload
    (`decode_replication(blob, event=payload)`); storing it twice cost a second copy of every
    relayed event on disk and in the store's tail. Blobs written whole still decode."""
    data: bytes = replicated_to_pb(ev, with_event=False).SerializeToString()
    return data


def _blob(blob: bytes) -> Any:
    """A replication blob parsed with its event left as bytes."""
    try:
        return raw_wire.ReplicatedEvent.FromString(blob)
    except DecodeError as exc:
        raise PeerProtocolError(f"corrupt replication metadata: {exc}") from exc


def replication_hops(blob: bytes) -> tuple[tuple[str, ...], int]:
    """(path, hop_limit) of a replication blob: enough to decide a relay is not needed."""
    pb = _blob(blob)
    return tuple(pb.path), pb.hop_limit


def replication_origin(blob: bytes) -> str:
    """The origin region of a replication blob, without decoding the event."""
    origin: str = _blob(blob).origin_region
    return origin


def decode_replication(
    blob: bytes, *, event: bytes | None = None, with_attributes: bool = True
) -> ReplicatedEvent:
    """`event`: the stored payload beside the blob (an `encode_routing` blob has none; a whole
    one carries the same bytes). `with_attributes=False`: the event stays unparsed (routing
    and transit need none)."""
    pb = _blob(blob)
    if event is not None:
        pb.event = event
    return replicated_from_pb(pb, with_attributes=with_attributes)


# ---- members and messages -----------------------------------------------------------------------


def _member_from_pb(pb: Any) -> Member:
    return Member(
        pb.region,
        pb.peer_address,
        bytes(pb.certificate_pem),
        pb.address_version,
        bytes(pb.address_signature),
    )


def _member_to_pb(m: Member) -> federation_pb2.Member:
    return federation_pb2.Member(
        region=m.region,
        peer_address=m.peer_address,
        certificate_pem=m.certificate_pem,
        address_version=m.address_version,
        address_signature=m.address_signature,
    )


def key_sets_from_pb(pb: Any) -> KeySets:
    """Raises PeerProtocolError past the bounds a sender keeps (count, bytes per set)."""
    if len(pb.sets) > MAX_KEY_SETS_PER_MESSAGE:
        raise PeerProtocolError(f"{len(pb.sets)} key sets in one message")
    out = []
    for s in pb.sets:
        size = len(s.key_set.document) + len(s.key_set.signature)
        if size > MAX_KEY_SET_BYTES:
            raise PeerProtocolError(f"key set of {s.topic!r}: {size} B over {MAX_KEY_SET_BYTES}")
        out.append(TopicKeySet(s.topic, bytes(s.key_set.document), bytes(s.key_set.signature)))
    return KeySets(tuple(out))


def message_from_pb(pb: Any) -> PeerMessage:
    """A raw_wire or federation_pb2 PeerMessage as a value; PeerProtocolError if invalid."""
    kind = pb.WhichOneof("kind")
    if kind == "hello":
        h = pb.hello
        return Hello(h.protocol_version, h.region, tuple(_member_from_pb(m) for m in h.members))
    if kind == "interest":
        return Interest(
            pb.interest.version,
            tuple(
                RegionInterest(
                    r.region, r.distance, tuple(topic_interest_from_pb(t) for t in r.topics)
                )
                for r in pb.interest.regions
            ),
        )
    if kind == "batch":
        return EventBatch(
            pb.batch.seq,
            tuple(replicated_from_pb(e, with_attributes=False) for e in pb.batch.events),
        )
    if kind == "ack":
        return BatchAck(pb.ack.seq, pb.ack.credits)
    if kind == "members":
        return Members(tuple(_member_from_pb(m) for m in pb.members.members))
    if kind == "key_sets":
        return key_sets_from_pb(pb.key_sets)
    if kind == "ping":
        return Ping(pb.ping.nonce)
    if kind == "pong":
        return Pong(pb.pong.nonce)
    raise PeerProtocolError("empty PeerMessage")


def message_to_pb(msg: PeerMessage) -> Any:
    """A federation_pb2 PeerMessage; a batch is a raw_wire one (same bytes on the wire, each
    event written from its bytes as they are). Either serializes with SerializeToString."""
    match msg:
        case Hello(version, region, members):
            return federation_pb2.PeerMessage(
                hello=federation_pb2.Hello(
                    protocol_version=version,
                    region=region,
                    members=[_member_to_pb(m) for m in members],
                )
            )
        case Interest(version, regions):
            return federation_pb2.PeerMessage(
                interest=federation_pb2.Interest(
                    version=version,
                    regions=[
                        federation_pb2.RegionInterest(
                            region=r.region,
                            distance=r.distance,
                            topics=[topic_interest_to_pb(t) for t in r.topics],
                        )
                        for r in regions
                    ],
                )
            )
        case EventBatch(seq, events):
            return raw_wire.PeerMessage(
                batch=raw_wire.EventBatch(seq=seq, events=[replicated_to_pb(e) for e in events])
            )
        case BatchAck(seq, credits):
            return federation_pb2.PeerMessage(ack=federation_pb2.BatchAck(seq=seq, credits=credits))
        case Members(members):
            return federation_pb2.PeerMessage(
                members=federation_pb2.Members(members=[_member_to_pb(m) for m in members])
            )
        case KeySets(sets):
            return federation_pb2.PeerMessage(
                key_sets=federation_pb2.KeySets(
                    sets=[
                        federation_pb2.TopicKeySet(
                            topic=s.topic,
                            key_set=gateway_pb2.KeySet(document=s.document, signature=s.signature),
                        )
                        for s in sets
                    ]
                )
            )
        case Ping(nonce):
            return federation_pb2.PeerMessage(ping=federation_pb2.Ping(nonce=nonce))
        case Pong(nonce):
            return federation_pb2.PeerMessage(pong=federation_pb2.Pong(nonce=nonce))
    raise TypeError(f"not a peer message: {msg!r}")
