"""The federation wire with each event as its bytes: `proto/federation.proto` with
`ReplicatedEvent.event` read and written as `bytes` (no CloudEvent parse, no re-encode).

Why: on the wire an embedded message field and a `bytes` field of the same number are the same
thing (tag, length, the message's serialization). The event a region stores is already its
canonical serialization (what the origin signs, what the publisher signed), so a sender writes
the stored bytes into the batch as they are and a receiver takes them out as they are: bytes in
= bytes stored = bytes sent. Protobuf does the framing (one C call per message).

The classes here are built at import from federation_pb2's own descriptor, in a package of
their own (`meshgate.v1.raw`), with that one field turned into `bytes`; every other field,
number and name is the same, so a peer speaking plain `federation_pb2.PeerMessage` reads and
writes exactly the same bytes (tests/unit/federation/test_raw_wire.py compares both). The Link
stream on both sides (de)serializes with these (`link_call`, `link_handler`).
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from proto import federation_pb2

_PACKAGE = "meshgate.v1"
_RAW_PACKAGE = "meshgate.v1.raw"
LINK_METHOD = "/meshgate.v1.Federation/Link"


def _raw_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto()
    federation_pb2.DESCRIPTOR.CopyToProto(fdp)
    own = {f".{_PACKAGE}.{m.name}" for m in fdp.message_type}
    fdp.name = "meshgate/federation_raw.proto"
    fdp.package = _RAW_PACKAGE
    del fdp.service[:]
    for msg in fdp.message_type:
        for fld in msg.field:
            if msg.name == "ReplicatedEvent" and fld.name == "event":
                fld.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                fld.ClearField("type_name")
            elif fld.type_name in own:  # our own messages: their raw twins
                fld.type_name = f".{_RAW_PACKAGE}.{fld.type_name.rsplit('.', 1)[1]}"
    return fdp


def _classes() -> dict[str, Any]:
    pool = descriptor_pool.Default()
    try:
        fd = pool.FindFileByName("meshgate/federation_raw.proto")
    except KeyError:
        pool.Add(_raw_file())
        fd = pool.FindFileByName("meshgate/federation_raw.proto")
    return {
        name: message_factory.GetMessageClass(d) for name, d in fd.message_types_by_name.items()
    }


_RAW = _classes()
PeerMessage: Any = _RAW["PeerMessage"]
EventBatch: Any = _RAW["EventBatch"]
ReplicatedEvent: Any = _RAW["ReplicatedEvent"]
OriginSignature: Any = _RAW["OriginSignature"]
Hello: Any = _RAW["Hello"]
Interest: Any = _RAW["Interest"]
RegionInterest: Any = _RAW["RegionInterest"]
TopicInterest: Any = _RAW["TopicInterest"]
InterestProof: Any = _RAW["InterestProof"]
BatchAck: Any = _RAW["BatchAck"]
Members: Any = _RAW["Members"]
Member: Any = _RAW["Member"]
KeySets: Any = _RAW["KeySets"]
TopicKeySet: Any = _RAW["TopicKeySet"]
Ping: Any = _RAW["Ping"]
Pong: Any = _RAW["Pong"]


def serialize(message: Any) -> bytes:
    """Any PeerMessage (raw, or federation_pb2's from a test peer) as its bytes."""
    data: bytes = message.SerializeToString()
    return data


def link_call(channel: grpc.aio.Channel) -> grpc.aio.StreamStreamCall:
    """A `Federation.Link` call whose messages are raw PeerMessages both ways."""
    return channel.stream_stream(
        LINK_METHOD, request_serializer=serialize, response_deserializer=PeerMessage.FromString
    )()


def link_handler(behaviour: Any) -> grpc.GenericRpcHandler:
    """The `Federation` service with `Link` served by `behaviour` over raw PeerMessages."""
    return grpc.method_handlers_generic_handler(
        "meshgate.v1.Federation",
        {
            "Link": grpc.stream_stream_rpc_method_handler(
                behaviour,
                request_deserializer=PeerMessage.FromString,
                response_serializer=serialize,
            )
        },
    )
