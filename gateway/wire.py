"""Protobuf <-> gateway value types for the server side of the client API (start positions,
credentials).

Events and filters have one codec each in `eventmodel` (sdk.py, filter_codec.py), shared with
the client SDK and federation. Only the gateway's shells import this module.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.access import Credentials
from gateway.errors import InvalidRequest
from proto import gateway_pb2


@dataclass(frozen=True, slots=True)
class Start:
    """Where a subscription without a committed offset begins."""

    kind: str = "earliest"  # earliest | latest | offset | time
    offset: int = 0
    time: dt.datetime | None = None


_KINDS = {
    "earliest": gateway_pb2.StartPosition.EARLIEST,
    "latest": gateway_pb2.StartPosition.LATEST,
    "offset": gateway_pb2.StartPosition.OFFSET,
    "time": gateway_pb2.StartPosition.TIME,
}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}


def start_from_pb(pb: gateway_pb2.StartPosition) -> Start:
    kind = _KIND_NAMES.get(pb.kind)
    if kind is None:
        raise InvalidRequest(f"unknown start position kind {pb.kind}")
    when = pb.time.ToDatetime(tzinfo=dt.UTC) if kind == "time" else None
    return Start(kind, offset=pb.offset, time=when)


def credentials_from_pb(pb: gateway_pb2.Credentials, present: bool) -> Credentials | None:
    if not present:
        return None
    kind = pb.WhichOneof("kind")
    if kind == "proof":
        return Credentials(message=pb.proof.message, signature=pb.proof.signature)
    if kind == "session_token":
        return Credentials(session_token=pb.session_token)
    return None
