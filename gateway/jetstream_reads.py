"""Reads of the JetStream store that walk a topic: an offset's sequence, pages, marks, stats.

They only read (direct gets, any current replica answers), so they are plain functions over a
`JetStreamClient` and a `Layout`, shared by the store and the groups (a new group's consumer
starts at the sequence of its committed offset); `retention_cut` is the pure decision of
`apply_retention`. Time O(events of the topic); memory a page plus a small tuple per event;
except `topic_bounds` and `topic_figures`, which the server answers without a scan.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from gateway.jetstream_client import JetStreamClient, Record
from gateway.jetstream_layout import H_BYTES, H_OFFSET, H_RECEIVED, Layout, appended_bytes
from gateway.store import TopicStats

SCAN = 1_000  # records per page when a call scans a topic


async def seq_at_offset(
    js: JetStreamClient, layout: Layout, topic: str, offset: int, *, above: int = 1
) -> int | None:
    """The sequence of `topic`'s first event with offset >= `offset` (None: there is none).

    Events are named by their dedup key, not their offset, but offsets grow with sequences
    within a topic (jetstream_layout's invariants), so this is a binary search over sequences
    from `above` (a sequence known not to be past that event): one get when the first event
    from there already qualifies (a topic read from its start), about log2(seq) gets else."""
    subject = layout.topic_events(topic)
    first = await js.get_next(above, subject)
    if first is None:
        return None
    if int(first.headers[H_OFFSET]) >= offset:
        return first.seq
    last = await js.get_last(subject)
    if last is None or int(last.headers[H_OFFSET]) < offset:
        return None
    lo, hi = first.seq + 1, last.seq  # smallest x with offset(first event at seq >= x) >= offset
    while lo < hi:
        mid = (lo + hi) // 2
        found = await js.get_next(mid, subject)
        if found is not None and int(found.headers[H_OFFSET]) >= offset:
            hi = mid
        else:
            lo = mid + 1
    found = await js.get_next(lo, subject)
    return found.seq if found is not None else None


class Positions:
    """Where readers left off: (topic, offset) -> the sequence to read that offset from.

    After a read ends at the event (seq s, offset o), the topic's next read starts at offset
    o + 1, and no event of the topic at or past that offset is below seq s + 1: so the next
    read is one batch get, with no search. LRU, at most `size` entries."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seqs: collections.OrderedDict[tuple[str, int], int] = collections.OrderedDict()

    def get(self, topic: str, offset: int) -> int | None:
        seq = self._seqs.get((topic, offset))
        if seq is not None:
            self._seqs.move_to_end((topic, offset))
        return seq

    def put(self, topic: str, offset: int, seq: int) -> None:
        self._seqs[(topic, offset)] = seq
        self._seqs.move_to_end((topic, offset))
        if len(self._seqs) > self._size:
            self._seqs.popitem(last=False)


async def pages(
    js: JetStreamClient, subject: str, *, through: int | None = None
) -> AsyncIterator[list[Record]]:
    """Every record on `subject` in sequence order, one page at a time (memory: a page); with
    `through`, only those with a sequence up to it."""
    seq = 1
    while through is None or seq <= through:
        page = await js.get_batch(seq, subject, SCAN)
        if through is not None:
            page = [r for r in page if r.seq <= through]
        if page:
            yield page
        if len(page) < SCAN:
            return
        seq = page[-1].seq + 1


Mark = tuple[int, int, float, int]  # (seq, offset, received_at, size) of one stored event


async def marks(js: JetStreamClient, layout: Layout, topic: str) -> list[Mark]:
    """The marks of each event of `topic` stored when the call began, in order, payloads
    dropped. Up to the topic's last event then, not on: a scan that followed a topic's
    appends would not end while they came faster than it reads (a gauge refresh did that,
    for as long as a publisher kept up its rate)."""
    subject = layout.topic_events(topic)
    last = await js.get_last(subject)
    if last is None:
        return []
    return [
        (r.seq, int(r.headers[H_OFFSET]), float(r.headers[H_RECEIVED]), len(r.data))
        async for page in pages(js, subject, through=last.seq)
        for r in page
    ]


async def first_offset_since(
    js: JetStreamClient, layout: Layout, topic: str, when: float
) -> int | None:
    """The offset of `topic`'s first stored event received at or after `when` (None: none)."""
    async for page in pages(js, layout.topic_events(topic)):
        for record in page:
            if float(record.headers[H_RECEIVED]) >= when:
                return int(record.headers[H_OFFSET])
    return None


SumBytes = Callable[[JetStreamClient, Layout, str], Awaitable[int]]


async def summed_bytes(js: JetStreamClient, layout: Layout, name: str) -> int:
    """The payload bytes of `name`'s stored events, read one by one (a scan)."""
    return sum(m[3] for m in await marks(js, layout, name))


async def topic_stats(
    js: JetStreamClient, layout: Layout, names: Sequence[str], sum_bytes: SumBytes = summed_bytes
) -> list[TopicStats]:
    """The stats of each topic of `names` that exists (has a head): the server's figures, with
    `sum_bytes` only where those cannot give the bytes (`topic_figures`)."""
    out = []
    for name in names:
        figures = await topic_figures(js, layout, name)
        if figures is None:
            continue
        first, nxt, count, stored = figures
        if stored is None:
            stored = await sum_bytes(js, layout, name)
        out.append(TopicStats(name, first, nxt, count, stored))
    return out


async def topic_bounds(js: JetStreamClient, layout: Layout, name: str) -> tuple[int, int] | None:
    """(first offset, next offset) of `name`, None if it has no head: two requests."""
    head = await js.get_last(layout.head(name))
    if head is None:
        return None
    nxt = int(head.data)
    first = await js.get_next(1, layout.topic_events(name))
    return (int(first.headers[H_OFFSET]) if first is not None else nxt), nxt


Figures = tuple[int, int, int, int | None]  # first offset, next offset, count, bytes or None
SNAPSHOT_TRIES = 6  # a topic's head is read before and after its count, until both agree
SHORT_PAUSE = 0.005  # s before counting again when a server had not yet applied a whole batch


async def topic_figures(js: JetStreamClient, layout: Layout, name: str) -> Figures | None:
    """(first offset, next offset, events stored, stored bytes) of `name`, None if it has no
    head: a few requests whatever the topic holds (no scan).

    The server counts the events and gives the first; the bytes are the head's H_BYTES less
    the first event's before it. That holds while the topic has no gap (an event deleted past
    its first, e.g. a federation discard: fewer events than offsets), and a gap shows only
    against a head no append moved while the count was taken, so the head is read again
    after it. A count short of such a head is not yet a gap: a head comes before its batch's
    events in the stream, so a server applying that batch shows the head with part of its
    events (seen every few seconds on a topic under load, each time summed). So the count is
    taken again, up to SNAPSHOT_TRIES times in all, until it matches a head that did not move.
    Where none did, or the topic has a gap or events from before H_BYTES, the bytes are None
    (the caller sums them)."""
    subject = layout.head(name)
    head = await js.get_last(subject)
    if head is None:
        return None
    events = layout.topic_events(name)
    for _ in range(SNAPSHOT_TRIES):
        first, count = await js.get_first_counted(events)
        again = await js.get_last(subject)
        settled = again is not None and again.seq == head.seq
        head = again if again is not None else head
        if not settled:
            continue
        if first is None or count == int(head.data) - int(first.headers[H_OFFSET]):
            break
        await asyncio.sleep(SHORT_PAUSE)  # short of a still head: a batch half applied, or a gap
    nxt = int(head.data)
    if first is None:
        return nxt, nxt, 0, 0
    start = int(first.headers[H_OFFSET])
    stored = None
    if settled and H_BYTES in first.headers and count == nxt - start:
        stored = appended_bytes(head.headers) - appended_bytes(first.headers) + len(first.data)
    return start, nxt, count, stored


class GaugeStats:
    """Topic stats cheap enough for every replica's gauges each second (topic_figures).

    Where the server's figures cannot give a topic's stored bytes (a gap, or events older than
    H_BYTES), summing them reads every event of it: that figure is summed again only once it is
    `bytes_every` seconds old, so it may lag by that much (docs/deploying.md)."""

    def __init__(self, bytes_every: float, clock: Callable[[], float]) -> None:
        self._every = bytes_every
        self._clock = clock
        self._summed: dict[str, tuple[float, int]] = {}  # topic -> (summed at, bytes)

    async def stats(
        self, js: JetStreamClient, layout: Layout, names: Sequence[str]
    ) -> list[TopicStats]:
        for gone in self._summed.keys() - set(names):
            del self._summed[gone]
        return await topic_stats(js, layout, names, self._summed_bytes)

    async def _summed_bytes(self, js: JetStreamClient, layout: Layout, name: str) -> int:
        now = self._clock()
        known = self._summed.get(name)
        if known is None or now - known[0] >= self._every:
            known = (now, await summed_bytes(js, layout, name))
            self._summed[name] = known
        return known[1]


def retention_cut(rows: Sequence[Mark], *, older_than: float | None, max_bytes: int | None) -> int:
    """How many of the oldest `rows` retention removes: those received before `older_than`,
    then more until the rest fits in `max_bytes`."""
    cut = 0
    if older_than is not None:
        while cut < len(rows) and rows[cut][2] < older_than:
            cut += 1
    if max_bytes is not None:
        total = sum(m[3] for m in rows[cut:])
        while cut < len(rows) and total > max_bytes:
            total -= rows[cut][3]
            cut += 1
    return cut
