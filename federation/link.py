"""PeerLink: the asyncio shell around one LinkProtocol and one gRPC bidi stream.

It runs four tasks in one TaskGroup: `reader` (stream -> protocol), `writer` (the only task that
writes the stream), `storer` (persists inbound batches in order, then acks), `pump` (reads our
log from the cursor and sends batches while the window allows), plus `ticker` (pings, liveness).
Every protocol action is carried out by `_execute`; no task decides protocol matters itself.

Resource handling: `run()` returns when the link closed for any reason and always reports
`link_down` to its host; the stream is cancelled by the transport's owner.
Error handling: the transports map `grpc.aio.AioRpcError`, and what grpc raises on a call that
already finished (`asyncio.InvalidStateError`, `grpc.aio.BaseError`), to `PeerUnavailable`
(`from exc`); it
and end of stream close the link as PEER_CLOSED, a malformed message (`PeerProtocolError`) as
PROTOCOL_VIOLATION, a failed store (`FederationError`) as STORE_FAILED; `LocalProtocolError` or
any other exception is our bug: logged with its traceback, the link closes as INTERNAL_ERROR
and the node redials. Cancellation closes the link as SHUTDOWN and still reports `link_down`.
Catch-up: when `outbound` raises ReadRewind the pump sends nothing and drains the link; it
closes as SHUTDOWN once its batches are acked, and the redialed link reads from the persisted
cursor (federation/catch_up.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

import grpc

from federation import raw_wire
from federation.codec import message_from_pb, message_to_pb
from federation.errors import (
    FederationError,
    LocalProtocolError,
    PeerProtocolError,
    PeerUnavailable,
    ReadRewind,
)
from federation.messages import (
    EventBatch,
    Interest,
    Member,
    PeerMessage,
    ReplicatedEvent,
    TopicKeySet,
)
from federation.ports import LogRecord
from federation.protocol import (
    Action,
    AdvanceCursor,
    CloseLink,
    CloseReason,
    LinkProtocol,
    LinkState,
    PeerHello,
    PeerInterest,
    PeerKeySets,
    PeerMembers,
    SendMessage,
    StoreBatch,
)
from proto import federation_pb2

log = logging.getLogger(__name__)

STORE_GROUP = 8  # inbound batches stored in one write at most (the sender's window bounds it)


class Transport(Protocol):
    """One side of the Link stream."""

    async def send(self, message: federation_pb2.PeerMessage) -> None: ...

    async def recv(self) -> federation_pb2.PeerMessage | None:
        """The next message, or None at end of stream."""
        ...


class LinkHost(Protocol):
    """What a link needs from the federation node that owns it."""

    def link_up(self, link: PeerLink, members: tuple[Member, ...]) -> bool: ...

    def link_interest(self, link: PeerLink, interest: Interest) -> None: ...

    def link_members(self, link: PeerLink, members: tuple[Member, ...]) -> None: ...

    def link_down(self, link: PeerLink) -> None: ...

    def link_key_sets(self, link: PeerLink, sets: tuple[TopicKeySet, ...]) -> None: ...

    async def store_batches(self, link: PeerLink, batches: Sequence[EventBatch]) -> None:
        """Persist these inbound batches (in order) in one write, or raise storing none."""
        ...

    async def read_log(self, seq: int) -> Sequence[LogRecord]: ...

    async def wait_log(self, seq: int, timeout: float) -> bool: ...

    def outbound(
        self, link: PeerLink, records: Sequence[LogRecord]
    ) -> tuple[ReplicatedEvent, ...]: ...

    async def save_cursor(self, link: PeerLink, seq: int) -> None: ...


class _Closed(Exception):
    pass


class PeerLink:
    """One live link. `address` is the peer's listener when we dialed it, else ''."""

    def __init__(
        self,
        *,
        host: LinkHost,
        transport: Transport,
        protocol: LinkProtocol,
        dialed: bool,
        address: str = "",
        tick_interval: float = 0.2,
    ) -> None:
        self.host = host
        self.protocol = protocol
        self.dialed = dialed
        self.address = address
        self._transport = transport
        self._tick = tick_interval
        self._out: asyncio.Queue[PeerMessage] = asyncio.Queue()
        self._inbound: asyncio.Queue[EventBatch] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._streaming = asyncio.Event()
        self._registered = False
        self.close_detail = ""
        self.last_seen = time.time()
        self.caught_up_at = time.time()

    @property
    def peer_region(self) -> str | None:
        return self.protocol.peer_region

    @property
    def state(self) -> LinkState:
        return self.protocol.state

    async def wait_streaming(self) -> None:
        await self._streaming.wait()

    def statistics(self) -> dict[str, object]:
        p = self.protocol
        return {
            "peer": p.peer_region,
            "state": p.state.value,
            "acked_seq": p.acked_seq,
            "inflight": p.inflight,
            "batches_sent": p.batches_sent,
            "batches_received": p.batches_received,
        }

    # ---- driving --------------------------------------------------------------------------------

    def send(self, actions: list[Action]) -> None:
        """Carry out actions produced outside the link's own tasks (interest, members, drain)."""
        self._execute(actions)

    def drain(self) -> None:
        self._execute(self.protocol.drain(asyncio.get_running_loop().time()))

    def close(self, reason: CloseReason, detail: str = "") -> None:
        self._execute(self.protocol.abort(reason, detail))

    async def run(self) -> CloseReason:
        """Run until the link closes; returns why. Cancelled: closes as SHUTDOWN and re-raises."""
        try:
            await self._run_tasks()
            await self._flush_cursor()
        except asyncio.CancelledError:
            self._execute(self.protocol.abort(CloseReason.SHUTDOWN, "cancelled"))
            raise
        finally:
            self._streaming.clear()
            if self._registered:
                self._registered = False
                self.host.link_down(self)
        reason = self.protocol.close_reason or CloseReason.PEER_CLOSED
        log.info(
            "link to %s closed: %s %s", self.peer_region or "?", reason.value, self.close_detail
        )
        return reason

    async def _flush_cursor(self) -> None:
        """The peer acked up to a seq the pump had no time to save (e.g. the ack that ended a
        drain): save it now, so a clean close never leaves the cursor behind the peer."""
        if self._cursor_pending is None:
            return
        seq, self._cursor_pending = self._cursor_pending, None
        try:
            async with asyncio.timeout(2.0):
                await self.host.save_cursor(self, seq)
        except Exception as exc:  # the peer resends from the older cursor: duplicates, no loss
            log.warning("cursor for %s not saved at close: %r", self.peer_region or "?", exc)

    async def _run_tasks(self) -> None:
        try:
            self._execute(self.protocol.start())
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._reader())
                tg.create_task(self._writer())
                tg.create_task(self._storer())
                tg.create_task(self._pump())
                tg.create_task(self._ticker())
                await self._closed.wait()
                raise _Closed
        except* _Closed:
            pass
        except* (PeerUnavailable, EOFError, ConnectionError) as group:
            self._execute(self.protocol.abort(CloseReason.PEER_CLOSED, str(group.exceptions[0])))
        except* LocalProtocolError as group:  # our bug: say so loudly, close this link
            bug = group.exceptions[0]
            log.error("link to %s broke the protocol", self.peer_region or "?", exc_info=bug)
            self._execute(self.protocol.abort(CloseReason.INTERNAL_ERROR, str(bug)))
        except* PeerProtocolError as group:
            self._execute(
                self.protocol.abort(CloseReason.PROTOCOL_VIOLATION, str(group.exceptions[0]))
            )
        except* FederationError as group:
            self._execute(self.protocol.abort(CloseReason.STORE_FAILED, str(group.exceptions[0])))
        except* Exception as group:  # a bug: close this link, keep the node running
            exc = group.exceptions[0]
            log.error("link to %s failed", self.peer_region or "?", exc_info=exc)
            self._execute(self.protocol.abort(CloseReason.INTERNAL_ERROR, repr(exc)))

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case SendMessage(message):
                    self._out.put_nowait(message)
                case PeerHello(_, members):
                    if self.host.link_up(self, members):
                        self._registered = True
                        self._streaming.set()
                    elif self.protocol.state is not LinkState.CLOSED:
                        self._execute(self.protocol.abort(CloseReason.DUPLICATE))
                case PeerInterest(interest):
                    self.host.link_interest(self, interest)
                    self._wake.set()
                case PeerMembers(members):
                    self.host.link_members(self, members)
                case PeerKeySets(sets):
                    self.host.link_key_sets(self, sets)
                case StoreBatch(batch):
                    self._inbound.put_nowait(batch)
                case AdvanceCursor(seq):
                    self._cursor_pending = seq
                    self._wake.set()
                case CloseLink(_, detail):
                    self.close_detail = detail
                    self._closed.set()

    # ---- tasks ----------------------------------------------------------------------------------

    async def _reader(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pb = await self._transport.recv()
            if pb is None:
                self._execute(self.protocol.peer_closed())
                return
            self.last_seen = time.time()
            self._execute(self.protocol.receive(message_from_pb(pb), loop.time()))

    async def _writer(self) -> None:
        while True:
            message = await self._out.get()
            await self._transport.send(message_to_pb(message))

    async def _storer(self) -> None:
        """Persist before ack: a batch is acked only after `store_batches` returned. The batches
        queued meanwhile are stored together (one group commit), then acked in order."""
        while True:
            batches = [await self._inbound.get()]
            while len(batches) < STORE_GROUP and not self._inbound.empty():
                batches.append(self._inbound.get_nowait())
            await self.host.store_batches(self, batches)
            for batch in batches:
                self._execute(self.protocol.batch_stored(batch.seq))

    _cursor_pending: int | None = None

    async def _pump(self) -> None:
        while True:
            if self._cursor_pending is not None:
                seq = self._cursor_pending
                await self.host.save_cursor(self, seq)  # cancelled here: _flush_cursor retries
                if self._cursor_pending == seq:
                    self._cursor_pending = None
            pos = self.protocol.next_read()
            if pos is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):  # not wait_for: 3.11's can lose a cancel
                        await self._wake.wait()
                continue
            records = await self.host.read_log(pos)
            if self.protocol.next_read() != pos:
                continue  # closed, draining or window changed while we read
            try:  # nothing new: still asked, so a route back on an idle link catches up
                events = self.host.outbound(self, records)
            except ReadRewind as why:  # reconnect: the new link reads from the held cursor
                log.info("link to %s restarts to catch up: %s", self.peer_region or "?", why)
                self.drain()
                continue
            if not records:
                self.caught_up_at = time.time()
                await self.host.wait_log(pos, timeout=0.5)
                continue
            self._execute(self.protocol.send_batch(records[-1].seq, events))

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick)
            self._execute(self.protocol.tick(loop.time()))


