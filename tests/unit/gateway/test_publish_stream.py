"""PublishStreamSession over a fake stream and store fakes at the EventStore interface:
order, one answer per request, per-request errors, coalescing, backpressure, cancellation,
shutdown. (The RPC end to end: tests/integration/test_publish_stream.py.)"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.access import Credentials, Identity, OpenAccess
from gateway.config import GatewayConfig
from gateway.errors import GatewayClosing, InvalidRequest, StoreUnavailable
from gateway.memory_store import MemoryEventStore
from gateway.metrics import GatewayMetrics
from gateway.publish_door import PublishDoor
from gateway.publish_stream import Pending, PublishStreamSession, answer, take_group
from gateway.store import AppendResult, NewEvent
from policy.errors import CredentialsMissing, SessionInvalid
from proto import cloudevents_pb2, gateway_pb2

pytestmark = pytest.mark.filterwarnings("ignore:gateway runs OPEN")


def _event(i: int, *, type_: str = "t") -> cloudevents_pb2.CloudEvent:
    return cloudevents_pb2.CloudEvent(id=str(i), source="/s", spec_version="1.0", type=type_)


def _request(i: int, topic: str = "orders", **kw: str) -> gateway_pb2.PublishStreamRequest:
    batch = cloudevents_pb2.CloudEventBatch(events=[_event(i, **kw)])
    return gateway_pb2.PublishStreamRequest(id=i, topic=topic, batch=batch)


class Requests:
    """The client side of the stream: the test sends, and sees how many the session read."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[gateway_pb2.PublishStreamRequest | None] = asyncio.Queue()
        self.read = 0

    def send(self, *requests: gateway_pb2.PublishStreamRequest) -> None:
        for r in requests:
            self.queue.put_nowait(r)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[gateway_pb2.PublishStreamRequest]:
        while (request := await self.queue.get()) is not None:
            self.read += 1
            yield request


class Context:
    def __init__(self) -> None:
        self.written: list[gateway_pb2.PublishStreamResponse] = []
        self.changed = asyncio.Event()

    async def send_initial_metadata(self, metadata: object) -> None:
        pass

    async def write(self, response: gateway_pb2.PublishStreamResponse) -> None:
        self.written.append(response)
        self.changed.set()

    async def wait_written(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.written) < count:
                self.changed.clear()
                await self.changed.wait()


