from eventmodel.filters import All as AllOf
from eventmodel.filters import Any as AnyOf
from eventmodel.filters import Exact, Not, Prefix, Suffix
from federation.codec import (
    canonical_event,
    decode_replication,
    encode_replication,
    message_from_pb,
    message_to_pb,
)
from federation.messages import (
    BatchAck,
    EventBatch,
    Hello,
    Interest,
    Member,
    OriginSignature,
    RegionInterest,
    ReplicatedEvent,
    TopicInterest,
)
from proto import cloudevents_pb2

CE = cloudevents_pb2.CloudEvent(id="1", source="/s", spec_version="1.0", type="t", text_data="x")
CE.attributes["subject"].ce_string = "sub"
EVENT = ReplicatedEvent(
    "orders", canonical_event(CE), "aa", 7, ("aa",), ("cc",), 8,
    OriginSignature(b"r" * 32, b"s" * 64, 1, 3, (b"p" * 32,)),
)  # fmt: skip


def test_messages_round_trip() -> None:
    filt = AllOf(
        (
            Exact("type", "t"),
            AnyOf((Prefix("subject", "s"), Suffix("id", "1"))),
            Not(Exact("a", "b")),
        )
    )
    for msg in (
        Hello(1, "aa", (Member("aa", "127.0.0.1:1", b"pem"),)),
        Interest(3, (RegionInterest("cc", 1, (TopicInterest("orders", (filt,)),)),)),
        EventBatch(9, (EVENT,)),
        BatchAck(9, 4),
    ):
        assert message_from_pb(message_to_pb(msg)) == msg


def test_replication_blob_keeps_signed_bytes_and_attributes() -> None:
    back = decode_replication(encode_replication(EVENT))
    assert back == EVENT and back.event == EVENT.event
    assert back.attributes["subject"] == "sub" and back.attributes["id"] == "1"
