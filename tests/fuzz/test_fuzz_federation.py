"""Fuzz the federation wire: what a peer (or a corrupt store row) can hand to our decoders.

Documented outcomes: `PeerMessage` bytes that do not parse are the gRPC deserializer's
DecodeError (the stream fails); everything that parses decodes to a value or raises a
`PeerProtocolError`. Replication blobs (stored beside relayed events) decode or raise
`PeerProtocolError`. A decoded interest's filters match any attributes without raising.
"""

from __future__ import annotations

import contextlib

from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from federation import codec
from federation.errors import PeerProtocolError
from federation.messages import Interest, ReplicatedEvent
from proto import cloudevents_pb2, federation_pb2
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.pb_strategies import messages, mutated, nested, text, wire

# PeerMessage.interest = 2, Interest.regions = 2, RegionInterest.topics = 3,
# TopicInterest.filters = 2, Filter.not = 6 (then Filter.all = 4 / FilterList.filters = 1).
_DEEP_FILTER = nested([6], outer=[2, 2, 3, 2])
_DEEP_ALL = nested([4, 1], outer=[2, 2, 3, 2])


def _valid_messages() -> st.SearchStrategy[bytes]:
    event = cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t")
    replicated = ReplicatedEvent(
        topic="orders",
        event=event.SerializeToString(deterministic=True),
        origin_region="eu",
        origin_offset=7,
        path=("eu",),
        destinations=("us",),
        hop_limit=3,
        signature=None,
    )
    batch = codec.message_to_pb(codec.EventBatch(1, (replicated,)))
    hello = codec.message_to_pb(codec.Hello(1, "eu", ()))
    return st.sampled_from([m.SerializeToString() for m in (batch, hello)])


PEER_BYTES = wire(
    federation_pb2.PeerMessage,
    extra=[_DEEP_FILTER, _DEEP_ALL, mutated(_valid_messages())],
)


def _decode_peer_message(raw: bytes) -> object:
    try:
        pb = federation_pb2.PeerMessage.FromString(raw)
    except DecodeError:
        return None  # the gRPC deserializer's documented failure
    try:
        return codec.message_from_pb(pb)
    except PeerProtocolError:
        return None


@fuzz_settings()
@given(raw=PEER_BYTES)
def test_peer_message_bytes_decode_or_raise_peer_protocol_error(raw: bytes) -> None:
    _decode_peer_message(raw)


@fuzz_settings()
@given(pb=messages(federation_pb2.PeerMessage), attributes=st.dictionaries(text, text, max_size=4))
def test_structured_peer_messages_decode_and_their_filters_match(
    pb: federation_pb2.PeerMessage, attributes: dict[str, str]
) -> None:
    try:
        message = codec.message_from_pb(pb)
    except PeerProtocolError:
        return
    if isinstance(message, Interest):
        for region in message.regions:
            for interest in region.topics:
                assert isinstance(interest.wants(interest.topic, attributes), bool)


REPLICATION_BYTES = wire(
    federation_pb2.ReplicatedEvent,
    extra=[nested([2, 1]), mutated(_valid_messages().map(lambda b: b[4:]))],
)


@fuzz_settings()
@given(blob=REPLICATION_BYTES)
def test_replication_blobs_decode_or_raise_peer_protocol_error(blob: bytes) -> None:
    for decode in (codec.decode_replication, codec.replication_hops, codec.replication_origin):
        with contextlib.suppress(PeerProtocolError):
            decode(blob)


@fuzz_settings()
@given(raw=wire(cloudevents_pb2.CloudEvent))
def test_relayed_event_bytes_decode_or_raise_peer_protocol_error(raw: bytes) -> None:
    with contextlib.suppress(PeerProtocolError):
        codec.event_from_bytes(raw)


def _replication_blob_with_bad_timestamp_extension() -> bytes:
    event = cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t")
    event.attributes["when"].ce_timestamp.nanos = 2**30  # out of range: not a valid Timestamp
    return codec.encode_replication(
        ReplicatedEvent(
            topic="orders",
            event=event.SerializeToString(deterministic=True),
            origin_region="eu",
            origin_offset=1,
            path=("eu",),
            destinations=(),
            hop_limit=3,
            signature=None,
        )
    )


def test_replication_blob_with_an_out_of_range_timestamp_raises_peer_protocol_error() -> None:
    # Found by fuzzing: value_string raised ValueError here; now such a timestamp has no string
    # form (eventmodel.attributes.value_string) and validate refuses it at every door.
    with contextlib.suppress(PeerProtocolError):
        codec.decode_replication(_replication_blob_with_bad_timestamp_extension())
