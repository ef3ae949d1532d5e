"""The raw federation wire (events as bytes) is byte-identical to protobuf's own PeerMessage
whenever the event bytes are canonical, and parses back to the same values either way."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from federation import raw_wire
from federation.codec import canonical_event, message_from_pb, message_to_pb
from federation.messages import EventBatch, OriginSignature, ReplicatedEvent
from proto import cloudevents_pb2, federation_pb2

_text = st.text(max_size=12)


@st.composite
def _events(draw: st.DrawFn) -> cloudevents_pb2.CloudEvent:
    ce = cloudevents_pb2.CloudEvent(
        id=draw(_text), source=draw(_text), spec_version="1.0", type=draw(_text)
    )
    for key in draw(st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=5), max_size=4)):
        ce.attributes[key].ce_string = draw(_text)
    data = draw(st.one_of(st.none(), st.binary(max_size=300), _text))
    if isinstance(data, bytes):
        ce.binary_data = data
    elif isinstance(data, str):
        ce.text_data = data
    return ce


@st.composite
def _replicated(draw: st.DrawFn) -> ReplicatedEvent:
    signed = draw(st.booleans())
    return ReplicatedEvent(
        topic=draw(_text),
        event=canonical_event(draw(_events())),
        origin_region=draw(_text),
        origin_offset=draw(st.integers(0, 2**64 - 1)),
        path=tuple(draw(st.lists(_text, max_size=3))),
        destinations=tuple(draw(st.lists(_text, max_size=3))),
        hop_limit=draw(st.integers(0, 2**32 - 1)),
        signature=OriginSignature(
            draw(st.binary(max_size=32)),
            draw(st.binary(max_size=64)),
            draw(st.integers(0, 2**32 - 1)),
            draw(st.integers(0, 2**32 - 1)),
            tuple(draw(st.lists(st.binary(max_size=32), max_size=3))),
        )
        if signed
        else None,
    )


def _protobuf_batch(batch: EventBatch) -> federation_pb2.PeerMessage:
    """What protobuf itself builds: each event parsed into an embedded CloudEvent."""
    pb = federation_pb2.PeerMessage()
    pb.batch.seq = batch.seq
    for ev in batch.events:
        out = pb.batch.events.add(
            topic=ev.topic,
            event=cloudevents_pb2.CloudEvent.FromString(ev.event),
            origin_region=ev.origin_region,
            origin_offset=ev.origin_offset,
            path=ev.path,
            destinations=ev.destinations,
            hop_limit=ev.hop_limit,
        )
        if ev.signature is not None:
            s = ev.signature
            out.signature.CopyFrom(
                federation_pb2.OriginSignature(
                    merkle_root=s.merkle_root,
                    signature=s.signature,
                    leaf_index=s.leaf_index,
                    leaf_count=s.leaf_count,
                    proof=s.proof,
                )
            )
    return pb


@settings(max_examples=150, deadline=None)
@given(seq=st.integers(0, 2**64 - 1), events=st.lists(_replicated(), max_size=4))
def test_raw_batch_is_byte_identical_to_protobufs(seq: int, events: list[ReplicatedEvent]) -> None:
    batch = EventBatch(seq, tuple(events))
    raw = raw_wire.serialize(message_to_pb(batch))
    assert raw == _protobuf_batch(batch).SerializeToString(deterministic=True)
    # either side's parser gives the same values back, the event bytes unchanged
    assert message_from_pb(raw_wire.PeerMessage.FromString(raw)) == batch
    assert message_from_pb(federation_pb2.PeerMessage.FromString(raw)) == batch


def test_received_event_is_the_bytes_sent_not_a_copy_rebuilt() -> None:
    ce = cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t")
    ce.attributes["b"].ce_string = "2"
    ce.attributes["a"].ce_string = "1"
    stored = canonical_event(ce)
    sent = ReplicatedEvent("t", stored, "eu", 1, ("eu",), ("ap",), 3, None)
    wire = raw_wire.serialize(message_to_pb(EventBatch(1, (sent,))))
    assert stored in wire  # written as they are
    got = message_from_pb(raw_wire.PeerMessage.FromString(wire))
    assert isinstance(got, EventBatch) and got.events[0].event == stored


def test_raw_classes_are_the_federation_messages_with_event_as_bytes() -> None:
    plain = federation_pb2.ReplicatedEvent.DESCRIPTOR
    raw = raw_wire.ReplicatedEvent.DESCRIPTOR
    assert [(f.name, f.number) for f in plain.fields] == [(f.name, f.number) for f in raw.fields]
    assert raw.fields_by_name["event"].type == raw.fields_by_name["event"].TYPE_BYTES
