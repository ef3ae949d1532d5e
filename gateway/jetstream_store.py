"""EventStore on a NATS JetStream cluster: the region's state lives in the cluster, not here.

Theory of operation (each part where it is enforced):

- ONE stream per region, every record a subject of it (gateway/jetstream_layout.py): events
  named by their (topic, source, id) (`seq` = the stream sequence, global and increasing in
  commit order), per-topic heads (next offset), group records, cursors. Nothing the contract
  promises is kept only in this process: another process on the same stream sees the same
  store (gateway/jetstream_version.py: of the same layout).
- Appends go through one writer task per process (gateway/jetstream_writer.py): group commit
  into atomic batches (server 2.12+), with optimistic concurrency on the topic heads and
  create-if-absent events, so several processes may append to one topic at once. Each
  topic still has one writing replica (gateway/jetstream_roster.py): the others forward its
  rows to it and tell clients where it is (gateway/jetstream_forward.py: `writer_of`), so
  replicas do not race for a head. Rule
  (persist before ack): nothing is answered before the cluster acknowledged the batch (R3:
  stored on a quorum; the test cluster runs `sync_interval: always`, i.e. fsync before ack; the
  NATS default syncs every 2 minutes and relies on the replicas).
- Listeners run after our own commits and, through an ordered push consumer on the topic
  heads (headers only: one message per topic per batch, not per event), after commits of
  other processes: a publish through one gateway wakes readers in another. The same follower
  keeps the writer's cached heads current (a guess the server checks), so a writer does not
  learn of another's commit only from its own refused batch.
- Reads are direct gets (`allow_direct`): any replica answers, a read does not wait for writes.
  Where each reader left off is remembered (jetstream_reads.Positions): reading on is one get.
- Durable groups are durable consumers of the stream (`open_group`, gateway/jetstream_groups.py):
  their work, acks and redeliveries are shared by every gateway of the region.

Limits (docs/deploying.md): `offset_at_time` and `apply_retention` scan the topic's events
(gateway/jetstream_reads.py); a new offset is a binary search. A reader's start, `topic_stats`
and the gauges do not (the server counts; heads and events carry the bytes appended), but for
a topic with a gap, whose bytes are summed (the gauges: once per BYTES_EVERY).

Error handling: nats-py errors never leave the store (gateway/jetstream_client.py names them):
a cluster that is unreachable or without quorum is StoreUnavailable (UNAVAILABLE), as is a
batch that kept conflicting; anything else a StoreError. After `aclose`, GatewayClosing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence

from nats.aio.msg import Msg

from eventmodel import filters
from gateway.errors import GatewayClosing
from gateway.jetstream_client import CONNECT_TIMEOUT, JetStreamClient, Record
from gateway.jetstream_errors import patiently
from gateway.jetstream_forward import Forwarder
from gateway.jetstream_groups import JetStreamGroup
from gateway.jetstream_layout import (
    H_LAST_DELTA,
    H_NEXT,
    H_OFFSET,
    Layout,
    appended_bytes,
    stored_event,
)
from gateway.jetstream_lease import JetStreamLease
from gateway.jetstream_reads import (
    GaugeStats,
    Positions,
    first_offset_since,
    marks,
    pages,
    retention_cut,
    seq_at_offset,
    topic_bounds,
    topic_stats,
)
from gateway.jetstream_records import StreamRecords
from gateway.jetstream_version import check_layout_version
from gateway.jetstream_watch import watch_new_headers
from gateway.jetstream_writer import JetStreamWriter
from gateway.store import (
    AppendListener,
    AppendListeners,
    AppendResult,
    Row,
    RowAppends,
    StoredEvent,
    TopicStats,
)

log = logging.getLogger(__name__)

BYTES_EVERY = 60.0  # s a topic's stored-bytes gauge may lag: summing it reads every event


class JetStreamEventStore(StreamRecords, RowAppends):
    """EventStore over the stream of `region` on the cluster at `servers`."""

    def __init__(
        self,
        servers: Sequence[str],
        region: str,
        *,
        replicas: int = 3,
        connect_timeout: float = CONNECT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        forward: bool = True,
    ) -> None:
        """`forward=False`: this process writes every topic itself, racing the region's
        other replicas for the heads (correct, slower; for tests of the writer's concurrency)."""
        self._servers = list(servers)
        self._layout = Layout(region)
        self._replicas = replicas
        self._connect_timeout = connect_timeout
        self._clock = clock
        self._listeners = AppendListeners()
        self._last_seq = 0
        self._client: JetStreamClient | None = None
        self._writer: JetStreamWriter | None = None
        self._forward = forward
        self._forwarder: Forwarder | None = None
        self._positions = Positions()
        self._gauges = GaugeStats(BYTES_EVERY, clock)
        self._closed = False
        # this process among the region's gateways (lease holder, metrics label)
        self.replica = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create or update the region's stream, start the writer and the follower.

        Raises StoreUnavailable("cannot reach NATS at ...") when no server answers."""
        client = await JetStreamClient.connect(
            self._servers, self._layout.stream, timeout=self._connect_timeout
        )
        try:
            # a cluster may refuse for a moment ("no suitable peers for placement, peer
            # offline" while a node catches up) and a stream just created may not answer yet
            # ("no responders"): both are waited out (bounded). Both steps can be repeated:
            # the create is of the same config, the check reads and writes the same mark
            await patiently(lambda: client.ensure_stream(self._layout.all_subjects, self._replicas))
            await patiently(lambda: check_layout_version(client, self._layout))
            last = await client.get_last(self._layout.all_events)
            self._last_seq = last.seq if last else 0
            await watch_new_headers(client, self._layout.all_heads, self._on_remote)
        except BaseException:
            await client.close()
            raise
        self._client = client
        self._writer = JetStreamWriter(
            client,
            self._layout,
            clock=self._clock,
            committed=self._notify,
            contended=self._contended,
        )
        self._writer.start()
        try:
            if self._forward:
                self._forwarder = await Forwarder.started(
                    client,
                    self._layout,
                    self.replica,
                    self._writer.submit,
                    committed=self._notify,
                    last_seq=lambda: self._last_seq,
                    clock=self._clock,
                )
        except BaseException:
            await self._writer.stop()
            await client.close()
            raise

    async def aclose(self) -> None:
        """Leave the roster, commit the queued appends, then close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._forwarder is not None:
            await self._forwarder.stop()
        if self._writer is not None:
            await self._writer.stop()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.close(), 10)

    @property
    def layout(self) -> Layout:
        """The subjects of this region's stream."""
        return self._layout

    @property
    def client(self) -> JetStreamClient:
        """The store's connection, once open (gateway/jetstream_interest.py writes beside it)."""
        return self._js()

    def lease(
        self, name: str, *, holder: str, ttl: float, clock: Callable[[], float] = time.time
    ) -> JetStreamLease:
        """The region lease `name` (gateway/jetstream_lease.py; gateway/jetstream_federation.py
        holds `federation`)."""
        return JetStreamLease(self._js(), self._layout, name, holder=holder, ttl=ttl, clock=clock)

    def writer_of(self, topic: str) -> str | None:
        return self._forwarder.writer_of(topic) if self._forwarder is not None else None

    async def advertise(self, address: str) -> None:
        if self._forwarder is not None:
            await self._forwarder.advertise(address)

    @property
    def forwarder(self) -> Forwarder | None:
        """The routing of appends to each topic's writing replica (None: `forward=False`)."""
        return self._forwarder

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def on_append(self, listener: AppendListener) -> Callable[[], None]:
        return self._listeners.add(listener)

    def _notify(self, topics: frozenset[str], last: int) -> None:
        if last > self._last_seq:
            self._last_seq = last
        for listener in self._listeners.snapshot():
            try:
                listener(topics, self._last_seq)
            except Exception:
                log.exception("append listener failed")

    def _contended(self, topics: frozenset[str]) -> None:
        if self._forwarder is not None:
            self._forwarder.contended(topics)

    async def _on_remote(self, msg: Msg) -> None:
        """A topic head moved by anyone (us included): wake readers once for what is new.

        One message per topic per batch, not per event; the head says how far its batch's
        last event is (H_LAST_DELTA), so `last_seq` is that event's seq."""
        headers = msg.headers or {}
        head = int(msg.metadata.sequence.stream)
        topic = self._layout.topic_of(msg.subject)
        nxt = headers.get(H_NEXT)
        if nxt is not None and self._writer is not None:
            # the writer plans its next batch on this head, not on one it would learn of only
            # from a refused batch (two replicas on one topic)
            self._writer.observe_head(topic, head, int(nxt), appended_bytes(headers))
        seq = head + int(headers.get(H_LAST_DELTA, 0))
        if seq > self._last_seq:
            self._notify(frozenset({topic}), seq)

    def _js(self) -> JetStreamClient:
        if self._closed or self._client is None:
            raise GatewayClosing("store is closed")
        return self._client

    # -- appends -----------------------------------------------------------------------------

    async def _append_rows(self, rows: Sequence[Row]) -> list[AppendResult]:
        self._js()
        assert self._writer is not None
        if self._forwarder is not None:
            return await self._forwarder.append(rows)
        return await self._writer.submit(rows)

    # -- reads -------------------------------------------------------------------------------

    def _stored(self, records: Sequence[Record]) -> list[StoredEvent]:
        return [stored_event(self._layout, r.seq, r.subject, r.headers, r.data) for r in records]

    async def _seq_at_offset(self, topic: str, offset: int) -> int | None:
        return await seq_at_offset(self._js(), self._layout, topic, offset)

    async def read(self, topic: str, from_offset: int, limit: int) -> list[StoredEvent]:
        if limit <= 0:
            return []
        start = self._positions.get(topic, from_offset)
        if start is None:
            start = await self._seq_at_offset(topic, from_offset)
            if start is None:
                return []
        events = self._stored(
            await self._js().get_batch(start, self._layout.topic_events(topic), limit)
        )
        if events:  # where this reader goes on from: its next read is one get, no search
            self._positions.put(topic, events[-1].offset + 1, events[-1].seq + 1)
        return events

    async def read_offsets(self, topic: str, offsets: Sequence[int]) -> list[StoredEvent]:
        js = self._js()
        subject = self._layout.topic_events(topic)

        async def one(offset: int) -> Record | None:
            seq = self._positions.get(topic, offset) or await self._seq_at_offset(topic, offset)
            found = await js.get_next(seq, subject) if seq is not None else None
            return found if found is not None and int(found.headers[H_OFFSET]) == offset else None

        found = await asyncio.gather(*(one(o) for o in sorted(set(offsets))))
        return self._stored([r for r in found if r is not None])

    async def read_since(self, seq: int, limit: int) -> list[StoredEvent]:
        if limit <= 0:
            return []
        return self._stored(await self._js().get_batch(seq + 1, self._layout.all_events, limit))

    async def _scan(self, subject: str) -> list[Record]:
        """Every record on `subject`: only for small sets (heads, groups)."""
        return [r async for page in pages(self._js(), subject) for r in page]

    async def _next_offset(self, topic: str) -> int | None:
        head = await self._js().get_last(self._layout.head(topic))
        return int(head.data) if head is not None else None

    async def offset_at_time(self, topic: str, when: float) -> int:
        found = await first_offset_since(self._js(), self._layout, topic, when)
        return found if found is not None else await self._next_offset(topic) or 0

    async def topic_stats(self, topic: str | None = None) -> list[TopicStats]:
        names = [topic] if topic is not None else await self._topic_names()
        return await topic_stats(self._js(), self._layout, names)

    async def topic_bounds(self, topic: str) -> tuple[int, int] | None:
        return await topic_bounds(self._js(), self._layout, topic)

    async def gauge_stats(self) -> list[TopicStats]:
        return await self._gauges.stats(self._js(), self._layout, await self._topic_names())

    async def _topic_names(self) -> list[str]:
        return sorted(
            self._layout.topic_of(h.subject) for h in await self._scan(self._layout.all_heads)
        )

    # -- groups and cursors (one subject each; the latest message is the value) -------------

    async def open_group(
        self,
        topic: str,
        group: str,
        flts: Sequence[filters.Filter],
        committed: int,
        *,
        ack_timeout: float,
        max_ack_pending: int,
        max_redelivery_delay: float,
        max_batch_bytes: int | None,
    ) -> JetStreamGroup:
        """The group's dispatcher over its durable consumer (gateway/jetstream_groups.py),
        shared with the region's other replicas; a new consumer starts at `committed`."""
        js = self._js()
        last = await js.get_last(self._layout.all_subjects)  # before the offset lookup: no gap
        start = await self._seq_at_offset(topic, committed)
        if start is None:
            start = (last.seq if last is not None else 0) + 1
        dispatcher = JetStreamGroup(
            self,
            js,
            self._layout,
            topic,
            group,
            flts,
            committed,
            ack_timeout,
            max_ack_pending=max_ack_pending,
            max_redelivery_delay=max_redelivery_delay,
            max_batch_bytes=max_batch_bytes,
        )
        await dispatcher.open_consumer(start)
        return dispatcher

    # -- deletions ---------------------------------------------------------------------------

    async def apply_retention(
        self, topic: str, *, older_than: float | None, max_bytes: int | None
    ) -> int:
        """Purge `topic`'s oldest events beyond the limits (a prefix in offset order)."""
        rows = await marks(self._js(), self._layout, topic)
        cut = retention_cut(rows, older_than=older_than, max_bytes=max_bytes)
        if cut == 0:
            return 0
        below = rows[cut][0] if cut < len(rows) else rows[-1][0] + 1
        return await self._js().purge(self._layout.topic_events(topic), below_seq=below)

    async def delete_events(self, seqs: Sequence[int]) -> int:
        """Delete each event; the same event appended again is then a new one (as in SQLite)."""
        js = self._js()
        deleted = 0
        for seq in sorted(set(seqs)):
            found = await js.get_next(seq, self._layout.all_events)
            if found is None or found.seq != seq:
                continue
            if await js.delete(seq):  # its (topic, source, id) subject goes with it
                deleted += 1
        return deleted
