"""Stored events -> the body and headers of one POST to a sink (CloudEvents HTTP binding).

Modes: `binary` (one event; attributes as percent-encoded `ce-*` headers, `datacontenttype` as
Content-Type, data as the body, as stored), `structured` (one event as
`application/cloudevents+json`), `batch` (a JSON array of structured events,
`application/cloudevents-batch+json`). Rendering is the HTTP edge's binding
(`gateway.http.binding`), which works on the stored protobuf event directly: the SDK's
`to_binary` loses timestamp nanoseconds and renders a Binary extension as "b'...'", and the
sink must see what was published, no attribute added or dropped. One binding serves ingress,
SSE and webhooks, so the three cannot disagree.

`render` raises UndecodableEvent for stored bytes that are not a protobuf CloudEvent; the
runner dead-letters such an event (its bytes as stored) instead of wedging the subscription.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eventmodel.attributes import parse
from gateway.http import binding

STRUCTURED_CONTENT_TYPE = binding.STRUCTURED + "; charset=utf-8"
BATCH_CONTENT_TYPE = binding.BATCH + "; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Rendered:
    headers: dict[str, str]
    body: bytes


def render(payloads: Sequence[bytes], mode: str) -> Rendered:
    """One POST for `payloads` (exactly one unless mode is batch)."""
    if mode == "batch":
        body = binding.to_batch([parse(p) for p in payloads])
        return Rendered({"Content-Type": BATCH_CONTENT_TYPE}, body)
    if len(payloads) != 1:
        raise ValueError(f"{mode} mode posts one event, not {len(payloads)}")
    pb = parse(payloads[0])
    if mode == "structured":
        return Rendered(
            {"Content-Type": STRUCTURED_CONTENT_TYPE}, binding.to_json(pb).encode("utf-8")
        )
    headers, body = binding.binary(pb)
    return Rendered(headers, body)
