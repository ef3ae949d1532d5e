"""The gateway's check of a publishable event: the CloudEvents spec, then the size limit.

What a CloudEvent is (attribute types, string forms, the SDK mapping) lives in `eventmodel`;
only the byte-size limit, a gateway setting (`max_event_bytes`), is decided here.
"""

from __future__ import annotations

from eventmodel.attributes import PbEvent
from eventmodel.attributes import validate as validate_spec
from gateway.errors import EventTooLarge


def validate(pb: PbEvent, max_bytes: int) -> int:
    """Check a publishable event; return its encoded size.

    Raises eventmodel.errors.InvalidEvent (naming the attribute) or EventTooLarge.
    """
    validate_spec(pb)
    size = pb.ByteSize()
    if size > max_bytes:
        raise EventTooLarge(f"event {pb.id!r} is {size} bytes, over the limit of {max_bytes}")
    return size