class GatedStore(MemoryEventStore):
    """A slow store: each append waits for the gate (per topic), and every call is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []
        self.gates: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)
        self.failures: list[BaseException] = []  # raised by the next calls, in order

    async def append(
        self, topic: str, events: Sequence[NewEvent], origin_region: str
    ) -> list[AppendResult]:
        self.calls.append((topic, len(events)))
        await self.gates[topic].wait()
        if self.failures:
            raise self.failures.pop(0)
        return await super().append(topic, events, origin_region)


@pytest.fixture
async def store() -> GatedStore:
    store = GatedStore()
    await store.open()
    return store


def _session(
    tmp_path: Path, store: GatedStore, closing: asyncio.Event | None = None, **kw: int
) -> PublishStreamSession:
    door = PublishDoor(
        GatewayConfig(region="eu", data_dir=tmp_path), OpenAccess(), GatewayMetrics(), None
    )
    return PublishStreamSession(door, store, "eu", closing or asyncio.Event(), **kw)


async def _settle() -> None:
    """Let every runnable task run until it blocks (no wall clock involved)."""
    for _ in range(50):
        await asyncio.sleep(0)


# -- pure parts ------------------------------------------------------------------------------


def _pending(i: int, events: int, size: int = 10) -> Pending:
    staged = [NewEvent("/s", f"{i}-{n}", "t", b"x" * size) for n in range(events)]
    return Pending(i, 0.0, staged=staged)


def test_take_group_takes_the_first_always_then_while_bounds_hold() -> None:
    lane = collections.deque([_pending(0, 5), _pending(1, 3), Pending(2, 0.0), _pending(3, 3)])
    assert [p.id for p in take_group(lane, max_events=8, max_bytes=10**6)] == [0, 1, 2]
    assert [p.id for p in take_group(lane, max_events=1, max_bytes=10**6)] == [3]
    big = collections.deque([_pending(0, 1, size=100), _pending(1, 1, size=100)])
    assert [p.id for p in take_group(big, max_events=10, max_bytes=150)] == [0]


def test_answer_carries_results_or_the_unary_status() -> None:
    ok = Pending(7, 0.0, staged=[], results=[AppendResult(3, False), AppendResult(1, True)])
    assert answer(ok) == gateway_pb2.PublishStreamResponse(
        id=7,
        results=[
            gateway_pb2.PublishResult(offset=3),
            gateway_pb2.PublishResult(offset=1, duplicate=True),
        ],
    )
    bad = answer(Pending(8, 0.0, error=InvalidRequest("no")))
    assert (bad.id, bad.code, bad.message) == (8, grpc.StatusCode.INVALID_ARGUMENT.value[0], "no")
    bug = answer(Pending(9, 0.0, error=RuntimeError("secret detail")))
    assert (bug.code, bug.message) == (grpc.StatusCode.INTERNAL.value[0], "internal error")


# -- the session ------------------------------------------------------------------------------


async def test_every_request_is_answered_once_in_order_in_coalesced_appends(
    tmp_path: Path, store: GatedStore
) -> None:
    requests, context = Requests(), Context()
    run = asyncio.create_task(_session(tmp_path, store).run(requests, context))
    requests.send(*(_request(i) for i in range(50)))
    await _settle()
    assert context.written == []  # nothing answered before it is durable
    store.gates["orders"].set()
    requests.close()
    await asyncio.wait_for(run, 10)
    assert [r.id for r in context.written] == list(range(50))
    assert [[x.offset for x in r.results] for r in context.written] == [[i] for i in range(50)]
    assert sum(n for _, n in store.calls) == 50 and len(store.calls) <= 2


async def test_a_bad_event_in_request_2_of_3_fails_that_request_only(
    tmp_path: Path, store: GatedStore
) -> None:
    store.gates["orders"].set()
    requests, context = Requests(), Context()
    session = _session(tmp_path, store)
    run = asyncio.create_task(session.run(requests, context))
    requests.send(_request(0), _request(1, type_=""), _request(2))
    await context.wait_written(3)
    ok0, bad, ok2 = context.written
    assert (ok0.code, ok2.code) == (0, 0)
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert bad.message == "event is missing required attribute 'type'"
    assert [ok0.results[0].offset, ok2.results[0].offset] == [0, 1]
    requests.send(_request(3), _request(4, topic="no such/topic"))  # the stream lives on
    await context.wait_written(5)
    assert context.written[3].results[0].offset == 2
    assert context.written[4].message.startswith("invalid topic name 'no such/topic'")
    requests.close()
    await asyncio.wait_for(run, 10)


async def test_a_slow_store_stops_the_reading_at_the_window(
    tmp_path: Path, store: GatedStore
) -> None:
    requests, context = Requests(), Context()
    run = asyncio.create_task(_session(tmp_path, store, max_in_flight=4).run(requests, context))
    requests.send(*(_request(i) for i in range(20)))
    await _settle()
    assert (requests.read, store.calls, context.written) == (4, [("orders", 4)], [])
    store.gates["orders"].set()
    requests.close()
    await asyncio.wait_for(run, 10)
    assert requests.read == 20
    assert [r.id for r in context.written] == list(range(20))


async def test_topics_do_not_wait_for_each_other_and_keep_their_own_order(
    tmp_path: Path, store: GatedStore
) -> None:
    requests, context = Requests(), Context()
    run = asyncio.create_task(_session(tmp_path, store).run(requests, context))
    store.gates["fast"].set()
    requests.send(*(_request(i, topic="slow" if i % 2 else "fast") for i in range(10)))
    await context.wait_written(5)
    assert [r.id for r in context.written] == [0, 2, 4, 6, 8]
    store.gates["slow"].set()
    requests.close()
    await asyncio.wait_for(run, 10)
    assert [r.id for r in context.written[5:]] == [1, 3, 5, 7, 9]


async def test_cancelled_mid_flight_answers_only_what_is_durable(
    tmp_path: Path, store: GatedStore
) -> None:
    requests, context = Requests(), Context()
    run = asyncio.create_task(_session(tmp_path, store).run(requests, context))
    store.gates["fast"].set()
    requests.send(*(_request(i, topic="slow" if i % 2 else "fast") for i in range(10)))
    await context.wait_written(5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    store.gates["slow"].set()
    await _settle()
    answered = {r.id for r in context.written}
    assert answered == {0, 2, 4, 6, 8}
    stored = {e.offset for e in await store.read("fast", 0, 100)}
    assert len(stored) == 5 and await store.read("slow", 0, 100) == []  # cancelled: not stored


async def test_a_failed_merged_append_is_retried_request_by_request(
    tmp_path: Path, store: GatedStore
) -> None:
    requests, context = Requests(), Context()
    run = asyncio.create_task(_session(tmp_path, store).run(requests, context))
    requests.send(_request(0))
    await _settle()
    requests.send(_request(1), _request(2), _request(3))  # queued behind the first append
    await _settle()
    # the first append (request 0 alone), then the merged append of requests 1-3
    store.failures = [StoreUnavailable("first fails alone"), StoreUnavailable("disk hiccup")]
    store.gates["orders"].set()
    requests.close()
    await asyncio.wait_for(run, 10)
    codes = [(r.id, r.code, r.message) for r in context.written]
    assert codes[0] == (0, grpc.StatusCode.UNAVAILABLE.value[0], "first fails alone")
    assert [c[:2] for c in codes[1:]] == [(1, 0), (2, 0), (3, 0)]
    assert store.calls == [
        ("orders", 1),
        ("orders", 3),
        ("orders", 1),
        ("orders", 1),
        ("orders", 1),
    ]


async def test_a_reused_open_id_ends_the_stream_after_the_open_requests(
    tmp_path: Path, store: GatedStore
) -> None:
    requests, context = Requests(), Context()
    run = asyncio.create_task(_session(tmp_path, store).run(requests, context))
    requests.send(_request(5), _request(5))
    await _settle()
    store.gates["orders"].set()
    with pytest.raises(InvalidRequest, match="request id 5 is already open"):
        await asyncio.wait_for(run, 10)
    assert [(r.id, r.code) for r in context.written] == [(5, 0)]


async def test_shutdown_stops_reading_answers_the_open_then_unavailable(
    tmp_path: Path, store: GatedStore
) -> None:
    requests, context, closing = Requests(), Context(), asyncio.Event()
    run = asyncio.create_task(
        _session(tmp_path, store, closing, max_in_flight=3).run(requests, context)
    )
    requests.send(*(_request(i) for i in range(10)))
    await _settle()
    closing.set()
    await _settle()
    store.gates["orders"].set()
    with pytest.raises(GatewayClosing):
        await asyncio.wait_for(run, 10)
    assert [r.id for r in context.written] == [0, 1, 2]
    assert requests.read == 3


class TokenAccess(OpenAccess):
    """Tokens "good-NAME" prove NAME; anything else fails; no credentials fail too."""

    async def authenticate(self, credentials: Credentials | None) -> Identity:
        if credentials is None:
            raise CredentialsMissing("sign in")
        token = credentials.session_token or ""
        if not token.startswith("good-"):
            raise SessionInvalid(f"unknown token {token!r}")
        return Identity(address=token.removeprefix("good-"))


async def test_credentials_hold_for_the_requests_after_them_and_fail_closed(
    tmp_path: Path, store: GatedStore
) -> None:
    store.gates["orders"].set()
    door = PublishDoor(
        GatewayConfig(region="eu", data_dir=tmp_path), TokenAccess(), GatewayMetrics(), None
    )
    session = PublishStreamSession(door, store, "eu", asyncio.Event())
    requests, context = Requests(), Context()
    run = asyncio.create_task(session.run(requests, context))

    def with_token(request: gateway_pb2.PublishStreamRequest, token: str) -> Any:
        request.credentials.session_token = token
        return request

    requests.send(
        _request(0),  # none yet: as a call without credentials
        with_token(_request(1), "good-alice"),
        _request(2),  # alice's
        with_token(_request(3), "forged"),
        _request(4),  # the failed credentials hold: refused too
        with_token(_request(5, topic="bad topic"), "good-bob"),  # topic refused, bob adopted
        _request(6),  # bob's
    )
    await context.wait_written(7)
    requests.close()
    await asyncio.wait_for(run, 10)
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED.value[0]
    got = sorted((r.id, r.code, r.message.split(":")[0]) for r in context.written)
    assert got == [
        (0, unauthenticated, "no credentials"),
        (1, 0, ""),
        (2, 0, ""),
        (3, unauthenticated, "session invalid"),
        (4, unauthenticated, "session invalid"),
        (5, grpc.StatusCode.INVALID_ARGUMENT.value[0], "invalid topic name 'bad topic'"),
        (6, 0, ""),
    ]