class DialedTransport:
    """The dialing side: a `stub.Link()` call."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self._call = call

    async def send(self, message: federation_pb2.PeerMessage) -> None:
        try:
            await self._call.write(message)
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(exc) from exc
        except _FINISHED as exc:  # grpc: "RPC already finished" / a failed batch
            raise _finished(exc) from exc

    async def recv(self) -> federation_pb2.PeerMessage | None:
        try:
            msg = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(exc) from exc
        except _FINISHED as exc:
            raise _finished(exc) from exc
        if msg is grpc.aio.EOF:
            return None
        assert isinstance(msg, raw_wire.PeerMessage)
        return msg


class AcceptedTransport:
    """The accepting side: the servicer context of a `Link` call."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    async def send(self, message: federation_pb2.PeerMessage) -> None:
        try:
            await self._context.write(message)
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(exc) from exc
        except _FINISHED as exc:
            raise _finished(exc) from exc

    async def recv(self) -> federation_pb2.PeerMessage | None:
        try:
            msg = await self._context.read()
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(exc) from exc
        except _FINISHED as exc:
            raise _finished(exc) from exc
        if msg is grpc.aio.EOF:
            return None
        assert isinstance(msg, raw_wire.PeerMessage)
        return msg


def _unavailable(exc: grpc.aio.AioRpcError) -> PeerUnavailable:
    return PeerUnavailable(f"stream broke: {exc.code().name} {exc.details() or ''}".rstrip())


# What grpc.aio raises, besides AioRpcError, on a call whose peer went away under us: the
# dialing side's InvalidStateError ("RPC already finished"), the accepting side's
# ExecuteBatchError (a grpc.aio.InternalError: the write's batch failed).
_FINISHED = (asyncio.InvalidStateError, grpc.aio.BaseError)


def _finished(exc: Exception) -> PeerUnavailable:
    """A write or read on a call that already ended: the stream is gone."""
    return PeerUnavailable(f"stream finished: {exc!r}")
