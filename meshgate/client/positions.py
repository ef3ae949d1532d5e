"""Where a subscription begins, as the client sends it (`meshgate.v1.StartPosition`).

The client builds the protobuf message itself (the gateway parses it in gateway/wire.py):
`"earliest"`, `"latest"`, an offset (int, or a string of digits), or a time (an aware
datetime, or an ISO 8601 / RFC 3339 string; a naive one is taken as UTC).
"""

from __future__ import annotations

import datetime as dt

from proto import gateway_pb2

StartSpec = str | int | dt.datetime | gateway_pb2.StartPosition


def start_position(start: StartSpec) -> gateway_pb2.StartPosition:
    """The StartPosition for `start`; raises ValueError naming the accepted forms."""
    if isinstance(start, gateway_pb2.StartPosition):
        return start
    if isinstance(start, bool):
        raise ValueError(f"invalid start {start!r}")
    if isinstance(start, int):
        if start < 0:
            raise ValueError(f"invalid start offset {start}: must be >= 0")
        return gateway_pb2.StartPosition(kind=gateway_pb2.StartPosition.OFFSET, offset=start)
    if isinstance(start, dt.datetime):
        pb = gateway_pb2.StartPosition(kind=gateway_pb2.StartPosition.TIME)
        when = start if start.tzinfo is not None else start.replace(tzinfo=dt.UTC)
        pb.time.FromDatetime(when.astimezone(dt.UTC))
        return pb
    if start == "earliest":
        return gateway_pb2.StartPosition(kind=gateway_pb2.StartPosition.EARLIEST)
    if start == "latest":
        return gateway_pb2.StartPosition(kind=gateway_pb2.StartPosition.LATEST)
    if start.isdigit():
        return start_position(int(start))
    try:
        when = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"invalid start {start!r}: earliest, latest, an offset or an ISO 8601 time"
        ) from exc
    return start_position(when)
