"""Route a publish's rows to each topic's writing replica; answer the rows forwarded to us.

The I/O shell of gateway/jetstream_roster.py. Every replica of a region on JetStream runs one
`Forwarder` inside its store (gateway/jetstream_store.py):

- it announces itself in the roster (`mg.<r>.w.<replica>`, renewed every ttl/3, a farewell
  with expiry 0 when it stops cleanly, entries dead for over PURGE_AFTER purged) and watches
  every replica's entry (an ordered consumer: no polling);
- `append(rows)` splits the rows by owner (gateway/jetstream_forward_rows.py, pure): rows of
  topics it owns go to its own writer, the others to their owner's inbox as one core NATS
  request per owner (proto/region.proto `ForwardAppend`, the rows' bytes as they will be
  stored), chunked below the server's max payload;
- but only for contended topics: a topic this replica alone writes (each replica its own
  topics, the common case) is written here whoever owns it, with no forwarding cost. A topic
  is contended for CONTENTION_MEMORY after this replica's writer saw another process move
  its head while it planned a batch on it (`contended`, from jetstream_writer's refused
  batch); then its rows go to the owner, so no batch is refused again. When the memory
  lapses the rows are written here again: if the other writer is still there, one refused
  batch sends them back to the owner (one refused batch per CONTENTION_MEMORY, not one in
  three);
- it answers requests on its own inbox with what its writer answered (`ForwardReply`); a
  forwarded row is written here, never forwarded again;
- its entry also carries its client address once the gateway listens (`advertise`), so the
  answer to a publish of a topic routed to another replica names that one (`writer_of`, the
  writer hint of proto/gateway.proto): a client that follows it (meshgate/client/
  region_client.py) saves the hop. In the bench two replicas on one topic spend 1.40x one
  replica's gateway CPU per event with the hop, 1.11x with the hints followed. A hint never
  names an owner a forward just failed to reach (`_unreached`, for one ttl).

Failure rules (why nothing is lost or doubled): a forward that finds no responder (the owner
died or left), times out, or meets an owner that is closing, is written by this replica's own
writer instead. If the owner had in fact committed it, the dedup keys make the local write
answer duplicates at the owner's offsets, as for any retried publish (jetstream_writer). An
owner that answers UNAVAILABLE or FAILED had its append refused by the cluster: that is this
append's answer too.

Trust: the inbox is reachable by anything on the region's NATS cluster, which can write the
region's stream directly anyway; the cluster is inside the region's trust boundary (its
accounts and TLS are the operator's, docs/deploying.md). Rows arrive already checked by the
replica that took the publish, exactly as they would reach its own writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gateway.errors import GatewayClosing, StoreError, StoreUnavailable
from gateway.jetstream_client import JetStreamClient
from gateway.jetstream_errors import is_transient
from gateway.jetstream_forward_rows import Part, decode_rows, encode_rows, plan_parts
from gateway.jetstream_layout import Layout
from gateway.jetstream_reads import pages
from gateway.jetstream_roster import Member, Roster, decode, encode
from gateway.jetstream_watch import watch_latest
from gateway.store import AppendResult, Row
from proto import region_pb2

log = logging.getLogger(__name__)

DEFAULT_TTL = 6.0  # s: a replica that died stops being forwarded to within this
FORWARD_TIMEOUT = 10.0  # s: beyond an owner's slowest commit (a 5 s request, replans)
PURGE_AFTER = 600.0  # s an entry stays dead before it is purged from the stream
CONTENTION_MEMORY = 10.0  # s a topic stays contended after another writer moved its head
STOP_TIMEOUT = 2.0  # s for each network step of a clean stop

Submit = Callable[[Sequence[Row]], Awaitable[list[AppendResult]]]
Committed = Callable[[frozenset[str], int], None]  # (topics, last seq): wake local readers


# -- the shell ---------------------------------------------------------------------------------


class Forwarder:
    """This replica's roster entry, its view of the others, its inbox, and the routing."""

    def __init__(
        self,
        client: JetStreamClient,
        layout: Layout,
        replica: str,
        submit: Submit,
        *,
        committed: Committed,
        last_seq: Callable[[], int],
        ttl: float = DEFAULT_TTL,
        timeout: float = FORWARD_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._layout = layout
        self.replica = replica
        self._submit = submit  # this replica's own writer: never forwards
        self._committed = committed
        self._last_seq = last_seq
        self.ttl = ttl
        self._timeout = timeout
        self._clock = clock
        self.roster = Roster(replica)
        self._inbox = layout.inbox(replica)
        self.address = ""  # our client API (host:port) once advertised: writer hints to us
        self._closing = False
        self._subs: list[Subscription] = []
        self._beat: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()
        self._contended: dict[str, float] = {}  # topic -> until when its rows go to the owner
        self._unreached: dict[str, float] = {}  # replica -> until when hints do not name it
        # what this replica did (metrics): rows sent to owners, rows answered for others, rows
        # written here after a forward found no owner
        self.forwarded = 0
        self.answered = 0
        self.fallbacks = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def started(
        cls, client: JetStreamClient, layout: Layout, replica: str, submit: Submit, **kw: Any
    ) -> Forwarder:
        """A started Forwarder (stopped again if starting failed)."""
        forwarder = cls(client, layout, replica, submit, **kw)
        try:
            await forwarder.start()
        except BaseException:
            await forwarder.stop()
            raise
        return forwarder

    async def start(self) -> None:
        """Serve our inbox, announce ourselves, and read the roster before the first append."""
        nc = self._client.nc
        try:
            self._subs.append(await nc.subscribe(self._inbox, cb=self._on_request))
        except Exception as exc:
            raise StoreUnavailable(f"store forward inbox failed: {exc}") from exc
        await self._announce(self._clock() + self.ttl)
        async for page in pages(self._client, self._layout.all_members):
            for record in page:
                self._observe(record.data)
        self._subs.append(
            await watch_latest(self._client, self._layout.all_members, self._on_entry)
        )
        self._beat = asyncio.get_running_loop().create_task(self._heartbeat(), name="js-roster")

    async def stop(self) -> None:
        """Leave the roster and stop taking forwards; answer those already taken. Idempotent.

        The store's writer must still run: the answers still being written go through it."""
        if self._closing:
            return
        self._closing = True
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._beat
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._announce(0.0)  # the others stop forwarding to us now, not in ttl
        for sub in self._subs:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await sub.unsubscribe()
        if self._answering:
            await asyncio.gather(*self._answering, return_exceptions=True)

    # -- the roster --------------------------------------------------------------------------

    async def advertise(self, address: str) -> None:
        """Where clients reach this replica: in our entry from now on (announced at once, so
        the others' writer hints name it before our next heartbeat)."""
        self.address = address
        try:
            await self._announce(self._clock() + self.ttl)
        except StoreError as exc:  # the next heartbeat announces it
            log.warning("roster entry with our address not announced yet: %s", exc)

    async def _announce(self, expires: float) -> None:
        member = Member(self.replica, self._inbox, expires, self.address)
        await self._client.put(self._layout.member(self.replica), encode(member))

    def _observe(self, data: bytes) -> None:
        member = decode(data)
        if member is None:
            log.warning("ignoring a malformed roster entry")
            return
        self.roster.observe(member, self._clock())

    async def _on_entry(self, msg: Msg) -> None:
        self._observe(msg.data)

    async def _heartbeat(self) -> None:
        task = asyncio.current_task()
        while True:
            # Python 3.11's wait_for inside nats-py can swallow a cancel (jetstream_interest)
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            await asyncio.sleep(self.ttl / 3)
            now = self._clock()
            try:
                await self._announce(now + self.ttl)
                for replica in self.roster.stale(now, PURGE_AFTER):
                    await self._client.purge(self._layout.member(replica))
                    self.roster.forget(replica, now)
            except StoreError as exc:  # a leader election: the entry lives until its expiry
                log.warning("roster entry not renewed (retried): %s", exc)

    # -- appends -----------------------------------------------------------------------------

    def contended(self, topics: frozenset[str]) -> None:
        """Another process moved these topics' heads under our writer: route them to owners."""
        until = self._clock() + CONTENTION_MEMORY
        for topic in topics:
            self._contended[topic] = until

    def contended_topics(self) -> frozenset[str]:
        """The topics routed to their owners now."""
        now = self._clock()
        return frozenset(t for t, until in self._contended.items() if until > now)

    def writer_of(self, topic: str) -> str | None:
        """The client address of the replica our appends to `topic` go to now, when that is
        another replica that advertised one (a writer hint); else None."""
        if topic not in self._contended:
            return None
        now = self._clock()
        owner = self._route(topic, now)
        if owner is None or self._unreached.get(owner.replica, 0.0) > now:
            return None  # ours, or a forward to it just fell back: it may be gone
        return owner.address or None

    def _route(self, topic: str, now: float) -> Member | None:
        until = self._contended.get(topic)
        if until is None:
            return None
        if until <= now:
            del self._contended[topic]
            return None
        return self.roster.owner(topic, now)

    async def append(self, rows: Sequence[Row]) -> list[AppendResult]:
        """Store `rows`, each contended topic's through its owner; one result per row, in order."""
        if not self._contended or len(self.roster.live) == 1:  # nothing to route
            return await self._submit(rows)
        now = self._clock()
        limit = self._client.nc.max_payload - 1024
        parts = plan_parts(rows, lambda topic: self._route(topic, now), limit)
        if len(parts) == 1:
            return await self._write(parts[0], rows)
        answers = await asyncio.gather(
            *(self._write(part, [rows[i] for i in part.indexes]) for part in parts),
            return_exceptions=True,
        )
        out: list[AppendResult | None] = [None] * len(rows)
        for part, answer in zip(parts, answers, strict=True):
            if isinstance(answer, BaseException):
                raise answer  # each part stays durable on its own (as the writer's batches)
            for i, result in zip(part.indexes, answer, strict=True):
                out[i] = result
        return [r for r in out if r is not None]

    async def _write(self, part: Part, rows: Sequence[Row]) -> list[AppendResult]:
        if part.owner is None:
            return await self._submit(rows)
        try:
            msg = await self._client.nc.request(part.owner.inbox, encode_rows(rows), self._timeout)
        except Exception as exc:
            if not is_transient(exc):
                raise StoreError(f"store forward failed: {exc}") from exc
            return await self._fall_back(rows, part.owner, f"{type(exc).__name__} {exc}")
        reply = region_pb2.ForwardReply()
        try:
            reply.ParseFromString(msg.data)
        except DecodeError:
            return await self._fall_back(rows, part.owner, "a malformed reply")
        outcome = reply.outcome
        if outcome == region_pb2.ForwardReply.STORED and len(reply.results) == len(rows):
            self.forwarded += len(rows)
            self._committed(frozenset(row[0] for row in rows), reply.last_seq)
            return [AppendResult(r.offset, r.duplicate) for r in reply.results]
        if outcome == region_pb2.ForwardReply.UNAVAILABLE:
            raise StoreUnavailable(reply.error or "store append failed: no quorum")
        if outcome == region_pb2.ForwardReply.FAILED:
            raise StoreError(reply.error or "store append failed")
        return await self._fall_back(rows, part.owner, "it is closing")

    async def _fall_back(self, rows: Sequence[Row], owner: Member, why: str) -> list[AppendResult]:
        log.info("writing %d rows here, not at %s: %s", len(rows), owner.replica, why)
        self.fallbacks += len(rows)
        self._unreached[owner.replica] = self._clock() + self.ttl  # until the roster knows
        return await self._submit(rows)

    # -- answering ---------------------------------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        # nats-py runs one subscription's callbacks one at a time: answer in a task, so the
        # forwards of several replicas join one batch of our writer
        task = asyncio.get_running_loop().create_task(self._answer(msg))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, msg: Msg) -> None:
        reply = region_pb2.ForwardReply()
        try:
            rows = decode_rows(msg.data)
        except ValueError as exc:
            reply.outcome = region_pb2.ForwardReply.FAILED
            reply.error = str(exc)
        else:
            await self._store(rows, reply)
        with contextlib.suppress(Exception):  # the sender is gone: it falls back by itself
            await msg.respond(reply.SerializeToString())

    async def _store(self, rows: Sequence[Row], reply: region_pb2.ForwardReply) -> None:
        if self._closing:
            reply.outcome = region_pb2.ForwardReply.CLOSING
            return
        try:
            results = await self._submit(rows)
        except GatewayClosing:
            reply.outcome = region_pb2.ForwardReply.CLOSING
        except StoreUnavailable as exc:
            reply.outcome = region_pb2.ForwardReply.UNAVAILABLE
            reply.error = str(exc)
        except StoreError as exc:
            reply.outcome = region_pb2.ForwardReply.FAILED
            reply.error = str(exc)
        else:
            self.answered += len(rows)
            reply.outcome = region_pb2.ForwardReply.STORED
            reply.last_seq = self._last_seq()
            add = reply.results.add
            for result in results:
                add(offset=result.offset, duplicate=result.duplicate)
