"""The messages of an atomic batch, framed once and handed to nats-py in one write.

nats-py's `publish` costs about 15 µs per call in Python (subject checks, a header loop with
a regex and a translate per header, three awaits), which was the largest single cost of the
append path: a batch of 400 events is 400 calls. The batch's messages are ours (subjects from
gateway/jetstream_layout.py, header names constant, values digits, hex and region names), so
they are framed here, exactly as nats-py frames a publish with headers (the NATS protocol's
`HPUB subject hdr_len total_len\\r\\n` + `NATS/1.0\\r\\n` + `Name: value\\r\\n`... + `\\r\\n` +
payload + `\\r\\n`; tests/unit/gateway/test_jetstream_frames.py checks the bytes against
nats-py's own), and queued with the client's pending-buffer call. What follows them on the same
connection (the batch's commit, a request) is written after them, so the server sees them in
order. nats-py is pinned (pyproject.toml): `_send_command` is not public API.
"""

from __future__ import annotations

from collections.abc import Mapping

import nats.errors
from nats.aio.client import Client

_HEAD = b"NATS/1.0\r\n"
_CRLF = b"\r\n"


def header_block(headers: Mapping[str, str]) -> bytes:
    """`headers` as the NATS header block (values must hold no CR or LF: ours are checked
    where they are made, and a region or topic name is a subject token)."""
    return _HEAD + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + _CRLF


def hpub(subject: str, headers: Mapping[str, str], payload: bytes) -> bytes:
    """One HPUB frame, as nats-py's `publish(subject, payload, headers=headers)` sends it."""
    block = header_block(headers)
    size = len(block)
    return b"HPUB %s  %d %d\r\n%s%s\r\n" % (
        subject.encode(),
        size,
        size + len(payload),
        block,
        payload,
    )


def pub(subject: str, payload: bytes) -> bytes:
    """One PUB frame (no headers), as nats-py's `publish(subject, payload)` sends it."""
    return b"PUB %s  %d\r\n%s\r\n" % (subject.encode(), len(payload), payload)


async def send_frames(nc: Client, frames: list[bytes], biggest_payload: int) -> None:
    """Queue `frames` on `nc` in order, as its publishes would be (the same refusals)."""
    if nc.is_closed:
        raise nats.errors.ConnectionClosedError
    if nc.is_draining_pubs:
        raise nats.errors.ConnectionDrainingError
    if biggest_payload > nc.max_payload:
        raise nats.errors.MaxPayloadError
    await nc._send_command(b"".join(frames))  # private API: see the module docstring
