"""`GET /topics/{topic}/events`: a subscription as Server-Sent Events (browsers, `curl -N`).

Query: `from=earliest|latest|OFFSET` (default earliest, as gRPC), `group=NAME` (a durable
group, shared with gRPC members of the same group), `filter=JSON` (one filter or a list, the
JSON form `meshgate subscribe --filter` takes). A `Last-Event-ID` header (what a browser sends
when it reconnects) resumes after that offset and wins over `from`; a group resumes at its
committed offset, so it ignores both once it exists.

Stream (text/event-stream): a first comment `: subscribed topic=T start=N`, then one message
per delivery, `id: OFFSET` and `data: <the event in the JSON format, one line>`, and a
`: heartbeat` comment after [http] heartbeat seconds with nothing sent. When access ends (a
revoke, the sign-in's expiry) the stream sends `event: error` with `{"error", "status"}` and
ends; a gateway shutdown ends it with no event.

The access checks are gRPC Subscribe's (same AccessControl calls, same audit entries):
`authenticate`, `wait_current`, `check_subscribe` (403 before the stream opens; a stale view
opens it with deliveries held), then `check_delivery` before every batch in the shared
`SubscriptionSession`. Flow control is TCP's: a batch is written (and drained) before the
next is fetched; an event counts as delivered, and is acknowledged, once written. A client that
takes no data for [http] body_timeout is dropped (its session closes, a group's leases return).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping

from aiohttp import web

from eventmodel import filters
from eventmodel.attributes import parse as parse_event
from eventmodel.errors import EventModelError
from gateway.access import Deny
from gateway.errors import InvalidRequest
from gateway.http import binding
from gateway.http.identity import authenticate
from gateway.http.parts import HttpParts, parts_of
from gateway.session import MAX_BATCH, SubscriptionSession
from gateway.status import http_status_for
from gateway.topics import check_topic_name
from gateway.wire import Start
from policy.errors import AccessDenied

log = logging.getLogger(__name__)

HEARTBEAT = b": heartbeat\n\n"


def start_position(query: Mapping[str, str], last_event_id: str | None) -> Start:
    """`from` and `Last-Event-ID` -> where the stream begins. Raises InvalidRequest."""
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        if not text.isdigit():
            raise InvalidRequest(f"Last-Event-ID {text!r} is not an offset")
        return Start("offset", offset=int(text) + 1)
    where = query.get("from", "earliest")
    if where in ("earliest", "latest"):
        return Start(where)
    if where.isdigit():
        return Start("offset", offset=int(where))
    raise InvalidRequest(f"from={where!r}: use earliest, latest or an offset")


def parse_filters(text: str | None) -> tuple[filters.Filter, ...]:
    """`filter=` JSON (one filter object or a list of them). Raises InvalidFilter."""
    if text is None:
        return ()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"filter is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("filter is nested too deeply") from None
    return filters.list_from_json(raw if isinstance(raw, list) else [raw])


def message(offset: int, payload: bytes) -> bytes:
    """One SSE message for a stored event (its canonical protobuf bytes)."""
    return f"id: {offset}\ndata: {binding.to_json(parse_event(payload))}\n\n".encode()


def error_event(exc: Exception) -> bytes:
    status = http_status_for(exc) or 500
    text = str(exc) if status != 500 else "internal error"
    return f"event: error\ndata: {json.dumps({'error': text, 'status': status})}\n\n".encode()


class StreamWriter:
    """Writes SSE frames; a client that takes longer than `timeout` to take one (it stopped
    reading, TCP's window is full) counts as gone, so it cannot hold a session forever."""

    def __init__(self, response: web.StreamResponse, timeout: float) -> None:
        self.response = response
        self.timeout = timeout
        self.sent = asyncio.Event()

    async def send(self, frame: bytes) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.response.write(frame)
        except TimeoutError:
            raise ConnectionResetError(f"client took no data for {self.timeout:g}s") from None
        self.sent.set()


async def _pump(session: SubscriptionSession, writer: StreamWriter) -> None:
    async for batch in session.deliveries():
        frames = []
        for out in batch:
            try:
                frames.append(message(out.offset, out.payload))
            except EventModelError as exc:  # stored before validation existed: skip it
                log.warning("SSE skips undecodable event at offset %d: %s", out.offset, exc)
        if frames:
            await writer.send(b"".join(frames))
        await session.ack([out.offset for out in batch])
        session.grant(len(batch))


async def _heartbeat(writer: StreamWriter, every: float) -> None:
    while True:
        writer.sent.clear()
        try:
            async with asyncio.timeout(every):
                await writer.sent.wait()
        except TimeoutError:
            await writer.send(HEARTBEAT)


async def get_events(request: web.Request) -> web.StreamResponse:
    parts = parts_of(request)
    topic = check_topic_name(request.match_info["topic"])
    group = request.query.get("group") or None
    if group is not None:
        check_topic_name(group)  # same character rules keep group names printable
    start = start_position(request.query, request.headers.get("Last-Event-ID"))
    flts = parse_filters(request.query.get("filter"))
    identity = await authenticate(request)
    await parts.access.wait_current(identity, topic, publish=False)
    decision = parts.access.check_subscribe(identity, topic)
    if isinstance(decision, Deny):
        raise AccessDenied(decision.reason, f"may not subscribe to topic {topic!r}")
    dispatcher = await parts.hub.open(topic, group, flts, start, identity)
    session = SubscriptionSession(
        parts.hub,
        parts.access,
        identity,
        dispatcher,
        flts,
        MAX_BATCH,
        on_sent=lambda t, n: parts.metrics.events_out.labels(t).inc(n),
    )
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            }
        )
        writer = StreamWriter(response, parts.http.body_timeout)
        try:
            await response.prepare(request)
            await writer.send(
                f": subscribed topic={topic} start={dispatcher.state.committed}\n\n".encode()
            )
        except ConnectionError:
            return response  # gone before the first line: nothing to stream
        await _stream(session, writer, parts.http.heartbeat)
        return response
    finally:
        async with asyncio.timeout(5):
            await session.close()


async def _stream(session: SubscriptionSession, writer: StreamWriter, every: float) -> None:
    """Deliveries and heartbeats until the session ends, access ends, or the client goes."""
    try:
        async with asyncio.TaskGroup() as tg:
            beat = tg.create_task(_heartbeat(writer, every))
            try:
                await _pump(session, writer)
            finally:
                beat.cancel()
    except* ConnectionError:
        session.end()  # the client went away: nothing to tell it
    except* Exception as group:
        exc = group.exceptions[0]
        if http_status_for(exc) is None:
            log.error("SSE stream failed", exc_info=exc)
        with contextlib.suppress(ConnectionError):
            await writer.send(error_event(exc))


def add_routes(app: web.Application, parts: HttpParts) -> None:
    app.router.add_get("/topics/{topic}/events", get_events)
