"""PeerLink, the asyncio shell of one link, over a fake stream and a fake host (no gRPC).

The fake stream plays the peer by hand: it queues what the peer says and records what the link
wrote, decoded. The fake host keeps an in-memory log and records every call the link makes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
import pytest

from federation.codec import canonical_event, message_from_pb, message_to_pb
from federation.errors import FederationError, PeerUnavailable, ReadRewind
from federation.link import AcceptedTransport, DialedTransport, PeerLink
from federation.messages import (
    BatchAck,
    EventBatch,
    Hello,
    Interest,
    Member,
    PeerMessage,
    ReplicatedEvent,
)
from federation.ports import LogRecord
from federation.protocol import CloseReason, LinkProtocol, LinkSettings, LinkState
from proto import cloudevents_pb2, federation_pb2
from tests.support.waiting import async_wait_for

SETTINGS = LinkSettings(window=2, ping_interval=30.0, stale_after=60.0, drain_timeout=5.0)


class FakeStream:
    """One side of a Link stream. `say` queues a peer message, `hang_up` ends the stream."""

    def __init__(self) -> None:
        self.written: list[PeerMessage] = []
        self._incoming: asyncio.Queue[federation_pb2.PeerMessage | Exception | None] = (
            asyncio.Queue()
        )

    def say(self, message: PeerMessage) -> None:
        self._incoming.put_nowait(message_to_pb(message))

    def hang_up(self) -> None:
        self._incoming.put_nowait(None)

    def break_(self, exc: Exception) -> None:
        self._incoming.put_nowait(exc)

    async def send(self, message: federation_pb2.PeerMessage) -> None:
        self.written.append(message_from_pb(message))

    async def recv(self) -> federation_pb2.PeerMessage | None:
        item = await self._incoming.get()
        if isinstance(item, Exception):
            raise item
        return item

    def kinds(self) -> list[str]:
        return [type(m).__name__ for m in self.written]


@dataclass
class FakeHost:
    records: list[LogRecord] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)
    cursors: list[int] = field(default_factory=list)
    accept: bool = True
    store_gate: asyncio.Event | None = None  # set: stores complete; None: at once
    store_calls: list[list[int]] = field(default_factory=list)  # batch seqs per store call
    store_error: Exception | None = None
    rewind_after: int | None = None  # outbound raises ReadRewind for reads past this seq

    def link_up(self, link: PeerLink, members: tuple[Member, ...]) -> bool:
        self.calls.append("up")
        if self.accept:
            link.send(link.protocol.send_interest(Interest(1, ())))
        return self.accept

    def link_interest(self, link: PeerLink, interest: Interest) -> None:
        self.calls.append("interest")

    def link_members(self, link: PeerLink, members: tuple[Member, ...]) -> None:
        self.calls.append("members")

    def link_down(self, link: PeerLink) -> None:
        self.calls.append("down")

    async def store_batches(self, link: PeerLink, batches: Sequence[EventBatch]) -> None:
        self.store_calls.append([batch.seq for batch in batches])
        if self.store_gate is not None:
            await self.store_gate.wait()
        if self.store_error is not None:
            raise self.store_error
        self.stored.extend(batch.seq for batch in batches)

    async def read_log(self, seq: int) -> Sequence[LogRecord]:
        return [r for r in self.records if r.seq > seq][:10]

    async def wait_log(self, seq: int, timeout: float) -> bool:
        await asyncio.sleep(0.01)  # the fake log never grows while the link runs
        return False

    def outbound(self, link: PeerLink, records: Sequence[LogRecord]) -> tuple[ReplicatedEvent, ...]:
        if self.rewind_after is not None and records and records[0].seq > self.rewind_after:
            raise ReadRewind("bb wants ['orders'] again")
        return tuple(event(r.seq) for r in records)

    async def save_cursor(self, link: PeerLink, seq: int) -> None:
        await asyncio.sleep(0)  # a real store awaits I/O: a close may cancel it here
        self.cursors.append(seq)


def event(seq: int) -> ReplicatedEvent:
    raw = canonical_event(
        cloudevents_pb2.CloudEvent(id=str(seq), source="/s", spec_version="1.0", type="t")
    )
    return ReplicatedEvent("orders", raw, "aa", seq, ("aa",), ("bb",), 4, None)


def record(seq: int) -> LogRecord:
    return LogRecord(seq, "orders", event(seq).event, {}, None)


async def started(
    host: FakeHost, stream: FakeStream, settings: LinkSettings = SETTINGS
) -> tuple[PeerLink, asyncio.Task[CloseReason]]:
    protocol = LinkProtocol(
        local_region="aa",
        expected_region="bb",
        members=(),
        cursor=0,
        settings=settings,
        now=asyncio.get_running_loop().time(),
    )
    link = PeerLink(host=host, transport=stream, protocol=protocol, dialed=True, tick_interval=0.05)
    return link, asyncio.create_task(link.run())


async def until(pred: object, what: str) -> None:
    async def check() -> bool:
        return bool(pred())  # type: ignore[operator]

    await async_wait_for(check, timeout=5.0, interval=0.01, what=what)


async def streaming(
    host: FakeHost, stream: FakeStream, settings: LinkSettings = SETTINGS
) -> tuple[PeerLink, asyncio.Task[CloseReason]]:
    link, task = await started(host, stream, settings)
    stream.say(Hello(1, "bb", ()))
    stream.say(Interest(7, ()))
    await until(lambda: host.calls[:2] == ["up", "interest"], "handshake and peer interest")
    return link, task


async def test_hello_first_then_interest_then_batches_and_the_cursor_follows_acks() -> None:
    host, stream = FakeHost(records=[record(1), record(2), record(3)]), FakeStream()
    link, task = await streaming(host, stream)
    await until(lambda: "EventBatch" in stream.kinds(), "a batch")
    assert stream.kinds()[:3] == ["Hello", "Interest", "EventBatch"]
    [batch] = [m for m in stream.written if isinstance(m, EventBatch)]
    assert batch.seq == 3 and [e.origin_offset for e in batch.events] == [1, 2, 3]
    assert host.cursors == []  # nothing acked yet
    stream.say(BatchAck(3, 2))
    await until(lambda: host.cursors == [3], "cursor saved after the ack")
    link.close(CloseReason.SHUTDOWN)
    assert await task is CloseReason.SHUTDOWN
    assert host.calls[-1] == "down" and host.calls.count("down") == 1


async def test_an_inbound_batch_is_acked_only_after_it_is_stored() -> None:
    gate = asyncio.Event()
    host, stream = FakeHost(store_gate=gate), FakeStream()
    link, task = await streaming(host, stream)
    stream.say(EventBatch(5, (event(5),)))
    stream.say(EventBatch(6, (event(6),)))
    await until(lambda: link.statistics()["batches_received"] == 2, "both batches received")
    assert not any(isinstance(m, BatchAck) for m in stream.written)  # persist before ack
    gate.set()
    await until(lambda: sum(isinstance(m, BatchAck) for m in stream.written) == 2, "two acks")
    assert host.stored == [5, 6]
    assert [m.seq for m in stream.written if isinstance(m, BatchAck)] == [5, 6]  # in order
    link.close(CloseReason.SHUTDOWN)
    await task


async def test_batches_queued_during_a_store_are_stored_together_then_acked_in_order() -> None:
    gate = asyncio.Event()
    host, stream = FakeHost(store_gate=gate), FakeStream()
    link, task = await streaming(host, stream, dataclasses.replace(SETTINGS, window=3))
    stream.say(EventBatch(5, (event(5),)))
    await until(lambda: host.store_calls == [[5]], "the first store started")
    stream.say(EventBatch(6, (event(6),)))
    stream.say(EventBatch(7, (event(7),)))
    await until(lambda: link.statistics()["batches_received"] == 3, "three batches received")
    gate.set()
    await until(lambda: sum(isinstance(m, BatchAck) for m in stream.written) == 3, "three acks")
    assert host.store_calls == [[5], [6, 7]]  # one write for the two that queued meanwhile
    assert [m.seq for m in stream.written if isinstance(m, BatchAck)] == [5, 6, 7]
    link.close(CloseReason.SHUTDOWN)
    await task


@pytest.mark.parametrize(
    ("end", "reason"),
    [
        (lambda s: s.hang_up(), CloseReason.PEER_CLOSED),
        (lambda s: s.break_(PeerUnavailable("stream broke: UNAVAILABLE")), CloseReason.PEER_CLOSED),
        (lambda s: s.say(Hello(1, "bb", ())), CloseReason.PROTOCOL_VIOLATION),  # a second Hello
        (lambda s: s.break_(RuntimeError("bug")), CloseReason.INTERNAL_ERROR),
    ],
)
async def test_close_reasons(end: object, reason: CloseReason) -> None:
    host, stream = FakeHost(), FakeStream()
    link, task = await streaming(host, stream)
    end(stream)  # type: ignore[operator]
    assert await task is reason
    assert link.state is LinkState.CLOSED and host.calls.count("down") == 1


async def test_a_failed_store_closes_the_link_unacknowledged() -> None:
    host, stream = FakeHost(store_error=FederationError("disk full")), FakeStream()
    link, task = await streaming(host, stream)
    stream.say(EventBatch(5, (event(5),)))
    assert await task is CloseReason.STORE_FAILED
    assert link.close_detail == "disk full"
    assert not any(isinstance(m, BatchAck) for m in stream.written)


async def test_a_refused_link_closes_as_duplicate_and_never_reports_down() -> None:
    host, stream = FakeHost(accept=False), FakeStream()
    _, task = await started(host, stream)
    stream.say(Hello(1, "bb", ()))
    assert await task is CloseReason.DUPLICATE
    assert host.calls == ["up"]  # never registered: no link_down


async def test_cancelled_mid_store_leaves_a_closed_link_and_no_ack() -> None:
    gate = asyncio.Event()  # never set: the store hangs
    host, stream = FakeHost(store_gate=gate), FakeStream()
    link, task = await streaming(host, stream)
    stream.say(EventBatch(5, (event(5),)))
    await until(lambda: link.statistics()["batches_received"] == 1, "batch received")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert link.state is LinkState.CLOSED
    assert link.protocol.close_reason is CloseReason.SHUTDOWN
    assert host.calls.count("down") == 1 and host.stored == []
    assert not any(isinstance(m, BatchAck) for m in stream.written)


async def test_drain_waits_for_the_inflight_ack_then_closes() -> None:
    host, stream = FakeHost(records=[record(1)]), FakeStream()
    link, task = await streaming(host, stream)
    await until(lambda: "EventBatch" in stream.kinds(), "a batch")
    link.drain()
    assert link.state is LinkState.DRAINING and not task.done()
    stream.say(BatchAck(1, 2))
    assert await task is CloseReason.SHUTDOWN
    assert host.cursors == [1]  # the last ack's cursor is saved even though the link closed


async def test_a_rewind_sends_nothing_of_that_read_and_drains_after_the_inflight_ack() -> None:
    host = FakeHost(records=[record(1), record(2), record(3)], rewind_after=1)
    host.records[1:] = []  # the log holds seq 1 only at first
    stream = FakeStream()
    link, task = await streaming(host, stream)
    await until(lambda: "EventBatch" in stream.kinds(), "the first batch")
    host.records += [record(2), record(3)]  # the next read is one outbound refuses: rewind
    await until(lambda: link.state is LinkState.DRAINING, "the link drains")
    stream.say(BatchAck(1, 2))
    assert await task is CloseReason.SHUTDOWN
    assert [m.seq for m in stream.written if isinstance(m, EventBatch)] == [1]
    assert host.cursors == [1]  # the reconnected link starts from there


class FinishedCall:
    """A grpc.aio call that already ended: write and read raise what grpc raises then."""

    async def write(self, message: object) -> None:
        raise asyncio.InvalidStateError("RPC already finished.")

    async def read(self) -> object:
        raise asyncio.InvalidStateError("RPC already finished.")


async def test_a_write_on_a_finished_call_is_peer_unavailable_not_a_bug() -> None:
    transport = DialedTransport(FinishedCall())  # type: ignore[arg-type]
    with pytest.raises(PeerUnavailable, match="stream finished"):
        await transport.send(federation_pb2.PeerMessage())
    with pytest.raises(PeerUnavailable, match="stream finished"):
        await transport.recv()


class FailedBatchContext:
    """A servicer context whose peer went away: grpc's server raises ExecuteBatchError (an
    aio InternalError) from write, seen in the kill-consumer chaos run."""

    async def write(self, message: object) -> None:
        raise grpc.aio.InternalError('Failed "execute_batch"')

    async def read(self) -> object:
        raise grpc.aio.InternalError('Failed "execute_batch"')


async def test_a_write_on_a_gone_accepted_stream_is_peer_unavailable_not_a_bug() -> None:
    transport = AcceptedTransport(FailedBatchContext())  # type: ignore[arg-type]
    with pytest.raises(PeerUnavailable, match="stream finished"):
        await transport.send(federation_pb2.PeerMessage())
    with pytest.raises(PeerUnavailable, match="stream finished"):
        await transport.recv()


class HalfFinishedStream(FakeStream):
    """Reads work (the peer's Hello arrives), then every write finds the RPC finished."""

    def __init__(self) -> None:
        super().__init__()
        self.call = FinishedCall()
        self.transport = DialedTransport(self.call)  # type: ignore[arg-type]

    async def send(self, message: federation_pb2.PeerMessage) -> None:
        await self.transport.send(message)


async def test_a_link_whose_call_finished_under_its_writer_closes_as_peer_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host, stream = FakeHost(), HalfFinishedStream()
    link, task = await started(host, stream)
    assert await task is CloseReason.PEER_CLOSED  # the Hello write fails at once
    assert link.close_detail.startswith("stream finished")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # no traceback logged
