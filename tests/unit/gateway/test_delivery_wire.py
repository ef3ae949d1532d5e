"""The hand-framed Subscribe answer is byte-identical to protobuf's own serialization, and the
event bytes inside it are the stored bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.delivery_wire import delivery_batch_response
from gateway.dispatch import Outgoing
from proto import cloudevents_pb2, gateway_pb2


def payload(i: int, data: bytes) -> bytes:
    pb = cloudevents_pb2.CloudEvent(
        id=str(i), source="/s", spec_version="1.0", type="t", binary_data=data
    )
    return pb.SerializeToString(deterministic=True)


def reference(batch: list[Outgoing]) -> bytes:
    return gateway_pb2.SubscribeResponse(
        batch=gateway_pb2.DeliveryBatch(
            deliveries=[
                gateway_pb2.Delivery(
                    offset=o.offset,
                    attempt=o.attempt,
                    event=cloudevents_pb2.CloudEvent.FromString(o.payload),
                )
                for o in batch
            ]
        )
    ).SerializeToString()


@given(
    st.lists(
        st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=300)),
        max_size=20,
    )
)
def test_same_bytes_as_protobuf(items: list[tuple[int, int, bytes]]) -> None:
    batch = [Outgoing(o, a, payload(i, d)) for i, (o, a, d) in enumerate(items)]
    assert delivery_batch_response(batch) == reference(batch)


def test_the_event_bytes_are_the_stored_bytes() -> None:
    stored = payload(1, b"\x00" * 2000)  # a length past one varint byte
    raw = delivery_batch_response([Outgoing(7, 1, stored)])
    parsed = gateway_pb2.SubscribeResponse.FromString(raw)
    assert [(d.offset, d.attempt) for d in parsed.batch.deliveries] == [(7, 1)]
    assert stored in raw
    assert parsed.batch.deliveries[0].event.SerializeToString(deterministic=True) == stored
