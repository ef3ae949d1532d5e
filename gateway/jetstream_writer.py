"""The JetStream store's append path: group commit into atomic batches, optimistic concurrency.

Theory of operation:

- Appends are jobs on one queue; one writer task takes every job queued at that moment (up to
  MAX_BATCH_MESSAGES messages) and plans ONE atomic batch (gateway/jetstream_layout.py): new
  heads, then the events, each created only if its (topic, source, id) subject is absent.
  Rule (persist before ack): a job is answered only after the cluster acknowledged the
  batch's commit (R3: a quorum stored it).
- `Heads` caches each topic's (head sequence, next offset, bytes appended), from our commits
  and from the store's follower of every head move (`observe_head`: another replica's commit
  is known before our next plan, not only from a refused batch). A batch expects each head it moves
  at its cached sequence; another process that appended first, or a (topic, source, id) stored
  before, makes the server refuse the WHOLE batch (`Conflict`). The writer then re-reads the
  heads (one get per topic; every second time also the batch's events by their dedup
  subjects, one get per row) and plans again (at most MAX_REPLANS).
- A call bigger than one batch is split into batches of MAX_ROWS rows: all-or-nothing
  holds per batch (450 events), not for the whole call; each part is durable when
  answered, and a repeat of the call answers the stored part as duplicates.

Crash mid-batch: the server holds an uncommitted batch apart and drops it (commit never sent,
or timeout), so a crash leaves nothing of a batch or all of it. A batch committed whose ack was
lost is found on retry: its events exist, so the retry answers duplicates at the same offsets.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayClosing, StoreError, StoreUnavailable
from gateway.jetstream_client import JetStreamClient, Put
from gateway.jetstream_errors import Conflict
from gateway.jetstream_layout import (
    H_BYTES,
    H_EXPECT_SUBJECT_SEQ,
    H_LAST_DELTA,
    H_NEXT,
    H_OFFSET,
    Layout,
    appended_bytes,
    dedup_key,
    event_headers,
)
from gateway.store import AppendResult, Row

log = logging.getLogger(__name__)

MAX_BATCH_MESSAGES = 900  # the server's default atomic batch limit is 1,000 messages
MAX_ROWS = MAX_BATCH_MESSAGES // 2  # a row costs its event + at most 1 head
MAX_REPLANS = 32

Committed = Callable[[frozenset[str], int], None]  # (topics appended to, last event seq)


@dataclass(slots=True)
class _Job:
    rows: Sequence[Row]
    future: asyncio.Future[list[AppendResult]]


@dataclass(slots=True)
class _Plan:
    puts: list[Put] = field(default_factory=list)
    results: list[list[AppendResult]] = field(default_factory=list)
    heads: dict[str, tuple[int, int]] = field(default_factory=dict)  # topic -> (next, bytes)
    events: int = 0


class JetStreamWriter:
    """The writer task over `client`; `submit` rows, get their acknowledged results."""

    def __init__(
        self,
        client: JetStreamClient,
        layout: Layout,
        *,
        clock: Callable[[], float],
        committed: Committed,
        contended: Callable[[frozenset[str]], None] = lambda _topics: None,
    ) -> None:
        self._client = client
        self._layout = layout
        self._clock = clock
        self._committed = committed
        self._contended = contended  # topics another process moved while we planned on them
        # topic -> (head seq, next offset, payload bytes appended through it)
        self._heads: dict[str, tuple[int, int, int]] = {}
        self._jobs: collections.deque[_Job | None] = collections.deque()  # None: stop
        self._queued = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="js-store-writer")

    async def stop(self) -> None:
        """Commit what is queued, then end the task. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        self._jobs.append(None)
        self._queued.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, rows: Sequence[Row]) -> list[AppendResult]:
        if self._stopping:
            raise GatewayClosing("store is closed")
        if self._task is None or self._task.done():
            raise StoreError("store writer is not running")
        out: list[AppendResult] = []
        for start in range(0, max(1, len(rows)), MAX_ROWS):
            part = rows[start : start + MAX_ROWS]
            job = _Job(part, asyncio.get_running_loop().create_future())
            self._jobs.append(job)
            self._queued.set()
            out.extend(await job.future)
        return out

    # -- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._jobs:
                self._queued.clear()
                await self._queued.wait()
                continue
            jobs: list[_Job] = []
            size = 0
            while self._jobs and self._jobs[0] is not None:
                head = self._jobs[0]
                if jobs and size + len(head.rows) > MAX_ROWS:
                    break
                self._jobs.popleft()
                jobs.append(head)
                size += len(head.rows)
            live = [j for j in jobs if not j.future.cancelled()]
            if live:
                await self._commit_guarded(live)
            if self._jobs and self._jobs[0] is None and not jobs:
                return

    async def _commit_guarded(self, jobs: list[_Job]) -> None:
        try:
            results, topics, last = await self._commit(jobs)
        except Exception as exc:
            if not isinstance(exc, StoreUnavailable):
                log.exception("store writer failed a batch")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(
                        type(exc)(str(exc)) if isinstance(exc, StoreError) else StoreError(str(exc))
                    )
            return
        if topics:
            self._committed(topics, last)
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    async def _commit(
        self, jobs: list[_Job]
    ) -> tuple[list[list[AppendResult]], frozenset[str], int]:
        topics = {row[0] for job in jobs for row in job.rows}
        await self._load_heads([t for t in topics if t not in self._heads])
        known: dict[tuple[str, str], int] = {}
        for attempt in range(MAX_REPLANS):
            plan = self._plan(jobs, known)
            if plan.events == 0:
                return plan.results, frozenset(), 0
            planned = {t: self._heads[t][0] for t in plan.heads}
            try:
                last = await self._client.publish_batch(plan.puts, "append")
            except Conflict:
                # most conflicts are another writer's head move: re-read the heads (one get per
                # topic); only when that was not enough, the keys too (one get per row)
                await self._load_heads(sorted(topics))
                moved = frozenset(t for t, seq in planned.items() if self._heads[t][0] != seq)
                if moved:  # another process writes these topics too (jetstream_forward)
                    self._contended(moved)
                if attempt % 2:
                    known = await self._load_stored(jobs)
                continue
            for index, (topic, (nxt, appended)) in enumerate(plan.heads.items()):
                # heads come first in the batch, in plan.heads' order: head i has sequence
                # last - len(puts) + 1 + i
                self.observe_head(topic, last - len(plan.puts) + 1 + index, nxt, appended)
            return plan.results, frozenset(plan.heads), last
        raise StoreUnavailable("store append failed: the batch kept conflicting with other writers")

    def _plan(self, jobs: list[_Job], known: dict[tuple[str, str], int]) -> _Plan:
        """Offsets for every new row; duplicates (stored, or earlier in this batch) answered."""
        plan = _Plan()
        events: list[Put] = []
        taken = dict(known)
        nexts = {t: self._heads[t][1:] for job in jobs for t, *_ in job.rows}
        now = self._clock()
        for job in jobs:
            answers: list[AppendResult] = []
            for topic, event, origin, blob in job.rows:
                key = dedup_key(event.source, event.id)
                if (topic, key) in taken:
                    answers.append(AppendResult(taken[(topic, key)], True))
                    continue
                offset, appended = nexts[topic]
                appended += len(event.payload)
                nexts[topic] = plan.heads[topic] = (offset + 1, appended)
                taken[(topic, key)] = offset
                headers = event_headers(offset, origin, blob, now, appended)
                headers[H_EXPECT_SUBJECT_SEQ] = "0"  # create if absent: the dedup check
                events.append(Put(self._layout.event(topic, key), event.payload, headers))
                answers.append(AppendResult(offset, False))
            plan.results.append(answers)
        size = len(plan.heads) + len(events)
        heads = [
            Put(
                self._layout.head(topic),
                str(nxt).encode(),
                # how far this batch's last event is from this head: a replica that sees only
                # the heads (jetstream_store's follower) knows the batch's last seq
                {
                    H_EXPECT_SUBJECT_SEQ: str(self._heads[topic][0]),
                    H_LAST_DELTA: str(size - 1 - i),
                    H_NEXT: str(nxt),
                    H_BYTES: str(appended),
                },
            )
            for i, (topic, (nxt, appended)) in enumerate(plan.heads.items())
        ]
        plan.puts = [*heads, *events]
        plan.events = len(events)
        return plan

    def observe_head(self, topic: str, seq: int, nxt: int, appended: int) -> None:
        """The head of `topic` is at `seq` with next offset `nxt` and `appended` bytes (our
        commit, or another writer's seen by the store's follower): keep the newest. Only a
        guess the server checks, so a stale one costs a re-plan, never a wrong offset."""
        cached = self._heads.get(topic)
        if cached is None or seq > cached[0]:
            self._heads[topic] = (seq, nxt, appended)

    async def _load_heads(self, topics: Sequence[str]) -> None:
        records = await asyncio.gather(
            *(self._client.get_last(self._layout.head(t)) for t in topics)
        )
        for topic, record in zip(topics, records, strict=True):
            if record is None:
                self._heads.setdefault(topic, (0, 0, 0))
            else:  # a direct get may come from a replica a moment behind: keep the newest
                self.observe_head(
                    topic, record.seq, int(record.data), appended_bytes(record.headers)
                )

    async def _load_stored(self, jobs: list[_Job]) -> dict[tuple[str, str], int]:
        wanted = sorted(
            {(topic, dedup_key(ev.source, ev.id)) for job in jobs for topic, ev, *_ in job.rows}
        )
        records: list[Any] = await asyncio.gather(
            *(self._client.get_last(self._layout.event(t, k)) for t, k in wanted)
        )
        return {
            wanted[i]: int(record.headers[H_OFFSET])
            for i, record in enumerate(records)
            if record is not None
        }
