"""`POST /topics/{topic}/events`: publishing over the CloudEvents HTTP binding.

The same steps, in the same order, as the gRPC Publish (gateway/service.py), against the same
parts, so both doors refuse, store and audit the same way:

1. the topic name (400), then the caller: `authenticate` (401), `wait_current`,
   `check_publish` (403 denied, 503 + Retry-After while the chain view is stale), all before a
   byte of the body is read;
2. the body, under [http] max_body_bytes (413) and body_timeout (408) (gateway.http.body);
3. the events (gateway.http.binding: binary, structured or batch mode; 400 / 415);
4. each event through `gateway.events.validate` (the CloudEvents spec and max_event_bytes):
   one bad event refuses the whole request and nothing is stored (all or nothing); on a
   registry gateway every event's publisher signature and the signer's right
   (gateway/publishers.py: 400 unsigned / bad proof / bad signature, 403 not a publisher);
   the `mgpubsig` / `mgpubproof` extensions may come as Base64 strings (the HTTP forms);
5. `store.append` with the canonical bytes (the deterministic protobuf form the store keeps
   and gRPC stores): idempotent by (source, id), the duplicates answered as such.

Answer, 200: `{"results": [{"id": ..., "offset": N, "duplicate": false}, ...]}`, one per
event in request order.
"""

from __future__ import annotations

import time

from aiohttp import web

from eventmodel import event_spans
from eventmodel.attributes import PbEvent
from eventmodel.errors import EventModelError
from gateway import events
from gateway.access import enforce
from gateway.errors import InvalidRequest
from gateway.http import binding
from gateway.http.body import read_body
from gateway.http.identity import authenticate
from gateway.http.parts import HttpParts, parts_of
from gateway.http.responses import json_response
from gateway.store import AppendResult, NewEvent
from gateway.topics import check_topic_name


def stage(pbs: list[PbEvent], max_event_bytes: int) -> list[NewEvent]:
    """Validate every event (all before any is stored) and give each its canonical bytes."""
    if not pbs:
        raise InvalidRequest("publish carries no events")
    staged = []
    for index, pb in enumerate(pbs):
        try:
            events.validate(pb, max_event_bytes)
        except (EventModelError, InvalidRequest) as exc:  # the error keeps its class
            if len(pbs) == 1:
                raise
            raise type(exc)(f"event {index}: {exc}") from None
        staged.append(NewEvent(pb.source, pb.id, pb.type, pb.SerializeToString(deterministic=True)))
    return staged


async def publish(
    parts: HttpParts, topic: str, staged: list[NewEvent], started: float
) -> list[AppendResult]:
    results = await parts.store.append(topic, staged, parts.gateway.region)
    fresh = sum(1 for r in results if not r.duplicate)
    parts.metrics.events_in.labels(topic).inc(fresh)
    if fresh != len(results):
        parts.metrics.duplicates.labels(topic).inc(len(results) - fresh)
    parts.metrics.publish_latency.observe(time.perf_counter() - started)
    return results


async def post_events(request: web.Request) -> web.Response:
    started = time.perf_counter()
    parts = parts_of(request)
    topic = check_topic_name(request.match_info["topic"])
    identity = await authenticate(request)
    await parts.access.wait_current(identity, topic, publish=True)
    enforce(parts.access.check_publish(identity, topic), "publish to", topic)
    body = await read_body(request, parts.http.max_body_bytes, parts.http.body_timeout)
    pbs = binding.parse(request.headers.items(), body)
    if event_spans.ON:  # issue 16: as the gRPC door (gateway/publish_door.py)
        event_spans.ingest(topic, pbs, stamp=parts.publishers is None)
    staged = stage(pbs, parts.gateway.max_event_bytes)
    if parts.publishers is not None:  # before anything is stored, as gRPC Publish
        await parts.publishers.check_publish(topic, pbs)
    results = await publish(parts, topic, staged, started)
    if event_spans.ON:
        event_spans.published(topic, staged, results, started)
    return json_response(
        {
            "results": [
                {"id": event.id, "offset": r.offset, "duplicate": r.duplicate}
                for event, r in zip(staged, results, strict=True)
            ]
        }
    )


def add_routes(app: web.Application, parts: HttpParts) -> None:
    app.router.add_post("/topics/{topic}/events", post_events)
