"""Stored events -> the body and headers of one POST to a sink (CloudEvents HTTP binding).

Modes: `binary` (one event; attributes as `ce-*` headers, data as the body), `structured`
(one event as `application/cloudevents+json`), `batch` (a JSON array of structured events,
`application/cloudevents-batch+json`, which the SDK has no helper for). Rendering goes through
the SDK's HTTP binding (`cloudevents.core.bindings.http`) from the stored protobuf bytes via
eventmodel, so the sink sees what was published: no attribute added or dropped.

`render` raises UndecodableEvent for a stored event that is not a valid CloudEvent; the
runner dead-letters such an event (its bytes as stored) instead of wedging the subscription.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat

from eventmodel import sdk

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
_FORMAT = JSONFormat()


@dataclass(frozen=True, slots=True)
class Rendered:
    headers: dict[str, str]
    body: bytes


def render(payloads: Sequence[bytes], mode: str) -> Rendered:
    """One POST for `payloads` (exactly one unless mode is batch)."""
    if mode == "batch":
        body = b"[" + b",".join(_FORMAT.write(sdk.from_bytes(p)) for p in payloads) + b"]"
        return Rendered({"Content-Type": BATCH_CONTENT_TYPE}, body)
    if len(payloads) != 1:
        raise ValueError(f"{mode} mode posts one event, not {len(payloads)}")
    event = sdk.from_bytes(payloads[0])
    message = (
        ce_http.to_structured(event, _FORMAT)
        if mode == "structured"
        else ce_http.to_binary(event, _FORMAT)
    )
    return Rendered(dict(message.headers), message.body)
