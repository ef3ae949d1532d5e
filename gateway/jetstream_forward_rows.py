"""The rows a replica forwards to a topic's owner (gateway/jetstream_forward.py), pure: their
wire form (proto/region.proto `ForwardAppend`, the rows' bytes as they will be stored) and the
split of a call's rows by owner, each forwarded part below the server's max payload."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from gateway.jetstream_roster import Member
from gateway.store import NewEvent, Row
from proto import region_pb2

ENVELOPE = 256  # bytes a forwarded row costs beyond its strings and bytes


def encode_rows(rows: Sequence[Row]) -> bytes:
    request = region_pb2.ForwardAppend()
    add = request.rows.add
    for topic, event, origin, blob in rows:
        row = add(
            topic=topic,
            source=event.source,
            id=event.id,
            type=event.type,
            payload=event.payload,
            origin_region=origin,
        )
        if blob is not None:
            row.replication = blob
    return request.SerializeToString()


def decode_rows(data: bytes) -> list[Row]:
    """The rows of a forward request; ValueError for anything that is not one."""
    request = region_pb2.ForwardAppend()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(f"malformed forward request: {exc}") from exc
    rows: list[Row] = []
    for row in request.rows:
        if not row.topic or not row.source or not row.id:
            raise ValueError("malformed forward request: a row without topic, source or id")
        event = NewEvent(source=row.source, id=row.id, type=row.type, payload=row.payload)
        blob = row.replication if row.HasField("replication") else None
        rows.append((row.topic, event, row.origin_region, blob))
    return rows


def row_size(row: Row) -> int:
    topic, event, origin, blob = row
    strings = len(topic) + len(event.source) + len(event.id) + len(event.type) + len(origin)
    return ENVELOPE + 4 * strings + len(event.payload) + len(blob or b"")


@dataclass(slots=True)
class Part:
    """Rows (by index into the call) for one writer: `owner` None is this replica's own."""

    owner: Member | None
    indexes: list[int] = field(default_factory=list)
    size: int = 0  # bytes of the rows so far (what `limit` bounds)


def plan_parts(
    rows: Sequence[Row], owner: Callable[[str], Member | None], limit: int
) -> list[Part]:
    """Group `rows` by their topic's owner, keeping the call's order within each group; a
    forwarded part stays below `limit` bytes; a row too big to forward is written here."""
    local = Part(None)
    remote: dict[str, list[Part]] = {}
    for i, row in enumerate(rows):
        member = owner(row[0])
        size = row_size(row) if member is not None else 0
        if member is None or size > limit:
            local.indexes.append(i)
            continue
        parts = remote.setdefault(member.replica, [Part(member)])
        part = parts[-1]
        if part.indexes and part.size + size > limit:
            part = Part(member)
            parts.append(part)
        part.indexes.append(i)
        part.size += size
    out = [local] if local.indexes else []
    return out + [p for parts in remote.values() for p in parts]
