"""Fuzz the client API over a real in-process gRPC server: raw bytes to every RPC method.

A real `gateway.app.Gateway` (open access, SQLite store in a temp dir, port 0) runs on its own
event loop in a thread for the whole module; one persistent channel sends each input as raw
bytes (no client-side serializer), so the server's own deserializers and validators see
exactly what an attacker's client would send. Documented outcomes (for PublishStream, of the
stream and of every answer in it): OK or a status the API names (INVALID_ARGUMENT, NOT_FOUND,
UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, UNAVAILABLE,
...), never INTERNAL, UNKNOWN or UNIMPLEMENTED. A round trip
costs ~1 ms, so these targets take a fifth of the fuzz budget each.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from gateway.app import Gateway
from gateway.config import MESSAGE_OVERHEAD, GatewayConfig
from proto import cloudevents_pb2, gateway_pb2
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.pb_strategies import mutated, nested, wire

SERVICE = "/meshgate.v1.Gateway/"
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNIMPLEMENTED}
MAX_EVENT_BYTES = 4096
MAX_MESSAGE_BYTES = MAX_EVENT_BYTES + MESSAGE_OVERHEAD
FRACTION = 0.2
CALL_TIMEOUT = 5.0
STREAM_TIMEOUT = 1.0


class GatewayThread:
    """An in-process gateway on its own loop; `stop()` ends serve() and joins the thread."""

    def __init__(self, data_dir: Path) -> None:
        self.config = GatewayConfig(
            region="fuzz",
            data_dir=data_dir,
            max_event_bytes=MAX_EVENT_BYTES,
            max_message_bytes=MAX_MESSAGE_BYTES,
        )
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._gateway: Gateway | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-gateway", daemon=True)

    def start(self) -> GatewayThread:
        self._thread.start()
        assert self._ready.wait(60), "gateway did not start in 60 s"
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        try:
            gateway = Gateway(self.config)
            await gateway.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self._gateway, self.port = gateway, gateway.port
        self._ready.set()
        await gateway.serve()

    def stop(self) -> None:
        if self._gateway is not None:
            self._loop.call_soon_threadsafe(self._gateway.request_stop)
        self._thread.join(60)


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    gateway = GatewayThread(tmp_path_factory.mktemp("fuzz-gw")).start()
    chan = grpc.insecure_channel(f"127.0.0.1:{gateway.port}")
    try:
        grpc.channel_ready_future(chan).result(timeout=30)
        _publish_seed(chan)
        yield chan
    finally:
        chan.close()
        gateway.stop()


def _event(i: int) -> cloudevents_pb2.CloudEvent:
    event = cloudevents_pb2.CloudEvent(id=str(i), source="/fuzz", spec_version="1.0", type="t")
    event.attributes["datacontenttype"].ce_string = "application/json"
    event.text_data = f'{{"n": {i}}}'
    return event


def _publish_request(i: int) -> bytes:
    batch = cloudevents_pb2.CloudEventBatch(events=[_event(i)])
    return gateway_pb2.PublishRequest(topic="orders", batch=batch).SerializeToString()


def _publish_seed(chan: grpc.Channel) -> None:
    publish = chan.unary_unary(SERVICE + "Publish")
    publish(_publish_request(0), timeout=CALL_TIMEOUT)


def _status(exc: grpc.RpcError) -> grpc.StatusCode:
    code = exc.code()  # type: ignore[attr-defined]
    assert isinstance(code, grpc.StatusCode)
    return code


def _unary(chan: grpc.Channel, method: str, raw: bytes) -> grpc.StatusCode:
    call = chan.unary_unary(SERVICE + method)
    try:
        call(raw, timeout=CALL_TIMEOUT)
    except grpc.RpcError as exc:
        return _status(exc)
    return grpc.StatusCode.OK


def _check(code: grpc.StatusCode, method: str, raw: bytes) -> None:
    event(code.name)  # the status mix, shown by --hypothesis-show-statistics
    assert code not in FORBIDDEN, f"{method} answered {code.name} to {raw[:200]!r}"


SEED_PUBLISH = st.integers(1, 10**6).map(_publish_request)
UNARY = {
    "Publish": wire(gateway_pb2.PublishRequest, extra=[mutated(SEED_PUBLISH), SEED_PUBLISH]),
    "ListTopics": wire(gateway_pb2.ListTopicsRequest),
    "GetTopic": wire(gateway_pb2.GetTopicRequest),
    "GetNonce": wire(gateway_pb2.GetNonceRequest),
    "SignIn": wire(gateway_pb2.SignInRequest),
    "ListPeers": wire(gateway_pb2.ListPeersRequest),
    "GetKeySets": wire(gateway_pb2.GetKeySetsRequest),
    "PutKeySet": wire(gateway_pb2.PutKeySetRequest),
    "ListSchemas": wire(gateway_pb2.ListSchemasRequest),
}


@pytest.mark.parametrize("method", sorted(UNARY))
def test_unary_methods_answer_only_documented_statuses(channel: grpc.Channel, method: str) -> None:
    @fuzz_settings(FRACTION)
    @given(raw=UNARY[method])
    def fuzz(raw: bytes) -> None:
        _check(_unary(channel, method, raw), method, raw)

    fuzz()


def _open(**fields: object) -> bytes:
    return gateway_pb2.SubscribeRequest(
        open=gateway_pb2.SubscriptionOpen(**fields)  # type: ignore[arg-type]
    ).SerializeToString()


SEED_OPENS = st.sampled_from(
    [
        _open(topic="orders", credits=10),
        _open(topic="orders", group="g", credits=1),
        _open(topic="orders", start=gateway_pb2.StartPosition(kind=2, offset=2**63)),
    ]
)
# SubscribeRequest.open = 1, SubscriptionOpen.filters = 3, Filter.not = 6 / all = 4 + list = 1
DEEP_FILTERS = [nested([6], outer=[1, 3]), nested([4, 1], outer=[1, 3])]
FIRST = wire(gateway_pb2.SubscribeRequest, extra=[*DEEP_FILTERS, SEED_OPENS, mutated(SEED_OPENS)])
LATER = st.lists(wire(gateway_pb2.SubscribeRequest, depth=3), max_size=3)


def _subscribe(chan: grpc.Channel, requests: list[bytes]) -> grpc.StatusCode:
    """Send `requests`, read at most two responses, then hang up (CANCELLED and, for an open
    stream with nothing to deliver, DEADLINE_EXCEEDED are the client's own doing)."""
    call = chan.stream_stream(SERVICE + "Subscribe")(iter(requests), timeout=STREAM_TIMEOUT)
    try:
        for count, _response in enumerate(call, start=1):
            if count >= 2:
                break
    except grpc.RpcError as exc:
        return _status(exc)
    finally:
        call.cancel()
    return grpc.StatusCode.OK


@fuzz_settings(FRACTION)
@given(first=FIRST, later=LATER)
def test_subscribe_answers_only_documented_statuses(
    channel: grpc.Channel, first: bytes, later: list[bytes]
) -> None:
    _check(_subscribe(channel, [first, *later]), "Subscribe", first)


@pytest.mark.parametrize("method", [*sorted(UNARY), "Subscribe"])
def test_a_message_over_the_size_limit_is_resource_exhausted(
    channel: grpc.Channel, method: str
) -> None:
    raw = b"\x0a" + b"x" * (2 * MAX_MESSAGE_BYTES)
    code = _subscribe(channel, [raw]) if method == "Subscribe" else _unary(channel, method, raw)
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED


def _stream_request(i: int) -> bytes:
    batch = cloudevents_pb2.CloudEventBatch(events=[_event(i)])
    return gateway_pb2.PublishStreamRequest(id=i, topic="orders", batch=batch).SerializeToString()


SEED_STREAM = st.integers(1, 10**6).map(_stream_request)
STREAM_REQUESTS = st.lists(
    wire(gateway_pb2.PublishStreamRequest, extra=[mutated(SEED_STREAM), SEED_STREAM]),
    min_size=1,
    max_size=4,
)


def _publish_stream(chan: grpc.Channel, requests: list[bytes]) -> list[grpc.StatusCode]:
    """Send `requests` and half-close; the stream's status and every answer's code."""
    call = chan.stream_stream(SERVICE + "PublishStream")(iter(requests), timeout=CALL_TIMEOUT)
    codes: list[grpc.StatusCode] = []
    try:
        for raw in call:
            code = gateway_pb2.PublishStreamResponse.FromString(raw).code
            codes.append(next(c for c in grpc.StatusCode if c.value[0] == code))
    except grpc.RpcError as exc:
        return [*codes, _status(exc)]
    return [*codes, grpc.StatusCode.OK]


@fuzz_settings(FRACTION)
@given(requests=STREAM_REQUESTS)
def test_publish_stream_answers_only_documented_statuses(
    channel: grpc.Channel, requests: list[bytes]
) -> None:
    for code in _publish_stream(channel, requests):  # each request's answer, then the stream's
        _check(code, "PublishStream", requests[0])


def test_a_publish_stream_message_over_the_size_limit_is_resource_exhausted(
    channel: grpc.Channel,
) -> None:
    raw = b"\x12" + b"x" * (2 * MAX_MESSAGE_BYTES)
    assert _publish_stream(channel, [raw]) == [grpc.StatusCode.RESOURCE_EXHAUSTED]
